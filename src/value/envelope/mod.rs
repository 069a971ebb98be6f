//! Go's `value/encrypt/envelope`: the `kms` provider, whose data keys a KMS
//! plugin wraps. KMS v1 (this module, deprecated in Kubernetes but found on
//! older clusters) stores `k8s:enc:kms:v1:<name>:` + a 2-byte big-endian
//! length + the wrapped data key + the value sealed with it, one data key per
//! write; KMS v2 is in `kmsv2`.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lru::LruCache;
use zeroize::Zeroizing;

use super::{aescbc, aesgcm, random_bytes, Outcome, TransformError, Transformer};
use metrics::KmsMetrics;
use service::{v1beta1, Plugin};

pub(crate) mod kmsv2;
pub(crate) mod metrics;
pub(crate) mod service;

pub(crate) use kmsv2::KmsV2;

/// A mutex's guard, also after a panic elsewhere left it poisoned: every
/// critical section here leaves its data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// When a plugin was last checked, and how that went; one check runs at a time.
#[derive(Default)]
pub(crate) struct Checked {
    last: Mutex<Option<(Instant, Result<(), TransformError>)>>,
    running: tokio::sync::Mutex<()>,
}

impl Checked {
    /// The last result, after running `check` first when that result is older
    /// than `ok_for` (a success) or `failed_for` (a failure), or there is none.
    /// A call that is not due takes no async lock: reads stay concurrent.
    async fn result<F>(
        &self,
        ok_for: Duration,
        failed_for: Duration,
        check: impl FnOnce() -> F,
    ) -> Result<(), TransformError>
    where
        F: std::future::Future<Output = Result<(), TransformError>>,
    {
        if let Some(last) = self.fresh(ok_for, failed_for) {
            return last;
        }
        let _running = self.running.lock().await;
        // Another caller may have checked while this one waited.
        if let Some(last) = self.fresh(ok_for, failed_for) {
            return last;
        }
        self.keep(check().await)
    }

    /// Runs `check` now (after any check already running) and keeps its result.
    async fn now<F>(&self, check: impl FnOnce() -> F) -> Result<(), TransformError>
    where
        F: std::future::Future<Output = Result<(), TransformError>>,
    {
        let _running = self.running.lock().await;
        self.keep(check().await)
    }

    fn keep(&self, result: Result<(), TransformError>) -> Result<(), TransformError> {
        *lock(&self.last) = Some((Instant::now(), result.clone()));
        result
    }

    fn fresh(&self, ok_for: Duration, failed_for: Duration) -> Option<Result<(), TransformError>> {
        match &*lock(&self.last) {
            Some((at, r @ Ok(()))) if at.elapsed() < ok_for => Some(r.clone()),
            Some((at, r @ Err(_))) if at.elapsed() < failed_for => Some(r.clone()),
            _ => None,
        }
    }
}

const V1BETA1: &str = "v1beta1";
const HEALTH_TTL: Duration = Duration::from_secs(20);
const HEALTH_TTL_AFTER_FAILURE: Duration = Duration::from_secs(3);

/// A data key and what reads with it: AES-GCM, then AES-CBC (what KMS v1
/// wrote before Kubernetes 1.25; such values are stale).
struct V1Key {
    gcm: Arc<dyn Transformer>,
    cbc: Arc<dyn Transformer>,
}

impl V1Key {
    fn new(key: &[u8]) -> Result<V1Key, TransformError> {
        let invalid = |e: super::InvalidKeySize| TransformError::new(e.to_string());
        Ok(V1Key {
            gcm: aesgcm::new(key).map_err(invalid)?,
            cbc: aescbc::new(key).map_err(invalid)?,
        })
    }

    fn open(&self, data: &[u8], ad: &[u8]) -> Result<(Vec<u8>, bool), TransformError> {
        let gcm = match self.gcm.transform_from_storage(data, ad) {
            Ok((out, stale)) => return Ok((out.into_owned(), stale)),
            Err(e) => e,
        };
        match self.cbc.transform_from_storage(data, ad) {
            Ok((out, _)) => Ok((out.into_owned(), true)),
            Err(cbc) => Err(TransformError::new(format!("[{gcm}, {cbc}]"))),
        }
    }
}

/// A KMS v1 provider.
pub(crate) struct KmsV1 {
    plugin: Plugin,
    metrics: KmsMetrics,
    /// `None` when `cachesize` is negative: every read asks the plugin.
    cache: Option<Mutex<LruCache<Vec<u8>, Arc<V1Key>>>>,
    /// Set once the plugin has answered Version with v1beta1.
    version_checked: tokio::sync::OnceCell<()>,
    checked: Checked,
}

impl KmsV1 {
    pub(crate) fn new(plugin: Plugin, cache_size: i32, metrics: KmsMetrics) -> KmsV1 {
        let cache = usize::try_from(cache_size)
            .ok()
            .and_then(NonZeroUsize::new)
            .map(|n| Mutex::new(LruCache::new(n)));
        KmsV1 {
            plugin,
            metrics,
            cache,
            version_checked: tokio::sync::OnceCell::new(),
            checked: Checked::default(),
        }
    }

    /// Go's client asks Version once, before its first other call.
    async fn check_version(&self) -> Result<(), TransformError> {
        self.version_checked
            .get_or_try_init(|| async {
                let request = v1beta1::VersionRequest {
                    version: V1BETA1.into(),
                };
                let resp: v1beta1::VersionResponse =
                    self.plugin.call(v1beta1::VERSION, request).await?;
                if resp.version != V1BETA1 {
                    return Err(self.plugin.invalid(
                        v1beta1::VERSION,
                        format!("version {:?}, not {V1BETA1}", resp.version),
                    ));
                }
                Ok(())
            })
            .await
            .copied()
    }

