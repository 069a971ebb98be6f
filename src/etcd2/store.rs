//! The etcd2 store: Go's `etcdHelper` (`storage/etcd/etcd_helper.go`).
//!
//! Values are stored as etcd v2 string values, untransformed (Go's etcd2
//! storage had no transformer). An object's resourceVersion is the node's
//! `modifiedIndex`; the store's index (`X-Etcd-Index`) is the current one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper::Method;

use super::client::{
    Client, EtcdError, Failure, KeysResult, Node, EVENT_INDEX_CLEARED, KEY_NOT_FOUND, NODE_EXIST,
    TEST_FAILED,
};
use super::watcher::Watcher;
use crate::codec::versioner::{
    parse_resource_version, parse_watch_resource_version, validate_minimum_resource_version,
};
use crate::codec::Codec;
use crate::config::Config;
use crate::storage::{
    check_preconditions, join_key, ttl_seconds, Code, GetOptions, Interface, ListOptions,
    ListResult, Object, Preconditions, Result, StorageError, TryUpdate,
};
use crate::watch::{Watch, WatchOptions};

pub struct Store {
    client: Arc<Client>,
    prefix: String,
    /// Reads go through raft (`quorum=true`), as Go's `GetOptions.Quorum`.
    quorum: bool,
    codec: Codec,
    request_timeout: Duration,
    health_timeout: Duration,
}

/// Go's `toStorageErr`, plus the v2 codes Go passed through as they were.
pub(super) fn storage_error(e: &EtcdError, key: &str, resource_version: i64) -> StorageError {
    let code = match e.error_code {
        KEY_NOT_FOUND => Code::KeyNotFound,
        NODE_EXIST => Code::KeyExists,
        TEST_FAILED => Code::ResourceVersionConflicts,
        EVENT_INDEX_CLEARED => Code::Expired,
        // Not a file, not a directory, directory not empty, root read-only...
        102..=108 => Code::InvalidArgument,
        // Raft and leader problems: etcd cannot serve the request now.
        300..=399 => Code::Unreachable,
        _ => Code::Internal,
    };
    StorageError::with_key(code, key, resource_version, &e.to_string())
}

/// A TTL etcd2 can keep: `ttl_seconds`, and an expiry before the end of
/// Go's `UnixNano` (2262-04-11T23:47:16Z), past which etcd2 silently keeps
/// no TTL at all. A day is left for the difference between this clock and etcd's.
fn etcd2_ttl(ttl: i64) -> Result<Option<i64>> {
    const LAST_EXPIRY: i64 = i64::MAX / 1_000_000_000;
    const CLOCK_SLACK: i64 = 24 * 3600;
    let Some(ttl) = ttl_seconds(ttl)? else {
        return Ok(None);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let longest = LAST_EXPIRY.saturating_sub(now).saturating_sub(CLOCK_SLACK);
    if ttl > longest {
        return Err(StorageError::invalid_argument(format!(
            "ttl_seconds {ttl} is out of range for etcd2: it keeps no expiry past \
             2262-04-11 (at most {longest} seconds from now)"
        )));
    }
    Ok(Some(ttl))
}

/// A transport failure of a request about `key`, in Go's format.
fn transport_error(e: StorageError, key: &str) -> StorageError {
    match e.code {
        Code::Unreachable | Code::Timeout => StorageError::with_key(e.code, key, 0, &e.message),
        _ => e,
    }
}

/// Every value (non-directory) node under `node`, in key order.
pub(super) fn leaves(node: Node) -> Vec<Node> {
    fn walk(node: Node, out: &mut Vec<Node>) {
        for child in node.nodes {
            if child.dir {
                walk(child, out);
            } else {
                out.push(child);
            }
        }
    }
    let mut out = Vec::new();
    walk(node, &mut out);
    // etcd sorts each directory; byte order across levels needs one more sort.
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Store {
    pub(crate) fn new(client: Arc<Client>, config: &Config) -> Self {
        Store {
            client,
            prefix: config.prefix.clone(),
            quorum: config.quorum,
            codec: Codec::new(config.codec),
            request_timeout: config.request_timeout(),
            health_timeout: config.health_timeout(),
        }
    }

    /// Reads `key` (a full etcd key), recursively for a directory.
    async fn read(&self, key: &str, recursive: bool) -> Result<KeysResult> {
        read(
            &self.client,
            key,
            recursive,
            self.quorum,
            self.request_timeout,
        )
        .await
        .map_err(Failure::into_error)
    }

    async fn write(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, String)],
        form: &[(&str, &str)],
    ) -> Result<KeysResult> {
        self.client
            .keys(method, key, query, form, self.request_timeout)
            .await
            .map_err(|e| transport_error(e, key))
    }

    /// A node's value as the caller's object.
    fn decode(&self, key: &str, node: &Node, resource_version: i64) -> Result<Object> {
        decode(self.codec, key, node, resource_version)
    }

    /// The caller's object as the string value to store.
    fn to_storage(&self, key: &str, object: &[u8]) -> Result<String> {
        let plain = self.codec.encode_object(key, object)?;
        String::from_utf8(plain).map_err(|_| {
            StorageError::with_key(
                Code::InvalidObj,
                key,
                0,
                "etcd v2 stores text values: this object does not encode to UTF-8 (use the json codec)",
            )
        })
    }

    /// The objects under the directory `key`, and the store's index.
    async fn leaves_under(&self, key: &str) -> Result<(Vec<Node>, i64)> {
        match self.read(key, true).await? {
            Ok(resp) if resp.node.dir => Ok((leaves(resp.node), resp.index)),
            // A value at the directory's own key is not under it.
            Ok(resp) => Ok((Vec::new(), resp.index)),
            Err(e) if e.error_code == KEY_NOT_FOUND => Ok((Vec::new(), e.index)),
            Err(e) => Err(storage_error(&e, key, 0)),
        }
    }
}

