package feasibility

// This file finds references to objects that do not exist, each of which
// stops the pod for good: the namespace (NamespaceLifecycle admission), the
// service account (ServiceAccount admission refuses the pod), secrets and
// config maps the kubelet must read before starting containers (mount or
// CreateContainerConfigError), the scheduler that must place the pod, and the
// StorageClass a StatefulSet's claims need to be provisioned.
//
// A kind the snapshot does not know is never checked. Left out: secrets of
// other volume types (CSI nodePublishSecretRef, RBD, CephFS...), keys within
// a secret or config map (the snapshot keeps names only), the service
// account's mountable-secrets enforcement, and PVC or PV references of plain
// volumes, which the volume filters judge.

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	volumehelper "k8s.io/component-helpers/storage/volume"
)

const (
	refMirrorPodAnnotation     = "kubernetes.io/config.mirror"
	refDefaultClassAnnotation  = "storageclass.kubernetes.io/is-default-class"
	refDefaultClassBetaAnnoton = "storageclass.beta.kubernetes.io/is-default-class"
)

// refFinder keeps one reason per missing object, the first field naming it.
type refFinder struct {
	s    *Snapshot
	ns   string
	seen map[string]bool
	out  []Reason
}

func (f *refFinder) need(kind Kind, code Code, sev Severity, name, field string, optional *bool) {
	if name == "" || (optional != nil && *optional) || !f.s.Knows(kind) {
		return
	}
	set := f.s.secrets
	if kind == KindConfigMap {
		set = f.s.configMaps
	}
	if _, ok := set[key(f.ns, name)]; ok || f.seen[string(kind)+"/"+name] {
		return
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	f.seen[string(kind)+"/"+name] = true
	word := map[Kind]string{KindSecret: "secret", KindConfigMap: "configmap"}[kind]
	msg := fmt.Sprintf("%s %q not found", word, name)
	if sev == SeverityInfo {
		msg += "; the kubelet pulls images without it, which fails only if the registry requires it"
	}
	f.out = append(f.out, Reason{Code: code, Severity: sev, Message: msg, Field: field,
		Details: map[string]string{"kind": string(kind), "name": name}})
}

func (f *refFinder) secret(name, field string, optional *bool) {
	f.need(KindSecret, CodeSecretNotFound, SeverityPermanent, name, field, optional)
}

func (f *refFinder) configMap(name, field string, optional *bool) {
	f.need(KindConfigMap, CodeConfigMapNotFound, SeverityPermanent, name, field, optional)
}

func checkReferences(s *Snapshot, w *Workload, pod *v1.Pod, opts *Options) []Reason {
	var out []Reason
	specPath := "spec"
	if w != nil && w.SpecPath != "" {
		specPath = w.SpecPath
	}
	sched := pod.Spec.SchedulerName
	if sched == "" {
		sched = DefaultSchedulerName
	}
	if !slices.Contains(opts.schedulers(), sched) {
		out = append(out, Reason{Code: CodeUnknownScheduler, Severity: SeverityPermanent,
			Message: fmt.Sprintf("no scheduler named %q is known to serve pods; they would stay Pending", sched),
			Field:   specPath + ".schedulerName", Details: map[string]string{"schedulerName": sched}})
	}
	ns := pod.Namespace
	if s.Knows(KindNamespace) && ns != "" {
		if _, ok := s.namespaces[ns]; !ok {
			// Everything else in it is missing too; saying so adds nothing.
			return append(out, Reason{Code: CodeNamespaceNotFound, Severity: SeverityPermanent,
				Message: fmt.Sprintf("namespace %q not found", ns), Field: "metadata.namespace",
				Details: map[string]string{"namespace": ns}})
		}
	}
	if _, mirror := pod.Annotations[refMirrorPodAnnotation]; !mirror {
		out = append(out, refServiceAccount(s, pod, specPath)...)
	}
	f := &refFinder{s: s, ns: ns}
	refVolumes(f, pod.Spec.Volumes, specPath)
	// A container's path is only rendered when it has an environment to
	// look through.
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; len(c.Env)+len(c.EnvFrom) > 0 {
			refEnv(f, c.Env, c.EnvFrom, fmt.Sprintf("%s.initContainers[%d]", specPath, i))
		}
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; len(c.Env)+len(c.EnvFrom) > 0 {
			refEnv(f, c.Env, c.EnvFrom, fmt.Sprintf("%s.containers[%d]", specPath, i))
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if c := &pod.Spec.EphemeralContainers[i]; len(c.Env)+len(c.EnvFrom) > 0 {
			refEnv(f, c.Env, c.EnvFrom, fmt.Sprintf("%s.ephemeralContainers[%d]", specPath, i))
		}
	}
	// Last, so that a secret also used for something that matters is reported
	// at that severity. A missing pull secret is only info: the kubelet logs
	// it and pulls without credentials, which succeeds for public images and
	// for nodes that have their own, and fitgate cannot tell which it is.
	for i, r := range pod.Spec.ImagePullSecrets {
		f.need(KindSecret, CodeSecretNotFound, SeverityInfo, r.Name, fmt.Sprintf("%s.imagePullSecrets[%d].name", specPath, i), nil)
	}
	out = append(out, f.out...)
	out = append(out, refEphemeralClaims(s, pod, specPath)...)
	if w != nil {
		out = append(out, refClaimTemplates(s, w, ns)...)
	}
	return out
}

// refServiceAccount mirrors ServiceAccount admission, which looks the account
// up whether or not a token is mounted. The "default" account is made by a
// controller moments after its namespace, so its absence is transient.
func refServiceAccount(s *Snapshot, pod *v1.Pod, specPath string) []Reason {
	if !s.Knows(KindServiceAccount) {
		return nil
	}
	name := pod.Spec.ServiceAccountName
	if name == "" {
		name = pod.Spec.DeprecatedServiceAccount //nolint:staticcheck // the API still honours it
	}
	if name == "" {
		name = "default"
	}
	if _, ok := s.serviceAccounts[key(pod.Namespace, name)]; ok {
		return nil
	}
	r := Reason{Code: CodeServiceAccountNotFound, Severity: SeverityPermanent,
		Message: fmt.Sprintf("serviceaccount %q not found", name),
		Field:   specPath + ".serviceAccountName", Details: map[string]string{"name": name}}
	if name == "default" {
		r.Severity = SeverityTransient
		r.Message += "; the service account controller normally creates it shortly after the namespace"
	}
	return []Reason{r}
}

func refVolumes(f *refFinder, vols []v1.Volume, specPath string) {
	for i, v := range vols {
		p := fmt.Sprintf("%s.volumes[%d]", specPath, i)
		if v.Secret != nil {
			f.secret(v.Secret.SecretName, p+".secret.secretName", v.Secret.Optional)
		}
		if v.ConfigMap != nil {
			f.configMap(v.ConfigMap.Name, p+".configMap.name", v.ConfigMap.Optional)
		}
		if v.Projected == nil {
			continue
		}
		for j, src := range v.Projected.Sources {
			sp := fmt.Sprintf("%s.projected.sources[%d]", p, j)
			if src.Secret != nil {
				f.secret(src.Secret.Name, sp+".secret.name", src.Secret.Optional)
			}
			if src.ConfigMap != nil {
				f.configMap(src.ConfigMap.Name, sp+".configMap.name", src.ConfigMap.Optional)
			}
		}
	}
}

func refEnv(f *refFinder, env []v1.EnvVar, envFrom []v1.EnvFromSource, p string) {
	for i, e := range envFrom {
		if e.SecretRef != nil {
			f.secret(e.SecretRef.Name, fmt.Sprintf("%s.envFrom[%d].secretRef.name", p, i), e.SecretRef.Optional)
		}
		if e.ConfigMapRef != nil {
			f.configMap(e.ConfigMapRef.Name, fmt.Sprintf("%s.envFrom[%d].configMapRef.name", p, i), e.ConfigMapRef.Optional)
		}
	}
	for i, e := range env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			f.secret(r.Name, fmt.Sprintf("%s.env[%d].valueFrom.secretKeyRef.name", p, i), r.Optional)
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			f.configMap(r.Name, fmt.Sprintf("%s.env[%d].valueFrom.configMapKeyRef.name", p, i), r.Optional)
		}
	}
}

