package chart

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	testRelease   = "fitgate"
	testNamespace = "fitgate-system"
)

// expectations are what each variant's values must produce.
type expectations struct {
	replicas                    int32
	minAvailable, maxUnavailble *intstr.IntOrString
	certManager                 bool
	secretName                  string
	failurePolicy               admissionregistrationv1.FailurePolicyType
	timeoutSeconds              int32
	defaultMode, defaultPodMode string
	exempt                      []string
	logLevel                    string
	autoscaler                  bool
	serviceMonitor              bool
	requests                    corev1.ResourceList
}

func ptrIntOrStr(v intstr.IntOrString) *intstr.IntOrString { return &v }

var expected = map[string]expectations{
	"default": {replicas: 2, minAvailable: ptrIntOrStr(intstr.FromInt32(1)), secretName: "fitgate-tls",
		failurePolicy: admissionregistrationv1.Ignore, timeoutSeconds: 5, defaultMode: "warn", defaultPodMode: "enforce",
		exempt: []string{"kube-system", "kube-node-lease", testNamespace}, logLevel: "info"},
	"cert-manager": {replicas: 2, minAvailable: ptrIntOrStr(intstr.FromInt32(1)), certManager: true, secretName: "fitgate-tls",
		failurePolicy: admissionregistrationv1.Ignore, timeoutSeconds: 5, defaultMode: "warn", defaultPodMode: "enforce",
		exempt: []string{"kube-system", "kube-node-lease", testNamespace}, logLevel: "info"},
	"ha": {replicas: 3, maxUnavailble: ptrIntOrStr(intstr.FromInt32(1)), secretName: "fitgate-tls",
		failurePolicy: admissionregistrationv1.Ignore, timeoutSeconds: 5, defaultMode: "warn", defaultPodMode: "enforce",
		exempt: []string{"kube-system", "kube-node-lease", testNamespace}, logLevel: "info", autoscaler: true, serviceMonitor: true},
	"strict": {replicas: 2, minAvailable: ptrIntOrStr(intstr.FromInt32(1)), secretName: "fitgate-serving",
		failurePolicy: admissionregistrationv1.Fail, timeoutSeconds: 10, defaultMode: "enforce", defaultPodMode: "strict",
		exempt: []string{"kube-system", "kube-node-lease", "monitoring", testNamespace}, logLevel: "debug"},
}

func TestRenderedObjects(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			want, ok := expected[v.name]
			if !ok {
				t.Fatalf("no expectations for variant %s", v.name)
			}
			m := render(t, testRelease, testNamespace, v)
			checkNamespaces(t, m)
			dep := one[*appsv1.Deployment](t, m)
			checkDeployment(t, dep, want)
			checkPDB(t, m, dep, want)
			checkServices(t, m, dep, want)
			checkCertificates(t, m, dep, want)
		})
	}
}