/// A read of `key`, shared with the watcher.
pub(super) async fn read(
    client: &Client,
    key: &str,
    recursive: bool,
    quorum: bool,
    timeout: Duration,
) -> std::result::Result<KeysResult, Failure> {
    let mut query = Vec::new();
    if recursive {
        query.push(("recursive", "true".to_owned()));
        query.push(("sorted", "true".to_owned()));
    }
    if quorum {
        query.push(("quorum", "true".to_owned()));
    }
    client
        .try_keys(Method::GET, key, &query, &[], timeout)
        .await
        .map_err(|f| f.map(|e| transport_error(e, key)))
}

/// A node's value as the caller's object, stamped with `resource_version`.
pub(super) fn decode(
    codec: Codec,
    key: &str,
    node: &Node,
    resource_version: i64,
) -> Result<Object> {
    let value = node.value.as_deref().unwrap_or_default();
    codec.decode_object(key, value.as_bytes(), resource_version, false)
}

#[async_trait]
impl Interface for Store {
    async fn get(&self, key: &str, opts: &GetOptions) -> Result<Option<Object>> {
        if opts.exact {
            return Err(StorageError::unsupported(
                "etcd v2 keeps no past revisions to read exactly",
            ));
        }
        let key = join_key(&self.prefix, key)?;
        let minimum = parse_resource_version(&opts.resource_version)?;
        let node = match self.read(&key, false).await? {
            Ok(resp) => {
                validate_minimum_resource_version(minimum, resp.index)?;
                // A directory holds objects; it is not one.
                (!resp.node.dir).then_some(resp.node)
            }
            Err(e) if e.error_code == KEY_NOT_FOUND => {
                validate_minimum_resource_version(minimum, e.index)?;
                None
            }
            Err(e) => return Err(storage_error(&e, &key, 0)),
        };
        match node {
            Some(node) => Ok(Some(self.decode(&key, &node, node.modified_index)?)),
            None if opts.ignore_not_found => Ok(None),
            None => Err(StorageError::key_not_found(&key)),
        }
    }