// refClaimTemplates judges the class of each claim a StatefulSet will create.
// Claims that already exist are reused whatever their class, and a
// PersistentVolume of the class, free or reserved for the claim, can be bound
// statically even when no StorageClass of that name exists.
func refClaimTemplates(s *Snapshot, w *Workload, ns string) []Reason {
	if !s.Knows(KindStorageClass) {
		return nil
	}
	var out []Reason
	for i := range w.VolumeClaimTemplates {
		t := &w.VolumeClaimTemplates[i]
		if refClaimsExist(s, ns, t.Name+"-"+w.Name+"-") {
			continue
		}
		field := fmt.Sprintf("spec.volumeClaimTemplates[%d].spec.storageClassName", i)
		if r := refNewClaimClass(s, &t.Spec, ns, fmt.Sprintf("%s-%s-0", t.Name, w.Name), field, fmt.Sprintf("volumeClaimTemplate %q", t.Name)); r != nil {
			r.Details["volumeClaimTemplate"] = t.Name
			out = append(out, *r)
		}
	}
	return out
}

// refEphemeralClaims judges, the same way, the class of the claim the
// ephemeral volume controller creates for each generic ephemeral volume.
func refEphemeralClaims(s *Snapshot, pod *v1.Pod, specPath string) []Reason {
	if !s.Knows(KindStorageClass) {
		return nil
	}
	var out []Reason
	for i, v := range pod.Spec.Volumes {
		if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate == nil {
			continue
		}
		field := fmt.Sprintf("%s.volumes[%d].ephemeral.volumeClaimTemplate.spec.storageClassName", specPath, i)
		if r := refNewClaimClass(s, &v.Ephemeral.VolumeClaimTemplate.Spec, pod.Namespace, pod.Name+"-"+v.Name, field, fmt.Sprintf("ephemeral volume %q", v.Name)); r != nil {
			r.Details["volume"] = v.Name
			out = append(out, *r)
		}
	}
	return out
}

