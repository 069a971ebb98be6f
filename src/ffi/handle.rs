//! The `storage` and `storage_health_check` handles.

use std::ffi::c_char;
use std::future::Future;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;

use super::boundary::{call, guard, opt_str_arg, out_arg, str_arg, Castable, THREAD_NAME};
use super::bytes::storage_bytes;
use super::error::{storage_code, storage_error};
use crate::config::Config;
use crate::factory::HealthCheck;
use crate::factory::{self, DestroyFunc};
use crate::storage::{GetOptions, Interface, Result, StorageError};

/// How long destroying a handle waits for background tasks to stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// A store built from a config: a tokio runtime plus the factory-built store.
/// Thread-safe: any number of threads may call into one handle at once, except
/// `storage_destroy`, which must not race any other call on the same handle.
pub struct storage {
    _private: [u8; 0],
}

/// A health check built from a config (Go's `CreateHealthCheck`).
/// Thread-safe like `storage`.
pub struct storage_health_check {
    _private: [u8; 0],
}

/// What every handle holds: its own runtime, and the process it was made in,
/// since a fork child has none of the runtime's threads.
pub(crate) struct HandleRuntime {
    rt: Runtime,
    pid: u32,
}

/// Blocks SIGPIPE on the calling thread (the runtime's own threads). TLS and
/// vectored writes use `writev`, which, unlike `send` with `MSG_NOSIGNAL`,
/// raises SIGPIPE on a connection the peer closed: a C host that keeps the
/// default disposition would be killed when etcd drops a connection. Blocked
/// on the thread that causes it, the signal is never delivered and the write
/// fails with `EPIPE`, which the client handles like any connection error.
fn block_sigpipe() {
    // SAFETY: libc calls on a signal set owned by this frame.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

impl HandleRuntime {
    fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(THREAD_NAME)
            .on_thread_start(block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| StorageError::internal(format!("cannot start the runtime: {e}")))?;
        Ok(HandleRuntime {
            rt,
            pid: std::process::id(),
        })
    }

    fn forked(&self) -> bool {
        self.pid != std::process::id()
    }

    pub(crate) fn block_on<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        if self.forked() {
            return Err(StorageError::unsupported(
                "this handle was created before a fork, in the parent process; a fork child must create its own handle",
            ));
        }
        self.rt.block_on(f)
    }

    /// Drops `inner` inside the runtime, then stops the runtime within a bounded time.
    fn shutdown<T: Send + 'static>(self, inner: T) {
        Arc::new(self).release(inner);
    }

    /// Drops `inner` inside the runtime; the last holder of the runtime (a
    /// storage handle or one of its watches) also stops it within a bounded time.
    pub(crate) fn release<T: Send + 'static>(self: Arc<Self>, inner: T) {
        if self.forked() {
            // The runtime's threads live in the parent: joining them would hang.
            // Kept reachable rather than forgotten, so leak checkers see why.
            static INHERITED: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());
            INHERITED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Box::new((self, inner)));
            return;
        }
        {
            let _entered = self.rt.enter();
            drop(inner);
        }
        if let Some(runtime) = Arc::into_inner(self) {
            runtime.rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}

pub(crate) struct StorageHandle {
    /// Shared with the handle's watches, which may outlive it.
    pub(crate) runtime: Arc<HandleRuntime>,
    pub(crate) store: Arc<dyn Interface>,
    destroy: DestroyFunc,
}

impl StorageHandle {
    pub(crate) fn block_on<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime.block_on(f)
    }
}

impl Castable for storage {
    type Rust = StorageHandle;
}

pub(crate) struct HealthCheckHandle {
    runtime: HandleRuntime,
    check: HealthCheck,
}

impl Castable for storage_health_check {
    type Rust = HealthCheckHandle;
}

fn parse_config(config_json: *const c_char) -> Result<Config> {
    Config::from_json(str_arg(config_json, "config_json")?)
}

