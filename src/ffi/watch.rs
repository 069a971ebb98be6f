//! The `storage_watch` handle: a watch the caller pulls events from.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::boundary::{call, guard, opt_str_arg, out_arg, read_handle, str_arg, Castable};
use super::error::{c_string, storage_code, storage_error};
use super::handle::{storage, HandleRuntime};
use crate::storage::{Code, Object, StorageError};
use crate::watch::{Event, EventType, ProgressRequester, Watch, WatchOptions};

/// A watch on a key or a key prefix (Go's `storage.Interface.Watch`), created
/// by `storage_watch_create` and freed with `storage_watch_destroy`. Calls of
/// `storage_watch_next` on one watch take turns, each within its own timeout;
/// `storage_watch_destroy` must not race them.
pub struct storage_watch {
    _private: [u8; 0],
}

/// One event of a watch, returned by `storage_watch_next` and freed with
/// `storage_watch_event_free`.
pub struct storage_watch_event {
    _private: [u8; 0],
}

/// What happened to the key (Go's `watch.EventType`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum storage_watch_event_type {
    /// What `storage_watch_event_get_type(NULL)` returns; never an event's type.
    STORAGE_WATCH_INVALID = -1,
    /// The key was created, or listed by a watch started at resource version 0.
    STORAGE_WATCH_ADDED = 0,
    /// The key's value was replaced.
    STORAGE_WATCH_MODIFIED = 1,
    /// The key was deleted.
    STORAGE_WATCH_DELETED = 2,
    /// No change (Go's `Bookmark`): every event up to the event's resource
    /// version has been delivered. Its key is `""` and its object empty. Only
    /// watches that asked for them get bookmarks: with
    /// `STORAGE_WATCH_PROGRESS_NOTIFY` or `storage_watch_request_progress`.
    STORAGE_WATCH_BOOKMARK = 3,
}

/// A flag of `storage_watch_create_with_flags`: watch every key under
/// `key + "/"` instead of `key` alone.
pub const STORAGE_WATCH_RECURSIVE: u32 = 1;
/// A flag of `storage_watch_create_with_flags`: etcd's progress notifications
/// (Go's `ProgressNotify`): while no event comes, a `STORAGE_WATCH_BOOKMARK`
/// every `--watch-progress-notify-interval` of etcd (10 minutes by default).
/// The etcd2 backend has none (`STORAGE_ERR_UNSUPPORTED`).
pub const STORAGE_WATCH_PROGRESS_NOTIFY: u32 = 2;

impl From<EventType> for storage_watch_event_type {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Added => storage_watch_event_type::STORAGE_WATCH_ADDED,
            EventType::Modified => storage_watch_event_type::STORAGE_WATCH_MODIFIED,
            EventType::Deleted => storage_watch_event_type::STORAGE_WATCH_DELETED,
            EventType::Bookmark => storage_watch_event_type::STORAGE_WATCH_BOOKMARK,
        }
    }
}

pub(crate) struct WatchHandle {
    /// The storage handle's runtime, kept alive while the watch is.
    runtime: Arc<HandleRuntime>,
    state: Mutex<WatchState>,
    /// Outside `state`, so that a request does not wait for a waiting `next`.
    progress: crate::storage::Result<ProgressRequester>,
    /// `state.ended`, for requests, which do not take `state`.
    ended: OnceLock<StorageError>,
}

struct WatchState {
    watch: Watch,
    /// The error that ended the watch, returned again by every later call.
    ended: Option<StorageError>,
}

impl Castable for storage_watch {
    type Rust = WatchHandle;
}

pub(crate) struct EventObject {
    event: Event,
    key: CString,
}

impl Castable for storage_watch_event {
    type Rust = EventObject;
}

/// Starts watching `key` (joined onto the prefix as `storage_get` does; with
/// `recursive`, every key under `key + "/"`) and writes the watch to `*out_watch`.
///
/// `resource_version`: NULL, `""` or `"0"`: first the current objects, as
/// `STORAGE_WATCH_ADDED` events, then every change after them; `"N"`: every
/// change after revision N. Events come in revision order, exactly once: when
/// the connection to etcd breaks, the watch reconnects by itself (with backoff)
/// and resumes after the last event it delivered.
///
/// Returns at once; a malformed key or resource version is
/// `STORAGE_ERR_INVALID_ARGUMENT`. The watch keeps the storage handle's runtime
/// and connection alive, so `storage_destroy(s)` may come before
/// `storage_watch_destroy`.
#[no_mangle]
pub extern "C" fn storage_watch_create(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    recursive: bool,
    out_watch: *mut *mut storage_watch,
    out_error: *mut *mut storage_error,
) -> storage_code {
    let flags = if recursive {
        STORAGE_WATCH_RECURSIVE
    } else {
        0
    };
    storage_watch_create_with_flags(s, key, resource_version, flags, out_watch, out_error)
}

