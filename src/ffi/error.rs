//! Result codes and error objects.

use std::ffi::{c_char, CString};

use super::boundary::{guard, read_handle, Castable};
use crate::storage::{Code, StorageError};

/// The result of every fallible call. 1–7 are Kubernetes' own storage error
/// codes (`k8s.io/apiserver/pkg/storage`, `ErrCode*`); 100 and up are the library's.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum storage_code {
    /// Success.
    STORAGE_OK = 0,
    /// The key does not exist (Kubernetes `ErrCodeKeyNotFound`).
    STORAGE_ERR_KEY_NOT_FOUND = 1,
    /// The key already exists (`ErrCodeKeyExists`).
    STORAGE_ERR_KEY_EXISTS = 2,
    /// A precondition on the resource version failed (`ErrCodeResourceVersionConflicts`).
    STORAGE_ERR_RESOURCE_VERSION_CONFLICTS = 3,
    /// The object is not valid for the operation (`ErrCodeInvalidObj`).
    STORAGE_ERR_INVALID_OBJ = 4,
    /// etcd could not be reached (`ErrCodeUnreachable`).
    STORAGE_ERR_UNREACHABLE = 5,
    /// The request did not complete in time, or asked for a resource version
    /// etcd has not reached yet.
    STORAGE_ERR_TIMEOUT = 6,
    /// Stored bytes that cannot be transformed (decrypted) or decoded.
    STORAGE_ERR_CORRUPT_OBJ = 7,
    /// The requested revision was compacted away (Kubernetes' 410 Gone,
    /// "resource version too old"): list again, without a continue token. With
    /// etcd2, a watch from an index older than v2's 1000-event history.
    STORAGE_ERR_EXPIRED = 8,
    /// A NULL pointer, invalid UTF-8, or a malformed key or resource version.
    STORAGE_ERR_INVALID_ARGUMENT = 100,
    /// The config JSON (or a file it names) is malformed or invalid.
    STORAGE_ERR_INVALID_CONFIG = 101,
    /// Valid, but not supported by this library (or not from this process).
    STORAGE_ERR_UNSUPPORTED = 102,
    /// A bug in the library, including a caught panic.
    STORAGE_ERR_INTERNAL = 103,
    /// etcd refused the operation to the configured user (missing permission).
    STORAGE_ERR_PERMISSION_DENIED = 104,
}

impl From<Code> for storage_code {
    fn from(code: Code) -> Self {
        use storage_code::*;
        match code {
            Code::KeyNotFound => STORAGE_ERR_KEY_NOT_FOUND,
            Code::KeyExists => STORAGE_ERR_KEY_EXISTS,
            Code::ResourceVersionConflicts => STORAGE_ERR_RESOURCE_VERSION_CONFLICTS,
            Code::InvalidObj => STORAGE_ERR_INVALID_OBJ,
            Code::Unreachable => STORAGE_ERR_UNREACHABLE,
            Code::Timeout => STORAGE_ERR_TIMEOUT,
            Code::CorruptObj => STORAGE_ERR_CORRUPT_OBJ,
            Code::Expired => STORAGE_ERR_EXPIRED,
            Code::InvalidArgument => STORAGE_ERR_INVALID_ARGUMENT,
            Code::InvalidConfig => STORAGE_ERR_INVALID_CONFIG,
            Code::Unsupported => STORAGE_ERR_UNSUPPORTED,
            Code::Internal => STORAGE_ERR_INTERNAL,
            Code::PermissionDenied => STORAGE_ERR_PERMISSION_DENIED,
        }
    }
}

/// A `storage_code` received from foreign code, such as a callback's return
/// value: an integer, since a C enum may hold any value (`-1`, `42`, ...).
pub type storage_code_int = i32;

