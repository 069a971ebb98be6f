//! Re-encryption after a key rotation: every stale object under a prefix is
//! rewritten through GuaranteedUpdate, as `kubectl get -o json | kubectl
//! replace -f -` (or Kubernetes' storage version migrator) does through an
//! API server. Compare-and-swap makes it safe beside a running
//! kube-apiserver: a concurrent write wins, and is then what gets (or
//! already is) encrypted under the current key.

use super::client::prefix_range_end;
use super::store::Store;
use crate::storage::{Code, ReencryptProgress, Reencrypted, Result, StorageError, Update};

/// Keys read per etcd request.
const PAGE: i64 = 500;

pub(super) async fn walk(
    store: &Store,
    key_prefix: &str,
    progress: &mut ReencryptProgress<'_>,
) -> Result<Reencrypted> {
    // A rotation the plugin made a moment ago must count.
    store.refresh_keys().await?;
    let end = prefix_range_end(key_prefix);
    let mut from = key_prefix.as_bytes().to_vec();
    let mut counts = Reencrypted::default();
    loop {
        let options = store
            .read_options()
            .with_range(end.clone())
            .with_limit(PAGE);
        let resp = store.range_bytes(&from, options).await?;
        for kv in resp.kvs() {
            counts.seen += 1;
            if let Err(e) = rewrite_if_stale(store, kv, &mut counts).await {
                counts.failed += 1;
                progress(&counts, Some(&e))?;
            }
        }
        progress(&counts, None)?;
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => return Ok(counts),
        }
    }
}

async fn rewrite_if_stale(
    store: &Store,
    kv: &etcd_client::KeyValue,
    counts: &mut Reencrypted,
) -> Result<()> {
    let key = std::str::from_utf8(kv.key())
        .map_err(|_| {
            StorageError::invalid_argument(format!(
                "the key {:?} is not UTF-8: the library cannot name it",
                String::from_utf8_lossy(kv.key())
            ))
        })?
        .to_owned();
    if !store
        .decode(&key, kv.value(), kv.mod_revision())
        .await?
        .object
        .stale
    {
        return Ok(());
    }
    let mut same = |current: Option<&crate::storage::Object>| {
        Ok(Update::from(
            current.map(|o| o.data.clone()).unwrap_or_default(),
        ))
    };
    match store.update_key(key, false, None, &mut same).await {
        Ok((_, written)) => {
            counts.rewritten += i64::from(written);
            Ok(())
        }
        // Deleted since it was listed: nothing left to re-encrypt.
        Err(e) if e.code == Code::KeyNotFound => Ok(()),
        Err(e) => Err(e),
    }
}
