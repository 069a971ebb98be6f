// Package differential runs the same storage operations through Kubernetes'
// own etcd3 store (k8s.io/apiserver, as kube-apiserver builds it) and through
// the library's Go binding, on one etcd, and asserts that each side reads
// what the other wrote and fails the same way.
package differential

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	kstorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/client-go/kubernetes/scheme"

	lib "apiserver-storage/go/storage"
)

var endpoint = flag.String("endpoint", "", "the etcd endpoint both sides use")

var etcd *clientv3.Client

func TestMain(m *testing.M) {
	flag.Parse()
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "-endpoint is required (cargo test --test differential passes it)")
		os.Exit(2)
	}
	var err error
	etcd, err = clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	etcd.Close()
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var mediaTypes = map[string]string{"json": "application/json", "protobuf": "application/vnd.kubernetes.protobuf"}

// encryption is one EncryptionConfiguration file, loaded by Kubernetes'
// loader for the Go side and named in the library's config.
type encryption struct {
	file         string
	transformers map[schema.GroupResource]value.Transformer
	// The KMS plugin health checks kube-apiserver would serve.
	health []healthz.HealthChecker
}

// newEncryption writes an EncryptionConfiguration with providers (YAML, the
// list under `providers:`) for every kind, and loads it as kube-apiserver does.
func newEncryption(t *testing.T, providers string) *encryption {
	var names []string
	for _, k := range kinds {
		names = append(names, k.resource())
	}
	doc := fmt.Sprintf("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [%s]\n  providers:\n%s",
		strings.Join(names, ", "), providers)
	file := filepath.Join(t.TempDir(), "encryption.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	// The context ends the KMS plugin connections and status polls.
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	loaded, err := encryptionconfig.LoadEncryptionConfig(c, file, false, "differential")
	if err != nil {
		t.Fatalf("LoadEncryptionConfig: %v\n%s", err, doc)
	}
	return &encryption{file: file, transformers: loaded.Transformers, health: loaded.HealthChecks}
}

// provider is one provider entry with the given keys (name, base64 secret).
func provider(typ string, keys ...[2]string) string {
	if typ == "identity" {
		return "  - identity: {}\n"
	}
	s := fmt.Sprintf("  - %s:\n      keys:\n", typ)
	for _, k := range keys {
		s += fmt.Sprintf("      - name: %s\n        secret: %s\n", k[0], k[1])
	}
	return s
}

var (
	key1     = [2]string{"key1", "ElYmU0fFmIPozs/ISXbwM3cwNElrbxswzfEUhvgHZtY="}
	key2     = [2]string{"key2", "7OSkWuxvMLCzk3MC9zSbKd3/GSE64OG75gfHwOV3INk="}
	key1Bad  = [2]string{"key1", "me3VTDTEoDoqRwGQnuXrFPFT7sHte92bx4cvGpsN0g0="}
	keyOther = [2]string{"other", "TAJh9Alc6/Ni9UwPfK1B2tAvTLJTb1HbwBlUwoVCUCQ="}
)

// pair is one kind under one prefix, codec and encryption on both sides.
type pair struct {
	k      *kind
	prefix string
	codec  string
	gs     kstorage.Interface
	ls     *lib.Storage
	tr     value.Transformer
}

func openPair(t *testing.T, k *kind, prefix, codec string, enc *encryption) *pair {
	p := openKube(t, k, prefix, codec, enc)
	config, _ := json.Marshal(map[string]any{
		"server_list": []string{*endpoint},
		"prefix":      prefix,
		"codec":       codec,
		"transformer": map[string]string{"encryption_config_file": enc.file, "resource": k.resource()},
	})
	ls, err := lib.New(string(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	p.ls = ls
	return p
}

// openKube is a pair without the library's side (ls is nil).
func openKube(t *testing.T, k *kind, prefix, codec string, enc *encryption) *pair {
	storageCodec, _, err := serverstorage.NewStorageCodec(serverstorage.StorageCodecConfig{
		StorageMediaType:  mediaTypes[codec],
		StorageSerializer: scheme.Codecs,
		StorageVersion:    k.gvk.GroupVersion(),
		MemoryVersion:     k.gvk.GroupVersion(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := storagebackend.NewDefaultConfig(prefix, storageCodec)
	cfg.Transport.ServerList = []string{*endpoint}
	cfg.CompactionInterval = 0
	cfg.Transformer = enc.transformers[k.gr]
	gs, destroy, err := factory.Create(*cfg.ForResource(k.gr), k.newObj, k.newList, "/"+k.gr.Resource)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(destroy)
	return &pair{k: k, prefix: prefix, codec: codec, gs: gs, tr: enc.transformers[k.gr]}
}

// key is the storage key of an object, as kube-apiserver's registry builds it.
func (p *pair) key(namespace, name string) string {
	return "/" + p.k.gr.Resource + "/" + namespace + "/" + name
}

func (p *pair) etcdKey(key string) string { return p.prefix + key }

// strict decodes JSON as kube-apiserver's JSON serializer does, failing on
// unknown and duplicated fields so that nothing the library emits is dropped.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})

// fromLib decodes one object the library returned into Kubernetes' type.
func (p *pair) fromLib(t *testing.T, data []byte) runtime.Object {
	t.Helper()
	obj := p.k.newObj()
	got, gvk, err := strict.Decode(data, nil, obj)
	if err != nil {
		t.Fatalf("the library's object does not decode strictly as %v: %v\n%s", p.k.gvk, err, data)
	}
	if *gvk != p.k.gvk {
		t.Fatalf("the library's object is a %v, want %v", gvk, p.k.gvk)
	}
	return got
}

// served is the object as kube-apiserver serves it as JSON.
func (p *pair) served(t *testing.T, obj runtime.Object) string {
	t.Helper()
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(p.k.gvk)
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// input is what the library is given to write: the object as JSON.
func (p *pair) input(t *testing.T, obj runtime.Object) []byte {
	return []byte(p.served(t, obj))
}

func sameJSON(t *testing.T, what, goJSON, libJSON string) {
	t.Helper()
	if goJSON == libJSON {
		return
	}
	var g, l any
	_ = json.Unmarshal([]byte(goJSON), &g)
	_ = json.Unmarshal([]byte(libJSON), &l)
	t.Errorf("%s: Kubernetes and the library differ (-go +lib):\n%s", what, cmp.Diff(g, l))
}

// revision is etcd's current revision.
func revision(t *testing.T) int64 {
	t.Helper()
	resp, err := etcd.Get(ctx(t), "/")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// at is a served object with another resourceVersion.
func (p *pair) at(t *testing.T, served string, rv int64) string {
	obj := p.fromLib(t, []byte(served))
	accessor(t, obj).SetResourceVersion(strconv.FormatInt(rv, 10))
	return p.served(t, obj)
}

func (p *pair) goGet(t *testing.T, key string) (runtime.Object, error) {
	out := p.k.newObj()
	err := p.gs.Get(ctx(t), key, kstorage.GetOptions{}, out)
	return out, err
}

// bothGet reads key on both sides and asserts they serve the same object.
func (p *pair) bothGet(t *testing.T, key string) (string, lib.Object) {
	t.Helper()
	g, err := p.goGet(t, key)
	if err != nil {
		t.Fatalf("Kubernetes Get %s: %v", key, err)
	}
	l, err := p.ls.Get(ctx(t), key, lib.GetOptions{})
	if err != nil {
		t.Fatalf("library Get %s: %v", key, err)
	}
	gj := p.served(t, g)
	sameJSON(t, "Get "+key, gj, p.served(t, p.fromLib(t, l.Data)))
	return gj, l
}

// raw is the stored value of key after Kubernetes' transformer, and whether
// the transformer calls it stale.
func (p *pair) raw(t *testing.T, key string) ([]byte, bool) {
	t.Helper()
	full := p.etcdKey(key)
	data, stale, err := p.tr.TransformFromStorage(ctx(t), p.stored(t, key), value.DefaultContext(full))
	if err != nil {
		t.Fatalf("Kubernetes' transformer cannot read %s: %v", full, err)
	}
	return data, stale
}

// stored is the value of key in etcd, as is.
func (p *pair) stored(t *testing.T, key string) []byte {
	t.Helper()
	full := p.etcdKey(key)
	resp, err := etcd.Get(ctx(t), full)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd get %s: %v %v", full, resp, err)
	}
	return resp.Kvs[0].Value
}

// put stores plaintext at key through tr, as a kube-apiserver configured
// with tr would.
func (p *pair) put(t *testing.T, key string, plaintext []byte, tr value.Transformer) {
	t.Helper()
	full := p.etcdKey(key)
	data, err := tr.TransformToStorage(ctx(t), plaintext, value.DefaultContext(full))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Put(ctx(t), full, string(data)); err != nil {
		t.Fatal(err)
	}
}

// goClass and libClass name an error's class: Kubernetes' storage error
// codes and the API errors its store returns, and the library's codes.
func goClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case kstorage.IsNotFound(err):
		return "NotFound"
	case kstorage.IsExist(err):
		return "Exists"
	case kstorage.IsConflict(err):
		return "Conflict"
	case kstorage.IsInvalidObj(err):
		return "InvalidObj"
	case kstorage.IsCorruptObject(err):
		return "CorruptObj"
	// kube-apiserver's answer to a list over undecodable values.
	case apierrors.ReasonForError(err) == metav1.StatusReasonStoreReadError:
		return "CorruptObj"
	case kstorage.IsInternalError(err):
		return "Internal"
	case apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return "Expired"
	case kstorage.IsTooLargeResourceVersion(err), apierrors.IsTimeout(err), kstorage.IsRequestTimeout(err):
		return "Timeout"
	case apierrors.IsBadRequest(err):
		return "InvalidArgument"
	}
	// kube-apiserver serves any other error as a 500 InternalError.
	return "Internal"
}

func libClass(err error) string {
	var e *lib.Error
	switch {
	case err == nil:
		return "ok"
	case !errors.As(err, &e):
		return "unclassified: " + err.Error()
	}
	switch e.Code() {
	case lib.CodeKeyNotFound:
		return "NotFound"
	case lib.CodeKeyExists:
		return "Exists"
	case lib.CodeResourceVersionConflicts:
		return "Conflict"
	case lib.CodeInvalidObj:
		return "InvalidObj"
	case lib.CodeCorruptObj:
		return "CorruptObj"
	case lib.CodeInternal:
		return "Internal"
	case lib.CodeExpired:
		return "Expired"
	case lib.CodeTimeout:
		return "Timeout"
	case lib.CodeInvalidArgument:
		return "InvalidArgument"
	}
	return fmt.Sprintf("code %d: %s", e.Code(), e.Message)
}

// knownDifferences are the scenarios where the library deliberately fails
// otherwise than Kubernetes: the classes each side gives, and why.
var knownDifferences = map[string]struct{ goClass, libClass, reason string }{
	"GuaranteedUpdate of a corrupt value": {"Internal", "CorruptObj",
		"Kubernetes' store reads the value for an update without its corrupt-object handling, so the failure to decrypt or decode is a plain error (a 500 InternalError); the library reports CORRUPT_OBJ naming the key, as its Get and List do and as Kubernetes' Get does"},
	"Get needing Decrypt from a hung plugin": {"CorruptObj", "Timeout",
		"Kubernetes reports a KMS plugin that does not answer within the provider's timeout as a corrupt object; the library says TIMEOUT (and UNREACHABLE for a plugin that is not listening), so a caller can tell a plugin outage from bad data and retry"},
	"Delete of a corrupt value": {"Internal", "CorruptObj",
		"as for GuaranteedUpdate, Kubernetes' store fails with a plain error (500) and removes such objects only through its unsafe-deletion option, which the library does not have; the library reports CORRUPT_OBJ naming the key"},
}

// sameClass asserts that both sides failed (or not) alike, and that the
// class is want, or, for a known difference, the recorded classes.
func sameClass(t *testing.T, scenario, want string, goErr, libErr error) {
	t.Helper()
	g, l := goClass(goErr), libClass(libErr)
	if known, ok := knownDifferences[scenario]; ok {
		if g != known.goClass || l != known.libClass {
			t.Errorf("%s (a known difference: Kubernetes %s, library %s): now Kubernetes %s (%v), library %s (%v)",
				scenario, known.goClass, known.libClass, g, goErr, l, libErr)
		}
		return
	}
	if g != l || g != want {
		t.Errorf("%s: Kubernetes %s (%v), library %s (%v); want %s", scenario, g, goErr, l, libErr, want)
	}
}

func printKnownDifferences() {
	fmt.Println("known differences (asserted):")
	for _, scenario := range slices.Sorted(maps.Keys(knownDifferences)) {
		d := knownDifferences[scenario]
		fmt.Printf("- %s: Kubernetes %s, library %s: %s\n", scenario, d.goClass, d.libClass, d.reason)
	}
}

// rawTable records, per kind and codec, whether both sides store the same
// plaintext for the same object (printed, not asserted).
var rawTable = map[string]map[string]bool{}

func recordRaw(k *kind, codec string, equal bool) {
	row := k.gvk.Kind
	if rawTable[row] == nil {
		rawTable[row] = map[string]bool{}
	}
	prev, seen := rawTable[row][codec]
	rawTable[row][codec] = equal && (prev || !seen)
}

func printRawTable() {
	fmt.Println("stored bytes (after decryption) of the same object written by each side:")
	fmt.Println("| kind | json | protobuf |")
	fmt.Println("|---|---|---|")
	for _, k := range kinds {
		row := rawTable[k.gvk.Kind]
		cell := func(codec string) string {
			if eq, ok := row[codec]; !ok {
				return "-"
			} else if eq {
				return "equal"
			}
			return "differ"
		}
		fmt.Printf("| %s | %s | %s |\n", k.gvk.Kind, cell("json"), cell("protobuf"))
	}
}

func accessor(t *testing.T, obj runtime.Object) metav1.Object {
	t.Helper()
	a, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
