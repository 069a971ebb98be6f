// Package storage is the Go binding of apiserver-storage: the Kubernetes API
// server's storage layer (k8s.io/apiserver/pkg/storage) through its C ABI, by
// cgo. Import it as apiserver-storage/go/storage (module apiserver-storage/go
// in bindings/go; require it with a replace directive pointing at a checkout).
//
// Build with CGO_CFLAGS=-I<repo>/include and CGO_LDFLAGS=-L<dir of
// libapiserver_storage.so> (plus -Wl,-rpath,<dir> to run from there), or with
// the library installed (make install).
//
//	s, err := storage.New(`{"server_list":["http://127.0.0.1:2379"]}`)
//	defer s.Close()
//	obj, err := s.Get(ctx, "/secrets/default/db", storage.GetOptions{})
//	updated, err := s.GuaranteedUpdate(ctx, "/configmaps/default/c", nil, false,
//		func(current []byte, rv int64, exists bool) ([]byte, error) { ... })
//	w, err := s.Watch(ctx, "/configmaps", storage.WatchOptions{Recursive: true})
//	for ev := range w.ResultChan() { ... }
//
// Failures are *Error values with the library's code (IsNotFound, IsExist,
// IsConflict, ...), except where a caller's own error or ctx.Err() is returned
// as is. Every method honours its context: a call returns ctx.Err() when ctx
// ends first, leaving the library to finish (within its configured timeouts)
// in the background. Calls block an OS thread while the library works; a
// Storage is safe for concurrent use. No Go pointer is retained by C: inputs
// are copied to C memory for the call, results copied back into Go memory,
// and GuaranteedUpdate's callback is reached through a runtime/cgo.Handle.
package storage

