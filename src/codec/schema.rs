//! The Kubernetes API schema: the descriptors compiled from `proto/`, which
//! message an `apiVersion`/`kind` names, and what the `.proto` files cannot
//! say about the Go types behind them (JSON names, `omitempty`, pointers,
//! struct order), from the `fields.tsv` that `scripts/refresh-schema.sh`
//! derives from the Go structs.

use std::collections::HashMap;

use once_cell::sync::Lazy;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use super::CodecError;

static SCHEMA: Lazy<Schema> = Lazy::new(Schema::load);

/// API groups kube-apiserver stores, and the proto package prefix of each.
const GROUPS: &[(&str, &str)] = &[
    ("", "api.core"),
    ("admissionregistration.k8s.io", "api.admissionregistration"),
    (
        "apiregistration.k8s.io",
        "kube_aggregator.pkg.apis.apiregistration",
    ),
    ("apps", "api.apps"),
    ("autoscaling", "api.autoscaling"),
    ("batch", "api.batch"),
    ("certificates.k8s.io", "api.certificates"),
    ("coordination.k8s.io", "api.coordination"),
    ("discovery.k8s.io", "api.discovery"),
    ("events.k8s.io", "api.events"),
    ("extensions", "api.extensions"),
    ("flowcontrol.apiserver.k8s.io", "api.flowcontrol"),
    ("internal.apiserver.k8s.io", "api.apiserverinternal"),
    ("lifecycle.k8s.io", "api.lifecycle"),
    ("networking.k8s.io", "api.networking"),
    ("node.k8s.io", "api.node"),
    ("policy", "api.policy"),
    ("rbac.authorization.k8s.io", "api.rbac"),
    ("resource.k8s.io", "api.resource"),
    ("scheduling.k8s.io", "api.scheduling"),
    ("storage.k8s.io", "api.storage"),
    ("storagemigration.k8s.io", "api.storagemigration"),
];

const OBJECT_META: &str = "apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Message types with a JSON form of their own (custom `MarshalJSON` in Go).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `metav1.Time`: RFC 3339 seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string, by its `type`.
    IntOrString,
    /// `runtime.RawExtension`, `metav1.FieldsV1`: JSON bytes embedded as JSON.
    RawJson,
    /// Named string slices (`ExtraValue`): a plain JSON array.
    StringList,
}

/// What a field's Go struct field says about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Traits {
    json: String,
    omitempty: bool,
    /// Left out when zero (`Time.IsZero()` for times), even a struct.
    omitzero: bool,
    /// Embedded without a JSON name: its fields appear in the enclosing object.
    inline: bool,
    /// A pointer: written only when set, where Go writes every plain field.
    pointer: bool,
    /// A `[]byte`: written only when not nil.
    bytes: bool,
}

struct Schema {
    pool: DescriptorPool,
    /// By the field's full protobuf name.
    traits: HashMap<String, Traits>,
    /// By the message's full name: its field numbers in Go struct order.
    order: HashMap<String, Vec<u32>>,
}

impl Schema {
    fn load() -> Schema {
        let pool =
            DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.pb"))[..])
                .expect("build.rs writes a valid descriptor set");
        let table = include_str!(concat!(env!("OUT_DIR"), "/fields.tsv"));
        Self::with_table(pool, table).expect("proto/*/fields.tsv matches the .proto files")
    }

    /// Reads `Message<TAB>number<TAB>json<TAB>flags` lines.
    fn with_table(pool: DescriptorPool, table: &str) -> Result<Schema, String> {
        let mut traits = HashMap::new();
        let mut order: HashMap<String, Vec<u32>> = HashMap::new();
        for line in table.lines() {
            let [message, number, json, flags] = line.split('\t').collect::<Vec<_>>()[..] else {
                return Err(format!("malformed line {line:?}"));
            };
            let number: u32 = number
                .parse()
                .map_err(|_| format!("bad number in {line:?}"))?;
            let Some(descriptor) = pool.get_message_by_name(message) else {
                return Err(format!("no message {message}"));
            };
            let field = descriptor
                .get_field(number)
                .ok_or_else(|| format!("{message} has no field {number}"))?;
            let flags: Vec<&str> = flags.split(',').collect();
            traits.insert(
                field.full_name().to_string(),
                Traits {
                    json: json.to_string(),
                    omitempty: flags.contains(&"omitempty"),
                    omitzero: flags.contains(&"omitzero"),
                    inline: flags.contains(&"inline"),
                    pointer: flags.contains(&"pointer"),
                    bytes: flags.contains(&"bytes"),
                },
            );
            order.entry(message.to_string()).or_default().push(number);
        }
        Ok(Schema {
            pool,
            traits,
            order,
        })
    }

