//! The Kubernetes API schema: the descriptors compiled from `proto/`, which
//! message an `apiVersion`/`kind` names, and what the `.proto` files cannot
//! say about the Go types behind them (JSON names, `omitempty`, pointers).

use std::borrow::Cow;
use std::collections::HashSet;

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

/// Scalar fields that are Go pointers (`*int32`, `*bool`, ...): a zero value
/// that is present is an explicit choice (`replicas: 0`) and is kept, where
/// `omitempty` drops the zero of a plain field. The `.proto` files do not
/// record pointers; these are the ones of the stored types whose zero differs
/// from leaving them unset. Keyed by message name and field, in every version.
const POINTERS: &[&str] = &[
    // apps
    "DeploymentSpec.replicas",
    "DeploymentSpec.revisionHistoryLimit",
    "DeploymentSpec.progressDeadlineSeconds",
    "DeploymentStatus.collisionCount",
    "ReplicaSetSpec.replicas",
    "StatefulSetSpec.replicas",
    "StatefulSetSpec.revisionHistoryLimit",
    "StatefulSetStatus.collisionCount",
    "RollingUpdateStatefulSetStrategy.partition",
    "DaemonSetSpec.revisionHistoryLimit",
    "DaemonSetStatus.collisionCount",
    // batch
    "JobSpec.parallelism",
    "JobSpec.completions",
    "JobSpec.activeDeadlineSeconds",
    "JobSpec.backoffLimit",
    "JobSpec.backoffLimitPerIndex",
    "JobSpec.maxFailedIndexes",
    "JobSpec.manualSelector",
    "JobSpec.ttlSecondsAfterFinished",
    "JobSpec.suspend",
    "JobStatus.ready",
    "JobStatus.terminating",
    "CronJobSpec.startingDeadlineSeconds",
    "CronJobSpec.suspend",
    "CronJobSpec.successfulJobsHistoryLimit",
    "CronJobSpec.failedJobsHistoryLimit",
    // autoscaling
    "HorizontalPodAutoscalerSpec.minReplicas",
    "HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage",
    "HorizontalPodAutoscalerStatus.currentCPUUtilizationPercentage",
    "MetricTarget.averageUtilization",
    "MetricValueStatus.averageUtilization",
    "HPAScalingRules.stabilizationWindowSeconds",
    "HorizontalPodAutoscalerStatus.observedGeneration",
    // core
    "ObjectMeta.deletionGracePeriodSeconds",
    "OwnerReference.controller",
    "OwnerReference.blockOwnerDeletion",
    "ConfigMap.immutable",
    "Secret.immutable",
    "ReplicationControllerSpec.replicas",
    "PodSpec.terminationGracePeriodSeconds",
    "PodSpec.activeDeadlineSeconds",
    "PodSpec.automountServiceAccountToken",
    "PodSpec.shareProcessNamespace",
    "PodSpec.priority",
    "PodSpec.enableServiceLinks",
    "PodSpec.setHostnameAsFQDN",
    "PodSpec.hostUsers",
    "PodSecurityContext.runAsUser",
    "PodSecurityContext.runAsGroup",
    "PodSecurityContext.runAsNonRoot",
    "PodSecurityContext.fsGroup",
    "SecurityContext.privileged",
    "SecurityContext.runAsUser",
    "SecurityContext.runAsGroup",
    "SecurityContext.runAsNonRoot",
    "SecurityContext.readOnlyRootFilesystem",
    "SecurityContext.allowPrivilegeEscalation",
    "Probe.terminationGracePeriodSeconds",
    "ContainerStatus.started",
    "Toleration.tolerationSeconds",
    "ServiceAccount.automountServiceAccountToken",
    "ServiceSpec.allocateLoadBalancerNodePorts",
    "ClientIPConfig.timeoutSeconds",
    "SecretVolumeSource.defaultMode",
    "SecretVolumeSource.optional",
    "ConfigMapVolumeSource.defaultMode",
    "ConfigMapVolumeSource.optional",
    "ProjectedVolumeSource.defaultMode",
    "DownwardAPIVolumeSource.defaultMode",
    "DownwardAPIVolumeFile.mode",
    "KeyToPath.mode",
    "ConfigMapKeySelector.optional",
    "SecretKeySelector.optional",
    "ConfigMapEnvSource.optional",
    "SecretEnvSource.optional",
    "ConfigMapProjection.optional",
    "SecretProjection.optional",
    "ServiceAccountTokenProjection.expirationSeconds",
    // admissionregistration, certificates, coordination, discovery,
    // flowcontrol, networking, storage
    "ValidatingWebhook.timeoutSeconds",
    "MutatingWebhook.timeoutSeconds",
    "CertificateSigningRequestSpec.expirationSeconds",
    "LeaseSpec.leaseDurationSeconds",
    "LeaseSpec.leaseTransitions",
    "EndpointConditions.ready",
    "EndpointConditions.serving",
    "EndpointConditions.terminating",
    "EndpointPort.port",
    "LimitedPriorityLevelConfiguration.nominalConcurrencyShares",
    "LimitedPriorityLevelConfiguration.lendablePercent",
    "LimitedPriorityLevelConfiguration.borrowingLimitPercent",
    "NetworkPolicyPort.endPort",
    "StorageClass.allowVolumeExpansion",
    "CSIDriverSpec.attachRequired",
    "CSIDriverSpec.podInfoOnMount",
    "CSIDriverSpec.storageCapacity",
    "CSIDriverSpec.requiresRepublish",
    "CSIDriverSpec.seLinuxMount",
    "VolumeNodeResources.count",
];

