package storage

import (
	"context"
	"encoding/json"
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
