package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// ETCD_ENDPOINT names a running etcd (tests/bindings.rs starts one).
func open(t *testing.T) *Storage {
	t.Helper()
	endpoint := os.Getenv("ETCD_ENDPOINT")
	if endpoint == "" {
		t.Fatal("ETCD_ENDPOINT is not set: run through tests/bindings.rs")
	}
	s, err := New(fmt.Sprintf(`{"server_list":[%q],"prefix":"/gotest"}`, endpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCreateGetDelete(t *testing.T) {
	s, ctx := open(t), context.Background()
	created, err := s.Create(ctx, "/cms/a", []byte(`{"kind":"ConfigMap","metadata":{"name":"a"}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Metadata struct{ Name, ResourceVersion string }
	}
	if err := json.Unmarshal(created, &obj); err != nil || obj.Metadata.ResourceVersion == "" {
		t.Fatalf("created %s: %v", created, err)
	}
	got, err := s.Get(ctx, "/cms/a", GetOptions{})
	if err != nil || fmt.Sprint(got.ResourceVersion) != obj.Metadata.ResourceVersion || got.Stale {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Create(ctx, "/cms/a", []byte(`{}`), 0); !IsExist(err) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.Delete(ctx, "/cms/a"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "/cms/a", GetOptions{})
	if !IsNotFound(err) || err.(*Error).Key != "/gotest/cms/a" {
		t.Fatalf("get after delete: %v", err)
	}
	if got, err := s.Get(ctx, "/cms/a", GetOptions{IgnoreNotFound: true}); err != nil || got.Data != nil {
		t.Fatalf("ignore not found: %+v %v", got, err)
	}
}

func TestListCountAndErrors(t *testing.T) {
	s, ctx := open(t), context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("/list/o%d", i), []byte(fmt.Sprintf(`{"metadata":{"name":"o%d"}}`, i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Count(ctx, "/list"); err != nil || n != 5 {
		t.Fatalf("count: %d %v", n, err)
	}
	page, err := s.List(ctx, "/list", 2, "")
	if err != nil || !strings.Contains(string(page), `"continue":"`) {
		t.Fatalf("list: %s %v", page, err)
	}
	if _, err := s.List(ctx, "/list", 2, "bogus"); err == nil || err.(*Error).Code() != CodeInvalidArgument {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := New(`{"server_list":[],"x":1}`); err == nil || err.(*Error).Code() != CodeInvalidConfig {
		t.Fatalf("bad config: %v", err)
	}
}

func TestContextDeadlinesAndClose(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Health(ctx); err != context.Canceled {
		t.Fatalf("cancelled context: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Health(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Get(ctx, "/x", GetOptions{}); err != errClosed {
		t.Fatalf("after close: %v", err)
	}
	if !strings.Contains(Version(), ".") {
		t.Fatal(Version())
	}
}

func TestGoroutinesShareAHandle(t *testing.T) {
	s, ctx := open(t), context.Background()
	if _, err := s.Create(ctx, "/shared/k", []byte(`{"metadata":{"name":"k"}}`), 0); err != nil && !IsExist(err) {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := s.Get(ctx, "/shared/k", GetOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

const rangeOK = `grpc_client_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}`

// sample is the value of the sample line for series in a scrape, or -1 when absent.
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			var f float64
			if _, err := fmt.Sscan(line[len(series)+1:], &f); err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func TestMetricsCountThisHandlesReads(t *testing.T) {
	writer, ctx := open(t), context.Background()
	if _, err := writer.Create(ctx, "/metrics/k", []byte(`{"metadata":{"name":"k"}}`), 0); err != nil && !IsExist(err) {
		t.Fatal(err)
	}
	s := open(t)
	const gets = 7
	for i := 0; i < gets; i++ {
		if _, err := s.Get(ctx, "/metrics/k", GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	text, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if got := sample(t, text, rangeOK); got != gets {
		t.Fatalf("%s = %v, want %d:\n%s", rangeOK, got, gets, text)
	}
	if !strings.Contains(text, "# TYPE grpc_client_handled_total counter\n") {
		t.Fatalf("no TYPE line:\n%s", text)
	}
	// The other handle's reads are its own.
	if text, err := writer.Metrics(); err != nil || sample(t, text, rangeOK) > 0 {
		t.Fatalf("writer's scrape counts the reader's gets (%v):\n%s", err, text)
	}
	s.Close()
	if _, err := s.Metrics(); err != errClosed {
		t.Fatalf("metrics after close: %v", err)
	}
}

type counter struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Count int `json:"count"`
}

func increment(current []byte, _ int64, exists bool) ([]byte, error) {
	var c counter
	if exists {
		if err := json.Unmarshal(current, &c); err != nil {
			return nil, err
		}
	}
	c.Metadata.Name = "c"
	c.Count++
	return json.Marshal(c)
}

func TestGuaranteedUpdateFromManyGoroutines(t *testing.T) {
	s, ctx := open(t), context.Background()
	const goroutines, increments = 8, 25
	var wg sync.WaitGroup
	var calls int64
	var mu sync.Mutex
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				_, err := s.GuaranteedUpdate(ctx, "/counters/c", nil, true, func(cur []byte, rv int64, exists bool) ([]byte, error) {
					mu.Lock()
					calls++
					mu.Unlock()
					return increment(cur, rv, exists)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "/counters/c", GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var c counter
	if err := json.Unmarshal(got.Data, &c); err != nil || c.Count != goroutines*increments {
		t.Fatalf("count %d after %d increments (%v): %s", c.Count, goroutines*increments, err, got.Data)
	}
	t.Logf("%d increments took %d calls of tryUpdate", goroutines*increments, calls)
}

func TestGuaranteedUpdatePreconditionsAndResourceVersions(t *testing.T) {
	s, ctx := open(t), context.Background()
	if _, err := s.GuaranteedUpdate(ctx, "/counters/absent", nil, false, increment); !IsNotFound(err) {
		t.Fatalf("absent key without ignoreNotFound: %v", err)
	}
	created, err := s.Create(ctx, "/counters/p", []byte(`{"metadata":{"name":"p","uid":"u-1"},"count":1}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	var c counter
	if err := json.Unmarshal(created, &c); err != nil {
		t.Fatal(err)
	}
	rv := c.Metadata.ResourceVersion
	var seen int64
	updated, err := s.GuaranteedUpdate(ctx, "/counters/p", &Preconditions{UID: "u-1", ResourceVersion: rv}, false,
		func(cur []byte, curRV int64, exists bool) ([]byte, error) {
			seen = curRV
			if !exists {
				t.Error("exists is false for a stored object")
			}
			return increment(cur, curRV, exists)
		})
	if err != nil || fmt.Sprint(seen) != rv {
		t.Fatalf("update with matching preconditions: %v, tryUpdate saw resourceVersion %d, want %s", err, seen, rv)
	}
	if err := json.Unmarshal(updated, &c); err != nil || c.Count != 2 || c.Metadata.ResourceVersion == rv {
		t.Fatalf("updated: %s %v", updated, err)
	}
	// The old resource version no longer matches: Kubernetes' precondition failure.
	for _, pre := range []*Preconditions{{ResourceVersion: rv}, {UID: "u-2"}} {
		_, err := s.GuaranteedUpdate(ctx, "/counters/p", pre, false, increment)
		if !IsInvalidObj(err) || !strings.Contains(err.Error(), "Precondition failed") {
			t.Fatalf("stale precondition %+v: %v", *pre, err)
		}
	}
	if got, _ := s.Get(ctx, "/counters/p", GetOptions{}); !strings.Contains(string(got.Data), `"count":2`) {
		t.Fatalf("a failed precondition wrote: %s", got.Data)
	}
}

var errRefused = errors.New("refused by tryUpdate")

type wrapped struct{ error }

func (w wrapped) Unwrap() error { return w.error }

func TestGuaranteedUpdateErrorsAndPanicsAbort(t *testing.T) {
	s, ctx := open(t), context.Background()
	if _, err := s.Create(ctx, "/counters/e", []byte(`{"metadata":{"name":"e"},"count":7}`), 0); err != nil {
		t.Fatal(err)
	}
	unchanged := func() {
		t.Helper()
		got, err := s.Get(ctx, "/counters/e", GetOptions{})
		if err != nil || !strings.Contains(string(got.Data), `"count":7`) {
			t.Fatalf("the object changed: %s %v", got.Data, err)
		}
	}
	_, err := s.GuaranteedUpdate(ctx, "/counters/e", nil, false, func([]byte, int64, bool) ([]byte, error) {
		return nil, wrapped{errRefused}
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("tryUpdate's error came back as %#v", err)
	}
	if _, ok := err.(wrapped); !ok {
		t.Fatalf("tryUpdate's error was changed: %#v", err)
	}
	unchanged()

	recovered := func() (r any) {
		defer func() { r = recover() }()
		s.GuaranteedUpdate(ctx, "/counters/e", nil, false, func([]byte, int64, bool) ([]byte, error) {
			panic("boom")
		})
		return nil
	}()
	if recovered != "boom" {
		t.Fatalf("recovered %v, want the tryUpdate's panic", recovered)
	}
	unchanged()

	// A deadline passing inside tryUpdate: the call returns at the deadline
	// and the late result is not written.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.GuaranteedUpdate(short, "/counters/e", nil, false, func(cur []byte, rv int64, exists bool) ([]byte, error) {
		time.Sleep(1500 * time.Millisecond)
		return increment(cur, rv, exists)
	})
	if err != context.DeadlineExceeded || time.Since(start) > time.Second {
		t.Fatalf("deadline: %v after %v", err, time.Since(start))
	}
	time.Sleep(1500 * time.Millisecond)
	unchanged()

	// The handle still works after all of that.
	if _, err := s.GuaranteedUpdate(ctx, "/counters/e", nil, false, increment); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, w *Watcher) Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	panic("unreachable")
}

func TestWatchSeesChangesInOrder(t *testing.T) {
	s, ctx := open(t), context.Background()
	created, err := s.Create(ctx, "/watched/before", []byte(`{"metadata":{"name":"before"}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	var before counter
	json.Unmarshal(created, &before)

	w, err := s.Watch(ctx, "/watched", WatchOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// Resource version "": the current objects first.
	if ev := next(t, w); ev.Type != EventAdded || ev.Key != "/gotest/watched/before" || fmt.Sprint(ev.ResourceVersion) != before.Metadata.ResourceVersion {
		t.Fatalf("initial event: %+v", ev)
	}
	if _, err := s.Create(ctx, "/watched/w", []byte(`{"metadata":{"name":"w"},"count":0}`), 0); err != nil {
		t.Fatal(err)
	}
	updated, err := s.GuaranteedUpdate(ctx, "/watched/w", nil, false, increment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "/watched/w"); err != nil {
		t.Fatal(err)
	}
	var last int64
	for i, want := range []EventType{EventAdded, EventModified, EventDeleted} {
		ev := next(t, w)
		var obj counter
		if err := json.Unmarshal(ev.Object, &obj); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Type != want || ev.Key != "/gotest/watched/w" || ev.ResourceVersion <= last ||
			obj.Metadata.ResourceVersion != fmt.Sprint(ev.ResourceVersion) {
			t.Fatalf("event %d: %+v (%s), want %s after %d", i, ev, ev.Object, want, last)
		}
		if (want == EventAdded) != (ev.PrevObject == nil) {
			t.Fatalf("event %d: previous object %q", i, ev.PrevObject)
		}
		if want == EventModified && (obj.Count != 1 || !strings.Contains(string(updated), fmt.Sprintf(`"resourceVersion":"%d"`, ev.ResourceVersion))) {
			t.Fatalf("modification %s, update returned %s", ev.Object, updated)
		}
		last = ev.ResourceVersion
	}

	// From a resource version: only what came after it.
	w2, err := s.Watch(ctx, "/watched/w", WatchOptions{ResourceVersion: fmt.Sprint(last - 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if ev := next(t, w2); ev.Type != EventDeleted || ev.ResourceVersion != last {
		t.Fatalf("watch from %d: %+v", last-1, ev)
	}
	if _, err := s.Watch(ctx, "/watched", WatchOptions{ResourceVersion: "x"}); err == nil || err.(*Error).Code() != CodeInvalidArgument {
		t.Fatalf("bad resource version: %v", err)
	}
}

func TestWatchEndsWithItsContextAndStop(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, "/quiet", WatchOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the watch is idle, waiting in the library
	start := time.Now()
	cancel()
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Fatal("an event on a quiet key")
		}
	case <-time.After(time.Second):
		t.Fatal("the channel was not closed within 1 s of cancelling")
	}
	t.Logf("closed %v after cancel", time.Since(start))
	w.Stop() // after the end: a no-op

	w, err = s.Watch(context.Background(), "/quiet", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Stop with an event pending that nobody receives: no goroutine stays blocked.
	if _, err := s.Create(context.Background(), "/quiet", []byte(`{"metadata":{"name":"q"}}`), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	w.Stop()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if _, ok := <-w.ResultChan(); ok {
		t.Fatal("an event after Stop returned")
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Watch(cancelled, "/quiet", WatchOptions{}); err != context.Canceled {
		t.Fatalf("watch with a cancelled context: %v", err)
	}
}

// A TTL from the update function becomes a lease: the key expires, which a
// watch sees. Bookmarks come on request where etcd answers requests correctly
// (ETCD_ANSWERS_PROGRESS, set by tests/bindings.rs from etcd's version).
func TestUpdateTTLsBookmarksAndCompactRevision(t *testing.T) {
	s, ctx := open(t), context.Background()
	one := uint64(1)
	created, err := s.GuaranteedUpdateWithTTL(ctx, "/leased/a", nil, true, func([]byte, int64, bool) ([]byte, *uint64, error) {
		return []byte(`{"metadata":{"name":"a"}}`), &one, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	huge := uint64(1) << 63
	_, err = s.GuaranteedUpdateWithTTL(ctx, "/leased/a", nil, false, func([]byte, int64, bool) ([]byte, *uint64, error) {
		return []byte(`{"metadata":{"name":"a"},"n":1}`), &huge, nil
	})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("a TTL past int64: %v", err)
	}
	w, err := s.Watch(ctx, "/leased", WatchOptions{ResourceVersion: fmt.Sprint(resourceVersionOf(created)), Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		if ev.Type != EventDeleted || ev.Key != "/gotest/leased/a" {
			t.Fatalf("want the lease's deletion, got %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the key did not expire")
	}
	err = w.RequestProgress()
	if os.Getenv("ETCD_ANSWERS_PROGRESS") == "1" {
		if err != nil {
			t.Fatal(err)
		}
		if ev := <-w.ResultChan(); ev.Type != EventBookmark || ev.Key != "" || len(ev.Object) != 0 {
			t.Fatalf("want a bookmark, got %+v", ev)
		}
	} else if e, ok := err.(*Error); !ok || e.Code() != CodeUnsupported {
		t.Fatalf("an etcd older than 3.4.31 must refuse progress requests: %v", err)
	}
	if rev, err := s.CompactRevision(ctx); err != nil || rev != 0 {
		t.Fatalf("a fresh etcd has no compaction recorded: %d %v", rev, err)
	}
}

// Reencrypt after a key rotation: the stale object is rewritten, a
// progress error stops the walk with that error.
func TestReencrypt(t *testing.T) {
	endpoint := os.Getenv("ETCD_ENDPOINT")
	key1 := `{"name":"k1","secret":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`
	key2 := `{"name":"k2","secret":"HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo="}`
	open := func(keys string) *Storage {
		s, err := New(fmt.Sprintf(`{"server_list":[%q],"prefix":"/goreencrypt","transformer":{"providers":[{"aesgcm":{"keys":[%s]}}]}}`, endpoint, keys))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	old := open(key1)
	if _, err := old.Create(ctx, "/secrets/a", []byte(`{"kind":"Secret","metadata":{"name":"a"}}`), 0); err != nil {
		t.Fatal(err)
	}
	rotated := open(key2 + "," + key1)
	var pages int
	counts, err := rotated.Reencrypt(ctx, "/secrets", func(c ReencryptCounts, failure error) error {
		if failure != nil {
			t.Errorf("failure: %v", failure)
		}
		pages++
		return nil
	})
	if err != nil || counts != (ReencryptCounts{Seen: 1, Rewritten: 1}) || pages != 1 {
		t.Fatalf("reencrypt: %+v %v (%d pages)", counts, err, pages)
	}
	if got, err := rotated.Get(ctx, "/secrets/a", GetOptions{}); err != nil || got.Stale {
		t.Fatalf("after: %+v %v", got, err)
	}
	stop := errors.New("stop")
	if _, err := rotated.Reencrypt(ctx, "/secrets", func(ReencryptCounts, error) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("a progress error stops the walk: %v", err)
	}
}