// checkNamespaces: every namespaced object lands in the release namespace.
func checkNamespaces(t *testing.T, m manifest) {
	t.Helper()
	clusterScoped := []string{"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}
	for _, o := range m.generic {
		if slices.Contains(clusterScoped, o.GetKind()) {
			if o.GetNamespace() != "" {
				t.Errorf("%s %s has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		} else if o.GetNamespace() != testNamespace {
			t.Errorf("%s %s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), testNamespace)
		}
	}
}

func checkDeployment(t *testing.T, dep *appsv1.Deployment, want expectations) {
	t.Helper()
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != want.replicas {
		t.Errorf("replicas = %v, want %d", dep.Spec.Replicas, want.replicas)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0, so a rollout never drops a serving replica", ru)
	}
	pod := dep.Spec.Template.Spec
	if pod.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName = %q", pod.PriorityClassName)
	}
	// Preferred anti-affinity on the hostname, selecting this release's pods.
	var aa *corev1.PodAntiAffinity
	if pod.Affinity != nil {
		aa = pod.Affinity.PodAntiAffinity
	}
	if aa == nil || len(aa.PreferredDuringSchedulingIgnoredDuringExecution) != 1 || len(aa.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Fatalf("anti-affinity = %+v", aa)
	}
	term := aa.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname || term.LabelSelector == nil ||
		!labelsMatch(term.LabelSelector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("anti-affinity term = %+v", term)
	}

	// Security context, pod and container.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || sc.Privileged != nil {
		t.Errorf("container securityContext = %+v", sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// Probes on the port the health server listens on.
	args := flags(c.Args)
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args = %q, want serve first", c.Args)
	}
	healthPort := portNamed(t, c, "health")
	if args["health-addr"] != fmt.Sprintf(":%d", healthPort) {
		t.Errorf("--health-addr=%s, health port %d", args["health-addr"], healthPort)
	}
	for name, probe := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "health" {
			t.Errorf("probe %s = %+v", name, probe)
		}
	}
	if args["port"] != fmt.Sprint(portNamed(t, c, "webhook")) {
		t.Errorf("--port=%s, webhook port %d", args["port"], portNamed(t, c, "webhook"))
	}

	// Values reach fitgate's flags.
	for flag, value := range map[string]string{
		"namespace": testNamespace, "default-mode": want.defaultMode, "default-pod-mode": want.defaultPodMode,
		"exempt-namespaces": strings.Join(want.exempt, ","), "log-level": want.logLevel,
		"timeout-seconds": fmt.Sprint(want.timeoutSeconds), "webhook-config-name": testRelease,
	} {
		if args[flag] != value {
			t.Errorf("--%s=%q, want %q", flag, args[flag], value)
		}
	}
	if (args["autoscaler"] == "true") != want.autoscaler {
		t.Errorf("--autoscaler = %q, want %v", args["autoscaler"], want.autoscaler)
	}
	if want.autoscaler && (args["autoscaler-max-node-cpu"] == "" || args["autoscaler-max-node-memory"] == "") {
		t.Errorf("autoscaler hint without the largest node: %q", c.Args)
	}
}

func checkPDB(t *testing.T, m manifest, dep *appsv1.Deployment, want expectations) {
	t.Helper()
	pdb := one[*policyv1.PodDisruptionBudget](t, m)
	if !intOrStrEqual(pdb.Spec.MinAvailable, want.minAvailable) || !intOrStrEqual(pdb.Spec.MaxUnavailable, want.maxUnavailble) {
		t.Errorf("PDB minAvailable %v maxUnavailable %v, want %v %v", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable,
			want.minAvailable, want.maxUnavailble)
	}
	if pdb.Spec.Selector == nil || !labelsMatch(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("PDB selector %+v does not select the pods", pdb.Spec.Selector)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy = %v, want AlwaysAllow", p)
	}
	// One replica gets no budget: minAvailable 1 of 1 would block drains.
	single := render(t, testRelease, testNamespace, variant{name: "single"}, "--set", "replicaCount=1")
	if n := len(all[*policyv1.PodDisruptionBudget](single)); n != 0 {
		t.Errorf("replicaCount=1 renders %d PodDisruptionBudgets", n)
	}
}

func checkServices(t *testing.T, m manifest, dep *appsv1.Deployment, want expectations) {
	t.Helper()
	c := dep.Spec.Template.Spec.Containers[0]
	var webhookSvc, metricsSvc *corev1.Service
	for _, s := range all[*corev1.Service](m) {
		if !labelsMatch(s.Spec.Selector, dep.Spec.Template.Labels) {
			t.Errorf("service %s does not select the pods", s.Name)
		}
		switch s.Labels["app.kubernetes.io/component"] {
		case "webhook":
			webhookSvc = s
		case "metrics":
			metricsSvc = s
		}
	}
	if webhookSvc == nil || metricsSvc == nil {
		t.Fatalf("want a webhook and a metrics service, got %v and %v", webhookSvc, metricsSvc)
	}
	if len(webhookSvc.Spec.Ports) != 1 || webhookSvc.Spec.Ports[0].Port != 443 || webhookSvc.Spec.Ports[0].TargetPort.String() != "webhook" {
		t.Errorf("webhook service ports = %+v", webhookSvc.Spec.Ports)
	}
	args := flags(c.Args)
	if p := metricsSvc.Spec.Ports; len(p) != 1 || p[0].TargetPort.String() != "metrics" ||
		args["metrics-addr"] != fmt.Sprintf(":%d", portNamed(t, c, "metrics")) {
		t.Errorf("metrics service ports %+v, --metrics-addr=%s", p, args["metrics-addr"])
	}
	sms := custom(m, "ServiceMonitor")
	if (len(sms) == 1) != want.serviceMonitor || len(sms) > 1 {
		t.Fatalf("%d ServiceMonitors, want one: %v", len(sms), want.serviceMonitor)
	}
	if want.serviceMonitor {
		sel, _, _ := unstructured.NestedStringMap(sms[0].Object, "spec", "selector", "matchLabels")
		if !labelsMatch(sel, metricsSvc.Labels) || labelsMatch(sel, webhookSvc.Labels) {
			t.Errorf("ServiceMonitor selector %v must pick the metrics service only", sel)
		}
	}

	// The webhook configuration points at the webhook service.
	vwc := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, m)
	if len(vwc.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(vwc.Webhooks))
	}
	wh := vwc.Webhooks[0]
	ref := wh.ClientConfig.Service
	if ref == nil || ref.Name != webhookSvc.Name || ref.Namespace != testNamespace || ref.Port == nil || *ref.Port != 443 ||
		wh.ClientConfig.URL != nil || len(wh.ClientConfig.CABundle) != 0 {
		t.Errorf("clientConfig = %+v: want the webhook service on 443 and no caBundle (it is injected)", wh.ClientConfig)
	}
	if *wh.FailurePolicy != want.failurePolicy || *wh.TimeoutSeconds != want.timeoutSeconds {
		t.Errorf("failurePolicy %s timeoutSeconds %d, want %s %d", *wh.FailurePolicy, *wh.TimeoutSeconds, want.failurePolicy, want.timeoutSeconds)
	}
}