    async fn watch(&self, key: &str, opts: &WatchOptions) -> Result<Watch> {
        let key = join_key(&self.prefix, key)?;
        let from = parse_watch_resource_version(&opts.resource_version)?;
        if opts.progress_notify {
            return Err(StorageError::unsupported(
                "etcd2 watches have no progress notifications",
            ));
        }
        let watcher = Watcher {
            client: self.client.clone(),
            codec: self.codec,
            quorum: self.quorum,
            timeout: self.request_timeout,
        };
        Ok(watcher.start(key, opts.recursive, from))
    }

    async fn health(&self) -> Result<()> {
        members_health(&self.client, self.health_timeout).await
    }

    async fn create(&self, key: &str, object: &[u8], ttl: i64) -> Result<Object> {
        let key = join_key(&self.prefix, key)?;
        let ttl = etcd2_ttl(ttl)?.map(|t| t.to_string());
        self.codec.check_create(&key, object)?;
        let value = self.to_storage(&key, object)?;
        let mut form = vec![("value", value.as_str()), ("prevExist", "false")];
        if let Some(ttl) = &ttl {
            form.push(("ttl", ttl.as_str()));
        }
        match self.write(Method::PUT, &key, &[], &form).await? {
            Ok(resp) => {
                self.codec
                    .decode_object(&key, value.as_bytes(), resp.node.modified_index, false)
            }
            Err(e) => Err(storage_error(&e, &key, 0)),
        }
    }

    async fn delete(&self, key: &str, preconditions: Option<&Preconditions>) -> Result<Object> {
        let key = join_key(&self.prefix, key)?;
        let deleted = |resp: super::client::Response| match &resp.prev_node {
            Some(prev) => self.decode(&key, prev, prev.modified_index),
            None => Err(StorageError::internal(format!(
                "etcd deleted {key} without returning its value"
            ))),
        };
        if preconditions.is_none() {
            return match self.write(Method::DELETE, &key, &[], &[]).await? {
                Ok(resp) => deleted(resp),
                Err(e) => Err(storage_error(&e, &key, 0)),
            };
        }
        loop {
            let node = match self.read(&key, false).await? {
                Ok(resp) if !resp.node.dir => resp.node,
                Ok(_) => return Err(StorageError::key_not_found(&key)),
                Err(e) => return Err(storage_error(&e, &key, 0)),
            };
            let current = self.decode(&key, &node, node.modified_index)?;
            check_preconditions(&key, preconditions, Some(&current))?;
            let query = [("prevIndex", node.modified_index.to_string())];
            match self.write(Method::DELETE, &key, &query, &[]).await? {
                Ok(resp) => return deleted(resp),
                // Changed since we read it: check the preconditions again.
                Err(e) if e.error_code == TEST_FAILED => continue,
                Err(e) => return Err(storage_error(&e, &key, 0)),
            }
        }
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        ignore_not_found: bool,
        preconditions: Option<&Preconditions>,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Object> {
        let key = join_key(&self.prefix, key)?;
        loop {
            let node = match self.read(&key, false).await? {
                Ok(resp) if !resp.node.dir => Some(resp.node),
                Ok(_) => None,
                Err(e) if e.error_code == KEY_NOT_FOUND => None,
                Err(e) => return Err(storage_error(&e, &key, 0)),
            };
            let current = match &node {
                Some(node) => Some(self.decode(&key, node, node.modified_index)?),
                None if ignore_not_found => None,
                None => return Err(StorageError::key_not_found(&key)),
            };
            check_preconditions(&key, preconditions, current.as_ref())?;
            let updated = try_update(current.as_ref())?;
            let new_ttl = updated.ttl.map(etcd2_ttl).transpose()?;
            let value = self.to_storage(&key, &updated.object)?;
            let (query, mut form) = match (&node, &current) {
                (Some(node), Some(current)) => {
                    if node.value.as_deref() == Some(value.as_str()) {
                        return Ok(current.clone());
                    }
                    (
                        vec![("prevIndex", node.modified_index.to_string())],
                        vec![("value", value.as_str())],
                    )
                }
                _ => (
                    Vec::new(),
                    vec![("value", value.as_str()), ("prevExist", "false")],
                ),
            };
            // As Go: an update keeps the key's TTL unless it gives one (0: none).
            let ttl = match new_ttl {
                Some(given) => given,
                None => node.as_ref().and_then(|n| n.ttl).map(|t| t.max(1)),
            }
            .map(|t| t.to_string());
            if let Some(ttl) = &ttl {
                form.push(("ttl", ttl.as_str()));
            }
            match self.write(Method::PUT, &key, &query, &form).await? {
                Ok(resp) => {
                    return self.codec.decode_object(
                        &key,
                        value.as_bytes(),
                        resp.node.modified_index,
                        false,
                    )
                }
                // Changed, created or deleted since we read it: read again.
                Err(e) if matches!(e.error_code, TEST_FAILED | NODE_EXIST | KEY_NOT_FOUND) => {
                    continue
                }
                Err(e) => return Err(storage_error(&e, &key, 0)),
            }
        }
    }

    async fn list(&self, key: &str, opts: &ListOptions) -> Result<ListResult> {
        if self.codec.is_raw() {
            return Err(StorageError::unsupported(
                "list needs an object codec (json), not raw",
            ));
        }
        if !opts.continue_token.is_empty() {
            return Err(StorageError::unsupported(
                "the etcd2 backend does not page lists: it never issues continue tokens, \
                 and every list returns all objects (limit is ignored)",
            ));
        }
        let key = join_key(&self.prefix, key)?;
        let minimum = parse_resource_version(&opts.resource_version)?;
        let (nodes, index) = self.leaves_under(&key).await?;
        validate_minimum_resource_version(minimum, index)?;
        let items = nodes
            .iter()
            .map(|n| self.decode(&n.key, n, n.modified_index))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult {
            items,
            resource_version: index,
            continue_token: String::new(),
            remaining_item_count: None,
        })
    }