    fn traits(&self, field: &FieldDescriptor) -> Option<&Traits> {
        self.traits.get(field.full_name())
    }
}

/// The message of a stored object of `api_version` and `kind`.
pub fn object(api_version: &str, kind: &str) -> Result<MessageDescriptor, CodecError> {
    let unsupported = || {
        CodecError::Unsupported(format!(
            "no kind {kind:?} is registered for version {api_version:?} in the protobuf schema"
        ))
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let identifier = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !identifier(version) || !identifier(kind) {
        return Err(unsupported());
    }
    let (_, package) = GROUPS
        .iter()
        .find(|(name, _)| *name == group)
        .ok_or_else(unsupported)?;
    let message = SCHEMA
        .pool
        .get_message_by_name(&format!("{package}.{version}.{kind}"))
        .ok_or_else(unsupported)?;
    // Only top-level objects are stored; their metadata is an ObjectMeta.
    let metadata = message
        .get_field_by_name("metadata")
        .ok_or_else(unsupported)?;
    match metadata.kind() {
        Kind::Message(m) if m.full_name() == OBJECT_META => Ok(message),
        _ => Err(unsupported()),
    }
}

/// `runtime.Unknown`, the envelope of every stored object.
pub fn unknown() -> MessageDescriptor {
    SCHEMA
        .pool
        .get_message_by_name("apimachinery.pkg.runtime.Unknown")
        .expect("proto/ defines runtime.Unknown")
}

/// Whether the message has a JSON form of its own.
pub fn special(message: &MessageDescriptor) -> Option<Special> {
    Some(match message.full_name() {
        "apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
        "apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "apimachinery.pkg.runtime.RawExtension" | "apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            Special::RawJson
        }
        _ if message.name() == "ExtraValue" => Special::StringList,
        _ => return None,
    })
}

/// The field's JSON name, from its Go tag (its proto name where Go has none).
pub fn json_name(field: &FieldDescriptor) -> &str {
    match SCHEMA.traits(field) {
        Some(traits) => &traits.json,
        None => field.name(),
    }
}

/// Whether the field is `omitempty` in Go.
pub fn is_optional(field: &FieldDescriptor) -> bool {
    SCHEMA.traits(field).is_some_and(|t| t.omitempty)
}

/// Whether the field is `omitzero` in Go.
pub fn is_omitzero(field: &FieldDescriptor) -> bool {
    SCHEMA.traits(field).is_some_and(|t| t.omitzero)
}

/// Whether the field is a Go pointer.
pub fn is_pointer(field: &FieldDescriptor) -> bool {
    SCHEMA.traits(field).is_some_and(|t| t.pointer)
}

/// Whether the field is a Go `[]byte`, which is nil or not.
pub fn is_byte_slice(field: &FieldDescriptor) -> bool {
    SCHEMA.traits(field).is_some_and(|t| t.bytes)
}

/// Whether the message field is an embedded struct whose fields appear in
/// the enclosing JSON object.
pub fn is_inline(field: &FieldDescriptor) -> bool {
    SCHEMA.traits(field).is_some_and(|t| t.inline)
}