// refNewClaimClass reports a claim about to be created whose class cannot
// provision it: no class and no default, or a class that does not exist.
// what names the claim's origin for the message.
func refNewClaimClass(s *Snapshot, spec *v1.PersistentVolumeClaimSpec, ns, claim, field, what string) *Reason {
	c := &v1.PersistentVolumeClaim{Spec: *spec}
	class := volumehelper.GetPersistentVolumeClaimClass(c)
	switch {
	case !volumehelper.PersistentVolumeClaimHasClass(c):
		if refHasDefaultClass(s) || refStaticPV(s, "", ns, claim) {
			return nil
		}
		return &Reason{Code: CodeNoDefaultStorageClass, Severity: SeverityPermanent,
			Message: fmt.Sprintf("%s sets no storageClassName and the cluster has no default StorageClass; its claims would stay Pending", what),
			Field:   field, Details: map[string]string{}}
	case class == "":
		// Explicitly no dynamic provisioning: it waits for a matching PV,
		// which the volume filters judge.
		return nil
	}
	if _, ok := s.storageClasses[class]; ok || refStaticPV(s, class, ns, claim) {
		return nil
	}
	return &Reason{Code: CodeStorageClassNotFound, Severity: SeverityPermanent,
		Message: fmt.Sprintf("storageclass %q not found", class),
		Field:   field, Details: map[string]string{"storageClassName": class}}
}

// refClaimsExist looks for any ordinal's claim, not just 0's: spec.ordinals
// may start elsewhere, and the Workload does not carry it.
func refClaimsExist(s *Snapshot, ns, prefix string) bool {
	if _, ok := s.pvcs[key(ns, prefix+"0")]; ok {
		return true
	}
	for k := range s.pvcs {
		if rest, ok := strings.CutPrefix(k, key(ns, prefix)); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

func refHasDefaultClass(s *Snapshot) bool {
	for _, sc := range s.storageClasses {
		if sc.Annotations[refDefaultClassAnnotation] == "true" || sc.Annotations[refDefaultClassBetaAnnoton] == "true" {
			return true
		}
	}
	return false
}

// refStaticPV reports whether a PV of the class could bind the claim. Without
// knowledge of PVs we cannot rule one out, but pre-created volumes for a
// class with no StorageClass object are rare enough that we still flag.
func refStaticPV(s *Snapshot, class, ns, claim string) bool {
	for _, pv := range s.pvs {
		if volumehelper.GetPersistentVolumeClass(pv) != class {
			continue
		}
		if ref := pv.Spec.ClaimRef; ref == nil || (ref.Namespace == ns && ref.Name == claim) {
			return true
		}
	}
	return false
}

// everyPodBlocked are the findings that keep every pod of the workload from
// being placed, whatever the nodes: admission rejects the pods, so none is
// created (LimitRanger, Priority, RuntimeClass, ServiceAccount and
// NamespaceLifecycle admission, pod validation), or no scheduler will ever
// look at them. Missing secrets and config maps are not among them: those
// pods are scheduled, and only their containers fail to start.
var everyPodBlocked = map[Code]bool{
	CodeLimitRangeMax: true, CodeLimitRangeMin: true, CodeLimitRangeRatio: true,
	CodeLimitRangeDefaultBelowRequest: true, CodePriorityClassNotFound: true,
	CodeRuntimeClassNotFound: true, CodeServiceAccountNotFound: true,
	CodeNamespaceNotFound: true, CodeInvalidSpec: true, CodeUnknownScheduler: true,
}

// blocksEveryPod reports whether a finding means no pod can be placed now.
func blocksEveryPod(reasons []Reason) bool {
	for _, r := range reasons {
		if r.Severity != SeverityInfo && everyPodBlocked[r.Code] {
			return true
		}
	}
	return false
}
