//! A store's transformer config: one resource's provider list, given inline or
//! taken from a kube-apiserver `EncryptionConfiguration` file, built into the
//! prefix transformer kube-apiserver would use for that resource.

use std::fmt;
use std::sync::Arc;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

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
    /// Parsed only to be refused as unsupported rather than as unknown.
    pub kms: Option<IgnoredAny>,
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
                let list = build_providers("providers", providers)
                    .map_err(|e| e.context("transformer"))?;
                into_transformer(list)
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

/// The prefix transformer over a built provider list.
fn into_transformer(list: Vec<PrefixTransformer>) -> Result<Arc<dyn Transformer>, StorageError> {
    match PrefixTransformers::new(list) {
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
    Kms,
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
            self.kms.as_ref().map(|_| Provider::Kms),
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
            Provider::Kms => "kms",
        }
    }
}

/// Flattens a provider list into one prefix transformer per key, in order:
/// the same order, and so the same staleness, as kube-apiserver's nested
/// provider and key prefixes. A kms provider makes the list unsupported, but
/// only once the rest of the list has been found valid.
fn build_providers(
    at: &str,
    providers: &[ProviderConfig],
) -> Result<Vec<PrefixTransformer>, StorageError> {
    if providers.is_empty() {
        return Err(StorageError::invalid_config(format!(
            "{at}: at least one provider is required"
        )));
    }
    let mut list = Vec::new();
    let mut kms = None;
    for (i, p) in providers.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match p.provider(&at)? {
            Provider::Keyed(name, keys, new) => list.extend(build_keys(&at, name, keys, new)?),
            Provider::Identity => list.push(PrefixTransformer {
                prefix: Vec::new(),
                transformer: Arc::new(Identity),
            }),
            Provider::Kms => {
                kms.get_or_insert_with(|| {
                    StorageError::unsupported(format!("{at}.kms: kms providers are not supported"))
                });
            }
        }
    }
    match kms {
        Some(e) => Err(e),
        None => Ok(list),
    }
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
    fn kms_is_unsupported_once_the_rest_is_valid() {
        let kms = json!({ "kms": { "name": "vault", "endpoint": "unix:///kms.sock" } });
        let err = build_err(json!([{ "aesgcm": keys(&[("k", K16)]) }, kms]));
        assert_eq!(err.code, Code::Unsupported);
        assert_eq!(
            err.message,
            "transformer: providers[1].kms: kms providers are not supported"
        );
        // A mistake elsewhere in the list is still reported as one.
        let err = build_err(json!([kms, { "aesgcm": keys(&[("k", "AAAA")]) }]));
        assert_eq!(err.code, Code::InvalidConfig);
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
