package differential

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	kstorage "k8s.io/apiserver/pkg/storage"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	featuregatetesting "k8s.io/component-base/featuregate/testing"

	"apiserver-storage/kube/kmsplugin/plugin"
)

// The Kubernetes half of KMS envelope encryption: EncryptionConfigurations
// with kms providers, loaded by Kubernetes' loader against the test plugin
// (tests/kube/kmsplugin, here in-process on unix sockets), and Secrets
// written through k8s.io/apiserver's etcd3 store. What it pins down is what
// the library must match: the stored layout, when the plugin is called, and
// how failures, hangs and rotation show. The library's half is
// kms_lib_test.go (build tag kmslib).

// kmsPlugin is the test plugin serving both APIs.
type kmsPlugin struct {
	*plugin.Plugin
	v2Socket, v1Socket string
}

func startKMS(t *testing.T) *kmsPlugin {
	t.Helper()
	// Not t.TempDir(): a unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p, err := plugin.New("key-1")
	if err != nil {
		t.Fatal(err)
	}
	k := &kmsPlugin{Plugin: p, v2Socket: filepath.Join(dir, "v2.sock"), v1Socket: filepath.Join(dir, "v1.sock")}
	server, err := plugin.Serve(p, k.v2Socket, k.v1Socket, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Close)
	return k
}

// v2Provider is a `kms` provider entry for the v2 API (timeout like "3s").
func (k *kmsPlugin) v2Provider(name, timeout string) string {
	return fmt.Sprintf("  - kms:\n      apiVersion: v2\n      name: %s\n      endpoint: unix://%s\n      timeout: %s\n", name, k.v2Socket, timeout)
}

// v1Provider is a `kms` provider entry for the deprecated v1 API.
func (k *kmsPlugin) v1Provider(name string, cacheSize int) string {
	return fmt.Sprintf("  - kms:\n      apiVersion: v1\n      name: %s\n      endpoint: unix://%s\n      cachesize: %d\n      timeout: 3s\n", name, k.v1Socket, cacheSize)
}

// enableKMSv1 turns on the KMSv1 feature gate (off by default since 1.29:
// the loader refuses v1 providers without it).
func enableKMSv1(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.KMSv1, true)
}

// v2Object is the EncryptedObject of a stored KMS v2 value.
func v2Object(t *testing.T, stored []byte, name string) *kmstypes.EncryptedObject {
	t.Helper()
	prefix := "k8s:enc:kms:v2:" + name + ":"
	body, ok := bytes.CutPrefix(stored, []byte(prefix))
	if !ok {
		t.Fatalf("the stored value does not start with %q: %q", prefix, stored[:min(len(stored), 40)])
	}
	o := &kmstypes.EncryptedObject{}
	if err := proto.Unmarshal(body, o); err != nil {
		t.Fatalf("the stored value is not an EncryptedObject: %v", err)
	}
	return o
}

// v1Envelope splits a stored KMS v1 value: the encrypted DEK and the data.
func v1Envelope(t *testing.T, stored []byte, name string) (encryptedDEK, data []byte) {
	t.Helper()
	prefix := "k8s:enc:kms:v1:" + name + ":"
	body, ok := bytes.CutPrefix(stored, []byte(prefix))
	if !ok || len(body) < 2 {
		t.Fatalf("the stored value does not start with %q: %q", prefix, stored[:min(len(stored), 40)])
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+n {
		t.Fatalf("the encrypted DEK's length %d overruns the value (%d bytes)", n, len(body))
	}
	return body[2 : 2+n], body[2+n:]
}

func checkStats(t *testing.T, what string, got plugin.Counts, want plugin.Counts) {
	t.Helper()
	if got != want {
		t.Errorf("%s: the plugin saw %+v, want %+v", what, got, want)
	}
}

// v2Stats is the Counts with the given v2 calls.
func v2Stats(status, encrypt, decrypt int64) plugin.Counts {
	var c plugin.Counts
	c.V2.Status, c.V2.Encrypt, c.V2.Decrypt = status, encrypt, decrypt
	return c
}

func v1Stats(version, encrypt, decrypt int64) plugin.Counts {
	var c plugin.Counts
	c.V1.Version, c.V1.Encrypt, c.V1.Decrypt = version, encrypt, decrypt
	return c
}

// createSecrets creates n Secrets through Kubernetes and returns their keys.
func (p *pair) createSecrets(t *testing.T, namespace string, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		key := p.key(namespace, name)
		if err := p.gs.Create(ctx(t), key, p.k.sample(objMeta(namespace, name)), p.k.newObj(), 0); err != nil {
			t.Fatalf("Kubernetes Create %s: %v", key, err)
		}
		keys = append(keys, key)
	}
	return keys
}

