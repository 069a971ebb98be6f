//! kube-apiserver's `encryptionconfig.LoadEncryptionConfig` for one resource:
//! parse and validate the whole file, then pick that resource's providers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use super::{build_providers, into_transformer, ProviderConfig};
use crate::config::parse;
use crate::storage::{Code, StorageError};
use crate::value::envelope::metrics::KmsMetrics;
use crate::value::identity::Identity;
use crate::value::prefix::PrefixTransformer;
use crate::value::Transformer;

/// The apiVersion/kind pairs kube-apiserver decodes: the current one and the
/// one Kubernetes 1.12 and earlier wrote.
const KINDS: [(&str, &str); 2] = [
    ("apiserver.config.k8s.io/v1", "EncryptionConfiguration"),
    ("v1", "EncryptionConfig"),
];

/// Read first, so a wrong kind is reported as such rather than as whatever
/// field it has that an `EncryptionConfiguration` does not.
#[derive(Deserialize)]
struct TypeMeta {
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptionConfiguration {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    resources: Vec<ResourceConfiguration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfiguration {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<ProviderConfig>,
}

/// The transformer kube-apiserver would use for `resource` under the file at `path`.
pub(super) fn load(path: &str, resource: &str) -> Result<Arc<dyn Transformer>, StorageError> {
    let context = format!("encryption config {path:?}");
    if path.is_empty() {
        return Err(StorageError::invalid_config(
            "transformer: encryption_config_file is empty",
        ));
    }
    if resource.is_empty() || resource.contains('*') {
        return Err(StorageError::invalid_config(format!(
            "transformer: resource {resource:?} must name one resource, \
             such as \"secrets\" or \"deployments.apps\""
        )));
    }
    let data = crate::config::read_file("transformer.encryption_config_file", path)?;
    select(&data, GroupResource::parse(resource)).map_err(|e| e.context(&context))
}

/// Parses and validates the whole file, then builds `wanted`'s providers:
/// those of the rules naming it exactly, else of its group's `*.<group>` rule,
/// else of `*.*`; identity when no rule matches.
fn select(data: &[u8], wanted: GroupResource) -> Result<Arc<dyn Transformer>, StorageError> {
    let config = parse(data)?;
    if config.resources.is_empty() {
        return Err(invalid("resources: at least one resource rule is required"));
    }
    // Per rule its providers; kms is refused only if the wanted resource uses it.
    let mut built: Vec<Result<Vec<PrefixTransformer>, StorageError>> = Vec::new();
    let kms = KmsMetrics::new();
    let mut rules: HashMap<GroupResource, Vec<usize>> = HashMap::new();
    for (i, rule) in config.resources.iter().enumerate() {
        let at = format!("resources[{i}]");
        let names = validate_names(&format!("{at}.resources"), &rule.resources)?;
        built.push(
            match build_providers(&format!("{at}.providers"), &rule.providers, &kms) {
                Err(e) if e.code != Code::Unsupported => return Err(e),
                result => result,
            },
        );
        for gr in names {
            // A rule after a wildcard covering it would never be used.
            for mask in [gr.any_in_group(), GroupResource::any()] {
                if rules.contains_key(&mask) {
                    return Err(invalid(format!(
                        "{at}.resources: resource \"{gr}\" is masked by earlier rule \"{mask}\""
                    )));
                }
            }
            rules.entry(gr).or_default().push(i);
        }
    }
    let Some(chosen) = [wanted.clone(), wanted.any_in_group(), GroupResource::any()]
        .iter()
        .find_map(|gr| rules.get(gr))
    else {
        return Ok(Arc::new(Identity));
    };
    // A resource named by several rules reads with all their providers, in order.
    let mut list = Vec::new();
    for &i in chosen {
        list.extend(built[i].clone()?);
    }
    into_transformer(list, kms)
}

fn parse(data: &[u8]) -> Result<EncryptionConfiguration, StorageError> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("the file is empty"));
    }
    let describe = |e: parse::ParseError| invalid(e.describe("", "field"));
    let node = parse::yaml_node(data).map_err(describe)?;
    let meta: TypeMeta = parse::from_node(&node).map_err(describe)?;
    if !KINDS.contains(&(meta.api_version.as_str(), meta.kind.as_str())) {
        return Err(invalid(format!(
            "apiVersion {:?}, kind {:?} is not an encryption configuration: want apiVersion \
             \"apiserver.config.k8s.io/v1\", kind \"EncryptionConfiguration\" \
             (or the legacy \"v1\", \"EncryptionConfig\")",
            meta.api_version, meta.kind
        )));
    }
    parse::from_node(&node).map_err(describe)
}

