//! A store's transformer config: one resource's provider list, given inline or
//! taken from a kube-apiserver `EncryptionConfiguration` file, built into the
//! prefix transformer kube-apiserver would use for that resource.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::envelope::{self, metrics::KmsMetrics};
use super::identity::Identity;
use super::prefix::{PrefixTransformer, PrefixTransformers};
use super::{aescbc, aesgcm, secretbox, InvalidKeySize, Transformer};
use crate::storage::StorageError;

mod file;

/// Which transformer a store uses: exactly one of an `EncryptionConfiguration`
/// file (with the resource to take from it) or an inline provider list.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Path of a kube-apiserver `EncryptionConfiguration`, YAML or JSON.
    pub encryption_config_file: Option<String>,
    /// The resource whose providers are taken from the file, as written there:
    /// `"secrets"`, `"configmaps"`, `"deployments.apps"`.
    pub resource: Option<String>,
    /// The providers of one resource, as an `EncryptionConfiguration` lists them.
    pub providers: Option<Vec<ProviderConfig>>,
}

/// One element of an `EncryptionConfiguration` provider list: exactly one
/// field must be set.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// AES-GCM, bound to the etcd key: `k8s:enc:aesgcm:v1:<key name>:`.
    pub aesgcm: Option<KeysConfig>,
    /// AES-CBC with PKCS#7 padding: `k8s:enc:aescbc:v1:<key name>:`.
    pub aescbc: Option<KeysConfig>,
    /// NaCl secretbox (XSalsa20-Poly1305): `k8s:enc:secretbox:v1:<key name>:`.
    pub secretbox: Option<KeysConfig>,
    /// Plaintext, no prefix.
    pub identity: Option<IdentityConfig>,
    /// Envelope encryption with a KMS plugin: `k8s:enc:kms:v2:<name>:` (or v1).
    pub kms: Option<KmsConfig>,
}

/// A `kms` provider, as kube-apiserver's `KMSConfiguration`.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KmsConfig {
    /// `v2` (current) or `v1` (deprecated; the default, as in Kubernetes).
    pub api_version: Option<String>,
    /// Part of every value's prefix; must not contain `:`.
    #[serde(default)]
    pub name: String,
    /// The plugin's socket: `unix:///path`, or `unix:///@name` (abstract).
    #[serde(default)]
    pub endpoint: String,
    /// v1 only: decrypted data keys kept (default 1000; negative: none).
    pub cachesize: Option<i32>,
    /// Bound on each call to the plugin, as a Go duration (default `3s`).
    pub timeout: Option<String>,
}

/// The keys of an aesgcm, aescbc or secretbox provider; the first one writes.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// At least one; the first encrypts, all decrypt.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// A named key. The name is stored in front of every value it encrypts.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields, expecting = "a key object {name, secret}")]
pub struct KeyConfig {
    /// Non-empty.
    #[serde(default)]
    pub name: String,
    /// Standard base64 of the key bytes.
    #[serde(default)]
    pub secret: Secret,
}

/// The identity provider: values stored as plaintext.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {}

/// A base64 key. Zeroized on drop, redacted from `Debug`, and kept out of
/// parse errors (serde's would quote a mistyped value).
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Go's `base64.StdEncoding`: padding required, non-zero trailing bits allowed.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

impl Secret {
    /// The secret as written (a password, say).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The key bytes. Buffers are sized up front so that no reallocation
    /// leaves a copy of the key behind.
    fn decode(&self) -> Result<Zeroizing<Vec<u8>>, &'static str> {
        if self.0.is_empty() {
            return Err("secret is empty");
        }
        // Go's decoder skips line breaks.
        let mut text = Zeroizing::new(String::with_capacity(self.0.len()));
        text.extend(self.0.chars().filter(|c| !matches!(c, '\r' | '\n')));
        let mut key = Zeroizing::new(Vec::with_capacity(text.len() + 3));
        GO_STD_BASE64
            .decode_vec(text.as_bytes(), &mut key)
            .map_err(|_| "secret is not valid base64")?;
        Ok(key)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Not `deserialize_string`: a deserializer would then report a
        // mistyped value itself, quoting it.
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

/// Refuses a mistyped secret without quoting it.
macro_rules! refuse_non_strings {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Secret, E> {
            Err(E::custom("a secret must be a string"))
        }
    )*};
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    // A null secret is an empty one, as in Go: reported as missing later.
    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }

    refuse_non_strings!(
        visit_bool: bool, visit_i64: i64, visit_i128: i128, visit_u64: u64,
        visit_u128: u128, visit_f64: f64, visit_char: char, visit_bytes: &[u8]
    );
}

