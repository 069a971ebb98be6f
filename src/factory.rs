//! `storagebackend/factory`: building a store and a health check from a config.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, StorageType};
use crate::etcd3;
use crate::metrics::Metrics;
use crate::storage::{Interface, Result, StorageError};
use crate::value;

/// Go's `DestroyFunc`: releases what the store holds (client, background tasks).
pub type DestroyFunc = Box<dyn FnOnce() + Send>;

fn etcd2_unsupported() -> StorageError {
    StorageError::unsupported("storage type etcd2 is not supported yet")
}

/// Go's `factory.Create`. Must run inside the tokio runtime that will serve the store.
pub async fn create(config: &Config) -> Result<(Arc<dyn Interface>, DestroyFunc)> {
    crate::log::init();
    match config.storage_type()? {
        StorageType::Etcd2 => Err(etcd2_unsupported()),
        StorageType::Etcd3 => {
            let transformer = value::from_config(config.transformer.as_ref())?;
            let metrics = Arc::new(Metrics::new(&transformer.provider_prefixes()));
            let pool = Arc::new(etcd3::Pool::connect(config, metrics).await?);
            let store = etcd3::Store::new(pool.clone(), config, transformer);
            let rpc = etcd3::Rpc::new(config, config.request_timeout());
            let mut background = Vec::new();
            if config.compaction_interval_s > 0 {
                let interval = Duration::from_secs(config.compaction_interval_s);
                background.push(etcd3::start_compactor(pool.clone(), interval, rpc));
            }
            if config.auto_sync_interval_s > 0 {
                let interval = Duration::from_secs(config.auto_sync_interval_s);
                background.push(etcd3::start_auto_sync(pool.clone(), interval, rpc));
            }
            let destroy: DestroyFunc = Box::new(move || {
                background.iter().for_each(|task| task.abort());
                // Dropping the last reference to the clients closes their connections.
                drop(pool);
            });
            Ok((Arc::new(store), destroy))
        }
    }
}

/// Go's `factory.CreateHealthCheck`: returns at once; probes in the background.
pub async fn create_health_check(config: &Config) -> Result<etcd3::HealthCheck> {
    crate::log::init();
    match config.storage_type()? {
        StorageType::Etcd2 => Err(etcd2_unsupported()),
        StorageType::Etcd3 => {
            // A health check's requests are its own, and not exposed.
            let metrics = Arc::new(Metrics::new(&[]));
            let pool = Arc::new(etcd3::Pool::connect(config, metrics).await?);
            Ok(etcd3::HealthCheck::start(
                pool,
                &config.prefix,
                etcd3::Rpc::new(config, config.health_timeout()),
            ))
        }
    }
}
