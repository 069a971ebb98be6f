package storage

/*
#include <stdlib.h>
#include "apiserver_storage.h"

// The trampoline below, as cgo exports it (storage_reencrypt_fn up to const).
extern storage_code goStorageReencryptProgress(void *, storage_reencrypt_counts *, storage_error *);
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"unsafe"
)

// ReencryptCounts is what Reencrypt found and did.
type ReencryptCounts struct {
	Seen      int64 // objects under the key
	Rewritten int64 // stale objects now stored under the current encryption key
	Failed    int64 // objects that could not be read or rewritten
}

// ReencryptProgress is told the counts so far after each page of up to 500
// objects (failure nil) and after each object that could not be rewritten
// (failure an *Error naming its key). Returning an error stops the walk, and
// Reencrypt returns that error.
type ReencryptProgress func(counts ReencryptCounts, failure error) error

type reencryption struct {
	ctx      context.Context
	progress ReencryptProgress
	err      error
}

//export goStorageReencryptProgress
func goStorageReencryptProgress(userData unsafe.Pointer, counts *C.storage_reencrypt_counts, failure *C.storage_error) (code C.storage_code) {
	r := (*(*cgo.Handle)(userData)).Value().(*reencryption)
	defer func() {
		if p := recover(); p != nil {
			r.err = &callbackPanic{value: p}
			code = abortCode
		}
	}()
	if r.err = r.ctx.Err(); r.err != nil {
		return abortCode
	}
	if r.progress == nil {
		return C.STORAGE_OK
	}
	var err error
	if failure != nil {
		err = &Error{
			code:            Code(C.storage_error_code(failure)),
			Message:         C.GoString(C.storage_error_message(failure)),
			Key:             C.GoString(C.storage_error_key(failure)),
			ResourceVersion: int64(C.storage_error_resource_version(failure)),
		}
	}
	c := ReencryptCounts{Seen: int64(counts.seen), Rewritten: int64(counts.rewritten), Failed: int64(counts.failed)}
	if r.err = r.progress(c, err); r.err != nil {
		return abortCode
	}
	return C.STORAGE_OK
}

// Reencrypt rewrites every stale object under key (a directory; "/" for all)
// so that it is stored under the current encryption key, as operators do
// after a key rotation: see storage_reencrypt. progress may be nil. Objects
// that fail are counted, passed to progress, and do not stop the walk; when
// ctx ends, the walk stops at the next page or failure with ctx.Err().
func (st *Storage) Reencrypt(ctx context.Context, key string, progress ReencryptProgress) (ReencryptCounts, error) {
	var counts ReencryptCounts
	err := st.call(ctx, func(s *C.storage) error {
		r := &reencryption{ctx: ctx, progress: progress}
		h := cgo.NewHandle(r)
		defer h.Delete()
		cKey := C.CString(key)
		defer C.free(unsafe.Pointer(cKey))
		var out C.storage_reencrypt_counts
		var cErr *C.storage_error
		rc := C.storage_reencrypt(s, cKey, C.storage_reencrypt_fn(C.goStorageReencryptProgress), unsafe.Pointer(&h), &out, &cErr)
		if rc != C.STORAGE_OK {
			if r.err != nil {
				C.storage_error_free(cErr)
				return r.err
			}
			return takeError(rc, cErr)
		}
		counts = ReencryptCounts{Seen: int64(out.seen), Rewritten: int64(out.rewritten), Failed: int64(out.failed)}
		return nil
	})
	return counts, err
}
