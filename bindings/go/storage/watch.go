package storage

/*
#include <stdlib.h>
#include "apiserver_storage.h"
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"unsafe"
)

// EventType is a watch event's type, named as k8s.io/apimachinery/pkg/watch's.
type EventType string

const (
	EventAdded    EventType = "ADDED"
	EventModified EventType = "MODIFIED"
	EventDeleted  EventType = "DELETED"
	// EventBookmark reports progress, not a change: every event up to
	// ResourceVersion has been delivered. Key and Object are empty. Only
	// watches with ProgressNotify, or after RequestProgress, get them.
	EventBookmark EventType = "BOOKMARK"
	// EventError is the last event of a watch that the library ended
	// (CodeExpired, CodeCorruptObj, or CodeInternal when the consumer fell
	// too far behind): Event.Err says why.
	EventError EventType = "ERROR"
)

// Event is one change seen by a watch.
type Event struct {
	Type            EventType
	Key             string // the full etcd key, prefix included
	ResourceVersion int64  // the change's revision
	// Object is the object after the change, stamped with ResourceVersion;
	// for EventDeleted its last state.
	Object []byte
	// PrevObject is the object before a modification or deletion, with its
	// own resourceVersion; nil for EventAdded.
	PrevObject []byte
	Err        error // *Error, for EventError only
}

// WatchOptions are Watch's options.
type WatchOptions struct {
	// ResourceVersion "" or "0": the current objects first, as EventAdded,
	// then every change after them; "N": every change after revision N.
	ResourceVersion string
	// Recursive watches every key under key + "/" instead of key itself.
	Recursive bool
	// ProgressNotify asks etcd for an EventBookmark whenever the watch has
	// been idle for etcd's --watch-progress-notify-interval (etcd3 only).
	ProgressNotify bool
}

// Watcher is a running watch, as k8s.io/apimachinery/pkg/watch.Interface.
type Watcher struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{}
	// mu keeps RequestProgress off a watch the run goroutine destroys.
	mu sync.RWMutex
	cw *C.storage_watch // nil once destroyed
}

// pollMillis bounds how long Stop or a cancelled context waits for the
// background goroutine: the C call it polls has no other way to be woken.
const pollMillis = 100

// Watch starts watching key, as Go's storage.Interface.Watch. Events arrive
// on ResultChan in revision order, exactly once, across etcd reconnections.
// The watch ends, and the channel is closed, when ctx ends, on Stop, or after
// an EventError. The Watcher outlives Close of its Storage.
func (st *Storage) Watch(ctx context.Context, key string, opts WatchOptions) (*Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cw *C.storage_watch
	err := st.with(func(s *C.storage) error {
		cKey, cRV := C.CString(key), C.CString(opts.ResourceVersion)
		defer C.free(unsafe.Pointer(cKey))
		defer C.free(unsafe.Pointer(cRV))
		var flags C.uint32_t
		if opts.Recursive {
			flags |= C.STORAGE_WATCH_RECURSIVE
		}
		if opts.ProgressNotify {
			flags |= C.STORAGE_WATCH_PROGRESS_NOTIFY
		}
		var cErr *C.storage_error
		if rc := C.storage_watch_create_with_flags(s, cKey, cRV, flags, &cw, &cErr); rc != C.STORAGE_OK {
			return takeError(rc, cErr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{events: make(chan Event), cancel: cancel, done: make(chan struct{}), cw: cw}
	go w.run(ctx, cw)
	return w, nil
}

// ResultChan delivers the events; it is closed when the watch ends.
func (w *Watcher) ResultChan() <-chan Event { return w.events }

// Stop ends the watch and returns once its resources are released (within
// about 100 ms). Events not yet received are dropped. Safe to call twice.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}

// RequestProgress asks for an EventBookmark after every event up to etcd's
// current revision (Go's RequestWatchProgress, for this watch). An *Error
// with CodeUnsupported when an endpoint runs an etcd older than 3.4.31 or
// 3.5.13, which could send it ahead of events, or with etcd2.
func (w *Watcher) RequestProgress() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.cw == nil {
		return errors.New("the watch has ended")
	}
	var cErr *C.storage_error
	if rc := C.storage_watch_request_progress(w.cw, &cErr); rc != C.STORAGE_OK {
		return takeError(rc, cErr)
	}
	return nil
}

func (w *Watcher) run(ctx context.Context, cw *C.storage_watch) {
	defer close(w.done)
	defer close(w.events)
	defer func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		C.storage_watch_destroy(cw)
		w.cw = nil
	}()
	for ctx.Err() == nil {
		var e *C.storage_watch_event
		var cErr *C.storage_error
		var ev Event
		switch rc := C.storage_watch_next(cw, pollMillis, &e, &cErr); rc {
		case C.STORAGE_OK:
			ev = takeEvent(e)
		case C.STORAGE_ERR_TIMEOUT:
			C.storage_error_free(cErr)
			continue
		default:
			ev = Event{Type: EventError, Err: takeError(rc, cErr)}
		}
		select {
		case w.events <- ev:
		case <-ctx.Done():
			return
		}
		if ev.Type == EventError {
			return
		}
	}
}

var eventTypes = map[C.enum_storage_watch_event_type]EventType{
	C.STORAGE_WATCH_ADDED:    EventAdded,
	C.STORAGE_WATCH_MODIFIED: EventModified,
	C.STORAGE_WATCH_DELETED:  EventDeleted,
	C.STORAGE_WATCH_BOOKMARK: EventBookmark,
}

// takeEvent copies the event into Go memory and frees it.
func takeEvent(e *C.storage_watch_event) Event {
	defer C.storage_watch_event_free(e)
	copyOut := func(data *C.uint8_t, n C.size_t) []byte {
		if data == nil {
			return nil
		}
		return C.GoBytes(unsafe.Pointer(data), C.int(n))
	}
	var n, prevN C.size_t
	obj := C.storage_watch_event_object(e, &n)
	prev := C.storage_watch_event_prev_object(e, &prevN)
	return Event{
		Type:            eventTypes[C.storage_watch_event_get_type(e)],
		Key:             C.GoString(C.storage_watch_event_key(e)),
		ResourceVersion: int64(C.storage_watch_event_resource_version(e)),
		Object:          copyOut(obj, n),
		PrevObject:      copyOut(prev, prevN),
	}
}
