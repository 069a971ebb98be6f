//! The protobuf codec: kube-apiserver's `application/vnd.kubernetes.protobuf`
//! storage format, decoded to and encoded from the JSON it serves.

use prost_reflect::DynamicMessage;
use serde_json::Value;

use super::{envelope, json, kubejson, marshal, schema, CodecError};

/// Decodes a stored object. Values without the protobuf prefix are JSON:
/// clusters hold both, from before and after a storage media type change.
///
/// Also returns where the object holds fields the schema does not know
/// (see `kubejson::unknown_fields`), which the JSON leaves out.
pub fn decode(data: &[u8], resource_version: i64) -> Result<(Vec<u8>, Vec<String>), CodecError> {
    if !data.starts_with(envelope::MAGIC) {
        return Ok((json::decode(data, resource_version)?, Vec::new()));
    }
    let envelope = envelope::open(data)?;
    let descriptor = schema::object(&envelope.api_version, &envelope.kind)?;
    let message = DynamicMessage::decode(descriptor, envelope.raw.as_slice()).map_err(|e| {
        CodecError::Corrupt(format!(
            "unable to decode {} {}: {e}",
            envelope.api_version, envelope.kind
        ))
    })?;
    let unknown = kubejson::unknown_fields(&message);
    let mut object = kubejson::to_json(&message)?;
    object.insert("apiVersion".into(), Value::String(envelope.api_version));
    object.insert("kind".into(), Value::String(envelope.kind));
    Ok((json::stamp(object, resource_version)?, unknown))
}