/// Checks one rule's resource names as kube-apiserver's validation does.
fn validate_names(at: &str, names: &[String]) -> Result<Vec<GroupResource>, StorageError> {
    if names.is_empty() {
        return Err(invalid(format!("{at}: at least one resource is required")));
    }
    let mut parsed = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let gr = GroupResource::parse(name);
        let problem = if name.to_lowercase() != *name {
            Some("resource name should not contain capital letters")
        } else if name == "*" {
            Some("use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources")
        } else if [
            "apiserveripinfo",
            "serviceipallocations",
            "servicenodeportallocations",
        ]
        .contains(&name.as_str())
        {
            Some("resources which do not have REST API/s cannot be encrypted")
        } else if gr.group == "events.k8s.io" {
            Some("'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file")
        } else if gr.group == "extensions" {
            Some("'extensions' group has been removed and cannot be used for encryption")
        } else if gr.group == "*" && gr.resource != "*" {
            Some("encrypting the same resource across groups is not supported")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(invalid(format!("{at}[{j}] {name:?}: {problem}")));
        }
        parsed.push(gr);
    }
    let pairs = || {
        parsed
            .iter()
            .enumerate()
            .flat_map(|(i, a)| parsed[i + 1..].iter().map(move |b| (a, b)))
    };
    if pairs().any(|(a, b)| a == b) {
        return Err(invalid(format!(
            "{at}: the same resource cannot be specified multiple times"
        )));
    }
    if pairs().any(|(a, b)| a.overlaps(b)) {
        return Err(invalid(format!(
            "{at}: using overlapping resources such as 'secrets' and '*.' in the same \
             resource list is not allowed as they will be masked"
        )));
    }
    Ok(parsed)
}

fn invalid(message: impl Into<String>) -> StorageError {
    StorageError::invalid_config(message)
}

/// Go's `schema.GroupResource` as `ParseGroupResource` reads it: the resource
/// is everything before the first dot, the group everything after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupResource {
    group: String,
    resource: String,
}

impl GroupResource {
    /// `*.*`: every resource of every group.
    fn any() -> Self {
        Self::parse("*.*")
    }

    fn parse(s: &str) -> Self {
        let (resource, group) = s.split_once('.').unwrap_or((s, ""));
        GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }

    fn any_in_group(&self) -> Self {
        GroupResource {
            group: self.group.clone(),
            resource: "*".to_owned(),
        }
    }

    fn overlaps(&self, other: &Self) -> bool {
        *self == Self::any()
            || *other == Self::any()
            || (self.group == other.group && (self.resource == "*" || other.resource == "*"))
    }
}

