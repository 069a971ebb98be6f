package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// The scheme and codec of etcd3's own store tests: example.Pod stored as
// example.apiserver.k8s.io/v1 JSON.
var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
	codec  = apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

// run keeps the keys of one run apart from an earlier run's on the same etcd.
var run = time.Now().UnixNano()

func endpoint(t *testing.T) string {
	e := os.Getenv("ETCD_ENDPOINT")
	if e == "" {
		t.Fatal("ETCD_ENDPOINT is not set")
	}
	return e
}

// testStore is a store under a prefix of the test's own, as etcd3's tests
// get a fresh etcd each, and a plain etcd client for what the tests do to
// etcd behind the store's back.
type testStore struct {
	*Store
	etcd *clientv3.Client
	// transformerSwapped records a test's attempt to replace the value
	// transformer, which the library fixes when a handle is created.
	transformerSwapped bool
}

func setup(t *testing.T) (context.Context, *testStore) {
	prefix := fmt.Sprintf("/conformance/%d/%s", run, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	config, err := json.Marshal(map[string]any{
		"server_list": []string{endpoint(t)},
		"prefix":      prefix,
		"paging":      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(string(config), prefix, "/pods/", codec, func() runtime.Object { return &example.Pod{} })
	if err != nil {
		t.Fatal(err)
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint(t)}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{Store: s, etcd: client}
	t.Cleanup(func() {
		if ts.transformerSwapped {
			t.Error("the test replaces the store's value transformer, which the library fixes when a handle is created")
		}
		_ = client.Close()
		_ = s.Close()
	})
	return context.Background(), ts
}

func (s *testStore) UpdatePrefixTransformer(storagetesting.PrefixTransformerModifier) func() {
	s.transformerSwapped = true
	return func() {}
}

func (s *testStore) UpdateTransformer(storagetesting.TransformerModifier) func() {
	s.transformerSwapped = true
	return func() {}
}

// storedWithoutVersion is etcd3's checkStorageInvariants: the stored value
// carries neither resourceVersion nor selfLink.
func (s *testStore) storedWithoutVersion(ctx context.Context, t *testing.T, key string) {
	resp, err := s.etcd.Get(ctx, s.prefix+key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("expecting non empty result on key: %s", key)
	}
	obj, err := runtime.Decode(codec, resp.Kvs[0].Value)
	if err != nil {
		t.Fatalf("decoding the stored object: %v", err)
	}
	if pod := obj.(*example.Pod); pod.ResourceVersion != "" || pod.SelfLink != "" {
		t.Errorf("stored object has resourceVersion %q, selfLink %q", pod.ResourceVersion, pod.SelfLink)
	}
}

func (s *testStore) increaseRV(ctx context.Context, t *testing.T) int64 {
	resp, err := s.etcd.Put(ctx, "increaseRV", "ok")
	if err != nil {
		t.Fatalf("could not update increaseRV: %v", err)
	}
	return resp.Header.Revision
}

func (s *testStore) compact(ctx context.Context, t *testing.T, resourceVersion string) {
	rv, err := s.versioner.ParseResourceVersion(resourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	// As kube-apiserver's compactor: record the revision, then compact.
	if _, err := s.etcd.Put(ctx, "compact_rev_key", resourceVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := s.etcd.Compact(ctx, int64(rv)); err != nil && !strings.Contains(err.Error(), "compacted") {
		t.Fatal(err)
	}
}

// noCallCounts stands for etcd3's checkStorageCallsInvariants, which counts
// the store's etcd reads and transformer calls: the library's are not
// visible to the adapter.
func noCallCounts(*testing.T, uint64, uint64) {}

// TestWatchSemantics runs first: it watches from revision 1, which the
// tests that compact the shared etcd remove.
func TestWatchSemantics(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunWatchSemantics(ctx, t, s)
}

func TestCreate(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestCreate(ctx, t, s, s.storedWithoutVersion)
}

func TestCreateWithTTL(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestCreateWithTTL(ctx, t, s)
}

func TestCreateWithKeyExist(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestCreateWithKeyExist(ctx, t, s)
}

func TestGet(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGet(ctx, t, s)
}

func TestUnconditionalDelete(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestUnconditionalDelete(ctx, t, s)
}

func TestConditionalDelete(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestConditionalDelete(ctx, t, s)
}

func TestDeleteWithSuggestion(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteWithSuggestion(ctx, t, s)
}

func TestDeleteWithSuggestionAndConflict(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, s)
}

func TestDeleteWithSuggestionOfDeletedObject(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, s)
}

func TestValidateDeletionWithSuggestion(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, s)
}

func TestValidateDeletionWithOnlySuggestionValid(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, s)
}

func TestDeleteWithConflict(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteWithConflict(ctx, t, s)
}

func TestPreconditionalDeleteWithSuggestion(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, s)
}

