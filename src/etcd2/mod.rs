//! `storage/etcd`: the etcd v2 store of Kubernetes before etcd3, over etcd's
//! v2 HTTP JSON API (`/v2/keys`, `/v2/members`).

mod client;
mod store;
mod watcher;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use client::Client;
pub use store::Store;

use crate::storage::Result;

/// Go's etcd2 `CreateHealthCheck`: each run lists the cluster's members
/// within the health timeout.
pub struct HealthCheck {
    client: Arc<Client>,
    timeout: Duration,
}

impl HealthCheck {
    pub(crate) fn new(client: Arc<Client>, timeout: Duration) -> Self {
        HealthCheck { client, timeout }
    }

    pub async fn run(&self) -> Result<()> {
        store::members_health(&self.client, self.timeout).await
    }
}
