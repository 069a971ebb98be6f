//! The C ABI: the only `extern "C"` code. A thin shell over the async core:
//! check arguments, block on the handle's runtime, convert results.
//! Types keep their C names so cbindgen writes them verbatim.
#![allow(non_camel_case_types)]

mod boundary;
mod bytes;
mod error;
mod handle;
mod metrics;
mod reencrypt;
mod watch;
mod write;

/// The library's version, e.g. `"0.2.0"`. A static string: never free it.
#[no_mangle]
pub extern "C" fn storage_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
