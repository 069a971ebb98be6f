//! Go's `envelope/kmsv2` and the KMS v2 probe of `encryptionconfig`: values
//! `k8s:enc:kms:v2:<name>:` + an `EncryptedObject` whose data is sealed with
//! a key the plugin wraps.
//!
//! Writes use one seed per plugin key ID, as kube-apiserver since 1.29: each
//! value's AES-256-GCM key is HKDF-SHA256-Expand(seed, 32 random bytes) and
//! those bytes lead the sealed data. Reads also take a plain AES-GCM data key
//! (`AES_GCM_KEY`, written before 1.29). The plugin's Status is checked at
//! most once a minute (every 10 s after a failure) by the reads and writes
//! that need it; a seed whose key ID the plugin no longer reports is replaced,
//! and one not confirmed for 3 minutes writes nothing, as kube-apiserver's.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hkdf::Hkdf;
use lru::LruCache;
use prost::Message;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::metrics::{key_id_hash, KmsMetrics};
use super::service::{uid, v2, Plugin};
use super::{lock, Checked};
use crate::value::{aesgcm, random_bytes, Outcome, TransformError, Transformer};

/// `EncryptedObject` (`kmsv2/v2/api.proto` of k8s.io/apiserver).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EncryptedObject {
    #[prost(bytes = "vec", tag = "1")]
    pub encrypted_data: Vec<u8>,
    #[prost(string, tag = "2")]
    pub key_id: String,
    #[prost(bytes = "vec", tag = "3")]
    pub encrypted_dek_source: Vec<u8>,
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub annotations: BTreeMap<String, Vec<u8>>,
    #[prost(int32, tag = "5")]
    pub encrypted_dek_source_type: i32,
}

/// `EncryptedDEKSourceType`.
const AES_GCM_KEY: i32 = 0;
const HKDF_SHA256_XNONCE_AES_GCM_SEED: i32 = 1;

const KEY_ID_MAX_SIZE: usize = 1024;
const ENCRYPTED_DEK_SOURCE_MAX_SIZE: usize = 1024;
const ANNOTATIONS_MAX_SIZE: usize = 32 * 1024;
/// Seed and info sizes of the extended-nonce construction.
const SEED_SIZE: usize = 32;
const INFO_SIZE: usize = 32;

/// How long a write seed is good for without a successful Status.
const WRITE_STATE_TTL: Duration = Duration::from_secs(3 * 60);
const CHECK_INTERVAL: Duration = Duration::from_secs(60);
const CHECK_INTERVAL_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// How long the health check reuses a result, as kube-apiserver's healthz.
const HEALTH_TTL: Duration = Duration::from_secs(20);
const HEALTH_TTL_AFTER_FAILURE: Duration = Duration::from_secs(3);

/// Decrypted data keys kept per provider. kube-apiserver keeps every one for
/// a day; a bound keeps a store that reads many clusters' data small.
const CACHE_ENTRIES: usize = 1024;

/// Go's `ValidateEncryptedObject`.
fn validate(o: &EncryptedObject) -> Result<(), String> {
    if !matches!(
        o.encrypted_dek_source_type,
        AES_GCM_KEY | HKDF_SHA256_XNONCE_AES_GCM_SEED
    ) {
        return Err(format!(
            "unknown encryptedDEKSourceType: {}",
            o.encrypted_dek_source_type
        ));
    }
    if o.encrypted_data.is_empty() {
        return Err("encrypted data is empty".into());
    }
    match o.encrypted_dek_source.len() {
        0 => {
            return Err(
                "failed to validate encrypted DEK source: encrypted DEK source is empty".into(),
            )
        }
        n if n > ENCRYPTED_DEK_SOURCE_MAX_SIZE => {
            return Err(format!(
                "failed to validate encrypted DEK source: encrypted DEK source is {n} bytes, \
                 which exceeds the max size of {ENCRYPTED_DEK_SOURCE_MAX_SIZE}"
            ))
        }
        _ => {}
    }
    validate_key_id(&o.key_id).map_err(|e| format!("failed to validate key id: {e}"))?;
    validate_annotations(&o.annotations).map_err(|e| format!("failed to validate annotations: {e}"))
}

fn validate_key_id(key_id: &str) -> Result<(), String> {
    match key_id.len() {
        0 => Err("keyID is empty".into()),
        n if n > KEY_ID_MAX_SIZE => Err(format!(
            "keyID is {n} bytes, which exceeds the max size of {KEY_ID_MAX_SIZE}"
        )),
        _ => Ok(()),
    }
}

