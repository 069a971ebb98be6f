//! `storagebackend/factory`: building a store and a health check from a config.

use std::sync::Arc;

use crate::codec::Codec;
use crate::config::{Config, StorageType};
use crate::etcd3;
use crate::storage::{Interface, Result, StorageError};
use crate::value;

/// Go's `DestroyFunc`: releases what the store holds (client, background tasks).
pub type DestroyFunc = Box<dyn FnOnce() + Send>;

fn etcd2_unsupported() -> StorageError {
    StorageError::unsupported("storage type etcd2 is not supported yet")
}

/// Go's `factory.Create`. Must run inside the tokio runtime that will serve the store.
pub async fn create(config: &Config) -> Result<(Arc<dyn Interface>, DestroyFunc)> {
    match config.storage_type()? {
        StorageType::Etcd2 => Err(etcd2_unsupported()),
        StorageType::Etcd3 => {
            let transformer = value::from_config(config.transformer.as_ref())?;
            let client = etcd3::new_client(config).await?;
            let store = etcd3::Store::new(
                client.clone(),
                &config.prefix,
                config.quorum,
                transformer,
                Codec::new(config.codec),
                config.request_timeout(),
                config.health_timeout(),
            );
            // Dropping the last clone of the client closes its connections.
            let destroy: DestroyFunc = Box::new(move || drop(client));
            Ok((Arc::new(store), destroy))
        }
    }
}

/// Go's `factory.CreateHealthCheck`: returns at once; probes in the background.
pub async fn create_health_check(config: &Config) -> Result<etcd3::HealthCheck> {
    match config.storage_type()? {
        StorageType::Etcd2 => Err(etcd2_unsupported()),
        StorageType::Etcd3 => {
            let client = etcd3::new_client(config).await?;
            Ok(etcd3::HealthCheck::start(
                client,
                &config.prefix,
                config.health_timeout(),
            ))
        }
    }
}
