// Package conformance adapts the library's Go binding to
// k8s.io/apiserver/pkg/storage.Interface, so that Kubernetes' own generic
// storage tests (k8s.io/apiserver/pkg/storage/testing) run against it.
//
// The library stores, reads, lists, pages, updates and watches; what
// storage.Interface asks beyond that is done here, as Go's etcd3 store does it
// on top of etcd, and marked "adapter:" below: objects are encoded and decoded
// with a scheme codec, label and field selectors are applied to the library's
// results, preconditions and the deletion validation run against the object
// read, resourceVersionMatch is turned into the library's resource version
// rules, and keys are checked against a resource prefix.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"

	binding "apiserver-storage/go/storage"
)

// Store is storage.Interface over one library handle.
type Store struct {
	lib     *binding.Storage
	codec   runtime.Codec
	newFunc func() runtime.Object
	prefix  string // the handle's etcd key prefix, as the library joins it
	// resourcePrefix is Go's store's: every key must lie under it.
	resourcePrefix string
	versioner      storage.APIObjectVersioner

	mu      sync.Mutex
	watches map[*binding.Watcher]struct{} // running, for RequestWatchProgress
}

// New opens a library handle with configJSON; prefix must be the config's
// prefix, and resourcePrefix is the part of the keyspace the store serves.
func New(configJSON, prefix, resourcePrefix string, codec runtime.Codec, newFunc func() runtime.Object) (*Store, error) {
	lib, err := binding.New(configJSON)
	if err != nil {
		return nil, err
	}
	return &Store{lib: lib, codec: codec, newFunc: newFunc, prefix: prefix, resourcePrefix: resourcePrefix}, nil
}

// checkKey is Go's prepareKey. adapter: the library joins any key onto its
// prefix; Go's store refuses keys outside its resource prefix.
func (s *Store) checkKey(key string, recursive bool) error {
	_, err := storage.PrepareKey(s.resourcePrefix, key, recursive)
	return err
}

// Close releases the handle.
func (s *Store) Close() error { return s.lib.Close() }

var _ storage.Interface = (*Store)(nil)

func (s *Store) Versioner() storage.Versioner { return s.versioner }

var tooLarge = regexp.MustCompile(`Too large resource version: (\d+), current: (\d+)`)

// convertError turns the binding's errors into the storage package's, which
// the tests inspect with storage.IsNotFound, apierrors.IsResourceExpired, ....
func convertError(err error, key string) error {
	var e *binding.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() {
	case binding.CodeKeyNotFound:
		return storage.NewKeyNotFoundError(key, 0)
	case binding.CodeKeyExists:
		return storage.NewKeyExistsError(key, 0)
	case binding.CodeResourceVersionConflicts:
		return storage.NewResourceVersionConflictsError(key, 0)
	case binding.CodeInvalidObj:
		return storage.NewInvalidObjError(key, e.Message)
	case binding.CodeUnreachable:
		return storage.NewUnreachableError(key, 0)
	case binding.CodeCorruptObj:
		return storage.NewCorruptObjError(key, e)
	case binding.CodeExpired:
		return apierrors.NewResourceExpired(e.Message)
	case binding.CodeTimeout:
		if m := tooLarge.FindStringSubmatch(e.Message); m != nil {
			minimum, _ := strconv.ParseUint(m[1], 10, 64)
			current, _ := strconv.ParseUint(m[2], 10, 64)
			return storage.NewTooLargeResourceVersionError(minimum, current, 0)
		}
		return storage.NewTimeoutError(key, e.Message)
	}
	return storage.NewInternalError(e)
}

func (s *Store) decode(data []byte, into runtime.Object) error {
	_, _, err := s.codec.Decode(data, nil, into)
	return err
}

func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	// Go's store clears resourceVersion and selfLink before it encodes.
	obj = obj.DeepCopyObject()
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return nil, err
	}
	return runtime.Encode(s.codec, obj)
}

func (s *Store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	if err := s.checkKey(key, false); err != nil {
		return err
	}
	// adapter: Go's error for a resourceVersion set on create.
	if version, err := s.versioner.ObjectResourceVersion(obj); err == nil && version != 0 {
		return storage.ErrResourceVersionSetOnCreate
	}
	data, err := s.encode(obj)
	if err != nil {
		return err
	}
	created, err := s.lib.Create(ctx, key, data, time.Duration(ttl)*time.Second)
	if err != nil {
		return convertError(err, key)
	}
	return s.decode(created, out)
}