fn validate_annotations(annotations: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        if !is_fully_qualified_domain_name(k) {
            errors.push(format!(
                "annotations: Invalid value: {k:?}: should be a domain with at least two segments separated by dots"
            ));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > ANNOTATIONS_MAX_SIZE {
        errors.push(format!(
            "total size of annotations is {total}, which exceeds the max size of {ANNOTATIONS_MAX_SIZE}"
        ));
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// Go's `validation.IsFullyQualifiedDomainName`: a DNS-1123 subdomain of at
/// least two labels, a trailing dot allowed.
fn is_fully_qualified_domain_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    name.len() <= 253 && name.split('.').count() >= 2 && name.split('.').all(label_ok)
}

/// Go's `generateCacheKey`, hashed: what identifies a data key.
fn cache_key(o: &EncryptedObject) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((o.encrypted_dek_source_type as u32).to_be_bytes());
    let mut prefixed = |b: &[u8]| {
        h.update((b.len() as u16).to_be_bytes());
        h.update(b);
    };
    prefixed(&o.encrypted_dek_source);
    prefixed(o.key_id.as_bytes());
    if !o.annotations.is_empty() {
        let mut rest = Vec::new();
        rest.extend_from_slice(&(o.annotations.len() as u32).to_be_bytes());
        for (k, v) in &o.annotations {
            rest.extend_from_slice(&(k.len() as u16).to_be_bytes());
            rest.extend_from_slice(k.as_bytes());
            rest.extend_from_slice(&(v.len() as u16).to_be_bytes());
            rest.extend_from_slice(v);
        }
        h.update(rest);
    }
    h.finalize().into()
}

/// A decrypted data key.
enum DataKey {
    /// Seals each value under HKDF-Expand(seed, the value's info).
    Seed(Zeroizing<Vec<u8>>),
    /// Seals values directly (AES-GCM).
    Aead(Arc<dyn Transformer>),
}

impl DataKey {
    fn new(source_type: i32, key: Zeroizing<Vec<u8>>) -> Result<DataKey, String> {
        if source_type == HKDF_SHA256_XNONCE_AES_GCM_SEED {
            if key.len() < SEED_SIZE {
                return Err(format!(
                    "invalid seed length {} used for key generation",
                    key.len()
                ));
            }
            return Ok(DataKey::Seed(key));
        }
        aesgcm::new(&key)
            .map(DataKey::Aead)
            .map_err(|e| e.to_string())
    }

    fn open(&self, data: &[u8], ad: &[u8]) -> Result<(Vec<u8>, bool), TransformError> {
        match self {
            DataKey::Aead(t) => t
                .transform_from_storage(data, ad)
                .map(|(out, stale)| (out.into_owned(), stale)),
            DataKey::Seed(seed) => {
                if data.len() < INFO_SIZE {
                    return Err(TransformError::too_short());
                }
                let (info, sealed) = data.split_at(INFO_SIZE);
                derived(seed, info)?
                    .transform_from_storage(sealed, ad)
                    .map(|(out, stale)| (out.into_owned(), stale))
            }
        }
    }
}

/// The AES-GCM transformer of one value's key.
fn derived(seed: &[u8], info: &[u8]) -> Result<Arc<dyn Transformer>, TransformError> {
    let hkdf = Hkdf::<Sha256>::from_prk(seed)
        .map_err(|_| TransformError::new("failed to KDF expand seed: invalid seed"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(info, key.as_mut())
        .map_err(|_| TransformError::new("failed to KDF expand seed with info"))?;
    aesgcm::new(key.as_ref()).map_err(|e| TransformError::new(e.to_string()))
}

/// What writes use: the seed for the plugin's current key ID.
struct WriteState {
    seed: Zeroizing<Vec<u8>>,
    /// The object every write stores, but for its data.
    template: EncryptedObject,
    /// Writes stop after this unless a Status confirms the key ID.
    expires: Instant,
}

/// A KMS v2 provider.
pub(crate) struct KmsV2 {
    plugin: Plugin,
    metrics: KmsMetrics,
    state: Mutex<Option<Arc<WriteState>>>,
    /// The last Status check; held while one runs, so that they do not pile up.
    checked: Checked,
    /// The plugin's API version, fixed by its first Status answer.
    version: Mutex<Option<String>>,
    cache: Mutex<LruCache<[u8; 32], Arc<DataKey>>>,
}

impl KmsV2 {
    pub(crate) fn new(plugin: Plugin, metrics: KmsMetrics) -> KmsV2 {
        KmsV2 {
            plugin,
            metrics,
            state: Mutex::new(None),
            checked: Checked::default(),
            version: Mutex::new(None),
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_ENTRIES).expect("not zero"),
            )),
        }
    }

    fn name(&self) -> &str {
        &self.plugin.provider
    }

    /// The write state, after a Status check when one is due (`ok_for`
    /// after a success, `failed_for` after a failure).
    async fn current(
        &self,
        ok_for: Duration,
        failed_for: Duration,
    ) -> Result<Option<Arc<WriteState>>, TransformError> {
        let result = self
            .checked
            .result(ok_for, failed_for, || self.check())
            .await;
        let state = lock(&self.state).clone();
        match (state, result) {
            (Some(state), _) => Ok(Some(state)),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(None),
        }
    }

    /// Go's `kmsv2PluginProbe.check`: Status, then a new seed when the key ID changed.
    async fn check(&self) -> Result<(), TransformError> {
        let status: v2::StatusResponse = self.plugin.call(v2::STATUS, v2::StatusRequest {}).await?;
        let mut errors = Vec::new();
        if status.healthz != "ok" {
            errors.push(format!("got unexpected healthz status: {}", status.healthz));
        }
        if status.version != "v2" && status.version != "v2beta1" {
            errors.push(format!(
                "expected KMSv2 API version v2, got {}",
                status.version
            ));
        } else {
            let mut version = lock(&self.version);
            let first = version.get_or_insert_with(|| status.version.clone());
            if *first != status.version {
                errors.push(format!(
                    "KMSv2 API version should not change after the initial status response version {first}, got {}",
                    status.version
                ));
            }
        }
        match validate_key_id(&status.key_id) {
            Err(e) => errors.push(format!(
                "got invalid KMSv2 KeyID hash {:?}: {e}",
                key_id_hash(&status.key_id)
            )),
            Ok(()) => {
                if let Err(e) = self.rotate(&status.key_id).await {
                    errors.push(e.0);
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(TransformError::new(format!(
            "kmsv2 Provider {} is not healthy, error: {}",
            self.name(),
            errors.join(", ")
        )))
    }

    /// Go's `rotateDEKOnKeyIDChange`: keeps the seed while the key ID holds.
    async fn rotate(&self, key_id: &str) -> Result<(), TransformError> {
        let expires = Instant::now() + WRITE_STATE_TTL;
        {
            let mut state = lock(&self.state);
            if let Some(current) = state.as_ref().filter(|s| s.template.key_id == key_id) {
                *state = Some(Arc::new(WriteState {
                    seed: current.seed.clone(),
                    template: current.template.clone(),
                    expires,
                }));
                return Ok(());
            }
        }
        let seed = Zeroizing::new(random_bytes::<SEED_SIZE>()?.to_vec());
        let request = v2::EncryptRequest {
            plaintext: seed.to_vec(),
            uid: uid(),
        };
        let resp: v2::EncryptResponse = self.plugin.call(v2::ENCRYPT, request).await?;
        let template = EncryptedObject {
            encrypted_data: vec![0],
            key_id: resp.key_id,
            encrypted_dek_source: resp.ciphertext,
            annotations: resp.annotations,
            encrypted_dek_source_type: HKDF_SHA256_XNONCE_AES_GCM_SEED,
        };
        validate(&template).map_err(|e| self.plugin.invalid(v2::ENCRYPT, e))?;
        if template.key_id != key_id {
            return Err(self.plugin.invalid(
                v2::ENCRYPT,
                format!(
                    "key ID hash {:?} where Status gave {:?}",
                    key_id_hash(&template.key_id),
                    key_id_hash(key_id)
                ),
            ));
        }
        // What this store writes, it reads without asking the plugin.
        self.cache_key(&template, DataKey::Seed(seed.clone()));
        *lock(&self.state) = Some(Arc::new(WriteState {
            seed,
            template,
            expires,
        }));
        tracing::info!(provider = self.name(), key_id_hash = %key_id_hash(key_id), "KMS v2 seed rotated");
        Ok(())
    }

    fn cache_key(&self, o: &EncryptedObject, key: DataKey) -> Arc<DataKey> {
        let key = Arc::new(key);
        let mut cache = lock(&self.cache);
        cache.put(cache_key(o), key.clone());
        self.metrics.dek_sources_cached(self.name(), cache.len());
        key
    }

    /// The data key of `o`, from the cache or the plugin.
    async fn data_key(&self, o: &EncryptedObject) -> Result<Arc<DataKey>, TransformError> {
        if let Some(key) = lock(&self.cache).get(&cache_key(o)) {
            return Ok(key.clone());
        }
        self.metrics.cache_miss();
        let request = v2::DecryptRequest {
            ciphertext: o.encrypted_dek_source.clone(),
            uid: uid(),
            key_id: o.key_id.clone(),
            annotations: o.annotations.clone(),
        };
        let resp: v2::DecryptResponse =
            self.plugin.call(v2::DECRYPT, request).await.map_err(|e| {
                TransformError(format!("failed to decrypt DEK, error: {}", e.0), e.1)
            })?;
        let key = DataKey::new(o.encrypted_dek_source_type, Zeroizing::new(resp.plaintext))
            .map_err(TransformError::new)?;
        Ok(self.cache_key(o, key))
    }

    /// The state a write needs: confirmed within its TTL.
    async fn write_state(&self) -> Result<Arc<WriteState>, TransformError> {
        let state = self
            .current(CHECK_INTERVAL, CHECK_INTERVAL_AFTER_FAILURE)
            .await?
            .ok_or_else(|| TransformError::new("got unexpected nil transformer"))?;
        if Instant::now() > state.expires {
            return Err(TransformError::new(format!(
                "encryptedDEKSource with keyID hash {:?} expired: the plugin's Status has failed for {} minutes",
                key_id_hash(&state.template.key_id),
                WRITE_STATE_TTL.as_secs() / 60
            )));
        }
        Ok(state)
    }

    /// The health check: kube-apiserver's `/healthz/kms-providers` probe.
    async fn probe(&self) -> Result<(), TransformError> {
        self.checked
            .result(HEALTH_TTL, HEALTH_TTL_AFTER_FAILURE, || self.check())
            .await
    }
}

#[async_trait]
impl Transformer for KmsV2 {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        crate::value::without_waiting(self.read(data, authenticated_data, &mut |_, _| {}))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        crate::value::without_waiting(self.write(data, authenticated_data))
    }

    async fn read<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        _observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        let o = EncryptedObject::decode(data)
            .map_err(|e| TransformError::new(format!("invalid EncryptedObject: {e}")))?;
        validate(&o).map_err(TransformError::new)?;
        // As Go: no valid state, no reads.
        let state = self
            .current(CHECK_INTERVAL, CHECK_INTERVAL_AFTER_FAILURE)
            .await?
            .ok_or_else(|| TransformError::new("got unexpected nil transformer"))?;
        let key = self.data_key(&o).await?;
        self.metrics
            .key_id_used("from_storage", self.name(), &o.key_id);
        let (plain, stale) = key.open(&o.encrypted_data, authenticated_data)?;
        let stale = stale
            || o.key_id != state.template.key_id
            || o.encrypted_dek_source_type != state.template.encrypted_dek_source_type;
        Ok((Cow::Owned(plain), stale))
    }

    async fn health(&self) -> Result<(), TransformError> {
        self.probe().await
    }

    async fn refresh(&self) -> Result<(), TransformError> {
        self.checked.now(|| self.check()).await
    }

    async fn write(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let state = self.write_state().await?;
        let info = random_bytes::<INFO_SIZE>()?;
        let sealed = derived(&state.seed, &info)?.transform_to_storage(data, authenticated_data)?;
        let mut encrypted_data = Vec::with_capacity(INFO_SIZE + sealed.len());
        encrypted_data.extend_from_slice(&info);
        encrypted_data.extend_from_slice(&sealed);
        let o = EncryptedObject {
            encrypted_data,
            ..state.template.clone()
        };
        validate(&o).map_err(TransformError::new)?;
        self.metrics
            .key_id_used("to_storage", self.name(), &o.key_id);
        Ok(o.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::envelope::{b64, stored_body, vectors};

    /// Values kube-apiserver's KMS v2 transformer wrote, both DEK source
    /// types, read back exactly; and what this module writes reads back.
    #[test]
    fn reads_what_kubernetes_kms_v2_wrote() {
        let vectors = vectors("v2");
        assert_eq!(vectors.len(), 7);
        for v in vectors {
            let name = &v["name"];
            let body = &stored_body(&v)[..];
            let o = EncryptedObject::decode(body).unwrap();
            assert_eq!(validate(&o), Ok(()), "{name}");
            assert_eq!(o.key_id, v["key_id"].as_str().unwrap(), "{name}");
            assert_eq!(
                o.encrypted_dek_source,
                b64(&v["encrypted_dek_source"]),
                "{name}"
            );
            assert_eq!(o.encrypted_data, b64(&v["encrypted_data"]), "{name}");
            let seed = v["dek_source_type"] == "HKDF_SHA256_XNONCE_AES_GCM_SEED";
            let want_type = if seed {
                HKDF_SHA256_XNONCE_AES_GCM_SEED
            } else {
                AES_GCM_KEY
            };
            assert_eq!(o.encrypted_dek_source_type, want_type, "{name}");
            if let Some(annotations) = v["annotations"].as_object() {
                for (k, value) in annotations {
                    assert_eq!(o.annotations[k], b64(value), "{name}");
                }
            }
            let key = DataKey::new(
                o.encrypted_dek_source_type,
                Zeroizing::new(b64(&v["dek_source"])),
            )
            .unwrap();
            let ad = v["etcd_key"].as_str().unwrap().as_bytes();
            let (plain, _) = key.open(&o.encrypted_data, ad).unwrap();
            assert_eq!(plain, b64(&v["plaintext"]), "{name}");
            assert!(
                key.open(&o.encrypted_data, b"/registry/secrets/x/moved")
                    .is_err(),
                "{name}"
            );
            if seed {
                // The per-value key is HKDF-Expand(seed, info), as the vector records.
                let info = &o.encrypted_data[..INFO_SIZE];
                assert_eq!(info, b64(&v["hkdf_info"]), "{name}");
                let hkdf = Hkdf::<Sha256>::from_prk(&b64(&v["dek_source"])).unwrap();
                let mut derived_key = [0u8; 32];
                hkdf.expand(info, &mut derived_key).unwrap();
                assert_eq!(derived_key.to_vec(), b64(&v["derived_key"]), "{name}");
                // A value sealed here with the same seed opens the same way.
                let DataKey::Seed(seed) = &key else {
                    unreachable!()
                };
                let info = [7u8; INFO_SIZE];
                let mut ours = info.to_vec();
                ours.extend(
                    derived(seed, &info)
                        .unwrap()
                        .transform_to_storage(&plain, ad)
                        .unwrap(),
                );
                assert_eq!(key.open(&ours, ad).unwrap().0, plain, "{name}");
            }
        }
    }

    #[test]
    fn domain_names_as_kubernetes_validates_them() {
        for ok in ["a.b", "kms.example.com", "x-1.y2", "a.b."] {
            assert!(is_fully_qualified_domain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "A.b",
            "-a.b",
            "a-.b",
            "a..b",
            "a_b.c",
            &"a".repeat(64),
        ] {
            assert!(!is_fully_qualified_domain_name(bad), "{bad}");
        }
    }

    #[test]
    fn encrypted_objects_are_validated_as_kubernetes_does() {
        let good = EncryptedObject {
            encrypted_data: vec![1],
            key_id: "k".into(),
            encrypted_dek_source: vec![2],
            annotations: BTreeMap::new(),
            encrypted_dek_source_type: HKDF_SHA256_XNONCE_AES_GCM_SEED,
        };
        assert_eq!(validate(&good), Ok(()));
        let bad = |f: &dyn Fn(&mut EncryptedObject)| {
            let mut o = good.clone();
            f(&mut o);
            validate(&o).unwrap_err()
        };
        assert!(
            bad(&|o| o.encrypted_dek_source_type = 2).contains("unknown encryptedDEKSourceType: 2")
        );
        assert!(bad(&|o| o.encrypted_data.clear()).contains("encrypted data is empty"));
        assert!(bad(&|o| o.encrypted_dek_source = vec![0; 1025])
            .contains("exceeds the max size of 1024"));
        assert!(bad(&|o| o.key_id.clear()).contains("keyID is empty"));
        assert!(bad(&|o| o.key_id = "k".repeat(1025)).contains("keyID is 1025 bytes"));
        assert!(bad(&|o| {
            o.annotations.insert("a.b".into(), vec![0; 32 * 1024]);
        })
        .contains("total size of annotations"));
        let mut max = good.clone();
        max.key_id = "k".repeat(1024);
        assert_eq!(validate(&max), Ok(()));
    }
}
