//! Health checks: the probe kube-apiserver's `/healthz/etcd` runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::client::Rpc;
use super::pool::Pool;
use crate::metrics::Method;
use crate::storage::{clean_path, Code, Result, StorageError};

/// Today's Kubernetes check: a Get of `path.Join("/", prefix, "health")`
/// bounded by the health timeout.
pub(crate) async fn health_get(pool: &Pool, prefix: &str, rpc: Rpc) -> Result<()> {
    let key = clean_path(&format!("/{prefix}/health"));
    pool.read(rpc, Method::Range, |c| {
        let (mut kv, key) = (c.kv_client(), key.clone());
        async move { kv.get(key, None).await }
    })
    .await
    .map(|_| ())
    .map_err(|e| {
        StorageError::new(
            Code::Unreachable,
            format!("error getting data from etcd: {e}"),
        )
    })
}

/// Go's `CreateHealthCheck`: probes in the background until etcd first answers,
/// reporting the last connection error until then.
pub struct HealthCheck {
    pool: Arc<Pool>,
    prefix: String,
    rpc: Rpc,
    /// `None` once a probe has succeeded; otherwise why the client is not connected.
    not_connected: Arc<Mutex<Option<String>>>,
    prober: JoinHandle<()>,
}

const PROBE_INTERVAL: Duration = Duration::from_secs(1);

impl HealthCheck {
    /// Must be called inside a tokio runtime, which runs the background prober.
    pub(crate) fn start(pool: Arc<Pool>, prefix: &str, rpc: Rpc) -> Self {
        let not_connected = Arc::new(Mutex::new(Some(
            "etcd client connection not yet established".to_owned(),
        )));
        let prober = tokio::spawn({
            let (pool, prefix, state) = (pool.clone(), prefix.to_owned(), not_connected.clone());
            async move {
                loop {
                    let result = health_get(&pool, &prefix, rpc).await;
                    let connected = result.is_ok();
                    *state.lock().unwrap_or_else(|p| p.into_inner()) =
                        result.err().map(|e| e.message);
                    if connected {
                        return;
                    }
                    tokio::time::sleep(PROBE_INTERVAL).await;
                }
            }
        });
        HealthCheck {
            pool,
            prefix: prefix.to_owned(),
            rpc,
            not_connected,
            prober,
        }
    }

    pub async fn run(&self) -> Result<()> {
        let pending = self
            .not_connected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(message) = pending {
            return Err(StorageError::new(Code::Unreachable, message));
        }
        health_get(&self.pool, &self.prefix, self.rpc).await
    }
}

impl Drop for HealthCheck {
    fn drop(&mut self) {
        self.prober.abort();
    }
}
