//! The panic boundary, argument checks and handle casts every exported function uses.

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{self, catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use super::error::{storage_code, storage_error};
use crate::storage::{Result, StorageError};

thread_local! {
    /// How many library calls this thread is inside (a callback may call in again).
    static INSIDE: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as a library call: a panic in it is caught, and its text is kept
/// off the host's stderr (see `quiet_panics`).
fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    quiet_panics();
    INSIDE.with(|n| n.set(n.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    INSIDE.with(|n| n.set(n.get() - 1));
    result
}

/// Installs, once, a panic hook that keeps the library's panics (in a call,
/// or on the runtime's own threads) to the library's log, which is silent
/// unless `APISERVER_STORAGE_LOG` asks for it; the message still reaches the
/// caller in the returned error. Every other panic goes to the hook that was
/// installed before, so the host's own panics are reported as they were.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let ours = INSIDE.with(Cell::get) > 0
                || std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with(THREAD_NAME));
            if ours {
                let backtrace = std::backtrace::Backtrace::capture();
                tracing::error!("panic: {info}\n{backtrace}");
            } else {
                previous(info);
            }
        }));
    });
}

/// The name of the runtime threads every handle starts.
pub(crate) const THREAD_NAME: &str = "apiserver-storage";

/// Runs `f`, turning a panic into `default`: no unwind ever crosses into C.
pub(crate) fn guard<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch(f).unwrap_or(default)
}

/// The shape of every fallible exported function: runs `f` inside the panic
/// boundary and, on failure, hands the caller an error object when it asked for one.
pub(crate) fn call(
    out_error: *mut *mut storage_error,
    f: impl FnOnce() -> Result<()>,
) -> storage_code {
    let result = catch(f).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StorageError::internal(format!(
            "internal error (panic): {what}"
        )))
    });
    match result {
        Ok(()) => storage_code::STORAGE_OK,
        Err(e) => {
            let code = storage_code::from(e.code);
            if !out_error.is_null() {
                // SAFETY: the caller passed a writable `storage_error **`.
                unsafe { *out_error = storage_error::into_raw(e) };
            }
            code
        }
    }
}

/// A required C string argument as UTF-8.
pub(crate) fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(StorageError::invalid_argument(format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| StorageError::invalid_argument(format!("{name} is not valid UTF-8: {e}")))
}

/// An optional C string argument: NULL is `""`.
pub(crate) fn opt_str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        Ok("")
    } else {
        str_arg(p, name)
    }
}

/// A required out-parameter.
pub(crate) fn out_arg<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: a non-NULL out-parameter points to writable memory for a `T`.
    unsafe { p.as_mut() }.ok_or_else(|| StorageError::invalid_argument(format!("{name} is NULL")))
}

/// A NULL-tolerant accessor: `f` of the value behind `p`, or `absent` when
/// `p` is NULL (or `f` panics).
pub(crate) fn read_handle<H: Castable, T: Copy>(
    p: *const H,
    absent: T,
    f: impl FnOnce(&H::Rust) -> T,
) -> T {
    guard(absent, || H::try_ref(p, "handle").map_or(absent, f))
}

/// Ties an opaque C type to the Rust value behind it; the only place pointers
/// to handles are cast.
pub(crate) trait Castable {
    type Rust;

    fn into_raw(value: Self::Rust) -> *mut Self
    where
        Self: Sized,
    {
        Box::into_raw(Box::new(value)).cast()
    }

    /// Borrows the value behind a handle the caller still owns.
    fn try_ref<'a>(p: *const Self, name: &str) -> Result<&'a Self::Rust>
    where
        Self: Sized,
    {
        // SAFETY: non-NULL handles come from `into_raw` and are not yet freed.
        unsafe { p.cast::<Self::Rust>().as_ref() }
            .ok_or_else(|| StorageError::invalid_argument(format!("{name} is NULL")))
    }

    /// Takes back ownership of a handle; NULL gives `None`.
    fn take(p: *mut Self) -> Option<Box<Self::Rust>>
    where
        Self: Sized,
    {
        // SAFETY: non-NULL handles come from `into_raw`; the caller gives it up.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p.cast::<Self::Rust>()) })
    }
}
