//! Go's etcd3 compactor (`storage/etcd3/compact.go`). Every interval it
//! records the current revision under `compact_rev_key` and compacts to the
//! revision recorded the interval before. The key's version is a logical
//! clock shared by every API server on the cluster, so only one of them
//! compacts each interval; one that loses a round adopts the clock and the
//! revision etcd is at, and compacts to that revision when it next wins, as
//! Go's does.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use tokio::task::JoinHandle;

use super::client::Rpc;
use super::pool::Pool;
use crate::config::Config;
use crate::metrics::{Method, Metrics};
use crate::storage::{Result, StorageError};

/// Where every compactor of the cluster records the revision it compacts to
/// (outside any prefix: kube-apiservers of all prefixes share it).
pub(crate) const COMPACT_REV_KEY: &str = "compact_rev_key";

/// One API server's side of Kubernetes' compaction protocol, a round at a
/// time: what `compaction_interval_s` runs every interval. Several
/// compactors (in this process or in kube-apiservers) may share a cluster.
pub struct Compactor {
    pool: Arc<Pool>,
    rpc: Rpc,
    /// The logical time: the version of `compact_rev_key` this compactor
    /// expects (Go's `compactTime`).
    time: i64,
    /// The revision to compact to when this compactor next wins a round
    /// (Go's `rev`); 0 compacts nothing.
    revision: i64,
}

/// What one round did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// The logical time after the round.
    pub time: i64,
    /// The revision the next won round compacts to.
    pub revision: i64,
    /// The revision etcd's history was compacted to, as far as this round
    /// knows (Go's `compactRev`): the one it compacted to when it won, the
    /// one the winner recorded when it lost; 0 when none.
    pub compacted: i64,
}

impl Compactor {
    /// A compactor over its own connection to the config's etcd; it starts
    /// at logical time 0 with nothing to compact, as Go's.
    pub async fn new(config: &Config) -> Result<Compactor> {
        let pool = Pool::connect(config, Arc::new(Metrics::new(&[]))).await?;
        let rpc = Rpc::new(config, config.request_timeout());
        Ok(Self::over(Arc::new(pool), rpc))
    }

    pub(crate) fn over(pool: Arc<Pool>, rpc: Rpc) -> Compactor {
        Compactor {
            pool,
            rpc,
            time: 0,
            revision: 0,
        }
    }

    /// One round (Go's `compact`). As in Go, the clock and the revision are
    /// kept only up to a failure: a failed transaction keeps both, a failed
    /// compaction after a won round keeps the won round's.
    pub async fn round(&mut self) -> std::result::Result<Round, StorageError> {
        let (time, revision, result) =
            compact(&self.pool, self.rpc, self.time, self.revision).await;
        self.time = time;
        self.revision = revision;
        result.map(|compacted| Round {
            time,
            revision,
            compacted,
        })
    }
}

/// Go's `compact`: returns the new logical time, the revision to compact to
/// next, and the revision compacted (0 when none) or the error.
async fn compact(pool: &Pool, rpc: Rpc, expect: i64, rev: i64) -> (i64, i64, Result<i64>) {
    let txn = Txn::new()
        .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, expect)])
        .and_then([TxnOp::put(COMPACT_REV_KEY, rev.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
    let resp = pool
        .write(rpc, Method::Txn, |c| {
            let (mut kv, txn) = (c.kv_client(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await;
    let resp = match resp {
        Ok(resp) => resp,
        Err(e) => return (expect, rev, Err(e)),
    };
    // The revision etcd is at: after our put when we won, as it stands when we lost.
    let current_rev = resp.header().map_or(0, |h| h.revision());
    if !resp.succeeded() {
        // Another server won this round: adopt its clock, and what it compacted.
        let kv = match resp.op_responses().first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().cloned(),
            _ => None,
        };
        let version = kv.as_ref().map_or(0, |kv| kv.version());
        let compacted = kv
            .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
            .unwrap_or(0);
        return (version, current_rev, Ok(compacted));
    }
    let time = expect + 1;
    if rev == 0 {
        // We don't compact on bootstrap.
        return (time, current_rev, Ok(0));
    }
    let compacted = pool
        .write(rpc, Method::Compact, |c| {
            let mut kv = c.kv_client();
            async move { kv.compact(rev, None).await }
        })
        .await;
    if let Err(e) = compacted {
        return (time, current_rev, Err(e));
    }
    tracing::info!("compacted etcd's history up to revision {rev}");
    (time, current_rev, Ok(rev))
}

/// Starts the compactor on the current runtime; abort the handle to stop it.
pub(crate) fn start(pool: Arc<Pool>, interval: Duration, rpc: Rpc) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut compactor = Compactor::over(pool, rpc);
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = compactor.round().await {
                tracing::warn!(error = %e.message, "compaction round failed");
            }
        }
    })
}
