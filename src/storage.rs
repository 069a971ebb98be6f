//! `storage.Interface` and `storage/errors.go`: the operations every backend
//! implements and the error type carrying Kubernetes' storage error codes.

use std::fmt;

use async_trait::async_trait;

use crate::watch::{Watch, WatchOptions};

/// Error codes: 1–7 are Kubernetes' `storage.ErrCode*`, 100 and up are the library's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    KeyNotFound = 1,
    KeyExists = 2,
    ResourceVersionConflicts = 3,
    InvalidObj = 4,
    Unreachable = 5,
    Timeout = 6,
    CorruptObj = 7,
    /// The requested revision was compacted away (Kubernetes' 410 Gone): relist.
    Expired = 8,
    InvalidArgument = 100,
    InvalidConfig = 101,
    Unsupported = 102,
    Internal = 103,
    /// etcd refused the operation to the authenticated user.
    PermissionDenied = 104,
}

impl Code {
    /// The text Go's `StorageError.Error()` uses for its own codes.
    fn go_text(self) -> Option<&'static str> {
        Some(match self {
            Code::KeyNotFound => "key not found",
            Code::KeyExists => "key exists",
            Code::ResourceVersionConflicts => "resource version conflicts",
            Code::InvalidObj => "invalid object",
            Code::Unreachable => "server unreachable",
            Code::Timeout => "request timeout",
            Code::CorruptObj => "corrupt object",
            Code::Expired => "resource version expired",
            _ => return None,
        })
    }
}

/// A storage error: a code, a human-readable message, and — as Go's
/// `StorageError` — the etcd key and resource version involved, when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    pub code: Code,
    pub message: String,
    pub key: String,
    pub resource_version: i64,
}

impl StorageError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        StorageError {
            code,
            message: message.into(),
            key: String::new(),
            resource_version: 0,
        }
    }

    /// Go's `NewKeyNotFoundError` and friends: the message is formatted as
    /// `StorageError.Error()` formats it, so logs read the same as kube-apiserver's.
    pub fn with_key(code: Code, key: &str, resource_version: i64, additional: &str) -> Self {
        let text = code.go_text().unwrap_or("storage error");
        StorageError {
            code,
            message: format!(
                "StorageError: {text}, Code: {}, Key: {key}, ResourceVersion: {resource_version}, AdditionalErrorMsg: {additional}",
                code as i32
            ),
            key: key.to_owned(),
            resource_version,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidConfig, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Code::Unsupported, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }
    pub fn key_not_found(key: &str) -> Self {
        Self::with_key(Code::KeyNotFound, key, 0, "")
    }
    /// Stored bytes that cannot be transformed or decoded.
    pub fn corrupt(key: &str, reason: impl fmt::Display) -> Self {
        Self::with_key(Code::CorruptObj, key, 0, &reason.to_string())
    }

    /// Prefixes the message with context, as Go's `fmt.Errorf("...: %v", err)`.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Options of a read, as Go's `storage.GetOptions`.
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// `""`/`"0"`: any revision; otherwise the minimum revision the read must observe.
    pub resource_version: String,
    /// Return `Ok(None)` instead of `KeyNotFound`.
    pub ignore_not_found: bool,
    /// Read the key as it was at exactly `resource_version` (Kubernetes'
    /// `resourceVersionMatch=Exact`, which a non-recursive list uses); etcd3 only.
    pub exact: bool,
}

/// An object read from storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The decoded object (or, with the `raw` codec, the transformed bytes).
    pub data: Vec<u8>,
    /// etcd's ModRevision of the key: the object's resourceVersion.
    pub resource_version: i64,
    /// The value was read with a transformer other than the one new writes use,
    /// so it should be rewritten (re-encrypted).
    pub stale: bool,
    /// Where the stored object holds fields the codec's schema does not know
    /// (a newer Kubernetes release's), as `path#field-number`: `data` leaves
    /// them out, so writing it back would lose them.
    pub unknown_fields: Vec<String>,
}

impl Object {
    /// Refuses a write based on this object when it would drop fields the
    /// schema does not know, leaving etcd unchanged.
    pub fn check_nothing_unknown(&self, key: &str) -> Result<()> {
        if self.unknown_fields.is_empty() {
            return Ok(());
        }
        Err(StorageError::with_key(
            Code::Unsupported,
            key,
            self.resource_version,
            &format!(
                "the stored object has fields this library's schema does not know ({}): \
                 writing it would drop them, so it is left unchanged",
                self.unknown_fields.join(", ")
            ),
        ))
    }
}