/// Builds a store from a JSON config (Go's `factory.Create`) and writes it to
/// `*out_storage`. Returns at once: the client connects lazily, and calls made
/// while etcd is unreachable fail with `STORAGE_ERR_UNREACHABLE` or
/// `STORAGE_ERR_TIMEOUT` within the configured timeouts.
/// The config's `"type"` picks the backend: `""`/`"etcd3"`, or `"etcd2"` for
/// etcd's v2 HTTP API (same functions; no paging, encryption or compaction,
/// native TTLs; see the README). Free the handle with `storage_destroy`.
/// A malformed config is `STORAGE_ERR_INVALID_CONFIG` at once, naming the
/// field (a mistyped value is described, never quoted); so are an endpoint not
/// of the form `[http|https://]host:port`, a TLS or encryption config file that cannot be
/// read, is not valid or is larger than 1 MiB (the limit for every file the
/// config names), a client certificate and key that do not match.
#[no_mangle]
pub extern "C" fn storage_create(
    config_json: *const c_char,
    out_storage: *mut *mut storage,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let out = out_arg(out_storage, "out_storage")?;
        let config = parse_config(config_json)?;
        let runtime = HandleRuntime::new()?;
        let (store, destroy) = runtime.block_on(factory::create(&config))?;
        *out = storage::into_raw(StorageHandle {
            runtime: Arc::new(runtime),
            store,
            destroy,
        });
        Ok(())
    })
}

/// Reads `key` (joined onto the configured prefix as Go's `path.Join`; a key
/// that would leave the prefix is `STORAGE_ERR_INVALID_ARGUMENT`) and writes the
/// object to `*out_object`: with the `json` codec, the object with
/// `metadata.resourceVersion` set to etcd's ModRevision.
///
/// `resource_version`: NULL, `""` or `"0"` accept any revision; a larger
/// number than etcd's current revision is `STORAGE_ERR_TIMEOUT`.
/// A missing key is `STORAGE_ERR_KEY_NOT_FOUND`, or, with `ignore_not_found`,
/// `STORAGE_OK` with `*out_object = {NULL, 0}`. Stored bytes that cannot be
/// decrypted or decoded are `STORAGE_ERR_CORRUPT_OBJ`.
/// Free the object with `storage_bytes_free`.
#[no_mangle]
pub extern "C" fn storage_get(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    ignore_not_found: bool,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    storage_get_with_info(
        s,
        key,
        resource_version,
        ignore_not_found,
        out_object,
        ptr::null_mut(),
        out_error,
    )
}

/// What `storage_get_with_info` reports besides the object.
#[repr(C)]
pub struct storage_object_info {
    /// false when the key was missing and `ignore_not_found` was set.
    pub found: bool,
    /// etcd's ModRevision of the key (the object's resourceVersion), or 0.
    pub resource_version: i64,
    /// The value was not written with the transformer new writes use (an
    /// older key or provider of the encryption config): rewrite it to re-encrypt.
    pub stale: bool,
    /// The stored object holds fields the protobuf schema does not know (a
    /// newer Kubernetes release's): the object returned leaves them out, and
    /// `storage_guaranteed_update` refuses to rewrite it
    /// (`STORAGE_ERR_UNSUPPORTED`, naming them).
    pub unknown_fields: bool,
}

/// `storage_get`, also writing to `*out_info` (when not NULL) whether the key
/// was found, its resourceVersion and whether its stored value is stale.
#[no_mangle]
pub extern "C" fn storage_get_with_info(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    ignore_not_found: bool,
    out_object: *mut storage_bytes,
    out_info: *mut storage_object_info,
    out_error: *mut *mut storage_error,
) -> storage_code {
    get(
        s,
        key,
        resource_version,
        ignore_not_found,
        false,
        out_object,
        out_info,
        out_error,
    )
}