/// The message's fields in Go struct order, which is the order of its JSON;
/// messages without Go structs (`Timestamp`) in field number order.
pub fn go_order(message: &MessageDescriptor) -> Vec<FieldDescriptor> {
    match SCHEMA.order.get(message.full_name()) {
        Some(numbers) => numbers
            .iter()
            .filter_map(|&n| message.get_field(n))
            .collect(),
        None => message.fields().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_stored_kinds() {
        assert_eq!(object("v1", "Pod").unwrap().full_name(), "api.core.v1.Pod");
        assert_eq!(
            object("apps/v1", "Deployment").unwrap().full_name(),
            "api.apps.v1.Deployment"
        );
        assert_eq!(
            object("rbac.authorization.k8s.io/v1", "ClusterRole")
                .unwrap()
                .full_name(),
            "api.rbac.v1.ClusterRole"
        );
        assert_eq!(
            object("apiregistration.k8s.io/v1", "APIService")
                .unwrap()
                .full_name(),
            "kube_aggregator.pkg.apis.apiregistration.v1.APIService"
        );
    }

    #[test]
    fn rejects_what_is_not_a_stored_kind() {
        for (api_version, kind) in [
            ("v1", "Frobnicator"),
            ("v1", "PodSpec"),
            ("v1", "PodList"),
            ("apps/v9", "Deployment"),
            ("example.com/v1", "Deployment"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("", "Pod"),
            ("v1", ""),
            ("v1.Pod", "Spec"),
            ("v1", "Pod.metadata"),
        ] {
            let Err(CodecError::Unsupported(message)) = object(api_version, kind) else {
                panic!("{api_version} {kind} resolved");
            };
            assert!(message.contains(&format!("{kind:?}")), "{message}");
        }
    }

    #[test]
    fn field_knowledge() {
        let field = |message: &str, name: &str| {
            SCHEMA
                .pool
                .get_message_by_name(message)
                .unwrap()
                .get_field_by_name(name)
                .unwrap()
        };
        let webhooks = field(
            "api.admissionregistration.v1.MutatingWebhookConfiguration",
            "Webhooks",
        );
        assert_eq!(json_name(&webhooks), "webhooks");
        assert_eq!(
            json_name(&field("api.core.v1.DaemonEndpoint", "Port")),
            "Port"
        );
        assert_eq!(json_name(&field("api.core.v1.PodStatus", "podIP")), "podIP");
        assert!(is_optional(&field(OBJECT_META, "generateName")));
        assert!(!is_optional(&field("api.core.v1.Container", "name")));
        assert!(is_pointer(&field("api.apps.v1.DeploymentSpec", "replicas")));
        assert!(!is_pointer(&field(
            "api.apps.v1.DeploymentSpec",
            "minReadySeconds"
        )));
        let subresource = field(
            "apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
            "subresource",
        );
        assert!(is_optional(&subresource));
        assert!(is_inline(&field("api.core.v1.Volume", "volumeSource")));
        assert!(!is_inline(&field(
            "api.core.v1.Container",
            "securityContext"
        )));
        assert_eq!(
            json_name(&field(
                "api.networking.v1.IngressClassParametersReference",
                "aPIGroup"
            )),
            "apiGroup"
        );
        assert!(is_byte_slice(&field(
            "apimachinery.pkg.runtime.RawExtension",
            "raw"
        )));
        assert!(is_pointer(&field(OBJECT_META, "deletionTimestamp")));
        assert!(is_omitzero(&field(OBJECT_META, "creationTimestamp")));
        assert!(!is_pointer(&field(OBJECT_META, "creationTimestamp")));
        let order: Vec<String> = go_order(
            &field("apimachinery.pkg.apis.meta.v1.OwnerReference", "uid").parent_message(),
        )
        .iter()
        .map(|f| f.name().to_string())
        .collect();
        assert_eq!(
            order,
            [
                "apiVersion",
                "kind",
                "name",
                "uid",
                "controller",
                "blockOwnerDeletion"
            ]
        );
    }

    /// Every field of a message with a Go struct has its line, so no field
    /// falls back to guesses.
    #[test]
    fn the_table_covers_every_go_struct() {
        let mut missing = Vec::new();
        for message in SCHEMA.pool.all_messages() {
            if !SCHEMA.order.contains_key(message.full_name()) {
                continue;
            }
            for field in message.fields() {
                if SCHEMA.traits(&field).is_none() {
                    missing.push(field.full_name().to_string());
                }
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
        assert!(SCHEMA.order.len() > 1000, "{}", SCHEMA.order.len());
    }

    #[test]
    fn malformed_tables_are_refused() {
        for (table, error) in [
            ("api.core.v1.Pod\t1\tmetadata", "malformed"),
            ("api.core.v1.Pod\tone\tmetadata\t-", "bad number"),
            ("api.core.v1.Nope\t1\tmetadata\t-", "no message"),
            ("api.core.v1.Pod\t99\tmetadata\t-", "no field 99"),
        ] {
            let Err(e) = Schema::with_table(SCHEMA.pool.clone(), table) else {
                panic!("{table} accepted");
            };
            assert!(e.contains(error), "{e}");
        }
    }
}