impl storage_code {
    const ALL: [storage_code; 14] = {
        use storage_code::*;
        [
            STORAGE_OK,
            STORAGE_ERR_KEY_NOT_FOUND,
            STORAGE_ERR_KEY_EXISTS,
            STORAGE_ERR_RESOURCE_VERSION_CONFLICTS,
            STORAGE_ERR_INVALID_OBJ,
            STORAGE_ERR_UNREACHABLE,
            STORAGE_ERR_TIMEOUT,
            STORAGE_ERR_CORRUPT_OBJ,
            STORAGE_ERR_EXPIRED,
            STORAGE_ERR_INVALID_ARGUMENT,
            STORAGE_ERR_INVALID_CONFIG,
            STORAGE_ERR_UNSUPPORTED,
            STORAGE_ERR_INTERNAL,
            STORAGE_ERR_PERMISSION_DENIED,
        ]
    };

    /// The code whose value is `value`, if there is one.
    pub(crate) fn from_int(value: storage_code_int) -> Option<storage_code> {
        Self::ALL
            .into_iter()
            .find(|c| *c as storage_code_int == value)
    }
}

impl From<storage_code> for Code {
    /// The core's code for a code from C; `STORAGE_OK` has none and maps to `Internal`.
    fn from(code: storage_code) -> Code {
        use storage_code::*;
        match code {
            STORAGE_ERR_KEY_NOT_FOUND => Code::KeyNotFound,
            STORAGE_ERR_KEY_EXISTS => Code::KeyExists,
            STORAGE_ERR_RESOURCE_VERSION_CONFLICTS => Code::ResourceVersionConflicts,
            STORAGE_ERR_INVALID_OBJ => Code::InvalidObj,
            STORAGE_ERR_UNREACHABLE => Code::Unreachable,
            STORAGE_ERR_TIMEOUT => Code::Timeout,
            STORAGE_ERR_CORRUPT_OBJ => Code::CorruptObj,
            STORAGE_ERR_EXPIRED => Code::Expired,
            STORAGE_ERR_INVALID_ARGUMENT => Code::InvalidArgument,
            STORAGE_ERR_INVALID_CONFIG => Code::InvalidConfig,
            STORAGE_ERR_UNSUPPORTED => Code::Unsupported,
            STORAGE_ERR_PERMISSION_DENIED => Code::PermissionDenied,
            STORAGE_OK | STORAGE_ERR_INTERNAL => Code::Internal,
        }
    }
}

/// An error: its code, a message, the full etcd key involved and a resource
/// version. Created by the library, freed with `storage_error_free`.
pub struct storage_error {
    _private: [u8; 0],
}

pub(crate) struct ErrorObject {
    code: storage_code,
    message: CString,
    key: CString,
    resource_version: i64,
}

impl Castable for storage_error {
    type Rust = ErrorObject;
}

pub(crate) fn c_string(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).unwrap_or_default()
    })
}

impl storage_error {
    pub(crate) fn into_raw(e: StorageError) -> *mut storage_error {
        <storage_error as Castable>::into_raw(ErrorObject {
            code: e.code.into(),
            message: c_string(e.message),
            key: c_string(e.key),
            resource_version: e.resource_version,
        })
    }
}

/// The code of `e`; `STORAGE_ERR_INVALID_ARGUMENT` when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_error_code(e: *const storage_error) -> storage_code {
    read_handle(e, storage_code::STORAGE_ERR_INVALID_ARGUMENT, |e| e.code)
}

/// The message of `e`, valid until `storage_error_free(e)`; `""` when `e` is NULL.
#[no_mangle]
pub extern "C" fn storage_error_message(e: *const storage_error) -> *const c_char {
    read_handle(e, c"".as_ptr(), |e| e.message.as_ptr())
}

/// The full etcd key the error is about (prefix included), or `""`.
/// Valid until `storage_error_free(e)`.
#[no_mangle]
pub extern "C" fn storage_error_key(e: *const storage_error) -> *const c_char {
    read_handle(e, c"".as_ptr(), |e| e.key.as_ptr())
}

/// The resource version the error is about, as Kubernetes' `StorageError`, or 0.
#[no_mangle]
pub extern "C" fn storage_error_resource_version(e: *const storage_error) -> i64 {
    read_handle(e, 0, |e| e.resource_version)
}

/// Frees an error object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn storage_error_free(e: *mut storage_error) {
    guard((), || drop(storage_error::take(e)))
}