impl TransformerConfig {
    /// Builds the transformer: `InvalidConfig` for any mistake in the config or
    /// the file, `Unsupported` when the chosen providers include kms.
    pub fn build(&self) -> Result<Arc<dyn Transformer>, StorageError> {
        match (
            &self.encryption_config_file,
            &self.providers,
            &self.resource,
        ) {
            (Some(path), None, Some(resource)) => file::load(path, resource),
            (Some(_), None, None) => Err(StorageError::invalid_config(
                "transformer: resource is required with encryption_config_file, \
                 e.g. \"secrets\" or \"deployments.apps\"",
            )),
            (None, Some(providers), None) => {
                let kms = KmsMetrics::new();
                let list = build_providers("providers", providers, &kms)
                    .map_err(|e| e.context("transformer"))?;
                into_transformer(list, kms)
            }
            (None, Some(_), Some(_)) => Err(StorageError::invalid_config(
                "transformer: resource is not allowed with inline providers: \
                 it only selects providers from an encryption_config_file",
            )),
            _ => Err(StorageError::invalid_config(
                "transformer: exactly one of encryption_config_file and providers must be given",
            )),
        }
    }
}

/// The prefix transformer over a built provider list; `kms` are the metrics
/// its KMS providers (if any) count in.
fn into_transformer(
    list: Vec<PrefixTransformer>,
    kms: KmsMetrics,
) -> Result<Arc<dyn Transformer>, StorageError> {
    let uses_kms = list.iter().any(|t| t.prefix.starts_with(b"k8s:enc:kms:"));
    match PrefixTransformers::with_kms(list, uses_kms.then_some(kms)) {
        Some(t) => Ok(Arc::new(t)),
        None => Err(StorageError::invalid_config(
            "at least one provider is required",
        )),
    }
}

/// A provider constructor for one key.
type NewKeyed = fn(&[u8]) -> Result<Arc<dyn Transformer>, InvalidKeySize>;

/// What one provider element asks for.
enum Provider<'a> {
    Keyed(&'static str, &'a KeysConfig, NewKeyed),
    Identity,
    Kms(&'a KmsConfig),
}

impl ProviderConfig {
    fn provider(&self, at: &str) -> Result<Provider<'_>, StorageError> {
        fn keyed<'a>(
            name: &'static str,
            keys: &'a Option<KeysConfig>,
            new: NewKeyed,
        ) -> Option<Provider<'a>> {
            keys.as_ref().map(|keys| Provider::Keyed(name, keys, new))
        }
        let mut found: Vec<Provider<'_>> = [
            keyed("aesgcm", &self.aesgcm, aesgcm::new),
            keyed("aescbc", &self.aescbc, aescbc::new),
            keyed("secretbox", &self.secretbox, secretbox::new),
            self.identity.as_ref().map(|_| Provider::Identity),
            self.kms.as_ref().map(Provider::Kms),
        ]
        .into_iter()
        .flatten()
        .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(StorageError::invalid_config(format!(
                "{at}: provider does not contain any of the expected providers: \
                 aesgcm, aescbc, secretbox, identity, kms"
            ))),
            _ => {
                let names: Vec<&str> = found.iter().map(Provider::name).collect();
                Err(StorageError::invalid_config(format!(
                    "{at}: more than one provider specified in a single element ({}), \
                     should split into different list elements",
                    names.join(", ")
                )))
            }
        }
    }
}

impl Provider<'_> {
    fn name(&self) -> &'static str {
        match self {
            Provider::Keyed(name, ..) => name,
            Provider::Identity => "identity",
            Provider::Kms(_) => "kms",
        }
    }
}

