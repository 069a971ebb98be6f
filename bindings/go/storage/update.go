package storage

/*
#include <stdlib.h>
#include "apiserver_storage.h"

// The trampoline below, as cgo exports it (storage_update_ttl_fn up to const).
extern storage_code goStorageUpdate(void *, uint8_t *, size_t, uint8_t **, size_t *, int64_t *);
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime/cgo"
	"strconv"
	"unsafe"
)

// Preconditions are checked against the current object before a write, as
// storage.Preconditions; an empty field is not checked. A mismatch is an
// *Error with CodeInvalidObj.
type Preconditions struct {
	UID             string // metadata.uid
	ResourceVersion string
}

// UpdateFunc computes the new object from the current one, as Go's
// storage.UpdateFunc. current is the stored object as Get returns it (nil,
// with exists false, when the key is absent and ignoreNotFound was set);
// resourceVersion is its metadata.resourceVersion (0 when absent or not JSON).
// Returning an error aborts the update with that error.
type UpdateFunc func(current []byte, resourceVersion int64, exists bool) ([]byte, error)

// UpdateWithTTLFunc is an UpdateFunc that may also return the new object's
// TTL in seconds, as Go's storage.UpdateFunc does: nil for none given (etcd3
// writes without a lease; etcd2 keeps the key's TTL), 0 for none, N for an
// N-second TTL (at most 8,999,999,940; with etcd2, one ending before
// 2262-04-11, past which etcd2 keeps no expiry).
type UpdateWithTTLFunc func(current []byte, resourceVersion int64, exists bool) ([]byte, *uint64, error)

// update is one GuaranteedUpdate's state, reached from C through a cgo.Handle.
type update struct {
	ctx    context.Context
	try    UpdateWithTTLFunc
	err    error          // what tryUpdate or ctx aborted with
	result unsafe.Pointer // C copy of tryUpdate's last result: C reads it after the callback returns
}

func (u *update) freeResult() {
	C.free(u.result)
	u.result = nil
}

// abortCode is what the trampoline tells the library when it aborts; the
// caller gets u.err (or the panic) instead of the library's error.
const abortCode = C.STORAGE_ERR_INTERNAL

//export goStorageUpdate
func goStorageUpdate(userData unsafe.Pointer, current *C.uint8_t, currentLen C.size_t, outNew **C.uint8_t, outNewLen *C.size_t, outTTL *C.int64_t) (code C.storage_code) {
	u := (*(*cgo.Handle)(userData)).Value().(*update)
	defer func() {
		if r := recover(); r != nil {
			u.err = &callbackPanic{value: r}
			code = abortCode
		}
	}()
	u.freeResult()
	if u.err = u.ctx.Err(); u.err != nil {
		return abortCode
	}
	var cur []byte
	if current != nil {
		cur = C.GoBytes(unsafe.Pointer(current), C.int(currentLen))
	}
	next, ttl, err := u.try(cur, resourceVersionOf(cur), current != nil)
	if err == nil && ttl != nil && *ttl > math.MaxInt64 {
		err = fmt.Errorf("a TTL of %d seconds is out of range", *ttl)
	}
	if err == nil {
		// A write after the caller gave up would surprise it.
		err = u.ctx.Err()
	}
	if u.err = err; err != nil {
		return abortCode
	}
	if len(next) > 0 {
		u.result = C.CBytes(next)
	}
	*outNew, *outNewLen = (*C.uint8_t)(u.result), C.size_t(len(next))
	if ttl != nil {
		*outTTL = C.int64_t(*ttl)
	}
	return C.STORAGE_OK
}

func resourceVersionOf(object []byte) int64 {
	var meta struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.Unmarshal(object, &meta) != nil {
		return 0
	}
	rv, _ := strconv.ParseInt(meta.Metadata.ResourceVersion, 10, 64)
	return rv
}

// cPreconditions copies p into C memory; free releases it.
func cPreconditions(p *Preconditions) (c *C.storage_preconditions, free func()) {
	if p == nil {
		return nil, func() {}
	}
	c = (*C.storage_preconditions)(C.calloc(1, C.sizeof_storage_preconditions))
	if p.UID != "" {
		c.uid = C.CString(p.UID)
	}
	if p.ResourceVersion != "" {
		c.resource_version = C.CString(p.ResourceVersion)
	}
	return c, func() {
		C.free(unsafe.Pointer(c.uid))
		C.free(unsafe.Pointer(c.resource_version))
		C.free(unsafe.Pointer(c))
	}
}

// GuaranteedUpdate is Go's storage.Interface.GuaranteedUpdate: it reads key,
// calls tryUpdate with the current object and writes the result only if the
// key is unchanged since the read, calling tryUpdate again with the new
// current object otherwise. It returns the stored object.
//
// tryUpdate runs on a goroutine of its own, possibly several times, and must
// not call this Storage's methods. An error it returns aborts the update and
// is returned as is (errors.Is and errors.As see it); a panic in it aborts the
// update and is raised again in the caller's goroutine. When ctx ends, the
// call returns ctx.Err() at once and tryUpdate is not called again, nor is
// its result written.
func (st *Storage) GuaranteedUpdate(ctx context.Context, key string, preconditions *Preconditions, ignoreNotFound bool, tryUpdate UpdateFunc) ([]byte, error) {
	return st.GuaranteedUpdateWithTTL(ctx, key, preconditions, ignoreNotFound,
		func(current []byte, resourceVersion int64, exists bool) ([]byte, *uint64, error) {
			next, err := tryUpdate(current, resourceVersion, exists)
			return next, nil, err
		})
}

// GuaranteedUpdateWithTTL is GuaranteedUpdate with a tryUpdate that may set
// the new object's TTL (see UpdateWithTTLFunc). As in Go, an object equal to
// the stored one is not written, whatever the TTL.
func (st *Storage) GuaranteedUpdateWithTTL(ctx context.Context, key string, preconditions *Preconditions, ignoreNotFound bool, tryUpdate UpdateWithTTLFunc) ([]byte, error) {
	var updated []byte
	err := st.call(ctx, func(s *C.storage) error {
		u := &update{ctx: ctx, try: tryUpdate}
		defer u.freeResult()
		// C sees only the handle, an integer, behind a pointer it uses only during the call.
		h := cgo.NewHandle(u)
		defer h.Delete()
		cKey := C.CString(key)
		defer C.free(unsafe.Pointer(cKey))
		pre, freePre := cPreconditions(preconditions)
		defer freePre()
		var out C.storage_bytes
		var cErr *C.storage_error
		rc := C.storage_guaranteed_update_ttl(s, cKey, C.bool(ignoreNotFound), pre,
			C.storage_update_ttl_fn(C.goStorageUpdate), unsafe.Pointer(&h), &out, &cErr)
		if rc != C.STORAGE_OK {
			if u.err != nil {
				C.storage_error_free(cErr)
				return u.err
			}
			return takeError(rc, cErr)
		}
		updated = takeBytes(out)
		return nil
	})
	return updated, err
}
