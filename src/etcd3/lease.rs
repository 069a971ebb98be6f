//! Go's etcd3 `leaseManager`: objects written with a TTL share leases, so a
//! burst of writes does not create a lease each.

use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::Mutex;

use super::client::Rpc;
use super::pool::Pool;
use crate::metrics::Method;
use crate::storage::{Result, StorageError};

/// Reuse a lease for at most this long past the requested TTL...
const REUSE_DURATION_SECONDS: i64 = 60;
/// ...or this fraction of the TTL, whichever is smaller.
const REUSE_DURATION_PERCENT: f64 = 0.05;
/// A new lease after this many objects, so revoking one never drops too many.
const MAX_ATTACHED_OBJECTS: i64 = 1000;

struct Current {
    id: i64,
    expires: Instant,
    attached: i64,
}

pub struct LeaseManager {
    pool: Arc<Pool>,
    rpc: Rpc,
    current: Mutex<Option<Current>>,
}

impl LeaseManager {
    pub(crate) fn new(pool: Arc<Pool>, rpc: Rpc) -> Self {
        LeaseManager {
            pool,
            rpc,
            current: Mutex::new(None),
        }
    }

    fn reuse_seconds(ttl: i64) -> i64 {
        ((REUSE_DURATION_PERCENT * ttl as f64) as i64).min(REUSE_DURATION_SECONDS)
    }

    /// A lease that lives at least `ttl` seconds and at most `ttl` plus the
    /// reuse window; `ttl` is within `storage::MAX_TTL_SECONDS`.
    pub async fn lease_for(&self, ttl: i64) -> Result<i64> {
        let now = Instant::now();
        let reuse = Self::reuse_seconds(ttl);
        let granted = ttl.saturating_add(reuse);
        let expires = after(now, granted)?;
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_mut() {
            c.attached += 1;
            let valid = after(now, ttl)? < c.expires;
            let sufficient = expires > c.expires;
            if valid && sufficient && c.attached <= MAX_ATTACHED_OBJECTS {
                return Ok(c.id);
            }
        }
        let resp = self
            .pool
            .write(self.rpc, Method::LeaseGrant, |c| {
                let mut lease = c.lease_client();
                async move { lease.grant(granted, None).await }
            })
            .await?;
        *current = Some(Current {
            id: resp.id(),
            expires,
            attached: 1,
        });
        Ok(resp.id())
    }
}

/// `now` plus `seconds`, refused (not panicking) past what the clock can hold.
fn after(now: Instant, seconds: i64) -> Result<Instant> {
    now.checked_add(Duration::from_secs(seconds.max(0) as u64))
        .ok_or_else(|| StorageError::invalid_argument(format!("a TTL of {seconds} s is too long")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_window_is_five_percent_capped_at_a_minute() {
        assert_eq!(LeaseManager::reuse_seconds(10), 0);
        assert_eq!(LeaseManager::reuse_seconds(100), 5);
        assert_eq!(LeaseManager::reuse_seconds(3600), 60);
    }
}
