//! Go's `storage/feature`: what the etcd servers behind a store support.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::client::Rpc;
use super::pool::Pool;
use crate::storage::{Result, StorageError};
use crate::watch::ProgressSupport;

/// Whether every member answers watch progress requests correctly: before
/// etcd 3.4.31 and 3.5.13 a requested bookmark could come ahead of events
/// (kubernetes#123192), so Kubernetes uses them only from those versions on.
pub(crate) struct RequestProgress {
    pool: Arc<Pool>,
    rpc: Rpc,
    /// The verdict, once every member has told its version; a failure to ask
    /// is not kept.
    verdict: OnceCell<Result<()>>,
}

impl RequestProgress {
    pub(crate) fn new(pool: Arc<Pool>, rpc: Rpc) -> Self {
        RequestProgress {
            pool,
            rpc,
            verdict: OnceCell::new(),
        }
    }
}

#[async_trait]
impl ProgressSupport for RequestProgress {
    async fn check(&self) -> Result<()> {
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                let versions = self.pool.member_versions(self.rpc).await?;
                let lacking = versions.iter().find(|(_, v)| !supports_request_progress(v));
                Ok::<_, StorageError>(match lacking {
                    Some((url, version)) => Err(StorageError::unsupported(format!(
                        "etcd at {url} is version {version}: watch progress requests need \
                         etcd 3.4.31, 3.5.13 or later on every endpoint"
                    ))),
                    None => Ok(()),
                })
            })
            .await?;
        verdict.clone()
    }
}

/// Kubernetes' version rule; a version that does not parse lacks it.
fn supports_request_progress(version: &str) -> bool {
    let mut parts = version.split(['.', '-', '+']).map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match (major, minor) {
        (3, 4) => patch >= 31,
        (3, 5) => patch >= 13,
        (3, 0..=3) | (0..=2, _) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::supports_request_progress;

    #[test]
    fn versions_as_kubernetes_checks_them() {
        for v in [
            "3.4.31", "3.4.40", "3.5.13", "3.5.21", "3.6.0", "3.6.16", "4.0.0",
        ] {
            assert!(supports_request_progress(v), "{v}");
        }
        for v in [
            "3.4.23", "3.4.30", "3.5.0", "3.5.12", "3.3.27", "2.3.8", "", "3.x.1", "3.6",
        ] {
            assert!(!supports_request_progress(v), "{v}");
        }
    }
}