func (s *Store) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	if err := s.checkKey(key, false); err != nil {
		return err
	}
	if _, err := s.versioner.ParseResourceVersion(opts.ResourceVersion); err != nil {
		return err
	}
	obj, err := s.lib.Get(ctx, key, binding.GetOptions{ResourceVersion: opts.ResourceVersion, IgnoreNotFound: opts.IgnoreNotFound})
	if err != nil {
		return convertError(err, key)
	}
	if obj.Data == nil {
		return runtime.SetZeroValue(out)
	}
	return s.decode(obj.Data, out)
}

// Delete follows Go's conditionalDelete: the preconditions and
// validateDeletion are checked against the cached object when given, else
// against the stored one, and the library deletes only if the object is
// still at the version checked; a change in between starts over from a read.
func (s *Store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	if err := s.checkKey(key, false); err != nil {
		return err
	}
	read := func() (runtime.Object, uint64, error) {
		obj := s.newFunc()
		if err := s.Get(ctx, key, storage.GetOptions{}, obj); err != nil {
			return nil, 0, err
		}
		if opts.ExpectTransformOrDecodeError {
			// adapter: the library deletes only objects it can read, so
			// this option can only be refused.
			return nil, 0, storage.NewInvalidObjError(key, "the object was read: it has no transform or decode error")
		}
		rv, err := s.versioner.ObjectResourceVersion(obj)
		return obj, rv, err
	}
	var current runtime.Object
	var rv uint64
	var err error
	isCurrent := cachedExistingObject == nil || opts.ExpectTransformOrDecodeError
	if isCurrent {
		current, rv, err = read()
	} else {
		current = cachedExistingObject
		rv, err = s.versioner.ObjectResourceVersion(current)
	}
	if err != nil {
		return err
	}
	for {
		check := preconditions.Check(key, current)
		if check == nil {
			check = validateDeletion(ctx, current)
		}
		if check != nil {
			if isCurrent {
				return check
			}
			cachedRV := rv
			if current, rv, err = read(); err != nil {
				return err
			}
			isCurrent = true
			if rv == cachedRV {
				return check
			}
			continue
		}
		deleted, err := s.lib.DeleteWithPreconditions(ctx, key, &binding.Preconditions{ResourceVersion: strconv.FormatUint(rv, 10)})
		if binding.IsInvalidObj(err) {
			// Changed since the version checked.
			if current, rv, err = read(); err != nil {
				return err
			}
			isCurrent = true
			continue
		}
		if err != nil {
			return convertError(err, key)
		}
		return s.decode(deleted, out)
	}
}

// GuaranteedUpdate runs tryUpdate inside the library's read-modify-write
// loop. The cached object is not used: the library always starts from a read.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, _ runtime.Object) error {
	if err := s.checkKey(key, false); err != nil {
		return err
	}
	updated, err := s.lib.GuaranteedUpdateWithTTL(ctx, key, nil, ignoreNotFound,
		func(current []byte, rv int64, exists bool) ([]byte, *uint64, error) {
			obj := s.newFunc()
			if exists {
				if err := s.decode(current, obj); err != nil {
					return nil, nil, err
				}
			}
			// adapter: preconditions and the update see the decoded object.
			if err := preconditions.Check(key, obj); err != nil {
				return nil, nil, err
			}
			ret, ttl, err := tryUpdate(obj, storage.ResponseMeta{ResourceVersion: uint64(rv)})
			if err != nil {
				return nil, nil, err
			}
			data, err := s.encode(ret)
			return data, ttl, err
		})
	if binding.IsNotFound(err) {
		return storage.NewKeyNotFoundError(key, 0)
	}
	if err != nil {
		return convertError(err, key)
	}
	return s.decode(updated, destination)
}