/// Go's `storage.Preconditions`: checked against the current object before a
/// delete or update; a mismatch is `InvalidObj`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Preconditions {
    /// Go's `Preconditions.Check`. An absent object (`None`, an update with
    /// `ignore_not_found`) is checked as Go checks the empty object it
    /// stands for: no uid and no resourceVersion.
    pub fn check(&self, key: &str, object: Option<&Object>) -> Result<()> {
        let failed = |what: &str, wanted: &str, actual: &str| {
            StorageError::with_key(
                Code::InvalidObj,
                key,
                0,
                &format!(
                    "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
                ),
            )
        };
        if let Some(uid) = &self.uid {
            let actual = match object {
                Some(object) => object_uid(key, object)?,
                None => String::new(),
            };
            if actual != *uid {
                return Err(failed("UID", uid, &actual));
            }
        }
        if let Some(rv) = &self.resource_version {
            let actual = object.map_or(String::new(), |o| o.resource_version.to_string());
            if *rv != actual {
                return Err(failed("ResourceVersion", rv, &actual));
            }
        }
        Ok(())
    }
}

fn object_uid(key: &str, object: &Object) -> Result<String> {
    let meta: serde_json::Value = serde_json::from_slice(&object.data).map_err(|_| {
        StorageError::with_key(
            Code::InvalidObj,
            key,
            0,
            "can't enforce a uid precondition: the object is not JSON",
        )
    })?;
    Ok(meta["metadata"]["uid"].as_str().unwrap_or("").to_owned())
}

/// `Preconditions::check` when there may be none.
pub fn check_preconditions(
    key: &str,
    preconditions: Option<&Preconditions>,
    object: Option<&Object>,
) -> Result<()> {
    preconditions.map_or(Ok(()), |p| p.check(key, object))
}

/// The longest TTL a write may ask for: etcd's largest lease
/// (`MaxLeaseTTL`, 9,000,000,000 s) less the minute a lease may be reused
/// past the TTL asked for. etcd2's TTLs are held to the same bound and
/// also end before 2262-04-11, past which etcd2 keeps no expiry.
pub const MAX_TTL_SECONDS: i64 = 9_000_000_000 - 60;

/// A write's TTL in seconds: `None` for 0 (no TTL); anything below 0 or above
/// `MAX_TTL_SECONDS` is refused rather than wrapped or clamped by etcd.
pub fn ttl_seconds(ttl: i64) -> Result<Option<i64>> {
    match ttl {
        0 => Ok(None),
        1..=MAX_TTL_SECONDS => Ok(Some(ttl)),
        _ => Err(StorageError::invalid_argument(format!(
            "ttl_seconds {ttl} is out of range: 0 (no TTL) or 1 to {MAX_TTL_SECONDS}"
        ))),
    }
}

/// Options of a list, as Go's `ListOptions` and `SelectionPredicate` paging fields.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `""`: the latest revision; `"0"`: any; `N`: exactly revision N when paging.
    pub resource_version: String,
    /// At most this many items per call when paging is enabled; 0: all.
    pub limit: i64,
    /// A continue token from a previous page.
    pub continue_token: String,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// Decoded items in key order.
    pub items: Vec<Object>,
    /// The revision the list was read at.
    pub resource_version: i64,
    /// Non-empty when more items remain: pass it back to continue.
    pub continue_token: String,
    /// Go's `remainingItemCount`: with a continue token, how many items follow.
    pub remaining_item_count: Option<i64>,
}

/// What a `tryUpdate` returns: the new object and, as Go's `*uint64`, its TTL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub object: Vec<u8>,
    /// `None`: no TTL given (etcd3 writes without a lease, etcd2 keeps the
    /// key's TTL); `Some(0)`: none; `Some(n)`: an `n`-second lease.
    pub ttl: Option<i64>,
}

impl From<Vec<u8>> for Update {
    fn from(object: Vec<u8>) -> Self {
        Update { object, ttl: None }
    }
}

/// The `tryUpdate` of `GuaranteedUpdate`: given the current object (decoded, with
/// its resourceVersion; `None` when absent and ignored), returns the new object.
pub type TryUpdate<'a> = dyn FnMut(Option<&Object>) -> Result<Update> + Send + 'a;

/// What a re-encryption walk found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reencrypted {
    /// Objects under the key.
    pub seen: i64,
    /// Stale objects now stored under the current encryption key.
    pub rewritten: i64,
    /// Objects that could not be read or rewritten (each reported to the progress function).
    pub failed: i64,
}

/// Told of each object that could not be rewritten (`Some`, naming its key)
/// and after each page (`None`), with the counts so far; an `Err` stops the
/// walk with that error.
pub type ReencryptProgress<'a> =
    dyn FnMut(&Reencrypted, Option<&StorageError>) -> Result<()> + Send + 'a;

/// `storage.Interface`: what every backend implements.
#[async_trait]
pub trait Interface: Send + Sync {
    /// Reads `key` (relative to the configured prefix).
    async fn get(&self, key: &str, opts: &GetOptions) -> Result<Option<Object>>;

