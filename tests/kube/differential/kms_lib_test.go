//go:build kmslib

package differential

// The library's half of KMS interop, for when the library reads `kms`
// providers: the library opens the same EncryptionConfiguration (naming the
// test plugin's sockets) and must read what Kubernetes wrote, write what
// Kubernetes reads, and fail and call values stale as Kubernetes does.
// Built only with `-tags kmslib` (see kms_test.go for the Kubernetes half).

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"

	lib "apiserver-storage/go/storage"
	"apiserver-storage/kube/kmsplugin/plugin"
)

func TestKMSLibrary(t *testing.T) {
	for _, codec := range []string{"json", "protobuf"} {
		t.Run(codec+"/v2", func(t *testing.T) {
			kms := startKMS(t)
			enc := newEncryption(t, kms.v2Provider("lib-kms2-"+codec, "3s"))
			kmsScenarios(t, openPair(t, kinds[1], "/lib-kms2-"+codec, codec, enc))
		})
		t.Run(codec+"/v1", func(t *testing.T) {
			enableKMSv1(t)
			kms := startKMS(t)
			enc := newEncryption(t, kms.v1Provider("lib-kms1-"+codec, 10))
			kmsScenarios(t, openPair(t, kinds[1], "/lib-kms1-"+codec, codec, enc))
		})
	}
	t.Run("v2/layout", libV2Layout)
	t.Run("v2/aes-gcm-key", libV2AESGCMKey)
	t.Run("v1/layout", libV1Layout)
	t.Run("v2/rotation", libV2Rotation)
	t.Run("v2/plugin failing", libV2Failing)
	t.Run("v2/plugin hanging", libV2Hanging)
	t.Run("v1 to v2", libV1ToV2)
}

// kmsScenarios are TestDifferential's scenarios over a KMS transformer.
func kmsScenarios(t *testing.T, p *pair) {
	t.Run("objects", p.objects)
	t.Run("update", p.update)
	t.Run("delete", p.delete)
	t.Run("ttl", p.ttl)
	t.Run("count", p.count)
	t.Run("list", p.list)
	t.Run("watch", p.watch)
	t.Run("errors", p.errors)
	t.Run("wrong key", p.wrongKey)
}

// libCreate creates an object through the library.
func (p *pair) libCreate(t *testing.T, namespace, name string) string {
	t.Helper()
	key := p.key(namespace, name)
	if _, err := p.ls.Create(ctx(t), key, p.input(t, p.k.sample(objMeta(namespace, name))), 0); err != nil {
		t.Fatalf("library Create %s: %v", key, err)
	}
	return key
}

// sameStale asserts that both sides read key alike and call it stale alike.
func (p *pair) sameStale(t *testing.T, key string, want bool) {
	t.Helper()
	_, goStale := p.raw(t, key)
	_, l := p.bothGet(t, key)
	if goStale != l.Stale || goStale != want {
		t.Errorf("%s stale: Kubernetes %v, library %v, want %v", key, goStale, l.Stale, want)
	}
}

func libNoopUpdate(t *testing.T, p *pair, key string) {
	t.Helper()
	if _, err := p.ls.GuaranteedUpdate(ctx(t), key, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) { return current, nil }); err != nil {
		t.Fatalf("library GuaranteedUpdate %s: %v", key, err)
	}
}