// sameObject asserts that q (another kube-apiserver) reads key as p does.
func sameObject(t *testing.T, p, q *pair, key string) {
	t.Helper()
	a, err := p.goGet(t, key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	b, err := q.goGet(t, key)
	if err != nil {
		t.Fatalf("Get %s through the second loader: %v", key, err)
	}
	sameJSON(t, "Get "+key, p.served(t, a), q.served(t, b))
}

func noopUpdate(t *testing.T, p *pair, key string) {
	t.Helper()
	err := p.gs.GuaranteedUpdate(ctx(t), key, p.k.newObj(), false, nil, func(in runtime.Object, _ kstorage.ResponseMeta) (runtime.Object, *uint64, error) {
		return in, nil, nil
	}, nil)
	if err != nil {
		t.Fatalf("GuaranteedUpdate %s: %v", key, err)
	}
}

func healthErr(enc *encryption) error {
	req, _ := http.NewRequest(http.MethodGet, "/healthz", nil)
	for _, h := range enc.health {
		if err := h.Check(req); err != nil {
			return err
		}
	}
	return nil
}

func TestKMS(t *testing.T) {
	for _, codec := range []string{"json", "protobuf"} {
		t.Run(codec+"/v2/seed", func(t *testing.T) { kmsV2Writes(t, codec, true) })
		t.Run(codec+"/v2/aes-gcm-key", func(t *testing.T) { kmsV2Writes(t, codec, false) })
	}
	t.Run("v2/rotation", kmsV2Rotation)
	t.Run("v2/plugin failing", kmsV2Failing)
	t.Run("v2/plugin hanging", kmsV2Hanging)
	t.Run("v2/plugin unhealthy", kmsV2Unhealthy)
	for _, codec := range []string{"json", "protobuf"} {
		t.Run(codec+"/v1", func(t *testing.T) { kmsV1Writes(t, codec) })
	}
	t.Run("v1 to v2", kmsV1ToV2)
}

// kmsV2Writes: the stored layout, one DEK or seed for many writes, and a
// second kube-apiserver that reads them with one Decrypt call.
func kmsV2Writes(t *testing.T, codec string, useSeed bool) {
	kms := startKMS(t)
	name, wantType, overhead := "kms2-seed-"+codec, kmstypes.EncryptedDEKSourceType_HKDF_SHA256_XNONCE_AES_GCM_SEED, 32+12+16
	restoreKDF := func() {}
	if !useSeed {
		// Kubernetes writes seeds since 1.29; this per-provider switch of its
		// own brings back the AES-GCM DEK of 1.27 and 1.28.
		name, wantType, overhead = "kms2-dek-"+codec, kmstypes.EncryptedDEKSourceType_AES_GCM_KEY, 12+16
		restoreKDF = encryptionconfig.SetKDFForTests(name, false)
		t.Cleanup(restoreKDF)
	}
	providers := kms.v2Provider(name, "3s")
	enc := newEncryption(t, providers)
	// Loading primes the provider: a Status, then an Encrypt of a new DEK/seed.
	checkStats(t, "after loading", kms.Stats(), v2Stats(1, 1, 0))

	p := openKube(t, kinds[1], "/kms-"+name, codec, enc)
	keys := p.createSecrets(t, "kms", 3)
	var dekSource []byte
	var counter uint64
	for i, key := range keys {
		o := v2Object(t, p.stored(t, key), name)
		if o.KeyID != "key-1" || o.EncryptedDEKSourceType != wantType {
			t.Errorf("%s: key ID %q, DEK source type %v; want key-1, %v", key, o.KeyID, o.EncryptedDEKSourceType, wantType)
		}
		if got := string(o.Annotations[plugin.AnnotationKey]); got != "key-1" || len(o.Annotations) != 1 {
			t.Errorf("%s: annotations %q, want the plugin's", key, o.Annotations)
		}
		if id, err := plugin.KeyIDOf(o.EncryptedDEKSource); err != nil || id != "key-1" {
			t.Errorf("%s: the encrypted DEK source is not the plugin's for key-1: %q %v", key, id, err)
		}
		if i == 0 {
			dekSource = o.EncryptedDEKSource
		} else if !bytes.Equal(o.EncryptedDEKSource, dekSource) {
			t.Errorf("%s: another DEK source: Kubernetes reuses one per key ID", key)
		}
		plaintext, stale := p.raw(t, key)
		if stale {
			t.Errorf("%s: stale right after the write", key)
		}
		if len(o.EncryptedData) != overhead+len(plaintext) {
			t.Errorf("%s: encryptedData is %d bytes for %d of plaintext, want %d more", key, len(o.EncryptedData), len(plaintext), overhead)
		}
		if !useSeed {
			// The nonce: 4 random bytes, then a little-endian write counter
			// starting after one billion.
			n := binary.LittleEndian.Uint64(o.EncryptedData[4:12])
			if n <= 1_000_000_000 || (i > 0 && n != counter+1) {
				t.Errorf("%s: nonce counter %d after %d", key, n, counter)
			}
			counter = n
		}
	}
	// The DEK/seed written with is in the read cache: no plugin calls.
	for _, key := range keys {
		sameObject(t, p, p, key)
	}
	checkStats(t, "after writes and reads", kms.Stats(), v2Stats(1, 1, 0))

	// A second kube-apiserver: its own DEK/seed for writes, one Decrypt for
	// all objects under the first one, and no staleness (same key ID and type).
	q := openKube(t, kinds[1], p.prefix, codec, newEncryption(t, providers))
	for _, key := range keys {
		sameObject(t, p, q, key)
		if _, stale := q.raw(t, key); stale {
			t.Errorf("%s: stale for the second loader", key)
		}
	}
	checkStats(t, "after the second loader's reads", kms.Stats(), v2Stats(2, 2, 1))

	// The etcd key is authenticated: the value does not read elsewhere.
	moved := p.key("kms", "moved")
	if _, err := etcd.Put(ctx(t), p.etcdKey(moved), string(p.stored(t, keys[0]))); err != nil {
		t.Fatal(err)
	}
	if _, err := q.goGet(t, moved); goClass(err) != "CorruptObj" {
		t.Errorf("a value moved to another key: %v, want a corrupt object", err)
	}

	if !useSeed {
		// A kube-apiserver writing seeds calls DEK values stale.
		restoreKDF()
		r := openKube(t, kinds[1], p.prefix, codec, newEncryption(t, providers))
		if _, stale := r.raw(t, keys[0]); !stale {
			t.Errorf("an AES_GCM_KEY value is not stale for a loader writing seeds")
		}
	}
}

// kmsV2Rotation: a new key ID reaches a loaded transformer only through its
// Status poll; values under the old key ID are stale and rewritten.
func kmsV2Rotation(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("kms2-rotation", "3s")
	p := openKube(t, kinds[1], "/kms-rotation", "protobuf", newEncryption(t, providers))
	keys := p.createSecrets(t, "rotation", 2)
	rotated, err := kms.Rotate("")
	if err != nil {
		t.Fatal(err)
	}
	// The loaded transformer polls Status once a minute: until then it
	// keeps writing with key-1.
	later := p.key("rotation", "later")
	if err := p.gs.Create(ctx(t), later, p.k.sample(objMeta("rotation", "later")), p.k.newObj(), 0); err != nil {
		t.Fatal(err)
	}
	if o := v2Object(t, p.stored(t, later), "kms2-rotation"); o.KeyID != "key-1" {
		t.Errorf("written with key ID %q before the next Status poll, want key-1", o.KeyID)
	}

	before := kms.Stats()
	q := openKube(t, kinds[1], p.prefix, "protobuf", newEncryption(t, providers))
	for _, key := range keys {
		if _, stale := q.raw(t, key); !stale {
			t.Errorf("%s: not stale after the key ID changed", key)
		}
		sameObject(t, p, q, key)
	}
	// One Decrypt (old KEK) for both values under the old seed.
	checkStats(t, "after rotating", kms.Stats(), v2Stats(before.V2.Status+1, before.V2.Encrypt+1, 1))
	noopUpdate(t, q, keys[0])
	if o := v2Object(t, q.stored(t, keys[0]), "kms2-rotation"); o.KeyID != rotated {
		t.Errorf("rewritten with key ID %q, want %q", o.KeyID, rotated)
	}
	if _, stale := q.raw(t, keys[0]); stale {
		t.Errorf("stale after the rewrite")
	}
}

// kmsV2Failing: a primed transformer writes and reads its own values
// without the plugin; anything needing Encrypt or Decrypt fails.
func kmsV2Failing(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("kms2-failing", "3s")
	a := openKube(t, kinds[1], "/kms-failing", "json", newEncryption(t, providers))
	b := openKube(t, kinds[1], a.prefix, "json", newEncryption(t, providers))
	byA := a.createSecrets(t, "by-a", 1)[0]
	byB := b.createSecrets(t, "by-b", 1)[0]
	kms.Fail()
	before := kms.Stats()
	more := b.createSecrets(t, "by-b-failing", 1)[0]
	sameObject(t, b, b, byB)
	sameObject(t, b, b, more)
	checkStats(t, "writes and cached reads while failing", kms.Stats(), before)
	_, err := b.goGet(t, byA)
	if goClass(err) != "CorruptObj" || !strings.Contains(err.Error(), "failed to decrypt DEK") || !strings.Contains(err.Error(), "Unavailable") {
		t.Errorf("Get of a value under another DEK while failing: %v", err)
	}

	// A kube-apiserver starting now never gets a DEK/seed: Status answers
	// but Encrypt fails, and without a state it neither writes nor reads.
	enc := newEncryption(t, providers)
	c := openKube(t, kinds[1], a.prefix, "json", enc)
	if err := c.gs.Create(ctx(t), c.key("by-c", "x"), c.k.sample(objMeta("by-c", "x")), c.k.newObj(), 0); err == nil {
		t.Errorf("Create succeeded without a DEK")
	}
	if _, err := c.goGet(t, byB); err == nil {
		t.Errorf("Get succeeded on a loader that never got a DEK")
	}
	if err := healthErr(enc); err == nil || !strings.Contains(err.Error(), "failed to encrypt DEK") {
		t.Errorf("health check while Encrypt fails: %v", err)
	}
	kms.Reset()
	sameObject(t, a, b, byA)
}

// kmsV2Hanging: the provider's timeout bounds every plugin call.
func kmsV2Hanging(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("kms2-hanging", "1s")
	a := openKube(t, kinds[1], "/kms-hanging", "json", newEncryption(t, providers))
	b := openKube(t, kinds[1], a.prefix, "json", newEncryption(t, providers))
	byA := a.createSecrets(t, "by-a", 1)[0]
	kms.Hang()
	t.Cleanup(kms.Reset)
	start := time.Now()
	_, err := b.goGet(t, byA)
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "DeadlineExceeded") || elapsed < time.Second || elapsed > 10*time.Second {
		t.Errorf("Get needing a Decrypt from a hung plugin: %v after %v, want DeadlineExceeded after the 1s timeout", err, elapsed)
	}
	b.createSecrets(t, "by-b", 1) // a primed DEK/seed needs no plugin
	// Loading waits for the priming Status up to the timeout, then goes on
	// without a DEK (retrying in the background every 10s).
	start = time.Now()
	newEncryption(t, providers)
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("loading with a hung plugin took %v, want the 1s timeout", elapsed)
	}
	kms.Reset()
	sameObject(t, a, b, byA)
}