/// `storage_watch_create` with options as `flags`, a bitwise OR of
/// `STORAGE_WATCH_RECURSIVE` and `STORAGE_WATCH_PROGRESS_NOTIFY` (0 for
/// none). Any other bit is `STORAGE_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn storage_watch_create_with_flags(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    flags: u32,
    out_watch: *mut *mut storage_watch,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let known = STORAGE_WATCH_RECURSIVE | STORAGE_WATCH_PROGRESS_NOTIFY;
        if flags & !known != 0 {
            return Err(StorageError::invalid_argument(format!(
                "watch flags {flags:#x} hold unknown bits {:#x}",
                flags & !known
            )));
        }
        let opts = WatchOptions {
            resource_version: opt_str_arg(resource_version, "resource_version")?.to_owned(),
            recursive: flags & STORAGE_WATCH_RECURSIVE != 0,
            progress_notify: flags & STORAGE_WATCH_PROGRESS_NOTIFY != 0,
        };
        let out = out_arg(out_watch, "out_watch")?;
        let watch = handle.runtime.block_on(handle.store.watch(key, &opts))?;
        *out = storage_watch::into_raw(WatchHandle {
            runtime: handle.runtime.clone(),
            progress: watch.progress_requester(),
            ended: OnceLock::new(),
            state: Mutex::new(WatchState { watch, ended: None }),
        });
        Ok(())
    })
}

/// Asks etcd for a bookmark on this watch (Go's `RequestWatchProgress`): a
/// `STORAGE_WATCH_BOOKMARK` comes after every event up to the revision etcd
/// is at, soon (it waits for the watch to catch up). Requests made before one
/// is answered may be answered by one bookmark. May be called while another
/// thread waits in `storage_watch_next`.
///
/// Kubernetes relies on these only from etcd 3.4.31 and 3.5.13 on (earlier
/// versions could send a bookmark ahead of events): with an older etcd on any
/// endpoint, and with the etcd2 backend, it is `STORAGE_ERR_UNSUPPORTED`. The
/// first call asks every endpoint its version.
///
/// On a watch that has ended (`storage_watch_next` returned the error that
/// ended it), no bookmark can come: it returns that error.
#[no_mangle]
pub extern "C" fn storage_watch_request_progress(
    w: *const storage_watch,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage_watch::try_ref(w, "watch")?;
        if let Some(e) = handle.ended.get() {
            return Err(e.clone());
        }
        let requester = handle.progress.as_ref().map_err(Clone::clone)?;
        handle.runtime.block_on(requester.request())
    })
}

/// Waits up to `timeout_ms` (0: only checks) for the next event and writes it
/// to `*out_event`; free it with `storage_watch_event_free`.
///
/// `STORAGE_ERR_TIMEOUT`: no event yet; the watch goes on, call again.
/// Several threads may call this on one watch: each event goes to one of
/// them, and each call returns within its own `timeout_ms`, also while
/// another call is waiting (a call that does not get its turn in time is
/// `STORAGE_ERR_TIMEOUT` too).
/// Any other error ends the watch, and every later call returns it again:
/// - `STORAGE_ERR_EXPIRED`: the resource version is gone from etcd's history
///   (compacted): list again, then watch from the list's resource version;
/// - `STORAGE_ERR_CORRUPT_OBJ`: a value that cannot be decrypted or decoded
///   (the error names its key);
/// - `STORAGE_ERR_UNREACHABLE`: a failure retrying cannot heal (a TLS
///   problem, an endpoint that is not etcd), with its explanation;
/// - `STORAGE_ERR_INVALID_ARGUMENT`: a watch etcd can never serve (a key
///   over its request size limit, which the message names);
/// - `STORAGE_ERR_PERMISSION_DENIED`: etcd refused the watch to the user;
/// - `STORAGE_ERR_INTERNAL` with `watch buffer overflow: consumer too slow,
///   restart the watch from resourceVersion N`: more than 1000 events waited
///   for this caller for over 2 seconds; every event up to N was delivered,
///   so a new watch from N loses nothing. Bookmarks never wait: one that
///   finds 1000 events waiting is dropped (a requested one is asked again).
///
/// A lost connection to etcd does not end a watch: it resumes by itself.
#[no_mangle]
pub extern "C" fn storage_watch_next(
    w: *mut storage_watch,
    timeout_ms: u32,
    out_event: *mut *mut storage_watch_event,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage_watch::try_ref(w, "watch")?;
        let out = out_arg(out_event, "out_event")?;
        let wait = Duration::from_millis(timeout_ms.into());
        let timed_out = |why: &str| {
            StorageError::new(
                Code::Timeout,
                format!("no watch event within {timeout_ms} ms{why}"),
            )
        };
        let event = handle.runtime.block_on(async {
            let deadline = Instant::now() + wait;
            // Another call may hold the watch: wait for it no longer than this call may.
            let Ok(mut state) = tokio::time::timeout(wait, handle.state.lock()).await else {
                return Err(timed_out(
                    " (another call on this watch was waiting for one the whole time)",
                ));
            };
            if let Some(e) = &state.ended {
                return Err(e.clone());
            }
            let next = tokio::time::timeout_at(deadline, state.watch.next()).await;
            match next {
                Err(_) => Err(timed_out("")),
                Ok(Some(Ok(event))) => Ok(event),
                Ok(Some(Err(e))) => {
                    state.ended = Some(e.clone());
                    let _ = handle.ended.set(e.clone());
                    Err(e)
                }
                Ok(None) => {
                    let e = StorageError::internal("the watch ended without an error");
                    state.ended = Some(e.clone());
                    let _ = handle.ended.set(e.clone());
                    Err(e)
                }
            }
        })?;
        *out = storage_watch_event::into_raw(EventObject {
            key: c_string(event.key.clone()),
            event,
        });
        Ok(())
    })
}