/// Flattens a provider list into one prefix transformer per key, in order:
/// the same order, and so the same staleness, as kube-apiserver's nested
/// provider and key prefixes. KMS providers count their calls in `kms`.
fn build_providers(
    at: &str,
    providers: &[ProviderConfig],
    kms: &KmsMetrics,
) -> Result<Vec<PrefixTransformer>, StorageError> {
    if providers.is_empty() {
        return Err(StorageError::invalid_config(format!(
            "{at}: at least one provider is required"
        )));
    }
    let mut list = Vec::new();
    let mut kms_names = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match p.provider(&at)? {
            Provider::Keyed(name, keys, new) => list.extend(build_keys(&at, name, keys, new)?),
            Provider::Identity => list.push(PrefixTransformer {
                prefix: Vec::new(),
                transformer: Arc::new(Identity),
            }),
            Provider::Kms(cfg) => {
                let at = format!("{at}.kms");
                if kms_names.contains(&cfg.name) {
                    return Err(StorageError::invalid_config(format!(
                        "{at}.name: duplicate KMS provider name {}, names must be unique",
                        cfg.name
                    )));
                }
                kms_names.push(cfg.name.clone());
                list.push(build_kms(&at, cfg, kms)?);
            }
        }
    }
    Ok(list)
}

/// A `kms` provider, validated as kube-apiserver validates it.
fn build_kms(
    at: &str,
    cfg: &KmsConfig,
    metrics: &KmsMetrics,
) -> Result<PrefixTransformer, StorageError> {
    let invalid = |field: &str, reason: String| {
        StorageError::invalid_config(format!("{at}.{field}: {reason}"))
    };
    if cfg.name.is_empty() {
        return Err(invalid(
            "name",
            "name is a mandatory field for a KMS provider".into(),
        ));
    }
    if cfg.name.contains(':') {
        return Err(invalid(
            "name",
            format!(
                "invalid KMS provider name {}, must not contain ':'",
                cfg.name
            ),
        ));
    }
    if cfg.endpoint.is_empty() {
        return Err(invalid(
            "endpoint",
            "endpoint is a mandatory field for a KMS provider".into(),
        ));
    }
    let timeout = match &cfg.timeout {
        None => Duration::from_secs(3),
        Some(text) => match parse_go_duration(text) {
            Some(d) if !d.is_zero() => d,
            Some(_) => {
                return Err(invalid(
                    "timeout",
                    "timeout should be a positive value".into(),
                ))
            }
            None => {
                return Err(invalid(
                    "timeout",
                    format!("{text:?} is not a duration such as \"3s\""),
                ))
            }
        },
    };
    let version = cfg.api_version.as_deref().unwrap_or("v1");
    let plugin = |v: &str| {
        envelope::service::Plugin::new(&cfg.name, &cfg.endpoint, timeout, metrics.clone())
            .map(|p| (p, format!("k8s:enc:kms:{v}:{}:", cfg.name)))
            .map_err(|e| {
                invalid(
                    "endpoint",
                    format!("invalid endpoint for kms provider, error: {e}"),
                )
            })
    };
    let (prefix, transformer): (String, Arc<dyn Transformer>) = match version {
        "v2" => {
            if cfg.cachesize.is_some() {
                return Err(invalid(
                    "cachesize",
                    "cachesize is not supported in v2".into(),
                ));
            }
            let (plugin, prefix) = plugin("v2")?;
            (
                prefix,
                Arc::new(envelope::KmsV2::new(plugin, metrics.clone())),
            )
        }
        "v1" => {
            let size = cfg.cachesize.unwrap_or(1000);
            if size == 0 {
                return Err(invalid(
                    "cachesize",
                    "cachesize should be a positive value, or negative to disable".into(),
                ));
            }
            let (plugin, prefix) = plugin("v1")?;
            (
                prefix,
                Arc::new(envelope::KmsV1::new(plugin, size, metrics.clone())),
            )
        }
        other => {
            return Err(invalid(
                "apiVersion",
                format!(
                    "unsupported apiVersion {other} for KMS provider, only v1 and v2 are supported"
                ),
            ))
        }
    };
    Ok(PrefixTransformer {
        prefix: prefix.into_bytes(),
        transformer,
    })
}

/// A Go `time.Duration` string: `3s`, `1m30s`, `250ms`, `1.5h`.
fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total)
        .ok()
        .filter(|_| !text.is_empty())
}

