//! Byte buffers handed to C.

use std::ptr;

use super::boundary::guard;

/// Bytes owned by the library: `len` bytes at `data`, not NUL-terminated.
/// An empty value is `{NULL, 0}`. Free with `storage_bytes_free`.
#[repr(C)]
pub struct storage_bytes {
    pub data: *mut u8,
    pub len: usize,
}

impl storage_bytes {
    pub(crate) const EMPTY: storage_bytes = storage_bytes {
        data: ptr::null_mut(),
        len: 0,
    };

    pub(crate) fn from_vec(v: Vec<u8>) -> storage_bytes {
        if v.is_empty() {
            return Self::EMPTY;
        }
        let len = v.len();
        let data = Box::into_raw(v.into_boxed_slice()).cast::<u8>();
        storage_bytes { data, len }
    }
}

/// Frees bytes returned by the library. `{NULL, 0}` is a no-op.
#[no_mangle]
pub extern "C" fn storage_bytes_free(b: storage_bytes) {
    guard((), || {
        if !b.data.is_null() {
            // SAFETY: non-NULL data comes from `from_vec`, a boxed slice of `len` bytes.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(b.data, b.len)) });
        }
    })
}