func checkCertificates(t *testing.T, m manifest, dep *appsv1.Deployment, want expectations) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	args := flags(c.Args)
	vwc := one[*admissionregistrationv1.ValidatingWebhookConfiguration](t, m)
	svc := vwc.Webhooks[0].ClientConfig.Service.Name

	// The certificate directory is a volume mounted where --cert-dir says.
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == args["cert-dir"] {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("nothing is mounted at --cert-dir=%s", args["cert-dir"])
	}
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil {
		t.Fatalf("no volume %s", mount.Name)
	}

	issuers, certs := custom(m, "Issuer"), custom(m, "Certificate")
	if !want.certManager {
		// fitgate manages the Secret and writes the pair into a memory
		// emptyDir; no cert-manager object is rendered.
		if len(issuers)+len(certs) != 0 || vwc.Annotations["cert-manager.io/inject-ca-from"] != "" {
			t.Errorf("self-managed mode renders cert-manager objects: %d issuers, %d certificates, annotations %v",
				len(issuers), len(certs), vwc.Annotations)
		}
		if args["cert-secret"] != want.secretName || args["service-name"] != svc {
			t.Errorf("--cert-secret=%s --service-name=%s, want %s %s", args["cert-secret"], args["service-name"], want.secretName, svc)
		}
		if vol.EmptyDir == nil || vol.EmptyDir.Medium != corev1.StorageMediumMemory || mount.ReadOnly {
			t.Errorf("cert volume %+v mounted read-only %v: want a writable memory emptyDir", vol.VolumeSource, mount.ReadOnly)
		}
		return
	}

	// cert-manager: a self-signed Issuer, a CA Certificate it signs, a CA
	// Issuer on that CA's Secret, and the serving Certificate it signs,
	// whose Secret fitgate mounts and whose CA is injected.
	if _, ok := args["cert-secret"]; ok {
		t.Errorf("cert-manager mode still runs the rotator: %q", c.Args)
	}
	if vol.Secret == nil || vol.Secret.SecretName != want.secretName || !mount.ReadOnly {
		t.Errorf("cert volume %+v: want Secret %s, read-only", vol.VolumeSource, want.secretName)
	}
	if len(issuers) != 2 || len(certs) != 2 {
		t.Fatalf("%d issuers and %d certificates, want 2 and 2", len(issuers), len(certs))
	}
	var selfSigned, caIssuer, caCert, serving *unstructured.Unstructured
	for _, i := range issuers {
		if _, ok, _ := unstructured.NestedMap(i.Object, "spec", "selfSigned"); ok {
			selfSigned = i
		}
		if _, ok, _ := unstructured.NestedMap(i.Object, "spec", "ca"); ok {
			caIssuer = i
		}
	}
	for _, c := range certs {
		if isCA, _, _ := unstructured.NestedBool(c.Object, "spec", "isCA"); isCA {
			caCert = c
		} else {
			serving = c
		}
	}
	if selfSigned == nil || caIssuer == nil || caCert == nil || serving == nil {
		t.Fatalf("issuers %v, certificates %v", issuers, certs)
	}
	str := func(u *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	if str(caCert, "spec", "issuerRef", "name") != selfSigned.GetName() ||
		str(caIssuer, "spec", "ca", "secretName") != str(caCert, "spec", "secretName") ||
		str(serving, "spec", "issuerRef", "name") != caIssuer.GetName() ||
		str(serving, "spec", "secretName") != want.secretName {
		t.Errorf("the issuing chain is broken: selfsigned %s, CA cert -> %s in %s, CA issuer on %s, serving -> %s in %s",
			selfSigned.GetName(), str(caCert, "spec", "issuerRef", "name"), str(caCert, "spec", "secretName"),
			str(caIssuer, "spec", "ca", "secretName"), str(serving, "spec", "issuerRef", "name"), str(serving, "spec", "secretName"))
	}
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !slices.Contains(dns, svc+"."+testNamespace+".svc") {
		t.Errorf("serving certificate dnsNames %v lack %s.%s.svc", dns, svc, testNamespace)
	}
	if got, want := vwc.Annotations["cert-manager.io/inject-ca-from"], testNamespace+"/"+serving.GetName(); got != want {
		t.Errorf("inject-ca-from = %q, want %q", got, want)
	}
}

func portNamed(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port %q", name)
	return 0
}

// labelsMatch reports whether every selector label is set in labels.
func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func intOrStrEqual(a, b *intstr.IntOrString) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
}
