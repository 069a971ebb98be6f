// storage_get, in Go through cgo: read one Kubernetes object from etcd the way
// kube-apiserver does.
//
//	storage_get CONFIG_JSON KEY
//
// Build with CGO_CFLAGS=-I<repo>/include and CGO_LDFLAGS=-L<dir of libapiserver_storage.so>.
package main

/*
#cgo LDFLAGS: -lapiserver_storage
#include <stdlib.h>
#include "apiserver_storage.h"
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// storageError is a failed call's code and message.
type storageError struct {
	code    int
	message string
}

func (e *storageError) Error() string { return fmt.Sprintf("code %d: %s", e.code, e.message) }

// takeError converts and frees the library's error object.
func takeError(code C.enum_storage_code, e *C.storage_error) error {
	defer C.storage_error_free(e)
	return &storageError{code: int(code), message: C.GoString(C.storage_error_message(e))}
}

func run(config, key string) error {
	cConfig := C.CString(config)
	defer C.free(unsafe.Pointer(cConfig))
	var s *C.storage
	var cErr *C.storage_error
	if rc := C.storage_create(cConfig, &s, &cErr); rc != C.STORAGE_OK {
		return takeError(rc, cErr)
	}
	defer C.storage_destroy(s)

	if rc := C.storage_health(s, &cErr); rc != C.STORAGE_OK {
		return takeError(rc, cErr)
	}
	cKey := C.CString(key)
	defer C.free(unsafe.Pointer(cKey))
	var object C.storage_bytes
	var info C.storage_object_info
	if rc := C.storage_get_with_info(s, cKey, nil, false, &object, &info, &cErr); rc != C.STORAGE_OK {
		return takeError(rc, cErr)
	}
	// Copy into Go memory before handing the buffer back to the library.
	data := C.GoBytes(unsafe.Pointer(object.data), C.int(object.len))
	C.storage_bytes_free(object)
	fmt.Printf("resourceVersion: %d\n%s\n", int64(info.resource_version), data)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: storage_get CONFIG_JSON KEY")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "storage_get:", err)
		os.Exit(1)
	}
}