/*
#cgo LDFLAGS: -lapiserver_storage
#include <stdlib.h>
#include "apiserver_storage.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Code is a storage_code: 1–8 are Kubernetes' storage error codes.
type Code int

const (
	CodeKeyNotFound              Code = 1
	CodeKeyExists                Code = 2
	CodeResourceVersionConflicts Code = 3
	CodeInvalidObj               Code = 4
	CodeUnreachable              Code = 5
	CodeTimeout                  Code = 6
	CodeCorruptObj               Code = 7
	CodeExpired                  Code = 8
	CodeInvalidArgument          Code = 100
	CodeInvalidConfig            Code = 101
	CodeUnsupported              Code = 102
	CodeInternal                 Code = 103
	CodePermissionDenied         Code = 104
)

// Error is a failed call, as Kubernetes' storage.StorageError.
type Error struct {
	code            Code
	Message         string
	Key             string
	ResourceVersion int64
}

func (e *Error) Error() string { return e.Message }

// Code is the storage_code of the failure.
func (e *Error) Code() Code { return e.code }

func hasCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.code == code
}

// IsNotFound mirrors k8s.io/apiserver/pkg/storage.IsNotFound.
func IsNotFound(err error) bool { return hasCode(err, CodeKeyNotFound) }

// IsExist mirrors storage.IsExist.
func IsExist(err error) bool { return hasCode(err, CodeKeyExists) }

// IsConflict mirrors storage.IsConflict.
func IsConflict(err error) bool { return hasCode(err, CodeResourceVersionConflicts) }

// IsInvalidObj mirrors storage.IsInvalidObj.
func IsInvalidObj(err error) bool { return hasCode(err, CodeInvalidObj) }

// IsUnreachable mirrors storage.IsUnreachable.
func IsUnreachable(err error) bool { return hasCode(err, CodeUnreachable) }

// IsExpired reports a compacted resource version (HTTP 410 Gone).
func IsExpired(err error) bool { return hasCode(err, CodeExpired) }

func takeError(code C.storage_code, e *C.storage_error) error {
	defer C.storage_error_free(e)
	return &Error{
		code:            Code(code),
		Message:         C.GoString(C.storage_error_message(e)),
		Key:             C.GoString(C.storage_error_key(e)),
		ResourceVersion: int64(C.storage_error_resource_version(e)),
	}
}

// takeBytes copies library-owned bytes into Go memory and frees them.
func takeBytes(b C.storage_bytes) []byte {
	if b.data == nil {
		return nil
	}
	defer C.storage_bytes_free(b)
	return C.GoBytes(unsafe.Pointer(b.data), C.int(b.len))
}

// Storage is a store built from a config (Go's factory.Create).
type Storage struct {
	mu sync.RWMutex // Close must not race other calls: it takes the write lock
	s  *C.storage
}

// New builds a store from a JSON config; see the README for its keys.
func New(configJSON string) (*Storage, error) {
	cfg := C.CString(configJSON)
	defer C.free(unsafe.Pointer(cfg))
	var s *C.storage
	var cErr *C.storage_error
	if rc := C.storage_create(cfg, &s, &cErr); rc != C.STORAGE_OK {
		return nil, takeError(rc, cErr)
	}
	st := &Storage{s: s}
	runtime.SetFinalizer(st, (*Storage).Close)
	return st, nil
}

// Close is Go's DestroyFunc. It waits for calls in flight; later calls fail.
func (st *Storage) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.s != nil {
		C.storage_destroy(st.s)
		st.s = nil
	}
	return nil
}

var errClosed = &Error{code: CodeInvalidArgument, Message: "storage is closed"}

// with runs f on the open handle; Close waits for it.
func (st *Storage) with(f func(s *C.storage) error) error {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.s == nil {
		return errClosed
	}
	return f(st.s)
}

// callbackPanic carries a panic out of a Go callback that C called, so that it
// is raised again on the Go side of the C call rather than unwinding through C.
type callbackPanic struct{ value any }

func (p *callbackPanic) Error() string { return fmt.Sprint("panic in callback: ", p.value) }

// call runs f on the handle, bounded by ctx: the call is abandoned (and runs
// on to the library's own timeout in the background) when ctx ends first.
// A callback's panic is raised again in the caller, or, when the caller has
// already gone, in the background goroutine (as x/sync/singleflight does):
// a panic is never silently dropped.
func (st *Storage) call(ctx context.Context, f func(s *C.storage) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error)
	abandoned := make(chan struct{})
	go func() {
		err := st.with(f)
		select {
		case done <- err:
		case <-abandoned:
			if p, ok := err.(*callbackPanic); ok {
				panic(p.value)
			}
		}
	}()
	select {
	case err := <-done:
		if p, ok := err.(*callbackPanic); ok {
			panic(p.value)
		}
		return err
	case <-ctx.Done():
		close(abandoned)
		return ctx.Err()
	}
}

// GetOptions are Get's options, as storage.GetOptions.
type GetOptions struct {
	ResourceVersion string
	IgnoreNotFound  bool
	// Exact reads the key as it was at exactly ResourceVersion (Kubernetes'
	// resourceVersionMatch=Exact) instead of at least that recent; etcd3 only.
	Exact bool
}

// Object is what Get returns.
type Object struct {
	Data            []byte // nil when absent and IgnoreNotFound
	ResourceVersion int64
	Stale           bool // written with an older key: rewrite to re-encrypt
}

// Get reads key (relative to the configured prefix).
func (st *Storage) Get(ctx context.Context, key string, opts GetOptions) (Object, error) {
	var obj Object
	err := st.call(ctx, func(s *C.storage) error {
		cKey, cRV := C.CString(key), C.CString(opts.ResourceVersion)
		defer C.free(unsafe.Pointer(cKey))
		defer C.free(unsafe.Pointer(cRV))
		var out C.storage_bytes
		var info C.storage_object_info
		var cErr *C.storage_error
		var rc C.storage_code
		if opts.Exact {
			rc = C.storage_get_exact(s, cKey, cRV, C.bool(opts.IgnoreNotFound), &out, &info, &cErr)
		} else {
			rc = C.storage_get_with_info(s, cKey, cRV, C.bool(opts.IgnoreNotFound), &out, &info, &cErr)
		}
		if rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		obj = Object{Data: takeBytes(out), ResourceVersion: int64(info.resource_version), Stale: bool(info.stale)}
		return nil
	})
	return obj, err
}

// Health checks etcd as kube-apiserver's /healthz/etcd does.
func (st *Storage) Health(ctx context.Context) error {
	return st.call(ctx, func(s *C.storage) error {
		var cErr *C.storage_error
		if rc := C.storage_health(s, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		return nil
	})
}

// Create stores object at key if absent; ttl > 0 attaches a lease. It returns the stored object.
func (st *Storage) Create(ctx context.Context, key string, object []byte, ttl time.Duration) ([]byte, error) {
	var created []byte
	err := st.call(ctx, func(s *C.storage) error {
		cKey := C.CString(key)
		defer C.free(unsafe.Pointer(cKey))
		cObj := C.CBytes(object)
		defer C.free(cObj)
		var out C.storage_bytes
		var cErr *C.storage_error
		rc := C.storage_create_object(s, cKey, (*C.uint8_t)(cObj), C.size_t(len(object)), C.int64_t(ttl/time.Second), &out, &cErr)
		if rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		created = takeBytes(out)
		return nil
	})
	return created, err
}

// Delete deletes key and returns the deleted object.
func (st *Storage) Delete(ctx context.Context, key string) ([]byte, error) {
	return st.DeleteWithPreconditions(ctx, key, nil)
}

// DeleteWithPreconditions deletes key if preconditions (nil: none) hold for
// the stored object, and returns the deleted object; a mismatch is an *Error
// with CodeInvalidObj.
func (st *Storage) DeleteWithPreconditions(ctx context.Context, key string, preconditions *Preconditions) ([]byte, error) {
	var deleted []byte
	err := st.call(ctx, func(s *C.storage) error {
		cKey := C.CString(key)
		defer C.free(unsafe.Pointer(cKey))
		pre, freePre := cPreconditions(preconditions)
		defer freePre()
		var out C.storage_bytes
		var cErr *C.storage_error
		if rc := C.storage_delete(s, cKey, pre, &out, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		deleted = takeBytes(out)
		return nil
	})
	return deleted, err
}

// List returns one page of the objects under key as a JSON List object;
// pass its metadata.continue back as continueToken for the next page.
func (st *Storage) List(ctx context.Context, key string, limit int64, continueToken string) ([]byte, error) {
	return st.ListAt(ctx, key, "", limit, continueToken)
}

// ListAt is List with a resourceVersion, as in Kubernetes ("": the latest;
// a compacted revision is an *Error with CodeExpired).
func (st *Storage) ListAt(ctx context.Context, key, resourceVersion string, limit int64, continueToken string) ([]byte, error) {
	var list []byte
	err := st.call(ctx, func(s *C.storage) error {
		cKey, cRV, cTok := C.CString(key), C.CString(resourceVersion), C.CString(continueToken)
		defer C.free(unsafe.Pointer(cKey))
		defer C.free(unsafe.Pointer(cRV))
		defer C.free(unsafe.Pointer(cTok))
		var out C.storage_bytes
		var cErr *C.storage_error
		if rc := C.storage_list(s, cKey, cRV, C.int64_t(limit), cTok, &out, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		list = takeBytes(out)
		return nil
	})
	return list, err
}

// Count counts the objects under key.
func (st *Storage) Count(ctx context.Context, key string) (int64, error) {
	var n C.int64_t
	err := st.call(ctx, func(s *C.storage) error {
		cKey := C.CString(key)
		defer C.free(unsafe.Pointer(cKey))
		var cErr *C.storage_error
		if rc := C.storage_count(s, cKey, &n, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		return nil
	})
	return int64(n), err
}

// CompactRevision is Go's storage.Interface.CompactRevision: the revision
// etcd's history was last compacted to, as the cluster's compactors record it
// (0 when none is), read from etcd. An *Error with CodeUnsupported on etcd2.
func (st *Storage) CompactRevision(ctx context.Context) (int64, error) {
	var rev C.int64_t
	err := st.call(ctx, func(s *C.storage) error {
		var cErr *C.storage_error
		if rc := C.storage_compact_revision(s, &rev, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		return nil
	})
	return int64(rev), err
}

// Metrics is the store's metrics in the Prometheus text exposition format
// (version 0.0.4), ready to serve on /metrics: go-grpc-prometheus' client
// metrics for the etcd RPCs and the library's own counters. The counts are
// this Storage's own.
func (st *Storage) Metrics() (string, error) {
	var text string
	err := st.with(func(s *C.storage) error {
		var out *C.char
		var cErr *C.storage_error
		if rc := C.storage_metrics(s, &out, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		defer C.storage_string_free(out)
		text = C.GoString(out)
		return nil
	})
	return text, err
}

// Version is the library's version.
func Version() string { return C.GoString(C.storage_version()) }