func TestPreconditionalDeleteWithSuggestionPass(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, s)
}

func TestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeFailure(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, s)
}

func TestListPaging(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListPaging(ctx, t, s)
}

func TestGetListNonRecursive(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGetListNonRecursive(ctx, t, s.increaseRV, s)
}

func TestGetListRecursivePrefix(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGetListRecursivePrefix(ctx, t, s)
}

func TestKeySchema(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestKeySchema(ctx, t, s)
}

func TestGuaranteedUpdate(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGuaranteedUpdate(ctx, t, s, s.storedWithoutVersion)
}

func TestGuaranteedUpdateWithTTL(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, s)
}

func TestGuaranteedUpdateChecksStoredData(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, s)
}

func TestGuaranteedUpdateWithConflict(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, s)
}

func TestGuaranteedUpdateWithSuggestionAndConflict(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, s)
}

func TestTransformationFailure(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestTransformationFailure(ctx, t, s)
}

func TestList(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestList(ctx, t, s, s.compact, false, nil)
}

func TestConsistentList(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestConsistentList(ctx, t, s, s.increaseRV, false, true, false)
}

func TestCompactRevision(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestCompactRevision(ctx, t, s, s.increaseRV, s.compact)
}

func TestListContinuation(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListContinuation(ctx, t, s, noCallCounts)
}

func TestListPaginationRareObject(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListPaginationRareObject(ctx, t, s, noCallCounts)
}

func TestListContinuationWithFilter(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListContinuationWithFilter(ctx, t, s, noCallCounts)
}

func TestNamespaceScopedList(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestNamespaceScopedList(ctx, t, s)
}

func TestListInconsistentContinuation(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListInconsistentContinuation(ctx, t, s, s.compact)
}

func TestListResourceVersionMatch(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestListResourceVersionMatch(ctx, t, s)
}

func TestWatch(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatch(ctx, t, s)
}

func TestClusterScopedWatch(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestClusterScopedWatch(ctx, t, s)
}

func TestNamespaceScopedWatch(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
}

func TestDeleteTriggerWatch(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
}

func TestWatchFromZero(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchFromZero(ctx, t, s, s.compact)
}

func TestWatchFromNonZero(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchFromNonZero(ctx, t, s)
}

func TestDelayedWatchDelivery(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
}

func TestWatchError(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchError(ctx, t, s)
}

func TestWatchContextCancel(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchContextCancel(ctx, t, s)
}

func TestWatcherTimeout(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatcherTimeout(ctx, t, s)
}

func TestWatchDeleteEventObjectHaveLatestRV(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
}

func TestWatchInitializationSignal(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
}

func TestProgressNotify(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunOptionalTestProgressNotify(ctx, t, s, s.increaseRV)
}

func TestWatchDispatchBookmarkEvents(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
}

func TestSendInitialEventsBackwardCompatibility(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, s)
}

func TestWatchSemanticInitialEventsExtended(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunWatchSemanticInitialEventsExtended(ctx, t, s)
}

func TestWatchListMatchSingle(t *testing.T) {
	ctx, s := setup(t)
	storagetesting.RunWatchListMatchSingle(ctx, t, s)
}

func TestWatchErrorIsBlockingFurtherEvents(t *testing.T) {
	ctx, s := setup(t)
	// It waits for its watches to end in an error that only a swapped
	// transformer causes: end them instead.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, s)
}