    async fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, TransformError> {
        self.check_version().await?;
        let request = v1beta1::EncryptRequest {
            version: V1BETA1.into(),
            plain: plain.to_vec(),
        };
        let resp: v1beta1::EncryptResponse = self.plugin.call(v1beta1::ENCRYPT, request).await?;
        Ok(resp.cipher)
    }

    async fn decrypt(&self, cipher: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransformError> {
        self.check_version().await?;
        let request = v1beta1::DecryptRequest {
            version: V1BETA1.into(),
            cipher: cipher.to_vec(),
        };
        let resp: v1beta1::DecryptResponse = self.plugin.call(v1beta1::DECRYPT, request).await?;
        Ok(Zeroizing::new(resp.plain))
    }

    fn remember(&self, wrapped: &[u8], key: V1Key) -> Arc<V1Key> {
        let key = Arc::new(key);
        if let Some(cache) = &self.cache {
            lock(cache).put(wrapped.to_vec(), key.clone());
        }
        key
    }

    /// kube-apiserver's probe of a v1 plugin: Encrypt("ping"), then Decrypt.
    async fn probe(&self) -> Result<(), TransformError> {
        let check = || async {
            let pinged = async {
                let cipher = self.encrypt(b"ping").await?;
                self.decrypt(&cipher).await.map(drop)
            };
            pinged.await.map_err(|e| {
                TransformError(
                    format!(
                        "failed to perform the healthz check for KMS Provider {}, error: {e}",
                        self.plugin.provider
                    ),
                    e.1,
                )
            })
        };
        self.checked
            .result(HEALTH_TTL, HEALTH_TTL_AFTER_FAILURE, check)
            .await
    }
}

#[async_trait]
impl Transformer for KmsV1 {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        super::without_waiting(self.read(data, authenticated_data, &mut |_, _| {}))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        super::without_waiting(self.write(data, authenticated_data))
    }

    async fn read<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        _observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        let invalid = || {
            TransformError::new(
                "invalid data encountered by envelope transformer: failed to read uint16 length prefixed data",
            )
        };
        let (len, rest) = data.split_first_chunk::<2>().ok_or_else(invalid)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(invalid());
        }
        let (wrapped, sealed) = rest.split_at(len);
        let cached = self
            .cache
            .as_ref()
            .and_then(|cache| lock(cache).get(wrapped).cloned());
        let key = match cached {
            Some(key) => key,
            None => {
                if self.cache.is_some() {
                    self.metrics.cache_miss();
                }
                let key = self.decrypt(wrapped).await?;
                self.remember(wrapped, V1Key::new(&key)?)
            }
        };
        let (plain, stale) = key.open(sealed, authenticated_data)?;
        Ok((Cow::Owned(plain), stale))
    }

    async fn health(&self) -> Result<(), TransformError> {
        self.probe().await
    }

    async fn write(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let key = Zeroizing::new(random_bytes::<32>()?);
        let wrapped = self.encrypt(key.as_ref()).await?;
        let len = u16::try_from(wrapped.len()).map_err(|_| {
            self.plugin.invalid(
                v1beta1::ENCRYPT,
                format!(
                    "a wrapped key of {} bytes, over the 65535 a value can hold",
                    wrapped.len()
                ),
            )
        })?;
        let key = self.remember(&wrapped, V1Key::new(key.as_ref())?);
        let sealed = key.gcm.transform_to_storage(data, authenticated_data)?;
        let mut out = Vec::with_capacity(2 + wrapped.len() + sealed.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// The KMS vectors kube-apiserver's own transformers wrote
/// (`tests/fixtures/kms/vectors.json`), with the data keys the fake plugin
/// that wrapped them would give back.
#[cfg(test)]
pub(crate) fn vectors(api_version: &str) -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kms/vectors.json"
    );
    let all: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("the KMS vectors")).unwrap();
    all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["api_version"] == api_version)
        .cloned()
        .collect()
}

#[cfg(test)]
pub(crate) fn b64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or(""))
        .unwrap()
}

/// A vector's stored value without its provider prefix.
#[cfg(test)]
pub(crate) fn stored_body(v: &serde_json::Value) -> Vec<u8> {
    let prefix = format!(
        "k8s:enc:kms:{}:{}:",
        v["api_version"].as_str().unwrap(),
        v["provider_name"].as_str().unwrap()
    );
    let stored = b64(&v["stored"]);
    stored
        .strip_prefix(prefix.as_bytes())
        .expect("the provider's prefix")
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values KMS v1 wrote, AES-GCM and (before 1.25) AES-CBC, read back
    /// exactly: the layout, the key's use and the staleness.
    #[test]
    fn reads_what_kubernetes_kms_v1_wrote() {
        let vectors = vectors("v1");
        assert_eq!(vectors.len(), 3);
        for v in vectors {
            let body = &stored_body(&v)[..];
            let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
            assert_eq!(
                &body[2..2 + len],
                b64(&v["encrypted_dek_source"]),
                "{}",
                v["name"]
            );
            let key = V1Key::new(&b64(&v["dek_source"])).unwrap();
            let ad = v["etcd_key"].as_str().unwrap().as_bytes();
            let (plain, stale) = key.open(&body[2 + len..], ad).unwrap();
            assert_eq!(plain, b64(&v["plaintext"]), "{}", v["name"]);
            assert_eq!(stale, v["stale"] == true, "{}", v["name"]);
            // Bound to its key: elsewhere, GCM fails (CBC, unauthenticated, may not).
            if v["data_cipher"] == "aes-gcm" {
                let gcm = key
                    .gcm
                    .transform_from_storage(&body[2 + len..], b"/registry/secrets/x/y");
                assert!(gcm.is_err(), "{}", v["name"]);
            }
        }
    }
}
