package differential

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// kind is one resource as kube-apiserver stores it: its group-resource,
// storage version and the typed objects Kubernetes' store decodes into.
type kind struct {
	gr      schema.GroupResource
	gvk     schema.GroupVersionKind
	newObj  func() runtime.Object
	newList func() runtime.Object
	sample  func(meta metav1.ObjectMeta) runtime.Object
}

// resource is the name an EncryptionConfiguration lists it under.
func (k *kind) resource() string {
	if k.gr.Group == "" {
		return k.gr.Resource
	}
	return k.gr.Resource + "." + k.gr.Group
}

var created = metav1.NewTime(time.Date(2026, 11, 2, 10, 4, 5, 0, time.UTC))

var kinds = []*kind{
	{
		gr:      schema.GroupResource{Resource: "configmaps"},
		gvk:     corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		newObj:  func() runtime.Object { return &corev1.ConfigMap{} },
		newList: func() runtime.Object { return &corev1.ConfigMapList{} },
		sample: func(m metav1.ObjectMeta) runtime.Object {
			return &corev1.ConfigMap{
				ObjectMeta: m,
				Data:       map[string]string{"a": "1", "config.yaml": "key: value\nlist: [1, 2]\n", "empty": ""},
				BinaryData: map[string][]byte{"bin": {0, 1, 2, 255}},
				Immutable:  ptr.To(false),
			}
		},
	},
	{
		gr:      schema.GroupResource{Resource: "secrets"},
		gvk:     corev1.SchemeGroupVersion.WithKind("Secret"),
		newObj:  func() runtime.Object { return &corev1.Secret{} },
		newList: func() runtime.Object { return &corev1.SecretList{} },
		sample: func(m metav1.ObjectMeta) runtime.Object {
			return &corev1.Secret{
				ObjectMeta: m,
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"password": []byte("s3cr3t\x00\xff"), "user": []byte("admin")},
			}
		},
	},
	{
		gr:      schema.GroupResource{Resource: "pods"},
		gvk:     corev1.SchemeGroupVersion.WithKind("Pod"),
		newObj:  func() runtime.Object { return &corev1.Pod{} },
		newList: func() runtime.Object { return &corev1.PodList{} },
		sample: func(m metav1.ObjectMeta) runtime.Object {
			m.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f", UID: "rs-uid",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}
			m.Finalizers = []string{"example.com/cleanup"}
			return &corev1.Pod{ObjectMeta: m, Spec: podSpec(), Status: corev1.PodStatus{
				Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: created},
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: created, Reason: "Scheduled"},
				},
				HostIP:    "10.0.0.4",
				PodIP:     "10.244.1.7",
				PodIPs:    []corev1.PodIP{{IP: "10.244.1.7"}, {IP: "fd00::7"}},
				StartTime: &created,
				QOSClass:  corev1.PodQOSBurstable,
				ContainerStatuses: []corev1.ContainerStatus{{
					Name:  "web",
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: created}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 137, Reason: "OOMKilled", StartedAt: created, FinishedAt: created,
					}},
					Ready:        true,
					RestartCount: 2,
					Image:        "nginx:1.27",
					ImageID:      "docker.io/library/nginx@sha256:0123",
					ContainerID:  "containerd://abc",
					Started:      ptr.To(true),
				}},
			}}
		},
	},
	{
		gr:      schema.GroupResource{Group: "apps", Resource: "deployments"},
		gvk:     appsv1.SchemeGroupVersion.WithKind("Deployment"),
		newObj:  func() runtime.Object { return &appsv1.Deployment{} },
		newList: func() runtime.Object { return &appsv1.DeploymentList{} },
		sample: func(m metav1.ObjectMeta) runtime.Object {
			m.Generation = 4
			return &appsv1.Deployment{
				ObjectMeta: m,
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](3),
					Selector: &metav1.LabelSelector{
						MatchLabels: map[string]string{"app": "web"},
						MatchExpressions: []metav1.LabelSelectorRequirement{
							{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"front", "edge"}},
						},
					},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
						Spec:       podSpec(),
					},
					Strategy: appsv1.DeploymentStrategy{
						Type: appsv1.RollingUpdateDeploymentStrategyType,
						RollingUpdate: &appsv1.RollingUpdateDeployment{
							MaxSurge:       ptr.To(intstr.FromString("25%")),
							MaxUnavailable: ptr.To(intstr.FromInt32(1)),
						},
					},
					MinReadySeconds:         5,
					RevisionHistoryLimit:    ptr.To[int32](10),
					ProgressDeadlineSeconds: ptr.To[int32](600),
				},
				Status: appsv1.DeploymentStatus{
					ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{{
						Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, LastUpdateTime: created,
						LastTransitionTime: created, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability.",
					}},
				},
			}
		},
	},
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox", Command: []string{"sh", "-c", "true"}}},
		Containers: []corev1.Container{
			{
				Name:  "web",
				Image: "nginx:1.27",
				Args:  []string{"--port", "8080"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "prod"},
					{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/web", ReadOnly: true}},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
					InitialDelaySeconds: 3, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
				SecurityContext:          &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true)},
			},
			{Name: "sidecar", Image: "envoy:1.30", Stdin: true},
		},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}, DefaultMode: ptr.To[int32](0o644),
			}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Gi"))}}},
		},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr.To[int64](30),
		DNSPolicy:                     corev1.DNSClusterFirst,
		NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
		ServiceAccountName:            "web",
		NodeName:                      "node-1",
		SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)},
		SchedulerName:                 "default-scheduler",
		Tolerations: []corev1.Toleration{{
			Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300),
		}},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
			}}},
		}},
		Priority:           ptr.To[int32](0),
		EnableServiceLinks: ptr.To(true),
	}
}

// objMeta is the metadata of the sample objects: name, namespace, a UID for
// preconditions, labels, annotations and a creation time.
func objMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              name,
		Namespace:         namespace,
		UID:               types.UID("uid-" + namespace + "-" + name),
		CreationTimestamp: created,
		Labels:            map[string]string{"app": "web", "team": "storage"},
		Annotations:       map[string]string{"example.com/note": "ünïcode and \"quotes\""},
	}
}