/// The transformers of a keyed provider, each under
/// `k8s:enc:<provider>:v1:<key name>:`.
fn build_keys(
    at: &str,
    provider: &str,
    keys: &KeysConfig,
    new: NewKeyed,
) -> Result<Vec<PrefixTransformer>, StorageError> {
    let at = format!("{at}.{provider}.keys");
    if keys.keys.is_empty() {
        return Err(StorageError::invalid_config(format!(
            "{at}: at least one key is required"
        )));
    }
    keys.keys
        .iter()
        .enumerate()
        .map(|(j, key)| {
            if key.name.is_empty() {
                return Err(StorageError::invalid_config(format!(
                    "{at}[{j}].name: a key must have a name"
                )));
            }
            let invalid = |reason: &dyn fmt::Display| {
                StorageError::invalid_config(format!("{at}[{j}] (key {:?}): {reason}", key.name))
            };
            let secret = key.secret.decode().map_err(|e| invalid(&e))?;
            let transformer = new(&secret).map_err(|e| invalid(&e))?;
            Ok(PrefixTransformer {
                prefix: format!("k8s:enc:{provider}:v1:{}:", key.name).into_bytes(),
                transformer,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Code;
    use serde_json::json;

    // Valid keys of each size, base64 as in an EncryptionConfiguration.
    const K16: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const K24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const K32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn inline(providers: serde_json::Value) -> TransformerConfig {
        serde_json::from_value(json!({ "providers": providers })).unwrap()
    }

    fn keys(pairs: &[(&str, &str)]) -> serde_json::Value {
        let keys: Vec<_> = pairs
            .iter()
            .map(|(name, secret)| json!({ "name": name, "secret": secret }))
            .collect();
        json!({ "keys": keys })
    }

    fn build_err(providers: serde_json::Value) -> StorageError {
        inline(providers)
            .build()
            .err()
            .expect("config should be refused")
    }

    #[test]
    fn inline_providers_write_with_the_first_key_of_the_first_provider() {
        let aad = b"/registry/secrets/ns/a";
        for (provider, secret, overhead) in [
            ("aesgcm", K16, 12 + 16),
            ("aesgcm", K24, 12 + 16),
            ("aesgcm", K32, 12 + 16),
            ("aescbc", K16, 16 + 16),
            ("aescbc", K24, 16 + 16),
            ("aescbc", K32, 16 + 16),
            ("secretbox", K32, 24 + 16),
        ] {
            let t = inline(json!([
                { provider: keys(&[("new", secret), ("old", secret)]) },
                { "identity": {} }
            ]))
            .build()
            .unwrap();
            let stored = t.transform_to_storage(b"0123456789abcdef", aad).unwrap();
            let prefix = format!("k8s:enc:{provider}:v1:new:");
            assert!(stored.starts_with(prefix.as_bytes()), "{provider}");
            assert_eq!(stored.len(), prefix.len() + overhead + 16, "{provider}");
            let (out, stale) = t.transform_from_storage(&stored, aad).unwrap();
            assert_eq!((out.as_ref(), stale), (&b"0123456789abcdef"[..], false));
        }
    }

    #[test]
    fn later_keys_and_providers_read_stale() {
        let t = inline(json!([
            { "aesgcm": keys(&[("k1", K32), ("k2", K16)]) },
            { "secretbox": keys(&[("k3", K32)]) },
            { "identity": {} }
        ]))
        .build()
        .unwrap();
        let aad = b"/registry/secrets/ns/a";
        let written_by = |providers| {
            inline(providers)
                .build()
                .unwrap()
                .transform_to_storage(b"v", aad)
                .unwrap()
        };
        for (what, stored) in [
            (
                "second key",
                written_by(json!([{ "aesgcm": keys(&[("k2", K16)]) }])),
            ),
            (
                "second provider",
                written_by(json!([{ "secretbox": keys(&[("k3", K32)]) }])),
            ),
            ("plaintext", b"v".to_vec()),
        ] {
            let (out, stale) = t.transform_from_storage(&stored, aad).unwrap();
            assert_eq!((out.as_ref(), stale), (&b"v"[..], true), "{what}");
        }
        // A key the config no longer has: no transformer reads it.
        let gone = written_by(json!([{ "aesgcm": keys(&[("k0", K32)]) }]));
        let err = t.transform_from_storage(&gone, aad).unwrap_err();
        assert_eq!(err.0, "no matching prefix found");
    }

    #[test]
    fn identity_alone_stores_plaintext_and_refuses_encrypted_values() {
        let t = inline(json!([{ "identity": {} }])).build().unwrap();
        assert_eq!(t.transform_to_storage(b"{}", b"/k").unwrap(), b"{}");
        assert!(t
            .transform_from_storage(b"k8s:enc:aescbc:v1:k:xx", b"/k")
            .is_err());
    }

    #[test]
    fn refuses_bad_keys_naming_the_key_but_never_the_secret() {
        for (provider, secret, reason) in [
            ("aesgcm", "not*base64!", "secret is not valid base64"),
            (
                "aesgcm",
                "AAECAwQFBgcICQoLDA0ODw",
                "secret is not valid base64",
            ),
            (
                "aescbc",
                "AAECAwQFBgcICQoLDA0ODxA=",
                "key size 17 is invalid, must be 16, 24 or 32 bytes",
            ),
            (
                "aesgcm",
                "AAECAwQFBgc=",
                "key size 8 is invalid, must be 16, 24 or 32 bytes",
            ),
            ("secretbox", K16, "key size 16 is invalid, must be 32 bytes"),
            ("secretbox", "", "secret is empty"),
        ] {
            let err = build_err(json!([{ provider: keys(&[("first", K32), ("mykey", secret)]) }]));
            assert_eq!(err.code, Code::InvalidConfig, "{provider} {secret}");
            assert_eq!(
                err.message,
                format!("transformer: providers[0].{provider}.keys[1] (key \"mykey\"): {reason}")
            );
            if !secret.is_empty() {
                assert!(!err.message.contains(secret), "{}", err.message);
            }
        }
    }

    #[test]
    fn refuses_malformed_provider_lists() {
        for (providers, message) in [
            (json!([]), "providers: at least one provider is required"),
            (json!([{}]), "providers[0]: provider does not contain any of the expected providers"),
            (
                json!([{ "identity": {} }, { "aesgcm": keys(&[("k", K16)]), "identity": {} }]),
                "providers[1]: more than one provider specified in a single element (aesgcm, identity)",
            ),
            (json!([{ "aescbc": { "keys": [] } }]), "providers[0].aescbc.keys: at least one key is required"),
            (json!([{ "aescbc": {} }]), "providers[0].aescbc.keys: at least one key is required"),
            (
                json!([{ "secretbox": keys(&[("", K32)]) }]),
                "providers[0].secretbox.keys[0].name: a key must have a name",
            ),
        ] {
            let err = build_err(providers.clone());
            assert_eq!(err.code, Code::InvalidConfig, "{providers}");
            assert!(err.message.contains(message), "{providers}: {}", err.message);
        }
    }

    #[test]
    fn kms_providers_are_validated_as_kubernetes_does() {
        let kms = |fields: serde_json::Value| json!([{ "kms": fields }]);
        let ok = inline(kms(json!({ "apiVersion": "v2", "name": "vault", "endpoint": "unix:///kms.sock", "timeout": "1m30s" })))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.provider_prefixes(), [b"k8s:enc:kms:v2:vault:".to_vec()]);
        let v1 = inline(kms(
            json!({ "name": "old", "endpoint": "unix:///@abstract", "cachesize": -1 }),
        ))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v1.provider_prefixes(), [b"k8s:enc:kms:v1:old:".to_vec()]);
        for (fields, message) in [
            (
                json!({ "endpoint": "unix:///k" }),
                "providers[0].kms.name: name is a mandatory field",
            ),
            (
                json!({ "name": "a:b", "endpoint": "unix:///k" }),
                "invalid KMS provider name a:b, must not contain ':'",
            ),
            (
                json!({ "name": "a" }),
                "providers[0].kms.endpoint: endpoint is a mandatory field",
            ),
            (
                json!({ "name": "a", "endpoint": "tcp://h:1" }),
                "unsupported scheme \"tcp\" for KMS provider",
            ),
            (
                json!({ "apiVersion": "v3", "name": "a", "endpoint": "unix:///k" }),
                "unsupported apiVersion v3 for KMS provider",
            ),
            (
                json!({ "apiVersion": "v2", "name": "a", "endpoint": "unix:///k", "cachesize": 10 }),
                "cachesize is not supported in v2",
            ),
            (
                json!({ "name": "a", "endpoint": "unix:///k", "cachesize": 0 }),
                "cachesize should be a positive value, or negative to disable",
            ),
            (
                json!({ "name": "a", "endpoint": "unix:///k", "timeout": "0s" }),
                "timeout should be a positive value",
            ),
            (
                json!({ "name": "a", "endpoint": "unix:///k", "timeout": "soon" }),
                "\"soon\" is not a duration",
            ),
        ] {
            let err = build_err(kms(fields.clone()));
            assert_eq!(err.code, Code::InvalidConfig, "{fields}");
            assert!(err.message.contains(message), "{fields}: {}", err.message);
        }
        let twice = json!({ "apiVersion": "v2", "name": "a", "endpoint": "unix:///k" });
        let err = build_err(json!([{ "kms": twice }, { "kms": twice }]));
        assert!(
            err.message.contains("duplicate KMS provider name a"),
            "{}",
            err.message
        );
    }

    #[test]
    fn go_durations() {
        for (text, want) in [
            ("3s", 3.0),
            ("1m30s", 90.0),
            ("250ms", 0.25),
            ("1.5h", 5400.0),
            ("0", 0.0),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Some(Duration::from_secs_f64(want)),
                "{text}"
            );
        }
        for bad in ["", "3", "s", "3x", "-1s", "1..5s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn needs_exactly_one_source_and_a_resource_only_with_a_file() {
        let cases = [
            (
                json!({}),
                "exactly one of encryption_config_file and providers",
            ),
            (
                json!({ "encryption_config_file": "/x", "resource": "secrets", "providers": [] }),
                "exactly one of encryption_config_file and providers",
            ),
            (
                json!({ "encryption_config_file": "/x" }),
                "resource is required with encryption_config_file",
            ),
            (
                json!({ "providers": [{ "identity": {} }], "resource": "secrets" }),
                "resource is not allowed with inline providers",
            ),
        ];
        for (cfg, message) in cases {
            let cfg: TransformerConfig = serde_json::from_value(cfg.clone()).unwrap();
            let err = cfg.build().err().unwrap();
            assert_eq!(err.code, Code::InvalidConfig);
            assert!(err.message.contains(message), "{}", err.message);
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        for cfg in [
            json!({ "providers": [], "typo": 1 }),
            json!({ "providers": [{ "aesgcm": { "keys": [], "extra": 1 } }] }),
            json!({ "providers": [{ "aesgcm": { "keys": [{ "name": "k", "secret": K16, "x": 1 }] } }] }),
            json!({ "providers": [{ "identity": { "x": 1 } }] }),
            json!({ "providers": [{ "aesgcm2": {} }] }),
        ] {
            assert!(
                serde_json::from_value::<TransformerConfig>(cfg.clone()).is_err(),
                "{cfg}"
            );
        }
    }

    #[test]
    fn mistyped_secrets_are_not_quoted_in_parse_errors() {
        for secret in [
            json!(918273645546372819_u64),
            json!(-918273645546372819_i64),
            json!(3.25e17),
            json!(true),
        ] {
            let cfg = json!({ "providers": [{ "aesgcm": { "keys": [{ "name": "k", "secret": secret }] } }] });
            let err = serde_json::from_value::<TransformerConfig>(cfg)
                .unwrap_err()
                .to_string();
            assert!(err.contains("a secret must be a string"), "{err}");
            assert!(!err.contains("9182736") && !err.contains("325"), "{err}");
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let cfg = inline(
            json!([{ "aescbc": keys(&[("key1", K32)]) }, { "secretbox": keys(&[("key2", K32)]) }]),
        );
        let debug = format!("{cfg:?} {cfg:#?}");
        assert!(!debug.contains(K32), "{debug}");
        assert!(!debug.contains(&K32[..12]), "{debug}");
        assert!(
            debug.contains("key1") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn secrets_decode_like_go_std_encoding() {
        let decode = |s: &str| Secret(s.to_owned()).decode().map(|k| k.to_vec());
        assert_eq!(decode("AAEC").unwrap(), [0, 1, 2]);
        // Line breaks are skipped; non-zero trailing bits are accepted.
        assert_eq!(decode("AA\nEC\r\n").unwrap(), [0, 1, 2]);
        assert_eq!(decode("AB==").unwrap(), [0]);
        // Padding is required; URL-safe characters are not standard base64.
        assert!(decode("AA").is_err());
        assert!(decode("-_-_").is_err());
    }

    #[test]
    fn no_config_means_identity() {
        let t = crate::value::from_config(None).unwrap();
        assert_eq!(t.transform_to_storage(b"x", b"/k").unwrap(), b"x");
        let cfg = inline(json!([{ "aesgcm": keys(&[("k", K16)]) }]));
        let t = crate::value::from_config(Some(&cfg)).unwrap();
        assert!(t
            .transform_to_storage(b"x", b"/k")
            .unwrap()
            .starts_with(b"k8s:enc:aesgcm:v1:k:"));
    }
}
