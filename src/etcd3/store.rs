//! The etcd3 store: Go's `etcd3.store`.

use std::sync::Arc;

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, GetOptions as EtcdGetOptions, GetResponse, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, TxnResponse,
};
use tokio::sync::Notify;

use super::client::{prefix_range_end, Rpc};
use super::compact::COMPACT_REV_KEY;
use super::feature::RequestProgress;
use super::health::health_get;
use super::lease::LeaseManager;
use super::list;
use super::pool::Pool;
use super::reencrypt;
use super::watcher::Watcher;
use crate::codec::versioner::{
    parse_resource_version, parse_watch_resource_version, validate_minimum_resource_version,
};
use crate::codec::Codec;
use crate::config::Config;
use crate::metrics::{Method, Metrics};
use crate::storage::ttl_seconds;
use crate::storage::{
    check_preconditions, join_key, Code, GetOptions, Interface, ListOptions, ListResult, Object,
    Preconditions, ReencryptProgress, Reencrypted, Result, StorageError, TryUpdate,
};
use crate::value::{Cause, Transformer};
use crate::watch::{ProgressRequester, Watch, WatchOptions};

pub struct Store {
    pub(super) pool: Arc<Pool>,
    prefix: String,
    /// false: serializable reads (Go's `NewWithNoQuorumRead`).
    quorum: bool,
    pub(super) paging: bool,
    transformer: Arc<dyn Transformer>,
    codec: Codec,
    pub(super) rpc: Rpc,
    health: Rpc,
    leases: LeaseManager,
    request_progress: Arc<RequestProgress>,
}

/// What Go's `getState` reads: the current value of a key.
pub(super) struct State {
    /// The decoded object handed to callers.
    pub(super) object: Object,
    /// The transformed (plaintext) bytes as stored, for the no-op check.
    plain: Vec<u8>,
}

impl Store {
    pub(crate) fn new(pool: Arc<Pool>, config: &Config, transformer: Arc<dyn Transformer>) -> Self {
        Store {
            leases: LeaseManager::new(pool.clone(), Rpc::new(config, config.request_timeout())),
            request_progress: Arc::new(RequestProgress::new(
                pool.clone(),
                Rpc::new(config, config.request_timeout()),
            )),
            pool,
            prefix: config.prefix.clone(),
            quorum: config.quorum,
            paging: config.paging,
            transformer,
            codec: Codec::new(config.codec),
            rpc: Rpc::new(config, config.request_timeout()),
            health: Rpc::new(config, config.health_timeout()),
        }
    }

    pub(super) fn read_options(&self) -> EtcdGetOptions {
        if self.quorum {
            EtcdGetOptions::new()
        } else {
            EtcdGetOptions::new().with_serializable()
        }
    }

    /// Decrypts and decodes one stored value of `key`.
    pub(super) async fn decode(
        &self,
        key: &str,
        value: &[u8],
        resource_version: i64,
    ) -> Result<State> {
        decode(
            &*self.transformer,
            self.pool.metrics(),
            self.codec,
            key,
            value,
            resource_version,
        )
        .await
    }

    /// Decodes transformed (plaintext) bytes.
    pub(super) fn decode_plain(
        &self,
        key: &str,
        plain: &[u8],
        resource_version: i64,
        stale: bool,
    ) -> Result<Object> {
        self.codec
            .decode_object(key, plain, resource_version, stale)
    }

    async fn state(&self, key: &str, kv: Option<&KeyValue>) -> Result<Option<State>> {
        match kv {
            Some(kv) => Ok(Some(self.decode(key, kv.value(), kv.mod_revision()).await?)),
            None => Ok(None),
        }
    }

