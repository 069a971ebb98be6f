//! A store's metrics for C.

use std::ffi::{c_char, CString};

use super::boundary::{call, guard, out_arg, Castable};
use super::error::{storage_code, storage_error};
use super::handle::storage;
use crate::storage::StorageError;

/// Writes the store's metrics to `*out_text`: a NUL-terminated string in the
/// Prometheus text exposition format (version 0.0.4), ready to serve on a
/// `/metrics` endpoint. It holds go-grpc-prometheus' client metrics for the
/// etcd RPCs (`grpc_client_started_total`, `grpc_client_handled_total`,
/// `grpc_client_msg_received_total`, `grpc_client_msg_sent_total`,
/// `grpc_client_handling_seconds`), kube-apiserver's
/// `apiserver_storage_transformation_operations_total`, and the library's
/// own counters (see the README). Counts are the handle's own: two handles
/// never share them. Cheap enough to call on every scrape.
/// Free the text with `storage_string_free`.
#[no_mangle]
pub extern "C" fn storage_metrics(
    s: *const storage,
    out_text: *mut *mut c_char,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let out = out_arg(out_text, "out_text")?;
        // Through the runtime, which refuses a handle inherited across a fork.
        let text = handle.block_on(async { Ok(handle.store.metrics_text()) })?;
        let text = CString::new(text)
            .map_err(|_| StorageError::internal("the metrics text holds a NUL byte"))?;
        *out = text.into_raw();
        Ok(())
    })
}

/// Frees a string the library returned (`storage_metrics`). NULL is a no-op.
#[no_mangle]
pub extern "C" fn storage_string_free(text: *mut c_char) {
    guard((), || {
        if !text.is_null() {
            // SAFETY: non-NULL strings handed out come from `CString::into_raw`.
            drop(unsafe { CString::from_raw(text) });
        }
    })
}
