//! The rest of `storage.Interface`: writes, lists and counts.

use std::ffi::{c_char, c_void};
use std::slice;

use super::boundary::{call, opt_str_arg, out_arg, str_arg, Castable};
use super::bytes::storage_bytes;
use super::error::{storage_code, storage_code_int, storage_error};
use super::handle::storage;
use crate::storage::{
    Code, ListOptions, Object, Preconditions, Result, StorageError, Update, MAX_TTL_SECONDS,
};

/// Preconditions of a delete or update (Go's `storage.Preconditions`): a
/// NULL field is not checked. A mismatch is `STORAGE_ERR_INVALID_OBJ`.
#[repr(C)]
pub struct storage_preconditions {
    /// The object's `metadata.uid` must equal this.
    pub uid: *const c_char,
    /// The object's resourceVersion must equal this.
    pub resource_version: *const c_char,
}

fn preconditions(p: *const storage_preconditions) -> Result<Option<Preconditions>> {
    // SAFETY: a non-NULL pointer points to a readable struct.
    let Some(p) = (unsafe { p.as_ref() }) else {
        return Ok(None);
    };
    let field = |f: *const c_char, name| -> Result<Option<String>> {
        Ok((!f.is_null())
            .then(|| opt_str_arg(f, name))
            .transpose()?
            .map(str::to_owned))
    };
    Ok(Some(Preconditions {
        uid: field(p.uid, "preconditions.uid")?,
        resource_version: field(p.resource_version, "preconditions.resource_version")?,
    }))
}

/// `len` bytes at `data`; NULL is allowed only for `len == 0`.
fn bytes_arg<'a>(data: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    // No object can be that large: such a length is a caller's mistake, and
    // a slice of it would be undefined behaviour.
    if len > isize::MAX as usize {
        return Err(StorageError::invalid_argument(format!(
            "{name}: a length of {len} bytes is not possible"
        )));
    }
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(StorageError::invalid_argument(format!("{name} is NULL")))
        };
    }
    // SAFETY: the caller passes `len` readable bytes at `data`.
    Ok(unsafe { slice::from_raw_parts(data, len) })
}

fn put_object(out: &mut storage_bytes, object: Object) {
    *out = storage_bytes::from_vec(object.data);
}

/// Go's `Create`: writes the object at `key` only if the key does not exist
/// (`STORAGE_ERR_KEY_EXISTS` otherwise). With the `json` codec the object must
/// not carry `metadata.resourceVersion` (`STORAGE_ERR_INVALID_OBJ`);
/// `resourceVersion` and `selfLink` are not stored. The value is encrypted with
/// the first configured provider. `ttl_seconds` > 0 attaches a (shared) lease
/// (etcd2: etcd's own TTL on the key, kept by later updates).
/// Writes the stored object, with its new resourceVersion, to `*out_object`
/// (when not NULL); free it with `storage_bytes_free`.
#[no_mangle]
pub extern "C" fn storage_create_object(
    s: *const storage,
    key: *const c_char,
    object: *const u8,
    object_len: usize,
    ttl_seconds: i64,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let object = bytes_arg(object, object_len, "object")?;
        let created = handle.block_on(handle.store.create(key, object, ttl_seconds))?;
        // SAFETY: a non-NULL out-parameter points to writable memory.
        if let Some(out) = unsafe { out_object.as_mut() } {
            put_object(out, created);
        }
        Ok(())
    })
}

/// Go's `Delete`: deletes `key` and writes the deleted object to `*out_object`
/// (when not NULL; etcd3: its last state stamped with the deletion's revision,
/// as Go). With `preconditions` (NULL for none), the current object is
/// checked first and deleted only if unchanged since, retrying on a concurrent
/// change. A missing key is `STORAGE_ERR_KEY_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn storage_delete(
    s: *const storage,
    key: *const c_char,
    preconditions: *const storage_preconditions,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let pre = self::preconditions(preconditions)?;
        let deleted = handle.block_on(handle.store.delete(key, pre.as_ref()))?;
        // SAFETY: a non-NULL out-parameter points to writable memory.
        if let Some(out) = unsafe { out_object.as_mut() } {
            put_object(out, deleted);
        }
        Ok(())
    })
}

/// The update function of `storage_guaranteed_update`. It receives the current
/// object (`current == NULL`, `current_len == 0` when the key is absent and
/// `ignore_not_found` was set) and returns `STORAGE_OK` with the new object in
/// `*out_new`/`*out_new_len` — memory the caller owns, which must stay valid
/// until the callback is called again or `storage_guaranteed_update` returns —
/// or any other code to abort the update with that code (a value that is no
/// `storage_code` aborts it with `STORAGE_ERR_INVALID_ARGUMENT`).
pub type storage_update_fn = Option<
    extern "C" fn(
        user_data: *mut c_void,
        current: *const u8,
        current_len: usize,
        out_new: *mut *const u8,
        out_new_len: *mut usize,
    ) -> storage_code_int,
>;

