package main

import (
	"encoding/json"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Names of the objects every benchmark namespace holds, which the pods
// refer to (so that fitgate's reference checks find them in its cache).
const (
	appConfigMap  = "checkout-config"
	rootCAConfig  = "kube-root-ca.crt" // what the ServiceAccount admission plugin's volume names
	serviceAcct   = "default"
	appLabel      = "checkout"
	benchAppImage = "registry.example.com/shop/checkout:2.14.3"
)

// appLabels are a Deployment pod's labels: recommended app labels plus
// the pod-template-hash the ReplicaSet controller adds.
func appLabels() map[string]string {
	return map[string]string{
		"app":                          appLabel,
		"app.kubernetes.io/name":       appLabel,
		"app.kubernetes.io/instance":   "checkout-prod",
		"app.kubernetes.io/version":    "2.14.3",
		"app.kubernetes.io/component":  "api",
		"app.kubernetes.io/part-of":    "shop",
		"app.kubernetes.io/managed-by": "helm",
		"pod-template-hash":            "7d9c6b8f5d",
		"team":                         "payments",
	}
}

// appPodSpec is the spec a user writes for a typical web service: an app
// container with requests and limits, env (plain, field refs, a ConfigMap
// key), three probes, a hardened security context and a log-shipping
// sidecar, a ConfigMap and an emptyDir volume, soft anti-affinity and zone
// spread. About 2 KiB of JSON as written, 4 KiB once the API server has
// defaulted it (see serverDefaults).
func appPodSpec() corev1.PodSpec {
	q := resource.MustParse
	httpProbe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}}}
	}
	live := httpProbe("/healthz", 8080)
	live.InitialDelaySeconds, live.PeriodSeconds = 10, 10
	ready := httpProbe("/ready", 8080)
	ready.PeriodSeconds = 5
	startup := httpProbe("/healthz", 8080)
	startup.FailureThreshold, startup.PeriodSeconds = 30, 2
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": appLabel}}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "checkout",
			Image: benchAppImage,
			Args:  []string{"--config=/etc/checkout/config.yaml", "--listen=:8080", "--metrics=:9090"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
			Env: []corev1.EnvVar{
				{Name: "LOG_LEVEL", Value: "info"},
				{Name: "DB_HOST", Value: "checkout-db.payments.svc.cluster.local"},
				{Name: "FEATURE_FLAGS", Value: "new-cart,fast-checkout"},
				fieldEnv("POD_NAME", "metadata.name"),
				fieldEnv("POD_NAMESPACE", "metadata.namespace"),
				fieldEnv("NODE_NAME", "spec.nodeName"),
				{Name: "CONFIG_PROFILE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: appConfigMap}, Key: "profile"}}},
				{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
					Resource: "limits.cpu", Divisor: q("1")}}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("256Mi")},
			},
			LivenessProbe: live, ReadinessProbe: ready, StartupProbe: startup,
			VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/checkout", ReadOnly: true}, {Name: "tmp", MountPath: "/tmp"}},
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(10001)), ReadOnlyRootFilesystem: ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}, {
			Name:  "log-shipper",
			Image: "registry.example.com/infra/log-shipper:1.8.0",
			Args:  []string{"--input=/tmp/logs", "--output=stdout"},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("10m"), corev1.ResourceMemory: q("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: q("64Mi")},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp/logs", SubPath: "logs"}},
		}},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: appConfigMap}}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(q("64Mi"))}}},
		},
		ServiceAccountName:            serviceAcct,
		TerminationGracePeriodSeconds: ptr.To(int64(30)),
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname, LabelSelector: sel},
			}},
		}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: sel,
		}},
	}
}

// appPod is a bare Pod (no owner) as a client creates it.
func appPod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: appLabels(),
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
				"kubectl.kubernetes.io/restartedAt": "2026-01-05T10:00:00Z"}},
		Spec: appPodSpec(),
	}
}

