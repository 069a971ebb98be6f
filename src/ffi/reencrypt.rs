//! `storage_reencrypt`: rewrites stale objects after a key rotation.

use std::ffi::{c_char, c_void};

use super::boundary::{call, opt_str_arg, out_arg, Castable};
use super::error::{storage_code, storage_code_int, storage_error};
use super::handle::storage;
use super::write::{abort_code, UserData};
use crate::storage::{Reencrypted, StorageError};

/// What `storage_reencrypt` found and did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct storage_reencrypt_counts {
    /// Objects under the key.
    pub seen: i64,
    /// Stale objects now stored under the current encryption key.
    pub rewritten: i64,
    /// Objects that could not be read or rewritten.
    pub failed: i64,
}

impl From<&Reencrypted> for storage_reencrypt_counts {
    fn from(c: &Reencrypted) -> Self {
        storage_reencrypt_counts {
            seen: c.seen,
            rewritten: c.rewritten,
            failed: c.failed,
        }
    }
}

/// The progress function of `storage_reencrypt`, called on the calling thread
/// with the counts so far: after each object that could not be rewritten, with
/// `failure` naming it (its key, code and message; valid during the call
/// only), and after each page of up to 500 objects, with `failure` NULL.
/// Returns `STORAGE_OK` to go on; any other code stops the walk, which then
/// returns that code (a value that is no `storage_code`:
/// `STORAGE_ERR_INVALID_ARGUMENT`). It may call into the library.
pub type storage_reencrypt_fn = Option<
    extern "C" fn(
        user_data: *mut c_void,
        counts: *const storage_reencrypt_counts,
        failure: *const storage_error,
    ) -> storage_code_int,
>;

/// Re-encryption after a key rotation, without an API server: walks every
/// object under `key` (a directory, joined onto the prefix; `"/"` for all)
/// and rewrites each stale one — read with a provider or key other than the
/// first, or, for KMS v2, under another key ID than the plugin's current one
/// — through `GuaranteedUpdate`, so that it is stored under the current key.
/// Compare-and-swap makes it safe beside a running kube-apiserver: a
/// concurrent update is kept, never overwritten. KMS plugins are asked for
/// their current key first, so a rotation a moment ago counts.
///
/// Objects that cannot be read or rewritten (corrupt, a plugin that fails)
/// are counted as failed and passed to `progress`, and the walk goes on.
/// Writes the counts to `*out_counts` when the walk completes. `progress`
/// may be NULL. etcd2: `STORAGE_ERR_UNSUPPORTED`.
#[no_mangle]
pub extern "C" fn storage_reencrypt(
    s: *const storage,
    key: *const c_char,
    progress: storage_reencrypt_fn,
    user_data: *mut c_void,
    out_counts: *mut storage_reencrypt_counts,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = opt_str_arg(key, "key")?;
        let out = out_arg(out_counts, "out_counts")?;
        let user_data = UserData(user_data);
        let mut report = |counts: &Reencrypted, failure: Option<&StorageError>| {
            let Some(f) = progress else { return Ok(()) };
            let counts = storage_reencrypt_counts::from(counts);
            let failure =
                failure.map_or(std::ptr::null_mut(), |e| storage_error::into_raw(e.clone()));
            // Outside the handle's runtime, the callback may call into the library.
            let code = tokio::task::block_in_place(|| f(user_data.get(), &counts, failure));
            super::error::storage_error_free(failure);
            abort_code(code, "progress").map_or(Ok(()), Err)
        };
        let counts = handle.block_on(handle.store.reencrypt(key, &mut report))?;
        *out = storage_reencrypt_counts::from(&counts);
        Ok(())
    })
}