/// The update function of `storage_guaranteed_update_ttl`: as
/// `storage_update_fn`, and it may also set the new object's TTL (Go's
/// `*uint64` result of `tryUpdate`) in `*out_ttl_seconds`, which holds -1 when
/// the callback is called:
/// - left at -1: no TTL given. etcd3 writes the object without a lease (as Go,
///   an earlier lease is dropped); etcd2 keeps the key's TTL.
/// - 0: no TTL (etcd2 clears the key's TTL).
/// - 1 to 8,999,999,940: the object expires that many seconds after the write
///   (etcd3: a lease shared with objects of the same TTL, as Go's lease manager).
///
/// Any other value aborts the update with `STORAGE_ERR_INVALID_ARGUMENT`. As in
/// Go, an object equal to the stored one is not written, whatever the TTL.
pub type storage_update_ttl_fn = Option<
    extern "C" fn(
        user_data: *mut c_void,
        current: *const u8,
        current_len: usize,
        out_new: *mut *const u8,
        out_new_len: *mut usize,
        out_ttl_seconds: *mut i64,
    ) -> storage_code_int,
>;

/// Carries the caller's `user_data` into a callback's closure.
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: the callback runs only on the thread that called
// `storage_guaranteed_update`, which owns `user_data` for the call.
unsafe impl Send for UserData {}
// SAFETY: as above; the library never touches what it points to.
unsafe impl Sync for UserData {}

impl UserData {
    pub(crate) fn get(&self) -> *mut c_void {
        self.0
    }
}

/// What the return value of the callback `who` means: `None` for
/// `STORAGE_OK`, the code to abort with otherwise. A value that is no
/// `storage_code` (`-1`, `42`, ...) aborts with `INVALID_ARGUMENT` naming it.
pub(crate) fn abort_code(code: storage_code_int, who: &str) -> Option<StorageError> {
    let known = storage_code::from_int(code);
    let (code, message) = match known {
        Some(storage_code::STORAGE_OK) => return None,
        Some(known) => (
            Code::from(known),
            format!("aborted by {who} with code {code}"),
        ),
        None => (
            Code::InvalidArgument,
            format!("{who} returned {code}, which is not a storage_code"),
        ),
    };
    Some(StorageError::new(code, message))
}

/// The TTL a `storage_update_ttl_fn` left in `*out_ttl_seconds`.
fn returned_ttl(ttl: i64) -> Result<Option<i64>> {
    match ttl {
        -1 => Ok(None),
        0..=MAX_TTL_SECONDS => Ok(Some(ttl)),
        _ => Err(StorageError::invalid_argument(format!(
            "try_update set a TTL of {ttl} seconds: -1 (none given), 0 (none) or 1 to {MAX_TTL_SECONDS}"
        ))),
    }
}

/// The one callback shape both update calls reduce to: `(current, len, &mut
/// new, &mut new_len, &mut ttl) -> code`.
type Callback<'a> = dyn FnMut(*const u8, usize, &mut *const u8, &mut usize, &mut i64) -> storage_code_int
    + Send
    + 'a;

/// The body of both update calls.
fn guaranteed_update(
    s: *const storage,
    key: *const c_char,
    ignore_not_found: bool,
    preconditions: *const storage_preconditions,
    callback: Option<&mut Callback<'_>>,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let pre = self::preconditions(preconditions)?;
        let callback =
            callback.ok_or_else(|| StorageError::invalid_argument("try_update is NULL"))?;
        let mut update = |current: Option<&Object>| -> Result<Update> {
            let (ptr, len) =
                current.map_or((std::ptr::null(), 0), |o| (o.data.as_ptr(), o.data.len()));
            let (mut new, mut new_len, mut ttl) = (std::ptr::null::<u8>(), 0usize, -1i64);
            // Outside the handle's runtime, the callback may call into the
            // library like any other code: this handle, another, or destroying one.
            let code = tokio::task::block_in_place(|| {
                callback(ptr, len, &mut new, &mut new_len, &mut ttl)
            });
            if let Some(abort) = abort_code(code, "try_update") {
                return Err(abort);
            }
            Ok(Update {
                object: bytes_arg(new, new_len, "the object try_update returned")?.to_vec(),
                ttl: returned_ttl(ttl)?,
            })
        };
        let updated = handle.block_on(handle.store.guaranteed_update(
            key,
            ignore_not_found,
            pre.as_ref(),
            &mut update,
        ))?;
        // SAFETY: a non-NULL out-parameter points to writable memory.
        if let Some(out) = unsafe { out_object.as_mut() } {
            put_object(out, updated);
        }
        Ok(())
    })
}