// serverDefaults fills in what the API server adds before it calls a
// validating webhook: field defaults, and for a Pod the ServiceAccount
// admission plugin's token volume and the DefaultTolerationSeconds
// tolerations. The AdmissionReviews sent in part 1 then look like the
// API server's.
func serverDefaults(spec *corev1.PodSpec, pod bool) {
	spec.RestartPolicy = corev1.RestartPolicyAlways
	spec.DNSPolicy = corev1.DNSClusterFirst
	spec.SchedulerName = corev1.DefaultSchedulerName
	spec.SecurityContext = &corev1.PodSecurityContext{}
	for i := range spec.Volumes {
		if cm := spec.Volumes[i].ConfigMap; cm != nil {
			cm.DefaultMode = ptr.To(int32(0o644))
		}
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		c.ImagePullPolicy = corev1.PullIfNotPresent
		for j := range c.Ports {
			c.Ports[j].Protocol = corev1.ProtocolTCP
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			p.TimeoutSeconds, p.SuccessThreshold = 1, 1
			if p.FailureThreshold == 0 {
				p.FailureThreshold = 3
			}
			if p.PeriodSeconds == 0 {
				p.PeriodSeconds = 10
			}
			if p.HTTPGet != nil {
				p.HTTPGet.Scheme = corev1.URISchemeHTTP
			}
		}
		for j := range c.Env {
			if f := c.Env[j].ValueFrom; f != nil && f.FieldRef != nil {
				f.FieldRef.APIVersion = "v1"
			}
		}
	}
	if !pod {
		return
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	spec.Priority = ptr.To(int32(0))
	spec.EnableServiceLinks = ptr.To(true)
	spec.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
	spec.Tolerations = []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
	}
	const tokenVolume = "kube-api-access-7xk2p"
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To(int32(0o644)), Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfig},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}})
	for i := range spec.Containers {
		spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts, corev1.VolumeMount{
			Name: tokenVolume, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
}

// Placeholders in the review templates, replaced per request.
const (
	phUID     = "@@REQUEST-UID@@"
	phName    = "@@OBJECT-NAME@@"
	phObjUID  = "@@OBJECT-UID@@"
	createdAt = "2026-01-05T10:00:00Z"
)

// appDeployment is a 3-replica Deployment of the app's pod template, as a
// client (here: Helm) creates it.
func appDeployment(namespace, name string) *appsv1.Deployment {
	labels := appLabels()
	delete(labels, "pod-template-hash")
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels,
			Annotations: map[string]string{"meta.helm.sh/release-name": "checkout-prod", "meta.helm.sh/release-namespace": namespace}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": appLabel, "app.kubernetes.io/instance": "checkout-prod"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels,
				Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}}, Spec: appPodSpec()},
		},
	}
}

// offlinePod is appPod as the API server would pass it to a webhook,
// approximated without one: defaults, admission plugins' additions and a
// managedFields entry of the usual shape (see approxManagedFields).
func offlinePod(namespace string) (*corev1.Pod, error) {
	pod := appPod(namespace, "checkout-7d9c6b8f5d-000000")
	serverDefaults(&pod.Spec, true)
	ts, _ := time.Parse(time.RFC3339, createdAt)
	pod.CreationTimestamp = metav1.NewTime(ts)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable}
	return pod, setManagedFields(pod, &pod.ObjectMeta, "v1")
}

// offlineDeployment is appDeployment as the API server would pass it on.
func offlineDeployment(namespace string) (*appsv1.Deployment, error) {
	d := appDeployment(namespace, "checkout-000000")
	serverDefaults(&d.Spec.Template.Spec, false)
	ts, _ := time.Parse(time.RFC3339, createdAt)
	d.CreationTimestamp, d.Generation = metav1.NewTime(ts), 1
	quarter := intstr.FromString("25%")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter}}
	d.Spec.RevisionHistoryLimit, d.Spec.ProgressDeadlineSeconds = ptr.To(int32(10)), ptr.To(int32(600))
	return d, setManagedFields(d, &d.ObjectMeta, "apps/v1")
}

