//! The C ABI's functions, declared as a C caller sees them, for tests that
//! call the library through its exported symbols from Rust.

use std::ffi::{c_char, c_void};

/// `storage_bytes`.
#[repr(C)]
pub struct Bytes {
    pub data: *mut u8,
    pub len: usize,
}

extern "C" {
    pub fn storage_create(
        config: *const c_char,
        out: *mut *mut c_void,
        err: *mut *mut c_void,
    ) -> i32;
    pub fn storage_get(
        s: *const c_void,
        key: *const c_char,
        rv: *const c_char,
        ignore_not_found: bool,
        out: *mut Bytes,
        err: *mut *mut c_void,
    ) -> i32;
    pub fn storage_create_object(
        s: *const c_void,
        key: *const c_char,
        object: *const u8,
        len: usize,
        ttl: i64,
        out: *mut Bytes,
        err: *mut *mut c_void,
    ) -> i32;
    pub fn storage_bytes_free(b: Bytes);
    pub fn storage_error_message(e: *const c_void) -> *const c_char;
    pub fn storage_error_free(e: *mut c_void);
    pub fn storage_destroy(s: *mut c_void);
}