/// `storage_get_with_info` reading the key as it was at exactly revision
/// `resource_version` (Kubernetes' `resourceVersionMatch=Exact`): absent then
/// is `STORAGE_ERR_KEY_NOT_FOUND` (or, with `ignore_not_found`, success with
/// `found` false); a compacted revision is `STORAGE_ERR_EXPIRED`, one etcd
/// has not reached `STORAGE_ERR_TIMEOUT` (`Too large resource version`);
/// NULL, `""` and `"0"` read the latest. etcd3 only: the etcd2 backend
/// answers `STORAGE_ERR_UNSUPPORTED`.
#[no_mangle]
pub extern "C" fn storage_get_exact(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    ignore_not_found: bool,
    out_object: *mut storage_bytes,
    out_info: *mut storage_object_info,
    out_error: *mut *mut storage_error,
) -> storage_code {
    get(
        s,
        key,
        resource_version,
        ignore_not_found,
        true,
        out_object,
        out_info,
        out_error,
    )
}

#[allow(clippy::too_many_arguments)]
fn get(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    ignore_not_found: bool,
    exact: bool,
    out_object: *mut storage_bytes,
    out_info: *mut storage_object_info,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let opts = GetOptions {
            resource_version: opt_str_arg(resource_version, "resource_version")?.to_owned(),
            ignore_not_found,
            exact,
        };
        let out = out_arg(out_object, "out_object")?;
        let object = handle.block_on(handle.store.get(key, &opts))?;
        // SAFETY: a non-NULL `out_info` points to writable memory.
        if let Some(info) = unsafe { out_info.as_mut() } {
            *info = storage_object_info {
                found: object.is_some(),
                resource_version: object.as_ref().map_or(0, |o| o.resource_version),
                stale: object.as_ref().is_some_and(|o| o.stale),
                unknown_fields: object
                    .as_ref()
                    .is_some_and(|o| !o.unknown_fields.is_empty()),
            };
        }
        *out = object.map_or(storage_bytes::EMPTY, |o| storage_bytes::from_vec(o.data));
        Ok(())
    })
}

/// Checks etcd's health as kube-apiserver's `/healthz/etcd` does: a read of
/// `<prefix>/health` within `health_timeout_ms`. On failure
/// `STORAGE_ERR_UNREACHABLE` with `error getting data from etcd: ...`.
#[no_mangle]
pub extern "C" fn storage_health(
    s: *const storage,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        handle.block_on(handle.store.health())
    })
}

/// Go's `DestroyFunc`: closes the client, stops background tasks and the
/// runtime (within a few seconds, also when etcd is unreachable), and frees the
/// handle. NULL is a no-op. Must not race any other call on the same handle.
/// Watches created from the handle stay usable until `storage_watch_destroy`:
/// the last of them to go stops the runtime and closes the connection.
#[no_mangle]
pub extern "C" fn storage_destroy(s: *mut storage) {
    guard((), || {
        if let Some(handle) = storage::take(s) {
            let StorageHandle {
                runtime,
                store,
                destroy,
            } = *handle;
            runtime.release((store, destroy));
        }
    })
}

/// Builds a health check from a JSON config (Go's `CreateHealthCheck`). Returns
/// at once, also when etcd is down, and keeps connecting in the background.
/// Free it with `storage_health_check_destroy`.
#[no_mangle]
pub extern "C" fn storage_health_check_create(
    config_json: *const c_char,
    out_check: *mut *mut storage_health_check,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let out = out_arg(out_check, "out_check")?;
        let config = parse_config(config_json)?;
        let runtime = HandleRuntime::new()?;
        let check = runtime.block_on(factory::create_health_check(&config))?;
        *out = storage_health_check::into_raw(HealthCheckHandle { runtime, check });
        Ok(())
    })
}

/// Runs the check. Until a first background probe has succeeded it fails with
/// `STORAGE_ERR_UNREACHABLE` and `etcd client connection not yet established`
/// (or the last connection error); then it does what `storage_health` does.
#[no_mangle]
pub extern "C" fn storage_health_check_run(
    check: *const storage_health_check,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage_health_check::try_ref(check, "check")?;
        handle.runtime.block_on(handle.check.run())
    })
}

/// Stops the check's background work and frees it. NULL is a no-op.
/// Must not race any other call on the same check.
#[no_mangle]
pub extern "C" fn storage_health_check_destroy(check: *mut storage_health_check) {
    guard((), || {
        if let Some(handle) = storage_health_check::take(check) {
            let HealthCheckHandle { runtime, check } = *handle;
            runtime.shutdown(check);
        }
    })
}