func setManagedFields(obj any, meta *metav1.ObjectMeta, apiVersion string) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	delete(v, "status")
	delete(v, "apiVersion")
	delete(v, "kind")
	if m, ok := v["metadata"].(map[string]any); ok {
		for _, k := range []string{"name", "namespace", "uid", "creationTimestamp", "generation", "managedFields"} {
			delete(m, k)
		}
	}
	fields, err := json.Marshal(approxManagedFields(v))
	if err != nil {
		return err
	}
	ts, _ := time.Parse(time.RFC3339, createdAt)
	meta.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate,
		APIVersion: apiVersion, Time: ptr.To(metav1.NewTime(ts)), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: fields}}}
	return nil
}

// approxManagedFields builds a FieldsV1 set for a decoded JSON value in the
// API server's format: "f:<field>" for struct and map fields, "k:{...}"
// for items of lists keyed by name, port or mount path, "." for a map or
// item that is itself owned. Lists of scalars are atomic.
func approxManagedFields(v any) map[string]any {
	out := map[string]any{}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch val := val.(type) {
			case map[string]any:
				sub := approxManagedFields(val)
				sub["."] = map[string]any{}
				out["f:"+k] = sub
			case []any:
				sub := map[string]any{}
				for _, item := range val {
					m, ok := item.(map[string]any)
					if !ok {
						sub = map[string]any{} // atomic list
						break
					}
					key := listKey(m)
					if key == "" {
						sub = map[string]any{}
						break
					}
					entry := approxManagedFields(m)
					entry["."] = map[string]any{}
					sub["k:"+key] = entry
				}
				out["f:"+k] = sub
			default:
				out["f:"+k] = map[string]any{}
			}
		}
	}
	return out
}

// listKey is the merge key of a list item, JSON-encoded as the API server
// writes it, or "" when the list is atomic.
func listKey(m map[string]any) string {
	var key map[string]any
	switch {
	case m["containerPort"] != nil:
		key = map[string]any{"containerPort": m["containerPort"], "protocol": m["protocol"]}
	case m["mountPath"] != nil:
		key = map[string]any{"mountPath": m["mountPath"]}
	case m["name"] != nil:
		key = map[string]any{"name": m["name"]}
	default:
		return ""
	}
	b, _ := json.Marshal(key)
	return string(b)
}

// podReviewJSON is a CREATE AdmissionReview v1 of pod with placeholders for
// the request UID, the pod's name and its UID.
func podReviewJSON(pod *corev1.Pod) ([]byte, error) {
	pod = pod.DeepCopy()
	pod.APIVersion, pod.Kind = "v1", "Pod"
	pod.Name, pod.UID, pod.GenerateName = phName, phObjUID, ""
	return reviewJSON(pod, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, pod.Namespace)
}

// deploymentReviewJSON is a CREATE AdmissionReview v1 of d, with the same
// placeholders.
func deploymentReviewJSON(d *appsv1.Deployment) ([]byte, error) {
	d = d.DeepCopy()
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	d.Name, d.UID = phName, phObjUID
	return reviewJSON(d, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, d.Namespace)
}

func reviewJSON(obj runtime.Object, gvk metav1.GroupVersionKind, gvr metav1.GroupVersionResource, namespace string) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(phUID), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Name: phName, Namespace: namespace, Operation: admissionv1.Create,
			UserInfo: authUser(),
			Object:   runtime.RawExtension{Raw: raw},
			DryRun:   ptr.To(false),
			Options:  runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"helm"}`)},
		},
	})
}

func authUser() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "system:serviceaccount:ci:deployer",
		UID: "0f4c1c52-9a8e-4d7e-a1b5-3a1f7c3f4d21", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"}}
}
