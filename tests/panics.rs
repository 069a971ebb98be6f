//! A panic caught at the C boundary stays off the host's stderr (it goes to
//! the library's log, silent by default) and reaches the caller as
//! `STORAGE_ERR_INTERNAL`; the host's own panics still go to the panic hook
//! the host installed. One test: panic hooks are per process.

use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use apiserver_storage as _;
use common::capi::*;

static HOST_HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn library_panics_stay_quiet_and_host_panics_reach_the_hosts_hook() {
    std::panic::set_hook(Box::new(|_| {
        HOST_HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    let mut s = ptr::null_mut();
    let config = c"{\"server_list\":[\"http://127.0.0.1:1\"]}";
    // SAFETY: valid arguments, as a C caller would pass them.
    let rc = unsafe { storage_create(config.as_ptr(), &mut s, ptr::null_mut()) };
    assert_eq!(rc, 0);

    // Calling from inside the host's own async runtime makes tokio panic
    // ("Cannot start a runtime from within a runtime"): a caught panic.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (rc, message) = rt.block_on(async {
        let mut out = Bytes {
            data: ptr::null_mut(),
            len: 0,
        };
        let mut err = ptr::null_mut();
        // SAFETY: as above; the error is read, then freed.
        unsafe {
            let rc = storage_get(s, c"/k".as_ptr(), ptr::null(), false, &mut out, &mut err);
            let message = CStr::from_ptr(storage_error_message(err))
                .to_string_lossy()
                .into_owned();
            storage_error_free(err);
            (rc, message)
        }
    });
    assert_eq!(rc, 103, "{message}");
    assert!(message.contains("internal error (panic)"), "{message}");
    assert_eq!(HOST_HOOK_CALLS.load(Ordering::SeqCst), 0);

    let host = std::panic::catch_unwind(|| panic!("the host's own panic"));
    assert!(host.is_err());
    assert_eq!(HOST_HOOK_CALLS.load(Ordering::SeqCst), 1);
    // SAFETY: the handle is not used after this.
    unsafe { storage_destroy(s) };
}