impl fmt::Display for GroupResource {
    /// As written in a config: `secrets`, `deployments.apps`, `*.` for the core group.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() && self.resource != "*" {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::config::TransformerConfig;
    use base64::Engine;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    const K16: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const K32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors")
    }

    fn from_file(path: &Path, resource: &str) -> Result<Arc<dyn Transformer>, StorageError> {
        let cfg: TransformerConfig = serde_json::from_value(serde_json::json!({
            "encryption_config_file": path,
            "resource": resource,
        }))
        .unwrap();
        cfg.build()
    }

    fn write(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn load_str(contents: &str, resource: &str) -> Result<Arc<dyn Transformer>, StorageError> {
        from_file(write(contents).path(), resource)
    }

    fn load_err(contents: &str) -> StorageError {
        load_str(contents, "secrets")
            .err()
            .expect("config should be refused")
    }

    /// The prefix a resource's writes get under `contents` ("" for identity).
    fn write_prefix(contents: &str, resource: &str) -> String {
        let t = load_str(contents, resource).unwrap();
        let stored = t.transform_to_storage(b"{}", b"/registry/x").unwrap();
        let text = String::from_utf8_lossy(&stored);
        match text.strip_suffix("{}") {
            Some("") => String::new(),
            _ => text.split(':').take(5).collect::<Vec<_>>().join(":") + ":",
        }
    }

    #[test]
    fn reads_values_written_by_kube_apiserver() {
        let vectors = std::fs::read_to_string(fixtures().join("vectors.jsonl")).unwrap();
        let mut checked = 0;
        for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["codec"] != "json" {
                continue;
            }
            let name = v["name"].as_str().unwrap();
            let stored = base64::engine::general_purpose::STANDARD
                .decode(v["stored_b64"].as_str().unwrap())
                .unwrap();
            let etcd_key = v["etcd_key"].as_str().unwrap().as_bytes();
            let read_config = v["read_config"].as_str().unwrap();
            for file in [read_config, "read-v1.yaml"] {
                let t = from_file(&fixtures().join(file), v["resource"].as_str().unwrap()).unwrap();
                let (plain, stale) = t.transform_from_storage(&stored, etcd_key).unwrap();
                let object: serde_json::Value = serde_json::from_slice(&plain).unwrap();
                assert_eq!(object, v["expected_object"], "{name} under {file}");
                assert_eq!(stale, v["stale_under_read_config"], "{name} under {file}");
                checked += 1;
            }
            // aesgcm binds the value to its etcd key; the others do not.
            let t = from_file(&fixtures().join(read_config), "secrets").unwrap();
            let moved = t.transform_from_storage(&stored, b"/registry/secrets/default/other");
            assert_eq!(moved.is_err(), v["written_by"] == "aesgcm", "{name} moved");
        }
        assert_eq!(checked, 8, "four json vectors under two configs");
    }

    const RULES: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, deployments.apps]
    providers:
      - aesgcm: {keys: [{name: exact, secret: "AAECAwQFBgcICQoLDA0ODw=="}]}
  - resources: ["*.apps"]
    providers:
      - aescbc: {keys: [{name: apps, secret: "AAECAwQFBgcICQoLDA0ODw=="}]}
  - resources: ["*."]
    providers:
      - secretbox: {keys: [{name: core, secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]}
  - resources: ["*.*"]
    providers:
      - aescbc: {keys: [{name: all, secret: "AAECAwQFBgcICQoLDA0ODw=="}]}
"#;

    #[test]
    fn picks_exact_then_group_then_any_rules() {
        for (resource, prefix) in [
            ("secrets", "k8s:enc:aesgcm:v1:exact:"),
            ("deployments.apps", "k8s:enc:aesgcm:v1:exact:"),
            ("statefulsets.apps", "k8s:enc:aescbc:v1:apps:"),
            ("configmaps", "k8s:enc:secretbox:v1:core:"),
            ("jobs.batch", "k8s:enc:aescbc:v1:all:"),
            ("secrets.apps", "k8s:enc:aescbc:v1:apps:"),
        ] {
            assert_eq!(write_prefix(RULES, resource), prefix, "{resource}");
        }
    }

    #[test]
    fn unlisted_resources_get_identity() {
        let only_secrets = RULES.split("  - resources: [\"*.apps\"]").next().unwrap();
        assert_eq!(write_prefix(only_secrets, "configmaps"), "");
        assert_eq!(
            write_prefix(only_secrets, "secrets"),
            "k8s:enc:aesgcm:v1:exact:"
        );
        let t = load_str(only_secrets, "configmaps").unwrap();
        assert!(t
            .transform_from_storage(b"k8s:enc:aesgcm:v1:exact:xxx", b"/k")
            .is_err());
    }

    #[test]
    fn a_resource_in_several_rules_reads_with_all_of_them_in_order() {
        let config = format!(
            r#"
kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers: [{{aesgcm: {{keys: [{{name: new, secret: "{K32}"}}]}}}}]
  - resources: [secrets]
    providers: [{{aesgcm: {{keys: [{{name: old, secret: "{K16}"}}]}}}}]
"#
        );
        assert_eq!(write_prefix(&config, "secrets"), "k8s:enc:aesgcm:v1:new:");
        let old =
            crate::value::aesgcm::new(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
                .unwrap();
        let stored = [
            &b"k8s:enc:aesgcm:v1:old:"[..],
            &old.transform_to_storage(b"v", b"/k").unwrap(),
        ]
        .concat();
        let (out, stale) = load_str(&config, "secrets")
            .unwrap()
            .transform_from_storage(&stored, b"/k")
            .unwrap();
        assert_eq!((out.as_ref(), stale), (&b"v"[..], true));
    }

    #[test]
    fn json_files_load_too() {
        let config = serde_json::json!({
            "kind": "EncryptionConfiguration",
            "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{ "resources": ["secrets"], "providers": [{ "secretbox": { "keys": [{ "name": "k", "secret": K32 }] } }] }]
        });
        assert_eq!(
            write_prefix(&config.to_string(), "secrets"),
            "k8s:enc:secretbox:v1:k:"
        );
    }

    fn with_rules(rules: &str) -> String {
        format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{rules}")
    }

    #[test]
    fn refuses_invalid_files() {
        let aes = format!("[{{aescbc: {{keys: [{{name: k, secret: \"{K16}\"}}]}}}}]");
        let cases = [
            ("".to_owned(), "the file is empty"),
            ("kind: EncryptionConfiguration\n".to_owned(), "is not an encryption configuration"),
            ("apiVersion: v1\nkind: EncryptionConfiguration\nresources: []\n".to_owned(), "is not an encryption configuration"),
            ("apiVersion: apiserver.config.k8s.io/v2\nkind: EncryptionConfiguration\n".to_owned(), "is not an encryption configuration"),
            ("apiVersion: v1\nkind: Secret\ndata: {}\n".to_owned(), "is not an encryption configuration"),
            ("- a\n- b\n".to_owned(), "invalid type"),
            ("apiVersion: v1\nkind: EncryptionConfig\n".to_owned(), "at least one resource rule is required"),
            (with_rules("  - resources: [secrets]\n    providers: []\n"), "resources[0].providers: at least one provider is required"),
            (with_rules(&format!("  - resources: []\n    providers: {aes}\n")), "resources[0].resources: at least one resource is required"),
            (with_rules(&format!("  - resources: [Secrets]\n    providers: {aes}\n")), "capital letters"),
            (with_rules(&format!("  - resources: [\"*\"]\n    providers: {aes}\n")), "use '*.' to encrypt all"),
            (with_rules(&format!("  - resources: [secrets.*]\n    providers: {aes}\n")), "across groups is not supported"),
            (with_rules(&format!("  - resources: [deployments.extensions]\n    providers: {aes}\n")), "'extensions' group has been removed"),
            (with_rules(&format!("  - resources: [events.events.k8s.io]\n    providers: {aes}\n")), "Use 'events' instead"),
            (with_rules(&format!("  - resources: [serviceipallocations]\n    providers: {aes}\n")), "do not have REST API"),
            (with_rules(&format!("  - resources: [secrets, secrets]\n    providers: {aes}\n")), "cannot be specified multiple times"),
            (with_rules(&format!("  - resources: [secrets, \"*.\"]\n    providers: {aes}\n")), "overlapping resources"),
            (with_rules(&format!("  - resources: [\"*.*\", jobs.batch]\n    providers: {aes}\n")), "overlapping resources"),
            (
                with_rules(&format!("  - resources: [\"*.apps\"]\n    providers: {aes}\n  - resources: [deployments.apps]\n    providers: {aes}\n")),
                "resources[1].resources: resource \"deployments.apps\" is masked by earlier rule \"*.apps\"",
            ),
            (
                with_rules(&format!("  - resources: [\"*.*\"]\n    providers: {aes}\n  - resources: [\"*.\"]\n    providers: {aes}\n")),
                "resource \"*.\" is masked by earlier rule \"*.*\"",
            ),
            (
                with_rules("  - resources: [configmaps]\n    providers: [{aescbc: {keys: [{name: k, secret: \"AAECAwQFBgcICQoLDA0ODxA=\"}]}}]\n"),
                "resources[0].providers[0].aescbc.keys[0] (key \"k\"): key size 17 is invalid, must be 16, 24 or 32 bytes",
            ),
            (
                with_rules(&format!("  - resources: [secrets]\n    providers: [{{identity: {{}}, aescbc: {{keys: [{{name: k, secret: \"{K16}\"}}]}}}}]\n")),
                "resources[0].providers[0]: more than one provider specified in a single element (aescbc, identity)",
            ),
            (with_rules(&format!("  - resources: [secrets]\n    providers: {aes}\n    extra: 1\n")), "unknown field `extra`"),
            (format!("{}metadata: {{name: x}}\n", with_rules(&format!("  - resources: [secrets]\n    providers: {aes}\n"))), "unknown field `metadata`"),
        ];
        for (contents, message) in cases {
            let err = load_err(&contents);
            assert_eq!(err.code, Code::InvalidConfig, "{contents}");
            assert!(
                err.message.starts_with("encryption config \""),
                "{}",
                err.message
            );
            assert!(err.message.contains(message), "{contents}\n{}", err.message);
        }
    }

    #[test]
    fn refuses_a_missing_file_or_resource() {
        let err = from_file(Path::new("/nonexistent/encryption.yaml"), "secrets")
            .err()
            .unwrap();
        assert_eq!(err.code, Code::InvalidConfig);
        assert!(
            err.message.contains("\"/nonexistent/encryption.yaml\""),
            "{}",
            err.message
        );
        for resource in ["", "*.apps", "*.*"] {
            let err = from_file(&fixtures().join("read.yaml"), resource)
                .err()
                .unwrap();
            assert_eq!(err.code, Code::InvalidConfig);
            assert!(
                err.message.contains("must name one resource"),
                "{}",
                err.message
            );
        }
        let err = from_file(Path::new(""), "secrets").err().unwrap();
        assert!(
            err.message.contains("encryption_config_file is empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn kms_providers_come_from_the_file() {
        let config = with_rules(&format!(
            "  - resources: [configmaps]\n    providers:\n      - kms: {{apiVersion: v2, name: vault, endpoint: unix:///kms.sock, timeout: 5s}}\n      - identity: {{}}\n  - resources: [secrets]\n    providers: [{{aescbc: {{keys: [{{name: k, secret: \"{K16}\"}}]}}}}]\n"
        ));
        let t = load_str(&config, "configmaps").unwrap();
        assert_eq!(
            t.provider_prefixes(),
            [b"k8s:enc:kms:v2:vault:".to_vec(), Vec::new()]
        );
        assert_eq!(write_prefix(&config, "secrets"), "k8s:enc:aescbc:v1:k:");
    }

    #[test]
    fn errors_never_quote_secrets() {
        let secret = "c2VjcmV0LXZhbHVlLXRoYXQtaXMtdG9vLWxvbmctZm9yLWFlcw==";
        let config = with_rules(&format!(
            "  - resources: [secrets]\n    providers: [{{aesgcm: {{keys: [{{name: k, secret: \"{secret}\"}}]}}}}]\n"
        ));
        let err = load_err(&config);
        assert!(
            err.message.contains("key size 37 is invalid"),
            "{}",
            err.message
        );
        assert!(!err.message.contains(secret), "{}", err.message);
        // A YAML number is refused as Go's decoder refuses it, unquoted.
        let err = load_err(&with_rules(
            "  - resources: [secrets]\n    providers: [{aesgcm: {keys: [{name: k, secret: 123456789012}]}}]\n",
        ));
        assert!(
            err.message.contains("a secret must be a string"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("123456789012"), "{}", err.message);
    }

    #[test]
    fn parse_errors_name_the_field_and_never_quote_the_value() {
        const SECRET: &str = "hunter2-Zm9vYmFyYmF6cXV4";
        let yaml = |providers: &str| {
            with_rules(&format!(
                "  - resources: [secrets]\n    providers: {providers}\n"
            ))
        };
        let json = |providers: &str| {
            format!(
                r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{{"resources":["secrets"],"providers":{providers}}}]}}"#
            )
        };
        for (contents, path, what) in [
            (
                yaml(&format!("[{{aesgcm: {{keys: [\"{SECRET}\"]}}}}]")),
                "resources[0].providers[0].aesgcm.keys[0]",
                "expected a key object {name, secret}, got a string",
            ),
            (
                yaml(&format!("[{{aesgcm: {{keys: [{SECRET}]}}}}]")),
                "resources[0].providers[0].aesgcm.keys[0]",
                "expected a key object {name, secret}, got a string",
            ),
            (
                json(&format!(r#"[{{"aescbc":{{"keys":["{SECRET}"]}}}}]"#)),
                "resources[0].providers[0].aescbc.keys[0]",
                "expected a key object {name, secret}, got a string",
            ),
            (
                json(&format!(
                    r#"[{{"secretbox":{{"keys":[{{"name":["{SECRET}"],"secret":"x"}}]}}}}]"#
                )),
                "resources[0].providers[0].secretbox.keys[0].name",
                "expected a string, got an array",
            ),
            (
                yaml(&format!("[{{identity: \"{SECRET}\"}}]")),
                "resources[0].providers[0].identity",
                "expected struct IdentityConfig, got a string",
            ),
            (
                format!("apiVersion: v1\nkind: EncryptionConfig\nresources: \"{SECRET}\"\n"),
                "resources",
                "expected a sequence, got a string",
            ),
            (
                format!("apiVersion: v1\nkind: [\"{SECRET}\"]\n"),
                "kind",
                "expected a string, got an array",
            ),
        ] {
            let err = load_err(&contents);
            assert_eq!(err.code, Code::InvalidConfig, "{contents}");
            assert!(
                err.message
                    .contains(&format!("field `{path}`: invalid type: {what}")),
                "{contents}\n{}",
                err.message
            );
            assert!(!err.message.contains(SECRET), "{}", err.message);
            assert!(!err.message.contains("hunter2"), "{}", err.message);
        }
    }

    #[test]
    fn group_resources_parse_and_print_as_go() {
        let gr = GroupResource::parse("deployments.apps");
        assert_eq!(
            (gr.resource.as_str(), gr.group.as_str()),
            ("deployments", "apps")
        );
        let gr = GroupResource::parse("a.b.example.com");
        assert_eq!(
            (gr.resource.as_str(), gr.group.as_str()),
            ("a", "b.example.com")
        );
        for s in ["secrets", "deployments.apps", "*.", "*.*", "*.apps"] {
            assert_eq!(GroupResource::parse(s).to_string(), s);
        }
    }
}
