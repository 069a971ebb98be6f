//! `storagebackend/factory`: building a store and a health check from a config.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, StorageType};
use crate::metrics::Metrics;
use crate::storage::{Interface, Result, StorageError};
use crate::{etcd2, etcd3, value};

/// Go's `DestroyFunc`: releases what the store holds (client, background tasks).
pub type DestroyFunc = Box<dyn FnOnce() + Send>;

/// Go's etcd2 storage stored values untransformed; refusing the config is
/// better than silently writing plaintext where encryption was asked for.
fn etcd2_client(config: &Config) -> Result<Arc<etcd2::Client>> {
    if config.transformer.is_some() {
        return Err(StorageError::invalid_config(
            "invalid config field `transformer`: the etcd2 backend stores values in plaintext \
             and applies no transformer, so encryption at rest is not supported there; \
             use type etcd3 or remove `transformer`",
        ));
    }
    Ok(Arc::new(etcd2::Client::new(config)?))
}

/// Go's `factory.Create`. Must run inside the tokio runtime that will serve the store.
pub async fn create(config: &Config) -> Result<(Arc<dyn Interface>, DestroyFunc)> {
    crate::log::init();
    match config.storage_type()? {
        StorageType::Etcd2 => {
            let client = etcd2_client(config)?;
            let store = etcd2::Store::new(client.clone(), config);
            // Watches hold their own reference and end when dropped; idle
            // connections close with the last reference to the client.
            let destroy: DestroyFunc = Box::new(move || drop(client));
            Ok((Arc::new(store), destroy))
        }
        StorageType::Etcd3 => {
            let transformer = value::from_config(config.transformer.as_ref())?;
            let metrics = Arc::new(Metrics::with(
                &transformer.provider_prefixes(),
                transformer.collectors(),
            ));
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

/// A health check of either backend.
pub enum HealthCheck {
    Etcd3(etcd3::HealthCheck),
    Etcd2(etcd2::HealthCheck),
}

impl HealthCheck {
    pub async fn run(&self) -> Result<()> {
        match self {
            HealthCheck::Etcd3(check) => check.run().await,
            HealthCheck::Etcd2(check) => check.run().await,
        }
    }
}

/// Go's `factory.CreateHealthCheck`: returns at once; etcd3 probes in the background.
pub async fn create_health_check(config: &Config) -> Result<HealthCheck> {
    crate::log::init();
    match config.storage_type()? {
        StorageType::Etcd2 => Ok(HealthCheck::Etcd2(etcd2::HealthCheck::new(
            etcd2_client(config)?,
            config.health_timeout(),
        ))),
        StorageType::Etcd3 => {
            // A health check's requests are its own, and not exposed.
            let metrics = Arc::new(Metrics::new(&[]));
            let pool = Arc::new(etcd3::Pool::connect(config, metrics).await?);
            Ok(HealthCheck::Etcd3(etcd3::HealthCheck::start(
                pool,
                &config.prefix,
                etcd3::Rpc::new(config, config.health_timeout()),
            )))
        }
    }
}