/// `omitempty` fields that the `.proto` files do not document `+optional`.
/// Keyed as [`POINTERS`].
const OMITEMPTY: &[&str] = &[
    "ManagedFieldsEntry.manager",
    "ManagedFieldsEntry.operation",
    "ManagedFieldsEntry.apiVersion",
    "ManagedFieldsEntry.fieldsType",
    "ManagedFieldsEntry.subresource",
    "DeploymentCondition.reason",
    "DeploymentCondition.message",
    "StatefulSetStatus.readyReplicas",
    "StatefulSetStatus.currentReplicas",
    "StatefulSetStatus.updatedReplicas",
    "StatefulSetStatus.currentRevision",
    "StatefulSetStatus.updateRevision",
    "APIServiceSpec.group",
    "APIServiceSpec.version",
    "APIServiceSpec.insecureSkipTLSVerify",
];

/// Embedded Go structs (`json:",inline"`): their fields appear in the
/// enclosing object. Keyed as [`POINTERS`].
const INLINE: &[&str] = &[
    "Volume.volumeSource",
    "PersistentVolumeSpec.persistentVolumeSource",
    "Probe.handler",
    "EphemeralContainer.ephemeralContainerCommon",
    "ConfigMapEnvSource.localObjectReference",
    "ConfigMapKeySelector.localObjectReference",
    "ConfigMapProjection.localObjectReference",
    "ConfigMapVolumeSource.localObjectReference",
    "SecretEnvSource.localObjectReference",
    "SecretKeySelector.localObjectReference",
    "SecretProjection.localObjectReference",
    "IngressRule.ingressRuleValue",
    "NamedRuleWithOperations.ruleWithOperations",
    "RuleWithOperations.rule",
    "DeviceAllocationConfiguration.deviceConfiguration",
    "DeviceClaimConfiguration.deviceConfiguration",
    "DeviceClassConfiguration.deviceConfiguration",
];

/// Fields whose proto name is capitalized but whose JSON name is not.
const CAPITALIZED_JSON: &[&str] = &["DaemonEndpoint.Port"];

/// Fields whose Go name starts with an acronym: the proto name lowers only its
/// first letter (`APIGroup` is `aPIGroup`), the JSON tag the whole acronym.
const ACRONYM_JSON: &[(&str, &str)] = &[("IngressClassParametersReference.aPIGroup", "apiGroup")];

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

struct Schema {
    pool: DescriptorPool,
    /// Full names of the `omitempty` fields: documented `+optional`, and [`OMITEMPTY`].
    omitempty: HashSet<String>,
    /// Full names of the fields in [`POINTERS`].
    pointers: HashSet<String>,
    /// Full names of the fields in [`INLINE`].
    inline: HashSet<String>,
}

impl Schema {
    fn load() -> Schema {
        let pool =
            DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.pb"))[..])
                .expect("build.rs writes a valid descriptor set");
        let mut omitempty: HashSet<String> =
            include_str!(concat!(env!("OUT_DIR"), "/optional-fields.txt"))
                .lines()
                .map(String::from)
                .collect();
        let mut pointers = HashSet::new();
        let mut inline = HashSet::new();
        let tables: [(&[&str], &mut HashSet<String>); 3] = [
            (OMITEMPTY, &mut omitempty),
            (POINTERS, &mut pointers),
            (INLINE, &mut inline),
        ];
        for (entries, set) in tables {
            let entries: HashSet<&str> = entries.iter().copied().collect();
            for message in pool.all_messages() {
                for field in message.fields() {
                    if entries.contains(short(&field).as_str()) {
                        set.insert(field.full_name().to_string());
                    }
                }
            }
        }
        Schema {
            pool,
            omitempty,
            pointers,
            inline,
        }
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

/// The field's JSON name: its proto name, which go-to-protobuf takes from the
/// JSON tag, except for a few capitalized Go names whose tags are lowercase.
pub fn json_name(field: &FieldDescriptor) -> Cow<'_, str> {
    let name = field.name();
    if let Some((_, json)) = ACRONYM_JSON.iter().find(|(f, _)| *f == short(field)) {
        return Cow::Borrowed(json);
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first)
            if first.is_ascii_uppercase() && !CAPITALIZED_JSON.contains(&short(field).as_str()) =>
        {
            Cow::Owned(first.to_ascii_lowercase().to_string() + chars.as_str())
        }
        _ => Cow::Borrowed(name),
    }
}

/// Whether the field is `omitempty` in Go: documented `+optional`, or in [`OMITEMPTY`].
pub fn is_optional(field: &FieldDescriptor) -> bool {
    SCHEMA.omitempty.contains(field.full_name())
}

/// Whether the scalar field is a Go pointer, see [`POINTERS`].
pub fn is_pointer(field: &FieldDescriptor) -> bool {
    SCHEMA.pointers.contains(field.full_name())
}

/// Whether the message field is an embedded struct, see [`INLINE`].
pub fn is_inline(field: &FieldDescriptor) -> bool {
    SCHEMA.inline.contains(field.full_name())
}

/// `Message.field`.
fn short(field: &FieldDescriptor) -> String {
    format!("{}.{}", field.parent_message().name(), field.name())
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
        // Every table entry names a field that exists.
        let short_names: HashSet<String> = SCHEMA
            .pool
            .all_messages()
            .flat_map(|m| m.fields().map(|f| short(&f)).collect::<Vec<_>>())
            .collect();
        for entry in POINTERS
            .iter()
            .chain(OMITEMPTY)
            .chain(INLINE)
            .chain(CAPITALIZED_JSON)
        {
            assert!(short_names.contains(*entry), "{entry}");
        }
    }
}