/// Go's `GuaranteedUpdate`: reads `key`, calls `try_update` with the current
/// object, and writes the result only if the key's ModRevision is unchanged,
/// calling `try_update` again with the new current object otherwise. The write
/// is skipped when the new object equals the stored one and the stored value is
/// not stale (a stale value is always rewritten: this is how data moves to the
/// current encryption key). Writes the resulting object to `*out_object` (when
/// not NULL). The object is written without a TTL (etcd2: keeps the key's);
/// `storage_guaranteed_update_ttl` lets the callback set one.
///
/// `try_update` runs on the calling thread, possibly several times, outside the
/// library's own threads: it may call any function of the library, on this
/// handle or another (it must not destroy this handle). A code other than
/// `STORAGE_OK` from it aborts the update and is returned; a value that is no
/// `storage_code` (say `-1`) aborts it with `STORAGE_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn storage_guaranteed_update(
    s: *const storage,
    key: *const c_char,
    ignore_not_found: bool,
    preconditions: *const storage_preconditions,
    try_update: storage_update_fn,
    user_data: *mut c_void,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    let user_data = UserData(user_data);
    let mut callback = try_update.map(|f| {
        move |cur, len, new: &mut _, new_len: &mut _, _: &mut i64| {
            f(user_data.get(), cur, len, new, new_len)
        }
    });
    let callback = callback.as_mut().map(|c| c as &mut Callback<'_>);
    guaranteed_update(
        s,
        key,
        ignore_not_found,
        preconditions,
        callback,
        out_object,
        out_error,
    )
}

/// `storage_guaranteed_update` with a callback that may also give the new
/// object's TTL (Go's `tryUpdate` returning a `*uint64`); see
/// `storage_update_ttl_fn`.
#[no_mangle]
pub extern "C" fn storage_guaranteed_update_ttl(
    s: *const storage,
    key: *const c_char,
    ignore_not_found: bool,
    preconditions: *const storage_preconditions,
    try_update: storage_update_ttl_fn,
    user_data: *mut c_void,
    out_object: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    let user_data = UserData(user_data);
    let mut callback = try_update.map(|f| {
        move |cur, len, new: &mut _, new_len: &mut _, ttl: &mut _| {
            f(user_data.get(), cur, len, new, new_len, ttl)
        }
    });
    let callback = callback.as_mut().map(|c| c as &mut Callback<'_>);
    guaranteed_update(
        s,
        key,
        ignore_not_found,
        preconditions,
        callback,
        out_object,
        out_error,
    )
}

/// Go's `List`: the objects under `key` (a directory: `key + "/"`), in key
/// order, as one JSON object:
/// `{"apiVersion":"v1","items":[...],"kind":"List","metadata":{"resourceVersion":"N","continue":"...","remainingItemCount":M}}`.
/// `limit` > 0 pages (when the config's `paging` is on): pass `metadata.continue`
/// back as `continue_token` for the next page (Kubernetes' token format);
/// `remainingItemCount` is, as Go's, etcd's count of the keys from the page's
/// start less `limit`, present only with a continue token.
/// The etcd2 backend does not page: it ignores `limit`, returns every object
/// with no `continue`, and refuses a `continue_token` (`STORAGE_ERR_UNSUPPORTED`).
/// `resource_version` as in Kubernetes (NULL/`""`: latest). A compacted revision
/// is `STORAGE_ERR_EXPIRED`; an object that cannot be decrypted or decoded
/// fails the list with `STORAGE_ERR_CORRUPT_OBJ` naming its key. Not available
/// with the `raw` codec (`STORAGE_ERR_UNSUPPORTED`).
#[no_mangle]
pub extern "C" fn storage_list(
    s: *const storage,
    key: *const c_char,
    resource_version: *const c_char,
    limit: i64,
    continue_token: *const c_char,
    out_list: *mut storage_bytes,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let opts = ListOptions {
            resource_version: opt_str_arg(resource_version, "resource_version")?.to_owned(),
            limit,
            continue_token: opt_str_arg(continue_token, "continue_token")?.to_owned(),
        };
        let out = out_arg(out_list, "out_list")?;
        let list = handle.block_on(handle.store.list(key, &opts))?;
        let items: Vec<Vec<u8>> = list.items.into_iter().map(|o| o.data).collect();
        *out = storage_bytes::from_vec(crate::codec::versioner::list_object(
            &items,
            list.resource_version,
            &list.continue_token,
            list.remaining_item_count,
        ));
        Ok(())
    })
}

/// Go's `Count`: how many objects are under `key` (a directory).
#[no_mangle]
pub extern "C" fn storage_count(
    s: *const storage,
    key: *const c_char,
    out_count: *mut i64,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let key = str_arg(key, "key")?;
        let out = out_arg(out_count, "out_count")?;
        *out = handle.block_on(handle.store.count(key))?;
        Ok(())
    })
}

/// Go's `CompactRevision`: the revision etcd's history was last compacted to,
/// as the cluster's compactors (kube-apiserver's, or this library's with
/// `compaction_interval_s`) record it under etcd's `compact_rev_key`; 0 when
/// none is recorded. Resource versions below it are gone
/// (`STORAGE_ERR_EXPIRED`). Read from etcd on each call. The etcd2 backend
/// keeps no history: `STORAGE_ERR_UNSUPPORTED`.
#[no_mangle]
pub extern "C" fn storage_compact_revision(
    s: *const storage,
    out_revision: *mut i64,
    out_error: *mut *mut storage_error,
) -> storage_code {
    call(out_error, || {
        let handle = storage::try_ref(s, "storage")?;
        let out = out_arg(out_revision, "out_revision")?;
        *out = handle.block_on(handle.store.compact_revision())?;
        Ok(())
    })
}