    /// Watches `key` (or, `recursive`, every key under it) from a resource
    /// version; must be called inside the tokio runtime that will run the watch.
    async fn watch(&self, key: &str, opts: &WatchOptions) -> Result<Watch>;

    /// Whether the backend answers (newer Go's `ReadinessCheck`), bounded by the
    /// configured health timeout.
    async fn health(&self) -> Result<()>;

    /// Writes `object` at `key` if the key does not exist; `ttl` > 0 attaches a
    /// lease. Returns the stored object with its new resourceVersion.
    async fn create(&self, key: &str, object: &[u8], ttl: i64) -> Result<Object>;

    /// Deletes `key`, returning the deleted object (etcd3: stamped with the
    /// deletion's revision, as Go).
    async fn delete(&self, key: &str, preconditions: Option<&Preconditions>) -> Result<Object>;

    /// The compare-and-swap loop of Go's `GuaranteedUpdate`; returns the stored object.
    async fn guaranteed_update(
        &self,
        key: &str,
        ignore_not_found: bool,
        preconditions: Option<&Preconditions>,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Object>;

    /// Lists the objects under `key` (as a directory: `key + "/"`).
    async fn list(&self, key: &str, opts: &ListOptions) -> Result<ListResult>;

    /// Counts the objects under `key` (as a directory).
    async fn count(&self, key: &str) -> Result<i64>;

    /// The revision etcd's history was last compacted to, as the cluster's
    /// compactors record it (Go's `CompactRevision`); 0 when none is recorded.
    async fn compact_revision(&self) -> Result<i64> {
        Err(StorageError::unsupported(
            "this backend has no compaction: etcd2 keeps no history",
        ))
    }

    /// Rewrites every stale object under `key` (a directory) through
    /// `GuaranteedUpdate`, so that it is stored under the current encryption
    /// key: what operators do after rotating one. Objects that fail are
    /// counted and reported, and the walk goes on.
    async fn reencrypt(
        &self,
        _key: &str,
        _progress: &mut ReencryptProgress<'_>,
    ) -> Result<Reencrypted> {
        Err(StorageError::unsupported(
            "this backend has no encryption at rest: etcd2 stores values as written",
        ))
    }

    /// The store's metrics in the Prometheus text format (see `crate::metrics`);
    /// empty for a backend that keeps none.
    fn metrics_text(&self) -> String {
        String::new()
    }
}

/// Go's `path.Join(prefix, key)` with the prefix itself `path.Join("/", prefix)`,
/// refusing keys whose cleaned form leaves the prefix.
pub fn join_key(prefix: &str, key: &str) -> Result<String> {
    let prefix = clean_path(&format!("/{prefix}"));
    let joined = clean_path(&format!("{prefix}/{key}"));
    let inside = prefix == "/"
        || joined == prefix
        || (joined.starts_with(&prefix) && joined.as_bytes()[prefix.len()] == b'/');
    if !inside {
        return Err(StorageError::invalid_argument(format!(
            "key {key:?} resolves to {joined:?}, outside the prefix {prefix:?}"
        )));
    }
    Ok(joined)
}

/// Go's `path.Clean` for rooted paths (every caller passes one).
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_normalise_like_go() {
        for p in [
            "registry",
            "/registry",
            "/registry/",
            "//registry//",
            "/a/../registry",
        ] {
            assert_eq!(
                join_key(p, "pods/x").unwrap(),
                "/registry/pods/x",
                "prefix {p}"
            );
        }
        assert_eq!(join_key("", "/a").unwrap(), "/a");
        assert_eq!(join_key("/", "//a/../b").unwrap(), "/b");
    }

    #[test]
    fn keys_clean_like_go_path_join() {
        assert_eq!(
            join_key("/registry", "/configmaps/default/../default/cm").unwrap(),
            "/registry/configmaps/default/cm"
        );
        assert_eq!(join_key("/registry", "//a/../b").unwrap(), "/registry/b");
        assert_eq!(join_key("/registry", "a/./b/").unwrap(), "/registry/a/b");
        assert_eq!(join_key("/registry", "").unwrap(), "/registry");
    }

    #[test]
    fn keys_cannot_escape_the_prefix() {
        for k in ["/../../etc", "..", "/a/../../b", "../registry2/x"] {
            let e = join_key("/registry", k).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "key {k}");
        }
        // A sibling sharing the prefix's leading bytes is still outside.
        assert!(join_key("/registry", "../registryX/a").is_err());
        // Going up and back in stays inside.
        assert_eq!(
            join_key("/registry", "../registry/a").unwrap(),
            "/registry/a"
        );
    }

    #[test]
    fn go_error_format() {
        let e = StorageError::key_not_found("/registry/a");
        assert_eq!(e.key, "/registry/a");
        assert_eq!(
            e.message,
            "StorageError: key not found, Code: 1, Key: /registry/a, ResourceVersion: 0, AdditionalErrorMsg: "
        );
    }
}