    /// The caller's object in its stored form: encoded and transformed.
    async fn to_storage(&self, key: &str, object: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let plain = self.codec.encode_object(key, object)?;
        let stored = self.transformer.write(&plain, key.as_bytes()).await;
        self.pool.metrics().transformed_to_storage(stored.is_ok());
        let stored = stored.map_err(|e| {
            tracing::warn!(key, error = %e, "unable to transform data for storage");
            let message = format!("unable to transform data for {key}: {e}");
            match e.1 {
                Cause::Data => StorageError::internal(message),
                Cause::Unreachable => StorageError::with_key(Code::Unreachable, key, 0, &message),
                Cause::Timeout => StorageError::with_key(Code::Timeout, key, 0, &message),
            }
        })?;
        Ok((plain, stored))
    }

    /// `GuaranteedUpdate` of a full etcd key; tells whether it wrote.
    pub(super) async fn update_key(
        &self,
        key: String,
        ignore_not_found: bool,
        preconditions: Option<&Preconditions>,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<(Object, bool)> {
        let mut current = self.get_kv(&key).await?;

        loop {
            let (state, rev) = match current.take() {
                Some(kv) => (
                    Some(self.decode(&key, kv.value(), kv.mod_revision()).await?),
                    kv.mod_revision(),
                ),
                None if ignore_not_found => (None, 0),
                None => return Err(StorageError::key_not_found(&key)),
            };
            check_preconditions(&key, preconditions, state.as_ref().map(|s| &s.object))?;
            if let Some(state) = &state {
                state.object.check_nothing_unknown(&key)?;
            }
            let updated = try_update(state.as_ref().map(|s| &s.object))?;
            // As Go: no TTL given writes without a lease, like a TTL of 0.
            let ttl = ttl_seconds(updated.ttl.unwrap_or(0))?;
            let (plain, stored) = self.to_storage(&key, &updated.object).await?;
            if let Some(state) = &state {
                // Rewriting a stale value is how data moves to the current key.
                // As Go, an unchanged object is not written even for a new TTL.
                if !state.object.stale && plain == state.plain {
                    return Ok((state.object.clone(), false));
                }
            }
            let lease = self.lease(ttl).await?;
            let txn = Txn::new()
                .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)])
                .and_then([TxnOp::put(key.as_str(), stored, self.put_options(lease))])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let resp = self.txn(txn).await?;
            if !resp.succeeded() {
                current = first_kv(&resp);
                continue;
            }
            let written = self.decode_plain(&key, &plain, txn_revision(&resp), false)?;
            return Ok((written, true));
        }
    }

    /// Asks the transformer's KMS plugins for their current key now, so that
    /// staleness reflects a rotation at once.
    pub(super) async fn refresh_keys(&self) -> Result<()> {
        self.transformer.refresh().await.map_err(|e| {
            let code = match e.1 {
                Cause::Timeout => Code::Timeout,
                Cause::Unreachable => Code::Unreachable,
                Cause::Data => Code::Internal,
            };
            StorageError::new(code, e.0)
        })
    }

    fn put_options(&self, lease: Option<i64>) -> Option<PutOptions> {
        lease.map(|id| PutOptions::new().with_lease(id))
    }

    async fn lease(&self, ttl: Option<i64>) -> Result<Option<i64>> {
        match ttl {
            Some(ttl) => Ok(Some(self.leases.lease_for(ttl).await?)),
            None => Ok(None),
        }
    }

    async fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        let options = self.read_options();
        let resp = self.range(key, options).await?;
        Ok(resp.kvs().first().cloned())
    }

    /// A read of `key` (and, with `options`, a range from it), retried across endpoints.
    pub(super) async fn range(&self, key: &str, options: EtcdGetOptions) -> Result<GetResponse> {
        self.range_bytes(key.as_bytes(), options).await
    }

    /// `range` from a key that need not be UTF-8 (a page's continuation).
    pub(super) async fn range_bytes(
        &self,
        key: &[u8],
        options: EtcdGetOptions,
    ) -> Result<GetResponse> {
        self.pool
            .read(self.rpc, Method::Range, |c| {
                let (mut kv, key, options) = (c.kv_client(), key.to_vec(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })
            .await
    }

    /// Runs a transaction: a write, retried only if it never reached etcd.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.pool
            .write(self.rpc, Method::Txn, |c| {
                let (mut kv, txn) = (c.kv_client(), txn.clone());
                async move { kv.txn(txn).await }
            })
            .await
    }

    /// Deletes `key` if its ModRevision is still `rev`; otherwise returns the current value.
    async fn delete_if_unchanged(
        &self,
        key: &str,
        rev: i64,
    ) -> Result<std::result::Result<i64, Option<KeyValue>>> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(txn).await?;
        if resp.succeeded() {
            Ok(Ok(txn_revision(&resp)))
        } else {
            Ok(Err(first_kv(&resp)))
        }
    }
}