// libV2Layout: the library's values are Kubernetes' layout, with one seed
// per key ID for all its writes, and its reads cache decrypted seeds.
func libV2Layout(t *testing.T) {
	kms := startKMS(t)
	name := "lib-kms2-layout"
	p := openPair(t, kinds[1], "/lib-kms2-layout", "protobuf", newEncryption(t, kms.v2Provider(name, "3s")))
	before := kms.Stats()
	var dekSource []byte
	for i, n := range []string{"a", "b", "c"} {
		key := p.libCreate(t, "layout", n)
		o := v2Object(t, p.stored(t, key), name)
		if o.KeyID != "key-1" || o.EncryptedDEKSourceType != kmstypes.EncryptedDEKSourceType_HKDF_SHA256_XNONCE_AES_GCM_SEED {
			t.Errorf("%s: key ID %q, type %v; want key-1 and a seed, as Kubernetes writes", key, o.KeyID, o.EncryptedDEKSourceType)
		}
		if string(o.Annotations[plugin.AnnotationKey]) != "key-1" {
			t.Errorf("%s: the plugin's annotations are not kept: %q", key, o.Annotations)
		}
		if i == 0 {
			dekSource = o.EncryptedDEKSource
		} else if !bytes.Equal(dekSource, o.EncryptedDEKSource) {
			t.Errorf("%s: a new seed per write; Kubernetes keeps one per key ID", key)
		}
		plaintext, stale := p.raw(t, key)
		if stale || len(o.EncryptedData) != 32+12+16+len(plaintext) {
			t.Errorf("%s: stale %v, %d bytes of encryptedData for %d of plaintext", key, stale, len(o.EncryptedData), len(plaintext))
		}
	}
	// At most the library's priming Status and Encrypt, whenever it made them.
	after := kms.Stats()
	if after.V2.Encrypt-before.V2.Encrypt > 1 {
		t.Errorf("%d Encrypt calls for three writes", after.V2.Encrypt-before.V2.Encrypt)
	}
	// Kubernetes' values: one Decrypt for all of them under one seed.
	keys := p.createSecrets(t, "by-go", 3)
	before = kms.Stats()
	for _, key := range append(keys, keys...) {
		p.bothGet(t, key)
	}
	if got := kms.Stats().V2.Decrypt - before.V2.Decrypt; got != 1 {
		t.Errorf("%d Decrypt calls to read six values under one seed twice, want 1", got)
	}
}

// libV2AESGCMKey: the library reads values under an AES-GCM DEK (1.27/1.28)
// and calls them stale, as a kube-apiserver writing seeds does.
func libV2AESGCMKey(t *testing.T) {
	kms := startKMS(t)
	name := "lib-kms2-dek"
	providers := kms.v2Provider(name, "3s")
	restore := encryptionconfig.SetKDFForTests(name, false)
	t.Cleanup(restore)
	old := openKube(t, kinds[1], "/lib-kms2-dek", "json", newEncryption(t, providers))
	keys := old.createSecrets(t, "dek", 2)
	restore()
	p := openPair(t, kinds[1], old.prefix, "json", newEncryption(t, providers))
	for _, key := range keys {
		p.sameStale(t, key, true)
	}
	libNoopUpdate(t, p, keys[0])
	if o := v2Object(t, p.stored(t, keys[0]), name); o.EncryptedDEKSourceType != kmstypes.EncryptedDEKSourceType_HKDF_SHA256_XNONCE_AES_GCM_SEED {
		t.Errorf("rewritten as %v", o.EncryptedDEKSourceType)
	}
	p.sameStale(t, keys[0], false)
}

// libV1Layout: Kubernetes' v1 layout, a new DEK per write.
func libV1Layout(t *testing.T) {
	enableKMSv1(t)
	kms := startKMS(t)
	name := "lib-kms1-layout"
	p := openPair(t, kinds[1], "/lib-kms1-layout", "json", newEncryption(t, kms.v1Provider(name, 10)))
	before := kms.Stats()
	var deks [][]byte
	for _, n := range []string{"a", "b"} {
		key := p.libCreate(t, "layout", n)
		encryptedDEK, data := v1Envelope(t, p.stored(t, key), name)
		if id, err := plugin.KeyIDOf(encryptedDEK); err != nil || id != "key-1" {
			t.Errorf("%s: the encrypted DEK is not the plugin's: %q %v", key, id, err)
		}
		plaintext, stale := p.raw(t, key)
		if stale || len(data) != 12+len(plaintext)+16 {
			t.Errorf("%s: stale %v, %d bytes of AES-GCM data for %d of plaintext", key, stale, len(data), len(plaintext))
		}
		deks = append(deks, encryptedDEK)
	}
	if bytes.Equal(deks[0], deks[1]) {
		t.Errorf("two writes under one DEK; Kubernetes makes one per write")
	}
	if got := kms.Stats().V1.Encrypt - before.V1.Encrypt; got != 2 {
		t.Errorf("%d Encrypt calls for two writes, want 2", got)
	}
}