// kmsV2Unhealthy: a healthz other than "ok" fails the health check, and
// that is all it does: the same Status still primes a starting
// kube-apiserver with a DEK/seed, which reads and writes.
func kmsV2Unhealthy(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("kms2-unhealthy", "3s")
	a := openKube(t, kinds[1], "/kms-unhealthy", "json", newEncryption(t, providers))
	byA := a.createSecrets(t, "by-a", 1)[0]
	kms.Unhealthy()
	enc := newEncryption(t, providers)
	b := openKube(t, kinds[1], a.prefix, "json", enc)
	if err := healthErr(enc); err == nil || !strings.Contains(err.Error(), "got unexpected healthz status") {
		t.Errorf("health check of an unhealthy plugin: %v", err)
	}
	checkStats(t, "after loading with an unhealthy plugin", kms.Stats(), v2Stats(2, 2, 0))
	sameObject(t, a, b, byA)
	b.createSecrets(t, "by-b", 1)
	kms.Reset()
	// A failed check is remembered for 3s; then the next one asks again.
	time.Sleep(3100 * time.Millisecond)
	if err := healthErr(enc); err != nil {
		t.Errorf("health check after the plugin recovered: %v", err)
	}
}

// kmsV1Writes: a new DEK (and an Encrypt call) per write, the layout, and
// the decrypted-DEK LRU cache of `cachesize` entries.
func kmsV1Writes(t *testing.T, codec string) {
	enableKMSv1(t)
	kms := startKMS(t)
	name := "kms1-" + codec
	enc := newEncryption(t, kms.v1Provider(name, 10))
	checkStats(t, "after loading", kms.Stats(), v1Stats(0, 0, 0))
	p := openKube(t, kinds[1], "/kms-"+name, codec, enc)
	keys := p.createSecrets(t, "kms", 2)
	checkStats(t, "after two writes", kms.Stats(), v1Stats(1, 2, 0))
	var deks [][]byte
	for _, key := range keys {
		encryptedDEK, data := v1Envelope(t, p.stored(t, key), name)
		if id, err := plugin.KeyIDOf(encryptedDEK); err != nil || id != "key-1" {
			t.Errorf("%s: the encrypted DEK is not the plugin's for key-1: %q %v", key, id, err)
		}
		plaintext, stale := p.raw(t, key)
		if stale {
			t.Errorf("%s: stale right after the write", key)
		}
		// AES-GCM: nonce (12) | ciphertext | tag (16).
		if len(data) != 12+len(plaintext)+16 {
			t.Errorf("%s: %d bytes of data for %d of plaintext", key, len(data), len(plaintext))
		}
		deks = append(deks, encryptedDEK)
		sameObject(t, p, p, key)
	}
	if bytes.Equal(deks[0], deks[1]) {
		t.Errorf("two writes under one DEK")
	}
	checkStats(t, "after cached reads", kms.Stats(), v1Stats(1, 2, 0))

	// The health check encrypts and decrypts "ping".
	if err := healthErr(enc); err != nil {
		t.Errorf("health check: %v", err)
	}
	checkStats(t, "after the health check", kms.Stats(), v1Stats(1, 3, 1))

	// Other kube-apiservers: with cachesize 1, reading A, B, A decrypts
	// three times; with 10, twice.
	for _, tc := range []struct {
		size     int
		decrypts int64
	}{{1, 3}, {10, 2}} {
		before := kms.Stats()
		q := openKube(t, kinds[1], p.prefix, codec, newEncryption(t, kms.v1Provider(name, tc.size)))
		for _, key := range []string{keys[0], keys[1], keys[0]} {
			sameObject(t, p, q, key)
		}
		if got := kms.Stats().V1.Decrypt - before.V1.Decrypt; got != tc.decrypts {
			t.Errorf("cachesize %d: %d Decrypt calls for A, B, A; want %d", tc.size, got, tc.decrypts)
		}
	}
}

// kmsV1ToV2: with a v2 provider first, v1 values read as stale and are
// rewritten as v2.
func kmsV1ToV2(t *testing.T) {
	enableKMSv1(t)
	kms := startKMS(t)
	old := openKube(t, kinds[1], "/kms-v1-to-v2", "protobuf", newEncryption(t, kms.v1Provider("kms1-migrating", 10)))
	key := old.createSecrets(t, "migrate", 1)[0]
	p := openKube(t, kinds[1], old.prefix, "protobuf", newEncryption(t, kms.v2Provider("kms2-migrating", "3s")+kms.v1Provider("kms1-migrating", 10)))
	if _, stale := p.raw(t, key); !stale {
		t.Errorf("a v1 value is not stale behind a v2 provider")
	}
	sameObject(t, old, p, key)
	noopUpdate(t, p, key)
	v2Object(t, p.stored(t, key), "kms2-migrating")
	if _, stale := p.raw(t, key); stale {
		t.Errorf("stale after the rewrite")
	}
}