fn first_kv(resp: &TxnResponse) -> Option<KeyValue> {
    match resp.op_responses().into_iter().next() {
        Some(TxnOpResponse::Get(get)) => get.kvs().first().cloned(),
        _ => None,
    }
}

fn txn_revision(resp: &TxnResponse) -> i64 {
    resp.header().map_or(0, |h| h.revision())
}

/// `Store::decode` for what has no store at hand (a running watch).
pub(super) async fn decode(
    transformer: &dyn Transformer,
    metrics: &Metrics,
    codec: Codec,
    key: &str,
    value: &[u8],
    resource_version: i64,
) -> Result<State> {
    let (plain, stale) = transformer
        .read(value, key.as_bytes(), &mut |provider, outcome| {
            metrics.transformed_from_storage(provider, outcome)
        })
        .await
        .map_err(|e| {
            tracing::warn!(key, error = %e, "unable to transform stored data");
            let message = format!("unable to transform stored data: {e}");
            match e.1 {
                Cause::Data => StorageError::corrupt(key, message),
                Cause::Unreachable => StorageError::with_key(Code::Unreachable, key, 0, &message),
                Cause::Timeout => StorageError::with_key(Code::Timeout, key, 0, &message),
            }
        })?;
    let object = codec.decode_object(key, &plain, resource_version, stale)?;
    if !object.unknown_fields.is_empty() {
        metrics.read_unknown_fields();
    }
    Ok(State {
        object,
        plain: plain.into_owned(),
    })
}

#[async_trait]
impl Interface for Store {
    async fn get(&self, key: &str, opts: &GetOptions) -> Result<Option<Object>> {
        let key = join_key(&self.prefix, key)?;
        let minimum = parse_resource_version(&opts.resource_version)?;
        let mut options = self.read_options();
        if opts.exact && minimum > 0 {
            options = options.with_revision(minimum);
        }
        let resp = match self.range(&key, options).await {
            // A revision etcd has not reached: say so as for a minimum.
            Err(e) if e.message.contains("required revision is a future revision") => {
                let current = self.range(&key, self.read_options()).await?;
                validate_minimum_resource_version(
                    minimum,
                    current.header().map_or(0, |h| h.revision()),
                )?;
                return Err(e);
            }
            resp => resp?,
        };
        let current = resp.header().map_or(0, |h| h.revision());
        validate_minimum_resource_version(minimum, current)?;
        match self.state(&key, resp.kvs().first()).await? {
            Some(state) => Ok(Some(state.object)),
            None if opts.ignore_not_found => Ok(None),
            None => Err(StorageError::key_not_found(&key)),
        }
    }

    async fn watch(&self, key: &str, opts: &WatchOptions) -> Result<Watch> {
        let key = join_key(&self.prefix, key)?;
        let from = parse_watch_resource_version(&opts.resource_version)?;
        let progress_wanted = Arc::new(Notify::new());
        let watcher = Watcher {
            pool: self.pool.clone(),
            rpc: self.rpc,
            transformer: self.transformer.clone(),
            codec: self.codec,
            progress_notify: opts.progress_notify,
            progress_wanted: progress_wanted.clone(),
        };
        let requester = ProgressRequester::new(progress_wanted, self.request_progress.clone());
        Ok(watcher
            .start(key, opts.recursive, from)
            .with_progress(requester))
    }