func (s *Store) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	if err := s.checkKey(key, opts.Recursive); err != nil {
		return err
	}
	keyPrefix := s.prefix + key
	if opts.Recursive && !strings.HasSuffix(keyPrefix, "/") {
		keyPrefix += "/"
	}
	withRev, continueKey, err := storage.ValidateListOptions(keyPrefix, s.versioner, opts)
	if err != nil {
		return err
	}
	listPtr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return err
	}
	items, err := conversion.EnforcePtr(listPtr)
	if err != nil || items.Kind() != reflect.Slice {
		return fmt.Errorf("need ptr to slice: %v", err)
	}
	appendIfMatches := func(data []byte) error {
		obj := reflect.New(items.Type().Elem())
		if err := s.decode(data, obj.Interface().(runtime.Object)); err != nil {
			return err
		}
		// adapter: label and field selectors are applied here.
		if ok, err := opts.Predicate.Matches(obj.Interface().(runtime.Object)); err != nil || !ok {
			return err
		}
		items.Set(reflect.Append(items, obj.Elem()))
		return nil
	}
	if !opts.Recursive {
		return s.getSingle(ctx, key, opts, withRev, listObj, items, appendIfMatches)
	}

	// adapter: resourceVersionMatch becomes the library's rules, under which
	// a version is a minimum unpaged and exact paged.
	rv, limit := opts.ResourceVersion, opts.Predicate.Limit
	minimum := ""
	if withRev == 0 && rv != "" && rv != "0" {
		rv, minimum = "", rv
	}
	if withRev != 0 {
		rv = strconv.FormatInt(withRev, 10)
		if limit == 0 {
			limit = unpagedExact
		}
	}
	if opts.Predicate.Continue != "" {
		rv = ""
	}
	continueToken := opts.Predicate.Continue
	var page libList
	for {
		want := limit
		if opts.Predicate.Limit > 0 {
			// Never fetch more than can be returned, so the library's
			// continue token is the one to hand on.
			want = opts.Predicate.Limit - int64(items.Len())
		}
		data, err := s.lib.ListAt(ctx, key, rv, want, continueToken)
		if binding.IsExpired(err) && continueKey != "" {
			return expiredContinue(continueKey, keyPrefix)
		}
		if err != nil {
			return convertError(err, key)
		}
		page = libList{}
		if err := json.Unmarshal(data, &page); err != nil {
			return err
		}
		for _, item := range page.Items {
			if err := appendIfMatches(item); err != nil {
				return err
			}
		}
		continueToken = page.Metadata.Continue
		if continueToken == "" || opts.Predicate.Limit == 0 || int64(items.Len()) >= opts.Predicate.Limit {
			break
		}
		rv = ""
	}
	listRV, err := strconv.ParseUint(page.Metadata.ResourceVersion, 10, 64)
	if err != nil {
		return err
	}
	if minimum != "" {
		if err := validateMinimum(minimum, listRV); err != nil {
			return err
		}
	}
	if items.IsNil() {
		items.Set(reflect.MakeSlice(items.Type(), 0, 0))
	}
	if opts.Predicate.Limit == 0 {
		continueToken = ""
	}
	var remaining *int64
	if continueToken != "" && opts.Predicate.Empty() {
		remaining = page.Metadata.RemainingItemCount
	}
	return s.versioner.UpdateList(listObj, listRV, continueToken, remaining)
}

// expiredContinue is Go's handleCompactedErrorForPaging. adapter: the
// library's error carries no continue token, so the token for an
// inconsistent continuation at the latest revision is made here.
func expiredContinue(continueKey, keyPrefix string) error {
	token, err := storage.EncodeContinue(continueKey, keyPrefix, -1)
	if err != nil {
		token = ""
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusGone,
		Reason: metav1.StatusReasonExpired,
		Message: "The provided continue parameter is too old to display a consistent list result. " +
			"You can start a new list without the continue parameter, or use the continue token in this response " +
			"to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list " +
			"- objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
		ListMeta: metav1.ListMeta{Continue: token},
	}}
}

// unpagedExact is the page size of an unpaged list at an exact version: the
// library reads a paged list at the version given.
const unpagedExact = 1 << 62

type libList struct {
	Items    []json.RawMessage `json:"items"`
	Metadata struct {
		ResourceVersion    string `json:"resourceVersion"`
		Continue           string `json:"continue"`
		RemainingItemCount *int64 `json:"remainingItemCount"`
	} `json:"metadata"`
}

func validateMinimum(minimum string, actual uint64) error {
	rv, err := strconv.ParseUint(minimum, 10, 64)
	if err != nil {
		return err
	}
	if rv > actual {
		return storage.NewTooLargeResourceVersionError(rv, actual, 0)
	}
	return nil
}

// getSingle is a non-recursive list: the one object at key, if it matches,
// read at withRev when it is set.
func (s *Store) getSingle(ctx context.Context, key string, opts storage.ListOptions, withRev int64, listObj runtime.Object, items reflect.Value, appendIfMatches func([]byte) error) error {
	get := binding.GetOptions{ResourceVersion: opts.ResourceVersion, IgnoreNotFound: true}
	if withRev != 0 {
		get = binding.GetOptions{ResourceVersion: strconv.FormatInt(withRev, 10), IgnoreNotFound: true, Exact: true}
	}
	obj, err := s.lib.Get(ctx, key, get)
	if err != nil {
		return convertError(err, key)
	}
	if obj.Data != nil {
		if err := appendIfMatches(obj.Data); err != nil {
			return err
		}
	}
	if items.IsNil() {
		items.Set(reflect.MakeSlice(items.Type(), 0, 0))
	}
	listRV := uint64(withRev)
	if withRev == 0 {
		if listRV, err = s.GetCurrentResourceVersion(ctx); err != nil {
			return err
		}
	}
	return s.versioner.UpdateList(listObj, listRV, "", nil)
}