/// Encodes a JSON object, whose `apiVersion` and `kind` pick its type, in the
/// envelope kube-apiserver writes.
pub fn encode(object: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut object = json::parse(object)?;
    let mut type_field = |name: &str| match object.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(CodecError::Corrupt(format!(
            "the object has no {name} string"
        ))),
    };
    let api_version = type_field("apiVersion")?;
    let kind = type_field("kind")?;
    let descriptor = schema::object(&api_version, &kind)?;
    let message = kubejson::from_json(descriptor, &object)?;
    Ok(envelope::seal(
        &api_version,
        &kind,
        marshal::marshal(&message),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    /// The `"codec": "protobuf"` vectors: bytes kube-apiserver 1.12 stored, and
    /// the object as 1.37 serves it: 1.12 served the zero creationTimestamp as
    /// `null`, which 1.37 leaves out (`omitzero`).
    fn vectors() -> Vec<(Vec<u8>, Value)> {
        include_str!("../../tests/fixtures/vectors/vectors.jsonl")
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|v| v["codec"] == "protobuf")
            .map(|v| {
                let stored = base64::engine::general_purpose::STANDARD
                    .decode(v["stored_b64"].as_str().unwrap())
                    .unwrap();
                let mut expected = v["expected_object"].clone();
                let metadata = expected["metadata"].as_object_mut().unwrap();
                assert_eq!(
                    metadata.shift_remove("creationTimestamp"),
                    Some(Value::Null)
                );
                (stored, expected)
            })
            .collect()
    }

    fn decode_value(data: &[u8], rv: i64) -> Result<Value, CodecError> {
        decode(data, rv).map(|(b, _)| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn kube_apiserver_objects_decode_exactly() {
        let vectors = vectors();
        assert_eq!(vectors.len(), 2, "a ConfigMap and a Secret");
        for (stored, mut expected) in vectors {
            expected["metadata"]["resourceVersion"] = json!("42");
            assert_eq!(decode_value(&stored, 42).unwrap(), expected);
        }
    }

    #[test]
    fn kube_apiserver_objects_encode_to_the_same_object() {
        for (stored, expected) in vectors() {
            let encoded = encode(&serde_json::to_vec(&expected).unwrap()).unwrap();
            assert!(encoded.starts_with(envelope::MAGIC));
            let mut stamped = expected.clone();
            stamped["metadata"]["resourceVersion"] = json!("3");
            assert_eq!(decode_value(&encoded, 3).unwrap(), stamped);
            // The typed object kube-apiserver wrote, less the empty scalars Go
            // writes for every plain field, which decode alike.
            assert_eq!(
                decode_value(&encoded, 3).unwrap(),
                decode_value(&stored, 3).unwrap()
            );
        }
    }

    /// Objects as kube-apiserver serves them, resourceVersion "5".
    fn objects() -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": "web-0", "namespace": "default", "uid": "0b6f4e2c",
                    "resourceVersion": "5", "creationTimestamp": "2018-01-01T00:00:00Z",
                    "labels": {"app": "web"}, "annotations": {"note": "x"},
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                        "uid": "1234", "controller": true, "blockOwnerDeletion": true
                    }]
                },
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.15",
                        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "fast"},
                            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token", "optional": false}}}
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m", "memory": "64Mi"}
                        },
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": true}],
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                            "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                            "successThreshold": 1, "failureThreshold": 3
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "settings", "defaultMode": 420}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}
                    ],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                    "serviceAccount": "default", "nodeName": "node-1", "securityContext": {},
                    "schedulerName": "default-scheduler",
                    "tolerations": [{
                        "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 300
                    }],
                    "priority": 0, "enableServiceLinks": true
                },
                "status": {
                    "phase": "Running",
                    "conditions": [{
                        "type": "Ready", "status": "True", "lastProbeTime": null,
                        "lastTransitionTime": "2018-01-01T00:00:05Z"
                    }],
                    "hostIP": "10.0.0.1", "podIP": "10.244.0.5",
                    "startTime": "2018-01-01T00:00:01Z",
                    "containerStatuses": [{
                        "name": "web", "state": {"running": {"startedAt": "2018-01-01T00:00:02Z"}},
                        "lastState": {}, "ready": true, "restartCount": 0, "image": "nginx:1.15",
                        "imageID": "docker-pullable://nginx@sha256:abc", "containerID": "docker://abc"
                    }],
                    "qosClass": "Burstable"
                }
            }),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {
                    "name": "web", "namespace": "default", "uid": "u-svc", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z", "labels": {"app": "web"}
                },
                "spec": {
                    "ports": [
                        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                        {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https", "nodePort": 30443}
                    ],
                    "selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                    "clusterIPs": ["10.96.0.10"], "type": "NodePort", "sessionAffinity": "None",
                    "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"
                },
                "status": {"loadBalancer": {}}
            }),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "tls", "namespace": "default", "resourceVersion": "5"},
                "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "a2V5"},
                "type": "kubernetes.io/tls", "immutable": false
            }),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "settings", "namespace": "default", "resourceVersion": "5",
                    "generation": 2, "creationTimestamp": "2018-01-01T00:00:00Z",
                    "annotations": {"a": "b"}, "finalizers": ["example.com/keep"],
                    "managedFields": [{
                        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                        "time": "2018-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:data": {"f:mode": {}}}
                    }]
                },
                "data": {"mode": "fast", "empty": ""},
                "binaryData": {"blob": "AAEC/w=="}
            }),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {
                    "name": "web", "namespace": "default", "uid": "u-dep", "resourceVersion": "5",
                    "generation": 3, "creationTimestamp": "2018-01-01T00:00:00Z",
                    "labels": {"app": "web"},
                    "annotations": {"deployment.kubernetes.io/revision": "1"}
                },
                "spec": {
                    "replicas": 0,
                    "selector": {
                        "matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]
                    },
                    "template": {
                        "metadata": {"labels": {"app": "web", "tier": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "web", "image": "nginx:1.15", "args": ["--port", "8080"],
                                "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
                            }],
                            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                            "dnsPolicy": "ClusterFirst", "securityContext": {"runAsUser": 0},
                            "schedulerName": "default-scheduler"
                        }
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}
                    },
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
                },
                "status": {
                    "observedGeneration": 3,
                    "conditions": [{
                        "type": "Available", "status": "True",
                        "lastUpdateTime": "2018-01-01T00:00:10Z",
                        "lastTransitionTime": "2018-01-01T00:00:10Z",
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability."
                    }]
                }
            }),
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": "node-1", "uid": "u-node", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z",
                    "labels": {"kubernetes.io/hostname": "node-1"}
                },
                "spec": {
                    "podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                    "taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]
                },
                "status": {
                    "capacity": {"cpu": "2", "memory": "4039076Ki", "pods": "110"},
                    "allocatable": {"cpu": "2", "memory": "3936676Ki", "pods": "110"},
                    "conditions": [{
                        "type": "Ready", "status": "True",
                        "lastHeartbeatTime": "2018-01-01T00:01:00Z",
                        "lastTransitionTime": "2018-01-01T00:00:00Z",
                        "reason": "KubeletReady", "message": "kubelet is posting ready status"
                    }],
                    "addresses": [
                        {"type": "InternalIP", "address": "10.0.0.1"},
                        {"type": "Hostname", "address": "node-1"}
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "machineID": "m", "systemUUID": "s", "bootID": "b",
                        "kernelVersion": "4.15.0", "osImage": "Ubuntu 18.04",
                        "containerRuntimeVersion": "docker://18.6.1",
                        "kubeletVersion": "v1.12.0", "kubeProxyVersion": "v1.12.0",
                        "operatingSystem": "linux", "architecture": "amd64"
                    },
                    "images": [{"names": ["nginx@sha256:abc", "nginx:1.15"], "sizeBytes": 109000000}]
                }
            }),
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": "team-a", "uid": "u-ns", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z",
                    "deletionTimestamp": "2018-01-02T00:00:00Z", "deletionGracePeriodSeconds": 0
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {
                    "phase": "Terminating",
                    "conditions": [{
                        "type": "NamespaceDeletionContentFailure", "status": "False",
                        "lastTransitionTime": "2018-01-02T00:00:01Z",
                        "reason": "ContentDeleted", "message": "All content successfully deleted"
                    }]
                }
            }),
            json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {
                    "name": "node-1", "namespace": "kube-node-lease", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z"
                },
                "spec": {
                    "holderIdentity": "node-1", "leaseDurationSeconds": 40,
                    "renewTime": "2018-01-01T00:00:30.123456Z"
                }
            }),
            json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {
                    "name": "web-7d9", "namespace": "default", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z"
                },
                "data": {"spec": {"template": {"$patch": "replace", "spec": {"hostNetwork": true}}}},
                "revision": 1
            }),
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {
                    "name": "web", "namespace": "default", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z"
                },
                "spec": {
                    "rules": [{
                        "host": "example.com",
                        "http": {"paths": [{
                            "path": "/", "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}}
                        }]}
                    }]
                },
                "status": {"loadBalancer": {}}
            }),
            json!({
                "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {
                    "name": "node-csr", "resourceVersion": "5",
                    "creationTimestamp": "2018-01-01T00:00:00Z"
                },
                "spec": {
                    "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0=",
                    "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                    "expirationSeconds": 86400, "usages": ["digital signature", "client auth"],
                    "username": "system:node:node-1", "groups": ["system:nodes"],
                    "extra": {"scopes": ["a", "b"]}
                },
                "status": {}
            }),
        ]
    }

    #[test]
    fn objects_round_trip() {
        for object in objects() {
            let kind = object["kind"].clone();
            let encoded = encode(&serde_json::to_vec(&object).unwrap()).unwrap();
            assert!(encoded.starts_with(envelope::MAGIC));
            assert_eq!(decode_value(&encoded, 5).unwrap(), object, "{kind}");
        }
    }

    #[test]
    fn kubernetes_json_conventions() {
        let encode_decode = |object: Value| {
            decode_value(&encode(&serde_json::to_vec(&object).unwrap()).unwrap(), 1).unwrap()
        };
        let pod = encode_decode(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "generation": 0, "uid": "",
                "managedFields": [{"manager": "m", "subresource": ""}]
            },
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}], "tty": false}]}
        }));
        // Zeros of plain omitempty fields vanish (generation, uid, subresource, tty).
        assert_eq!(
            pod["metadata"],
            json!({
                // A zero creationTimestamp is left out (`omitzero`).
                "name": "p", "resourceVersion": "1", "managedFields": [{"manager": "m"}]
            })
        );
        assert_eq!(
            pod["spec"]["containers"][0],
            // A plain struct is written even when empty and omitempty.
            json!({"name": "c", "ports": [{"containerPort": 80}], "resources": {}})
        );
        // Empty lists and maps vanish; embedded structs are inlined.
        let role = encode_decode(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "labels": {}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": []}]
        }));
        assert_eq!(
            role,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "r", "resourceVersion": "1"},
                "rules": [{"verbs": ["get"], "apiGroups": [""]}]
            })
        );
        // MicroTime has six fraction digits, in UTC.
        let lease = encode_decode(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l"},
            "spec": {"acquireTime": "2018-01-01T01:00:00.123456+01:00"}
        }));
        assert_eq!(lease["spec"]["acquireTime"], "2018-01-01T00:00:00.123456Z");
    }

    #[test]
    fn quantities_as_go_reads_and_writes_them() {
        let field =
            |number: u8, bytes: &[u8]| [&[number << 3 | 2, bytes.len() as u8], bytes].concat();
        let quota = |entry: Vec<u8>| {
            let spec = field(1, &entry);
            envelope::seal("v1", "ResourceQuota", field(2, &spec))
        };
        let stored =
            |quantity: &[u8]| quota([field(1, b"cpu"), field(2, &field(1, quantity))].concat());
        let served =
            |stored: &[u8]| decode_value(stored, 1).map(|o| o["spec"]["hard"]["cpu"].clone());
        // Go parses the stored string and serves what that prints.
        assert_eq!(served(&stored(b"1000m")), Ok(json!("1")));
        assert_eq!(served(&stored(b"+1")), Ok(json!("+1")));
        // An empty Quantity, or none in the entry, is zero.
        assert_eq!(
            served(&quota([field(1, b"cpu"), field(2, b"")].concat())),
            Ok(json!("0"))
        );
        assert_eq!(served(&quota(field(1, b"cpu"))), Ok(json!("0")));
        for bad in [&b""[..], b"1Kb", b" 1"] {
            assert!(
                matches!(served(&stored(bad)), Err(CodecError::Corrupt(_))),
                "{bad:?}"
            );
        }

        let hard = |hard: Value| {
            let quota =
                json!({"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": hard}});
            encode(&serde_json::to_vec(&quota).unwrap())
                .and_then(|stored| decode_value(&stored, 1))
                .map(|o| o["spec"]["hard"].clone())
        };
        assert_eq!(
            hard(json!({"cpu": "1000m", "memory": " 1024Mi ", "pods": 10, "gpu": null, "x": "+1"})),
            Ok(json!({"cpu": "1", "memory": "1Gi", "pods": "10", "gpu": "0", "x": "+1"}))
        );
        for bad in [json!("1Kb"), json!(""), json!("\t1"), json!(true)] {
            match hard(json!({ "cpu": bad })) {
                Err(CodecError::Corrupt(m)) => assert!(m.contains("hard"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_values_take_the_json_path() {
        let object =
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#;
        assert_eq!(
            decode(object, 9).unwrap(),
            (json::decode(object, 9).unwrap(), Vec::new())
        );
        assert!(matches!(decode(b"[1]", 9), Err(CodecError::Corrupt(_))));
        assert!(matches!(decode(b"", 9), Err(CodecError::Corrupt(_))));
    }

    #[test]
    fn unknown_kinds_are_unsupported() {
        for (api_version, kind) in [("v1", "Frobnicator"), ("example.com/v1", "Widget")] {
            let stored = envelope::seal(api_version, kind, vec![]);
            match decode(&stored, 1) {
                Err(CodecError::Unsupported(m)) => {
                    assert!(m.contains(kind) && m.contains(api_version), "{m}")
                }
                other => panic!("{other:?}"),
            }
            let object = json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
            assert!(matches!(
                encode(&serde_json::to_vec(&object).unwrap()),
                Err(CodecError::Unsupported(m)) if m.contains(kind)
            ));
        }
    }

    #[test]
    fn malformed_protobuf_is_corrupt() {
        for (stored, _) in vectors() {
            // Cuts inside the object's bytes.
            for len in stored.len() / 2..stored.len() - 5 {
                assert!(
                    matches!(decode(&stored[..len], 1), Err(CodecError::Corrupt(_))),
                    "cut at {len}"
                );
            }
        }
        let garbage = [
            envelope::seal("v1", "ConfigMap", vec![0xff, 0xff, 0xff]),
            envelope::seal("v1", "ConfigMap", vec![0x0a, 0x05, 0x01]),
            // A string that is not UTF-8.
            envelope::seal("v1", "ConfigMap", vec![0x0a, 0x03, 0x0a, 0x01, 0xff]),
            b"k8s\0\xff\xff\xff\xff".to_vec(),
        ];
        for stored in garbage {
            assert!(
                matches!(decode(&stored, 1), Err(CodecError::Corrupt(_))),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn invalid_objects_do_not_encode() {
        for bad in [
            json!({"kind": "ConfigMap", "metadata": {}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "bogus": 1}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 3}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": 1}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "binaryData": {"k": "not base64!"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"creationTimestamp": "yesterday"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generation": 1.5}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 4294967296i64}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"targetPort": true}]}}),
        ] {
            assert!(
                matches!(
                    encode(&serde_json::to_vec(&bad).unwrap()),
                    Err(CodecError::Corrupt(_))
                ),
                "{bad}"
            );
        }
    }

    fn mutate_bytes(rng: &mut StdRng, data: &mut Vec<u8>) {
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..=data.len());
            match rng.gen_range(0..4) {
                0 if at < data.len() => data[at] = rng.gen(),
                1 => data.insert(at, rng.gen()),
                2 if at < data.len() => {
                    data.remove(at);
                }
                _ => data.truncate(at),
            }
        }
    }

    fn random_json(rng: &mut StdRng, depth: u32) -> Value {
        match rng.gen_range(0..if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(rng.gen::<bool>()),
            2 => json!(rng.gen::<i64>() >> rng.gen_range(0..64)),
            3 => json!(rng.gen::<f64>()),
            4 => json!(["", "1", "2018-01-01T00:00:00Z", "25%", "AAEC", "v1"][rng.gen_range(0..6)]),
            5 => Value::Array(
                (0..rng.gen_range(0..3))
                    .map(|_| random_json(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let keys = ["name", "spec", "data", "port", "items", "metadata", "raw"];
                Value::Object(
                    (0..rng.gen_range(0..3))
                        .map(|_| {
                            (
                                keys[rng.gen_range(0..keys.len())].to_string(),
                                random_json(rng, depth + 1),
                            )
                        })
                        .collect(),
                )
            }
        }
    }

    fn without_nulls(value: Value) -> Value {
        match value {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, without_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
            other => other,
        }
    }

    /// Replaces one node of the object with random JSON.
    fn mutate_json(rng: &mut StdRng, value: &mut Value, depth: u32) {
        let children: Vec<&mut Value> = match value {
            Value::Object(o) => o.values_mut().collect(),
            Value::Array(a) => a.iter_mut().collect(),
            _ => Vec::new(),
        };
        if children.is_empty() || rng.gen_range(0..4) == 0 && depth > 0 {
            *value = random_json(rng, depth);
            return;
        }
        let n = children.len();
        let child = children.into_iter().nth(rng.gen_range(0..n)).unwrap();
        mutate_json(rng, child, depth + 1);
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x6b38_7300);
        let mut seeds: Vec<Vec<u8>> = vectors().into_iter().map(|(stored, _)| stored).collect();
        for object in objects() {
            seeds.push(encode(&serde_json::to_vec(&object).unwrap()).unwrap());
        }
        let mut decoded = 0;
        for i in 0..20_000 {
            let mut data = if i % 10 == 0 {
                let mut d = envelope::MAGIC.to_vec();
                d.extend((0..rng.gen_range(0..64)).map(|_| rng.gen::<u8>()));
                d
            } else {
                seeds[rng.gen_range(0..seeds.len())].clone()
            };
            mutate_bytes(&mut rng, &mut data);
            if let Ok((object, _)) = decode(&data, 1) {
                decoded += 1;
                // What decodes re-encodes to the same object, but for a
                // pointer set to a zero Time, which reads as null and is
                // written back unset, as Go does.
                let (again, unknown) = decode(&encode(&object).unwrap(), 1).unwrap();
                assert!(unknown.is_empty(), "{unknown:?}");
                assert_eq!(
                    without_nulls(serde_json::from_slice(&again).unwrap()),
                    without_nulls(serde_json::from_slice(&object).unwrap())
                );
            }
        }
        assert!(decoded > 0, "some mutations still decode");
        let objects = objects();
        let mut encoded = 0;
        for _ in 0..5_000 {
            let mut object = objects[rng.gen_range(0..objects.len())].clone();
            mutate_json(&mut rng, &mut object, 0);
            if let Ok(stored) = encode(&serde_json::to_vec(&object).unwrap()) {
                encoded += 1;
                decode(&stored, 1).unwrap();
            }
        }
        assert!(encoded > 0, "some mutations still encode");
    }

    #[test]
    fn base64_errors_do_not_name_the_secret() {
        for value in ["hunter2-SECRET", "QR==", "aGVs\nbG8="] {
            let object = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {},
                "data": {"pw": value}});
            let err = encode(&serde_json::to_vec(&object).unwrap()).unwrap_err();
            assert_eq!(err.to_string(), "data: invalid base64");
        }
    }

    fn lease_spec(spec: Value) -> Result<Value, CodecError> {
        let object = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": "x"}, "spec": spec});
        let stored = encode(&serde_json::to_vec(&object).unwrap())?;
        Ok(decode_value(&stored, 1).unwrap()["spec"].clone())
    }

    #[test]
    fn times_are_checked_as_go_checks_them() {
        // MicroTime takes exactly six fraction digits, as Go's layout does.
        assert_eq!(
            lease_spec(json!({"renewTime": "2020-01-01T00:00:00.123456+01:00"})).unwrap(),
            json!({"renewTime": "2019-12-31T23:00:00.123456Z"})
        );
        for bad in [
            "2020-01-01T00:00:00.123456789Z",
            "2020-01-01T00:00:00.1Z",
            "2020-01-01T00:00:00Z",
        ] {
            assert!(lease_spec(json!({"renewTime": bad})).is_err(), "{bad}");
        }
        // The zero time stores nothing and reads as null; a set pointer to
        // it is an empty message. The bytes are Go's `Lease.Marshal()`.
        let object = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": "x"}, "spec": {"acquireTime": "0001-01-01T00:00:00.000000Z"}});
        let stored = encode(&serde_json::to_vec(&object).unwrap()).unwrap();
        let go = b"\x0a\x11\x0a\x01x\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x02\x1a\x00";
        assert!(stored.windows(go.len()).any(|w| w == go));
        assert_eq!(
            lease_spec(json!({"acquireTime": "0001-01-01T00:00:00.000000Z"})).unwrap(),
            json!({"acquireTime": null})
        );
        // A time this codec could not read back is refused.
        let err = lease_spec(json!({"renewTime": "0000-01-01T00:00:00.000000+00:01"}));
        assert_eq!(
            err.unwrap_err().to_string(),
            "spec: renewTime: time outside years 0-9999"
        );
    }

    #[test]
    fn a_stored_go_zero_time_reads_as_null() {
        let time = schema::object("v1", "ConfigMap")
            .unwrap()
            .get_field_by_name("metadata")
            .unwrap();
        let prost_reflect::Kind::Message(meta) = time.kind() else {
            unreachable!()
        };
        let mut metadata = prost_reflect::DynamicMessage::new(meta.clone());
        let created = meta.get_field_by_name("creationTimestamp").unwrap();
        let prost_reflect::Kind::Message(t) = created.kind() else {
            unreachable!()
        };
        let mut zero = prost_reflect::DynamicMessage::new(t);
        zero.set_field_by_name("seconds", prost_reflect::Value::I64(-62_135_596_800));
        zero.set_field_by_name("nanos", prost_reflect::Value::I32(0));
        metadata.set_field(&created, prost_reflect::Value::Message(zero));
        // A zero time, which `omitzero` leaves out.
        let json = kubejson::to_json(&metadata).unwrap();
        assert_eq!(json.get("creationTimestamp"), None);
    }
}