    /// etcd's health, then the KMS plugins', as kube-apiserver's
    /// `/healthz/etcd` and `/healthz/kms-providers`.
    async fn health(&self) -> Result<()> {
        health_get(&self.pool, &self.prefix, self.health).await?;
        self.transformer.health().await.map_err(|e| {
            let code = match e.1 {
                Cause::Timeout => Code::Timeout,
                _ => Code::Unreachable,
            };
            StorageError::new(code, e.0)
        })
    }

    async fn create(&self, key: &str, object: &[u8], ttl: i64) -> Result<Object> {
        let key = join_key(&self.prefix, key)?;
        let ttl = ttl_seconds(ttl)?;
        self.codec.check_create(&key, object)?;
        let (plain, stored) = self.to_storage(&key, object).await?;
        let lease = self.lease(ttl).await?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), stored, self.put_options(lease))]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::with_key(Code::KeyExists, &key, 0, ""));
        }
        self.decode_plain(&key, &plain, txn_revision(&resp), false)
    }

    async fn delete(&self, key: &str, preconditions: Option<&Preconditions>) -> Result<Object> {
        let key = join_key(&self.prefix, key)?;
        let mut current = self.get_kv(&key).await?;
        loop {
            let Some(kv) = current.take() else {
                return Err(StorageError::key_not_found(&key));
            };
            let state = self.decode(&key, kv.value(), kv.mod_revision()).await?;
            check_preconditions(&key, preconditions, Some(&state.object))?;
            match self.delete_if_unchanged(&key, kv.mod_revision()).await? {
                // As Go, the last state stamped with the deletion's revision.
                Ok(deleted) => {
                    return self.decode_plain(&key, &state.plain, deleted, state.object.stale)
                }
                // Changed since we read it: check the preconditions again.
                Err(now) => current = now,
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
        self.update_key(key, ignore_not_found, preconditions, try_update)
            .await
            .map(|(object, _)| object)
    }

    async fn reencrypt(
        &self,
        key: &str,
        progress: &mut ReencryptProgress<'_>,
    ) -> Result<Reencrypted> {
        let mut key_prefix = join_key(&self.prefix, key)?;
        if !key_prefix.ends_with('/') {
            key_prefix.push('/');
        }
        reencrypt::walk(self, &key_prefix, progress).await
    }

    async fn list(&self, key: &str, opts: &ListOptions) -> Result<ListResult> {
        if self.codec.is_raw() {
            return Err(StorageError::unsupported(
                "list needs an object codec (json), not raw",
            ));
        }
        let mut key_prefix = join_key(&self.prefix, key)?;
        if !key_prefix.ends_with('/') {
            key_prefix.push('/');
        }
        list::list(self, &key_prefix, opts).await
    }

    async fn count(&self, key: &str) -> Result<i64> {
        let mut key = join_key(&self.prefix, key)?;
        if !key.ends_with('/') {
            key.push('/');
        }
        let options = self
            .read_options()
            .with_range(prefix_range_end(&key))
            .with_count_only();
        let resp = self.range(&key, options).await?;
        Ok(resp.count())
    }

    /// Reads `compact_rev_key` afresh, where Go's store reports what its
    /// watch on that key last saw: the same value, without the watch's lag.
    /// What Go's compactor would not take (a value `strconv.ParseInt` refuses,
    /// or a negative one, which never lowers its revision from 0) is corrupt.
    async fn compact_revision(&self) -> Result<i64> {
        let resp = self.range(COMPACT_REV_KEY, self.read_options()).await?;
        let Some(kv) = resp.kvs().first() else {
            return Ok(0);
        };
        let revision = std::str::from_utf8(kv.value())
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| {
                StorageError::corrupt(COMPACT_REV_KEY, "the recorded revision is not an integer")
            })?;
        if revision < 0 {
            return Err(StorageError::corrupt(
                COMPACT_REV_KEY,
                format!("the recorded revision {revision} is negative"),
            ));
        }
        Ok(revision)
    }

    fn metrics_text(&self) -> String {
        self.pool.metrics().encode()
    }
}