func (s *Store) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	if err := s.checkKey(key, opts.Recursive); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// As Go's watcher: a watch on an ended context is closed at once.
		return watch.NewEmptyWatch(), nil
	}
	if opts.Recursive && !strings.HasSuffix(key, "/") {
		key += "/"
	}
	rev, err := s.versioner.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	initialEvents := (opts.SendInitialEvents == nil && rev == 0) || (opts.SendInitialEvents != nil && *opts.SendInitialEvents)
	w := &watcher{
		store:    s,
		pred:     opts.Predicate,
		result:   make(chan watch.Event, outgoingBuffer),
		done:     make(chan struct{}),
		bookmark: opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.Predicate.AllowWatchBookmarks,
	}
	ctx, w.cancel = context.WithCancel(ctx)
	var initial []runtime.Object
	from := rev
	if initialEvents {
		// adapter: the initial state is a list, as Go's watcher syncs, so
		// that the end-of-initial-events bookmark can follow it.
		if from, initial, err = s.listForWatch(ctx, key, opts, rev); err != nil {
			w.cancel()
			return nil, err
		}
	} else if rev == 0 {
		current, err := s.GetCurrentResourceVersion(ctx)
		if err != nil {
			w.cancel()
			return nil, err
		}
		from = current
	}
	lw, err := s.lib.Watch(ctx, strings.TrimSuffix(key, "/"), binding.WatchOptions{ResourceVersion: strconv.FormatUint(from, 10), Recursive: opts.Recursive, ProgressNotify: opts.ProgressNotify})
	if err != nil {
		w.cancel()
		return nil, convertError(err, key)
	}
	s.track(lw)
	go func() {
		defer s.untrack(lw)
		w.run(ctx, lw, initial, from)
	}()
	utilflowcontrol.WatchInitialized(ctx)
	return w, nil
}

// listForWatch reads the objects a watch starts with and the revision to watch from.
func (s *Store) listForWatch(ctx context.Context, key string, opts storage.ListOptions, rev uint64) (uint64, []runtime.Object, error) {
	current, err := s.GetCurrentResourceVersion(ctx)
	if err != nil {
		return 0, nil, err
	}
	if rev > current {
		return 0, nil, storage.NewTooLargeResourceVersionError(rev, current, 0)
	}
	var objs []runtime.Object
	if !opts.Recursive {
		obj, err := s.lib.Get(ctx, key, binding.GetOptions{IgnoreNotFound: true})
		if err != nil {
			return 0, nil, convertError(err, key)
		}
		if obj.Data != nil {
			o := s.newFunc()
			if err := s.decode(obj.Data, o); err != nil {
				return 0, nil, err
			}
			objs = append(objs, o)
		}
		current, err = s.GetCurrentResourceVersion(ctx)
		return current, objs, err
	}
	data, err := s.lib.ListAt(ctx, key, strconv.FormatUint(current, 10), unpagedExact, "")
	if err != nil {
		return 0, nil, convertError(err, key)
	}
	var page libList
	if err := json.Unmarshal(data, &page); err != nil {
		return 0, nil, err
	}
	for _, item := range page.Items {
		o := s.newFunc()
		if err := s.decode(item, o); err != nil {
			return 0, nil, err
		}
		objs = append(objs, o)
	}
	return current, objs, nil
}

// outgoingBuffer is Go's watcher's: events up to it that were read from the
// library before Stop are still delivered after it.
const outgoingBuffer = 100

type watcher struct {
	store    *Store
	pred     storage.SelectionPredicate
	bookmark bool
	result   chan watch.Event
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		<-w.done
	})
}

func (w *watcher) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *watcher) matches(obj runtime.Object) bool {
	ok, err := w.pred.Matches(obj)
	return err == nil && ok
}

func (w *watcher) run(ctx context.Context, lw *binding.Watcher, initial []runtime.Object, from uint64) {
	defer close(w.done)
	defer close(w.result)
	defer lw.Stop()
	for _, obj := range initial {
		if w.matches(obj) && !w.send(ctx, watch.Event{Type: watch.Added, Object: obj}) {
			return
		}
	}
	if w.bookmark {
		obj := w.store.newFunc()
		if err := w.store.versioner.UpdateObject(obj, from); err == nil && storage.AnnotateInitialEventsEndBookmark(obj) == nil {
			if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: obj}) {
				return
			}
		}
	}
	for {
		var ev binding.Event
		var ok bool
		select {
		case ev, ok = <-lw.ResultChan():
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		out, send := w.convert(ev)
		if send && !w.send(ctx, out) {
			return
		}
		if out.Type == watch.Error {
			return
		}
	}
}

