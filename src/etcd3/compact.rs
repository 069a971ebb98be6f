//! Go's etcd3 compactor. Every interval it records the current revision under
//! `compact_rev_key` and compacts to the revision recorded the interval before.
//! The key's version is a logical clock shared by every API server on the
//! cluster, so only one of them compacts each interval.

use std::time::Duration;

use std::sync::Arc;

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use tokio::task::JoinHandle;

use super::client::Rpc;
use super::pool::Pool;
use crate::metrics::Method;
use crate::storage::Result;

const COMPACT_REV_KEY: &str = "compact_rev_key";

/// One round: returns the new logical time and the revision to compact next round.
async fn compact(pool: &Pool, rpc: Rpc, time: i64, rev: i64) -> Result<(i64, i64)> {
    let txn = Txn::new()
        .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, time)])
        .and_then([TxnOp::put(COMPACT_REV_KEY, rev.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
    let resp = pool
        .write(rpc, Method::Txn, |c| {
            let (mut kv, txn) = (c.kv_client(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await?;
    if !resp.succeeded() {
        // Another server compacted this round: adopt its clock.
        let version = match resp.op_responses().first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map_or(0, |kv| kv.version()),
            _ => 0,
        };
        return Ok((version, 0));
    }
    let now = resp.header().map_or(0, |h| h.revision());
    if rev != 0 {
        pool.write(rpc, Method::Compact, |c| {
            let mut kv = c.kv_client();
            async move { kv.compact(rev, None).await }
        })
        .await?;
        tracing::info!("compacted etcd's history up to revision {rev}");
    }
    Ok((time + 1, now))
}

/// Starts the compactor on the current runtime; abort the handle to stop it.
pub(crate) fn start(pool: Arc<Pool>, interval: Duration, rpc: Rpc) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (mut time, mut rev) = (0, 0);
        loop {
            tokio::time::sleep(interval).await;
            // A failed round keeps the clock; the next one retries.
            match compact(&pool, rpc, time, rev).await {
                Ok((t, r)) => (time, rev) = (t, r),
                Err(e) => tracing::warn!(error = %e.message, "compaction round failed"),
            }
        }
    })
}