/// Stops the watch's background work and frees it; events already returned
/// stay valid. NULL is a no-op. Must not race any other call on the same watch.
#[no_mangle]
pub extern "C" fn storage_watch_destroy(w: *mut storage_watch) {
    guard((), || {
        if let Some(handle) = storage_watch::take(w) {
            let WatchHandle { runtime, state, .. } = *handle;
            runtime.release(state);
        }
    })
}

/// The event's type; `STORAGE_WATCH_INVALID` when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_watch_event_get_type(
    e: *const storage_watch_event,
) -> storage_watch_event_type {
    read_handle(e, storage_watch_event_type::STORAGE_WATCH_INVALID, |e| {
        e.event.event_type.into()
    })
}

/// The full etcd key (prefix included) of the event, valid until
/// `storage_watch_event_free(e)`; `""` when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_watch_event_key(e: *const storage_watch_event) -> *const c_char {
    read_handle(e, c"".as_ptr(), |e| e.key.as_ptr())
}

/// The revision of the change (the object's resourceVersion); 0 when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_watch_event_resource_version(e: *const storage_watch_event) -> i64 {
    read_handle(e, 0, |e| e.event.resource_version())
}

/// Where an empty but present object points: never NULL, never read.
static EMPTY: u8 = 0;

fn bytes_view(object: Option<&Object>, out_len: *mut usize) -> *const u8 {
    let (data, len) = match object {
        None => (ptr::null(), 0),
        Some(o) if o.data.is_empty() => (&EMPTY as *const u8, 0),
        Some(o) => (o.data.as_ptr(), o.data.len()),
    };
    // SAFETY: a non-NULL `out_len` points to writable memory.
    if let Some(out) = unsafe { out_len.as_mut() } {
        *out = len;
    }
    data
}

fn event_bytes(
    e: *const storage_watch_event,
    out_len: *mut usize,
    pick: impl FnOnce(&Event) -> Option<&Object>,
) -> *const u8 {
    guard(ptr::null(), || {
        let object = storage_watch_event::try_ref(e, "event")
            .ok()
            .and_then(|e| pick(&e.event));
        bytes_view(object, out_len)
    })
}

/// The object after the change (as `storage_get` returns objects, stamped with
/// the change's revision); for `STORAGE_WATCH_DELETED`, the object's last state
/// stamped with the deletion's revision, as Kubernetes sends it.
/// Writes its length to `*out_len` (when not NULL). The bytes belong to the
/// event: valid until `storage_watch_event_free(e)`, not NUL-terminated.
/// NULL (and a length of 0) when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_watch_event_object(
    e: *const storage_watch_event,
    out_len: *mut usize,
) -> *const u8 {
    event_bytes(e, out_len, |e| Some(&e.object))
}

/// The object before the change, with its own resourceVersion, for
/// `STORAGE_WATCH_MODIFIED` and `STORAGE_WATCH_DELETED` events; NULL (and a
/// length of 0) for `STORAGE_WATCH_ADDED`, or when etcd no longer had it.
/// Otherwise as `storage_watch_event_object`.
#[no_mangle]
pub extern "C" fn storage_watch_event_prev_object(
    e: *const storage_watch_event,
    out_len: *mut usize,
) -> *const u8 {
    event_bytes(e, out_len, |e| e.prev_object.as_ref())
}

/// Frees an event. NULL is a no-op.
#[no_mangle]
pub extern "C" fn storage_watch_event_free(e: *mut storage_watch_event) {
    guard((), || drop(storage_watch_event::take(e)))
}