// convert turns a library event into the event a watcher with w.pred sees:
// adapter: as Go's watcher, a change into the selection is ADDED and one out
// of it DELETED.
func (w *watcher) convert(ev binding.Event) (watch.Event, bool) {
	if ev.Type == binding.EventError {
		err := convertError(ev.Err, ev.Key)
		var status apierrors.APIStatus
		if !errors.As(err, &status) {
			status = apierrors.NewInternalError(err)
		}
		st := status.Status()
		return watch.Event{Type: watch.Error, Object: &st}, true
	}
	if ev.Type == binding.EventBookmark {
		// As Go's watcher: an empty object of the type, with the revision.
		obj := w.store.newFunc()
		if err := w.store.versioner.UpdateObject(obj, uint64(ev.ResourceVersion)); err != nil {
			st := apierrors.NewInternalError(err).Status()
			return watch.Event{Type: watch.Error, Object: &st}, true
		}
		return watch.Event{Type: watch.Bookmark, Object: obj}, true
	}
	decode := func(data []byte) runtime.Object {
		if data == nil {
			return nil
		}
		obj := w.store.newFunc()
		if err := w.store.decode(data, obj); err != nil {
			return nil
		}
		return obj
	}
	cur, prev := decode(ev.Object), decode(ev.PrevObject)
	if ev.Type == binding.EventModified && prev == nil {
		// adapter: Go's watcher ends on a change whose previous state etcd
		// no longer has (compacted); the library passes it on without it.
		st := apierrors.NewInternalError(fmt.Errorf("etcd event received with PrevKv=nil (key=%q, modRevision=%d, type=PUT)", ev.Key, ev.ResourceVersion)).Status()
		return watch.Event{Type: watch.Error, Object: &st}, true
	}
	switch ev.Type {
	case binding.EventAdded:
		return watch.Event{Type: watch.Added, Object: cur}, w.matches(cur)
	case binding.EventDeleted:
		return watch.Event{Type: watch.Deleted, Object: cur}, w.matches(cur)
	}
	curMatches := w.matches(cur)
	prevMatches := prev != nil && w.matches(prev)
	switch {
	case curMatches && prevMatches:
		return watch.Event{Type: watch.Modified, Object: cur}, true
	case curMatches:
		return watch.Event{Type: watch.Added, Object: cur}, true
	case prevMatches:
		// The object leaves the selection at this revision.
		if err := w.store.versioner.UpdateObject(prev, uint64(ev.ResourceVersion)); err != nil {
			return watch.Event{}, false
		}
		return watch.Event{Type: watch.Deleted, Object: prev}, true
	}
	return watch.Event{}, false
}

func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	n, err := s.lib.Count(ctx, "/")
	if err != nil {
		return storage.Stats{}, convertError(err, "/")
	}
	return storage.Stats{ObjectCount: n}, nil
}

func (s *Store) ReadinessCheck() error { return s.lib.Health(context.Background()) }

// RequestWatchProgress asks each running watch for a bookmark, as Go's asks
// the etcd client's watch stream.
func (s *Store) RequestWatchProgress(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for lw := range s.watches {
		if err := lw.RequestProgress(); err != nil {
			return convertError(err, "")
		}
	}
	return nil
}

func (s *Store) track(lw *binding.Watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watches == nil {
		s.watches = map[*binding.Watcher]struct{}{}
	}
	s.watches[lw] = struct{}{}
}

func (s *Store) untrack(lw *binding.Watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watches, lw)
}

// GetCurrentResourceVersion is the revision of a list of a directory no test writes.
func (s *Store) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	data, err := s.lib.ListAt(ctx, "/.current-revision", "", 1, "")
	if err != nil {
		return 0, convertError(err, "")
	}
	var page libList
	if err := json.Unmarshal(data, &page); err != nil {
		return 0, err
	}
	return strconv.ParseUint(page.Metadata.ResourceVersion, 10, 64)
}

func (s *Store) EnableResourceSizeEstimation(storage.KeysFunc) error { return nil }

// CompactRevision is what the cluster's compactors recorded; Go's reports 0
// when it does not know either.
func (s *Store) CompactRevision() int64 {
	rev, err := s.lib.CompactRevision(context.Background())
	if err != nil {
		return 0
	}
	return rev
}