// libV2Rotation: after the key ID changes, values under the old one are
// stale for both, and a no-op update by the library rewrites them.
func libV2Rotation(t *testing.T) {
	kms := startKMS(t)
	name := "lib-kms2-rotation"
	providers := kms.v2Provider(name, "3s")
	before := openPair(t, kinds[1], "/lib-kms2-rotation", "json", newEncryption(t, providers))
	byGo := before.createSecrets(t, "rotation", 1)[0]
	byLib := before.libCreate(t, "rotation", "by-lib")
	rotated, err := kms.Rotate("")
	if err != nil {
		t.Fatal(err)
	}
	// Fresh handles see the new key ID at once (a running one at its next
	// Status poll, once a minute in Kubernetes).
	after := openPair(t, kinds[1], before.prefix, "json", newEncryption(t, providers))
	for _, key := range []string{byGo, byLib} {
		after.sameStale(t, key, true)
		libNoopUpdate(t, after, key)
		if o := v2Object(t, after.stored(t, key), name); o.KeyID != rotated {
			t.Errorf("%s: rewritten with key ID %q, want %q", key, o.KeyID, rotated)
		}
		after.sameStale(t, key, false)
	}
}

// libV2Failing: with the plugin failing, a primed library writes and reads
// its own values; a read needing Decrypt fails as in Kubernetes.
func libV2Failing(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("lib-kms2-failing", "3s")
	p := openPair(t, kinds[1], "/lib-kms2-failing", "json", newEncryption(t, providers))
	other := openKube(t, kinds[1], p.prefix, "json", newEncryption(t, providers))
	byOther := other.createSecrets(t, "other", 1)[0]
	byLib := p.libCreate(t, "lib", "before")
	kms.Fail()
	t.Cleanup(kms.Reset)
	before := kms.Stats()
	p.libCreate(t, "lib", "while-failing")
	if _, err := p.ls.Get(ctx(t), byLib, lib.GetOptions{}); err != nil {
		t.Errorf("library Get of its own value while the plugin fails: %v", err)
	}
	checkStats(t, "library writes and cached reads while failing", kms.Stats(), before)
	_, goErr := p.goGet(t, byOther)
	_, libErr := p.ls.Get(ctx(t), byOther, lib.GetOptions{})
	sameClass(t, "Get needing Decrypt from a failing plugin", "CorruptObj", goErr, libErr)
}

// libV2Hanging: the provider's timeout bounds the library's plugin calls.
func libV2Hanging(t *testing.T) {
	kms := startKMS(t)
	providers := kms.v2Provider("lib-kms2-hanging", "1s")
	p := openPair(t, kinds[1], "/lib-kms2-hanging", "json", newEncryption(t, providers))
	other := openKube(t, kinds[1], p.prefix, "json", newEncryption(t, providers))
	byOther := other.createSecrets(t, "other", 1)[0]
	kms.Hang()
	t.Cleanup(kms.Reset)
	start := time.Now()
	_, libErr := p.ls.Get(ctx(t), byOther, lib.GetOptions{})
	elapsed := time.Since(start)
	if libErr == nil || elapsed < time.Second || elapsed > 10*time.Second {
		t.Errorf("library Get needing Decrypt from a hung plugin: %v after %v, want an error after the 1s timeout", libErr, elapsed)
	}
	_, goErr := p.goGet(t, byOther)
	sameClass(t, "Get needing Decrypt from a hung plugin", "CorruptObj", goErr, libErr)
	if libErr != nil && !strings.Contains(libErr.Error(), "within 1s") {
		t.Errorf("the library's error does not name the timeout: %v", libErr)
	}
}

// libV1ToV2: behind a v2 provider, v1 values are stale for both and the
// library's no-op update rewrites them as v2.
func libV1ToV2(t *testing.T) {
	enableKMSv1(t)
	kms := startKMS(t)
	old := openKube(t, kinds[1], "/lib-kms-v1-to-v2", "protobuf", newEncryption(t, kms.v1Provider("lib-kms1-migrating", 10)))
	key := old.createSecrets(t, "migrate", 1)[0]
	p := openPair(t, kinds[1], old.prefix, "protobuf", newEncryption(t, kms.v2Provider("lib-kms2-migrating", "3s")+kms.v1Provider("lib-kms1-migrating", 10)))
	p.sameStale(t, key, true)
	libNoopUpdate(t, p, key)
	v2Object(t, p.stored(t, key), "lib-kms2-migrating")
	p.sameStale(t, key, false)
}
