//! The etcd3 store: Go's `etcd3.store`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, GetOptions as EtcdGetOptions};

use super::client::call;
use super::health::health_get;
use crate::codec::Codec;
use crate::storage::{join_key, Code, GetOptions, Interface, Object, Result, StorageError};
use crate::value::Transformer;

pub struct Store {
    client: Client,
    prefix: String,
    /// false: serializable reads (Go's `NewWithNoQuorumRead`).
    quorum: bool,
    transformer: Arc<dyn Transformer>,
    codec: Codec,
    request_timeout: Duration,
    health_timeout: Duration,
}

impl Store {
    pub fn new(
        client: Client,
        prefix: &str,
        quorum: bool,
        transformer: Arc<dyn Transformer>,
        codec: Codec,
        request_timeout: Duration,
        health_timeout: Duration,
    ) -> Self {
        Store {
            client,
            prefix: prefix.to_owned(),
            quorum,
            transformer,
            codec,
            request_timeout,
            health_timeout,
        }
    }
}

/// Go's `APIObjectVersioner.ParseResourceVersion`: `""` and `"0"` mean any.
fn parse_resource_version(rv: &str) -> Result<i64> {
    if rv.is_empty() {
        return Ok(0);
    }
    rv.parse::<u64>()
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| {
            StorageError::invalid_argument(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a non-negative decimal integer"
            ))
        })
}

/// The read must observe at least `minimum`; today's Kubernetes answers a
/// future revision with a Timeout ("Too large resource version").
fn validate_minimum_resource_version(minimum: i64, current: i64) -> Result<()> {
    if minimum > current {
        return Err(StorageError::new(
            Code::Timeout,
            format!("Too large resource version: {minimum}, current: {current}"),
        ));
    }
    Ok(())
}

#[async_trait]
impl Interface for Store {
    async fn get(&self, key: &str, opts: &GetOptions) -> Result<Option<Object>> {
        let key = join_key(&self.prefix, key)?;
        let minimum = parse_resource_version(&opts.resource_version)?;
        let mut options = EtcdGetOptions::new();
        if !self.quorum {
            options = options.with_serializable();
        }
        let mut kv = self.client.kv_client();
        let resp = call(self.request_timeout, kv.get(key.as_bytes(), Some(options))).await?;
        let current = resp.header().map_or(0, |h| h.revision());
        validate_minimum_resource_version(minimum, current)?;
        let Some(found) = resp.kvs().first() else {
            return if opts.ignore_not_found {
                Ok(None)
            } else {
                Err(StorageError::key_not_found(&key))
            };
        };
        let (plain, stale) = self
            .transformer
            .transform_from_storage(found.value(), key.as_bytes())
            .map_err(|e| {
                StorageError::corrupt(&key, format!("unable to transform stored data: {e}"))
            })?;
        let resource_version = found.mod_revision();
        let data = self
            .codec
            .decode(&plain, resource_version)
            .map_err(|e| StorageError::corrupt(&key, e))?;
        Ok(Some(Object {
            data,
            resource_version,
            stale,
        }))
    }

    async fn health(&self) -> Result<()> {
        health_get(&self.client, &self.prefix, self.health_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_parse_like_go() {
        assert_eq!(parse_resource_version("").unwrap(), 0);
        assert_eq!(parse_resource_version("0").unwrap(), 0);
        assert_eq!(parse_resource_version("42").unwrap(), 42);
        for bad in [
            "-1",
            "abc",
            "1.5",
            " 1",
            "18446744073709551616",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_resource_version(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn too_large_resource_version_is_a_timeout() {
        assert!(validate_minimum_resource_version(5, 5).is_ok());
        let e = validate_minimum_resource_version(6, 5).unwrap_err();
        assert_eq!(e.code, Code::Timeout);
        assert_eq!(e.message, "Too large resource version: 6, current: 5");
    }
}