    async fn count(&self, key: &str) -> Result<i64> {
        let key = join_key(&self.prefix, key)?;
        let (nodes, _) = self.leaves_under(&key).await?;
        Ok(nodes.len() as i64)
    }
}

/// Go's etcd2 health check: list the cluster's members within `timeout`.
pub(crate) async fn members_health(client: &Client, timeout: Duration) -> Result<()> {
    client.members(timeout).await.map_err(|e| {
        StorageError::new(
            Code::Unreachable,
            format!("error listing etcd members: {}", e.message),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd_error(code: i64) -> EtcdError {
        EtcdError {
            error_code: code,
            message: "m".into(),
            cause: "/registry/a".into(),
            index: 7,
        }
    }

    #[test]
    fn v2_errors_map_as_gos_helper() {
        for (v2, code) in [
            (100, Code::KeyNotFound),
            (105, Code::KeyExists),
            (101, Code::ResourceVersionConflicts),
            (401, Code::Expired),
            (102, Code::InvalidArgument),
            (104, Code::InvalidArgument),
            (300, Code::Unreachable),
            (209, Code::Internal),
        ] {
            let e = storage_error(&etcd_error(v2), "/registry/a", 3);
            assert_eq!(
                (e.code, e.key.as_str(), e.resource_version),
                (code, "/registry/a", 3),
                "{v2}"
            );
        }
        let e = storage_error(&etcd_error(101), "/registry/a", 0);
        assert_eq!(
            e.message,
            "StorageError: resource version conflicts, Code: 3, Key: /registry/a, ResourceVersion: 0, \
             AdditionalErrorMsg: etcd v2 error 101: m (/registry/a) [7]"
        );
    }

    #[test]
    fn leaves_flatten_directories_in_byte_order() {
        let node = |key: &str, nodes: Vec<Node>| Node {
            key: key.into(),
            value: nodes.is_empty().then(String::new),
            dir: !nodes.is_empty(),
            nodes,
            modified_index: 1,
            ttl: None,
        };
        let tree = node(
            "/r",
            vec![
                node("/r/b", vec![node("/r/b/c", vec![])]),
                node("/r/b!", vec![]),
                node("/r/a", vec![]),
            ],
        );
        let keys: Vec<String> = leaves(tree).into_iter().map(|n| n.key).collect();
        assert_eq!(keys, ["/r/a", "/r/b!", "/r/b/c"]);
    }
}
