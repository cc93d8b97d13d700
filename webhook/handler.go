package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fitgate/fitgate/feasibility"
)

// SnapshotSource is the cluster state the handler judges against.
// (*Cache) is the production one; tests use a fixed snapshot.
type SnapshotSource interface {
	// Check judges w. synced is false, and the report nil, until the source
	// holds the whole cluster state.
	Check(w *feasibility.Workload, opts *feasibility.Options) (report *feasibility.Report, synced bool)
	// NamespaceLabels returns a namespace's labels; found is false when the
	// source does not know the namespace.
	NamespaceLabels(name string) (labels map[string]string, found bool)
}

// Handler defaults.
const (
	DefaultBudget         = 4 * time.Second
	DefaultMaxObjectBytes = 2 << 20
	DefaultMaxLiveLookups = 4
	// MaxFreshnessWait bounds how long a denial waits for the cache to
	// catch up with the API server (see Freshness). Informers trail by
	// milliseconds; a cache further behind (a watch still reconnecting)
	// will not catch up in time anyway.
	MaxFreshnessWait = time.Second
)

// Audit annotation keys. The API server prefixes them with the webhook's
// name: validate.fitgate.dev/verdict, ...
const (
	AuditVerdict     = "verdict"
	AuditReasons     = "reasons"
	AuditReplicasFit = "replicas-fit"
	AuditMode        = "mode"
)

// VerdictUnchecked labels decisions made without a check (cache not
// synced, budget exceeded, object too large) in metrics and audit.
const VerdictUnchecked = "unchecked"

// Handler is fitgate's admission.Handler for every judged kind.
type Handler struct {
	Source SnapshotSource
	// Live confirms missing references and looks up namespaces the cache
	// does not know. Nil means no confirmation: a missing reference then
	// never denies.
	Live    LiveChecker
	Policy  Policy
	Options *feasibility.Options
	// Budget bounds the check and the live lookups; past it the request is
	// allowed with a warning. Keep it below the webhook's timeoutSeconds.
	Budget time.Duration
	// MaxObjectBytes: larger objects are allowed unchecked, with a warning.
	MaxObjectBytes int
	// MaxWarnings caps the findings worded as warnings per object.
	MaxWarnings int
	// MaxLiveLookups caps the live GETs per request.
	MaxLiveLookups int
	// Freshness, when set, is asked before every denial whether the cache
	// has caught up with the API server's nodes; a denial the cache cannot
	// back up in time becomes an allow with a warning. Nil: no such check.
	Freshness Freshness
	Metrics   *Metrics
}

var _ admission.Handler = (*Handler)(nil)

// judgedKinds are the kinds fitgate judges, at the versions it registers.
var judgedKinds = map[schema.GroupVersionKind]bool{
	{Version: "v1", Kind: "Pod"}:                        true,
	{Version: "v1", Kind: "ReplicationController"}:      true,
	{Group: "apps", Version: "v1", Kind: "Deployment"}:  true,
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:  true,
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}: true,
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}:   true,
	{Group: "batch", Version: "v1", Kind: "Job"}:        true,
	{Group: "batch", Version: "v1", Kind: "CronJob"}:    true,
}

// judgedOwners are controller kinds (by group) whose children fitgate
// never denies, because it judged the owner.
var judgedOwners = map[schema.GroupKind]bool{
	{Kind: "ReplicationController"}:      true,
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "batch", Kind: "Job"}:        true,
	{Group: "batch", Kind: "CronJob"}:    true,
}

// request is what the handler learnt about one admission request.
type request struct {
	kind       string
	meta       metav1.Object
	namespace  string
	barePod    bool // a Pod without any controller
	owned      bool // its controller is a kind fitgate judges
	scaleUp    bool // only the additional replicas of an update are judged
	newTmpl    bool // an update changed the pod template
	decision   Decision
	workload   *feasibility.Workload
	report     *feasibility.Report
	unverified map[int]bool // reasons (by index) a live GET could not confirm
	// staleVolumes: a claim or class the cache said was missing exists.
	staleVolumes bool
}

// Handle judges one admission request.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	kind := req.Kind.Kind
	resp, mode, verdict, result := h.handle(ctx, req)
	if mode != "" {
		h.Metrics.observeDecision(kind, verdict, mode, result, time.Since(start))
	}
	return resp
}

// handle returns the response and, for metrics, the mode, verdict and
// result; an empty mode means the request was not for fitgate at all.
func (h *Handler) handle(ctx context.Context, req admission.Request) (admission.Response, string, string, string) {
	log := logf.FromContext(ctx)
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	if !judgedKinds[gvk] || req.SubResource != "" {
		return admission.Allowed("fitgate does not judge " + kindString(gvk)), "", "", ""
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed(""), "", "", ""
	}
	if gvk.Kind == "Pod" && req.Operation == admissionv1.Update {
		// The scheduling-relevant fields of an existing pod are immutable.
		return admission.Allowed(""), "", "", ""
	}
	if n := len(req.Object.Raw); n > h.maxObjectBytes() {
		msg := fmt.Sprintf("fitgate: %s %q is %s, over the %s fitgate checks; not checked",
			strings.ToLower(gvk.Kind), req.Name, formatBytes(n), formatBytes(h.maxObjectBytes()))
		log.Info("object too large to check", "bytes", n)
		return withWarnings(admission.Allowed(""), msg), "unknown", VerdictUnchecked, "warned"
	}
	// An object fitgate cannot read was still accepted by the apiserver's
	// own validation; refusing it here would block a deploy over fitgate's
	// limitation, and failurePolicy: Ignore would not help (a response that
	// says "not allowed" is a denial). Allow it, and say it was not checked.
	obj, err := requestObject(req.Object, gvk)
	if err != nil {
		log.Error(err, "cannot decode object")
		return withWarnings(admission.Allowed(""), truncate(fmt.Sprintf("fitgate: could not read this %s, so it was not checked: %v",
			strings.ToLower(gvk.Kind), err), maxWarningLen)), "unknown", VerdictUnchecked, "warned"
	}
	r := &request{kind: gvk.Kind, namespace: req.Namespace}
	r.meta, _ = obj.(metav1.Object)
	if r.meta == nil {
		return withWarnings(admission.Allowed(""), fmt.Sprintf("fitgate: this %s has no object metadata, so it was not checked",
			strings.ToLower(gvk.Kind))), "unknown", VerdictUnchecked, "warned"
	}
	if r.namespace == "" {
		r.namespace = r.meta.GetNamespace()
	}
	ctrl := metav1.GetControllerOf(r.meta)
	r.barePod = gvk.Kind == "Pod" && ctrl == nil
	if ctrl != nil {
		if gv, err := schema.ParseGroupVersion(ctrl.APIVersion); err == nil {
			r.owned = judgedOwners[schema.GroupKind{Group: gv.Group, Kind: ctrl.Kind}]
		}
	}

	budgetCtx, cancel := context.WithTimeout(ctx, h.budget())
	defer cancel()

	r.decision = h.resolveMode(budgetCtx, r)
	modeLabel := string(r.decision.Mode)
	if r.decision.Source == SourceExempt {
		modeLabel = string(SourceExempt)
	}
	if r.decision.Mode == ModeOff {
		return admission.Allowed(""), modeLabel, VerdictUnchecked, "allowed"
	}
	var notes []string
	if r.decision.Warning != "" {
		notes = append(notes, r.decision.Warning)
	}

	w, err := feasibility.WorkloadFromObject(obj)
	if err != nil {
		log.Info("not a workload fitgate can judge", "error", err.Error())
		return withWarnings(admission.Allowed(""), notes...), modeLabel, VerdictUnchecked, "allowed"
	}
	w.Namespace = r.namespace
	r.workload = w
	if req.Operation == admissionv1.Update {
		judge, err := h.judgeUpdate(r, req, gvk)
		if err != nil {
			log.Error(err, "cannot decode old object")
			return withWarnings(admission.Allowed(""), notes...), modeLabel, VerdictUnchecked, "allowed"
		}
		if !judge {
			return withWarnings(admission.Allowed(""), notes...), modeLabel, VerdictUnchecked, "allowed"
		}
	}

	rep, synced, err := h.check(budgetCtx, w)
	ref := objectRef(w.Kind, w.Name)
	unchecked := func(note string) (admission.Response, string, string, string) {
		resp := withWarnings(admission.Allowed(""), append(notes, truncate(note, maxWarningLen))...)
		resp.AuditAnnotations = map[string]string{AuditVerdict: VerdictUnchecked, AuditMode: string(r.decision.Mode)}
		return resp, modeLabel, VerdictUnchecked, "warned"
	}
	switch {
	case err != nil:
		log.Error(err, "check failed; allowing")
		return unchecked(fmt.Sprintf("fitgate: %s was not checked: %v", ref, err))
	case !synced:
		return unchecked(fmt.Sprintf("fitgate: the cluster cache is still syncing; %s was not checked", ref))
	}
	r.report = rep
	h.confirmReferences(budgetCtx, r)
	resp, result := h.decide(r, notes)
	if result == "denied" && h.Freshness != nil {
		var note string
		if resp, result, note = h.rejudge(budgetCtx, r, notes); note != "" {
			return unchecked(note)
		}
	}
	verdict := string(r.report.Verdict)
	resp.AuditAnnotations = auditAnnotations(r)
	if result == "denied" {
		log.Info("denied", "verdict", verdict, "mode", r.decision.Mode, "reasons", resp.AuditAnnotations[AuditReasons], "dryRun", req.DryRun != nil && *req.DryRun)
	} else {
		log.V(1).Info("allowed", "verdict", verdict, "mode", r.decision.Mode, "reasons", resp.AuditAnnotations[AuditReasons])
	}
	return resp, modeLabel, verdict, result
}

// rejudge runs before a denial when h.Freshness is set. It waits for the
// cache to hold every node at least as new as the API server has it now,
// i.e. after this request arrived, then judges again: the first check may
// have missed a node added just before, whether or not the wait was
// needed (an event can land between the check and the LIST). note, when
// set, says why the request is allowed unchecked instead.
//
// fitgate_live_lookups_total{kind="Node"} counts the outcomes: confirmed
// (still denied), averted (the denial was stale), behind, error.
func (h *Handler) rejudge(ctx context.Context, r *request, notes []string) (resp admission.Response, result, note string) {
	log := logf.FromContext(ctx)
	ref := objectRef(r.workload.Kind, r.workload.Name)
	fctx, cancel := context.WithTimeout(ctx, MaxFreshnessWait)
	current, waited, err := h.Freshness.WaitForNodes(fctx)
	cancel()
	switch {
	case err != nil:
		h.Metrics.observeLookup(feasibility.KindNode, "error")
		log.Error(err, "cannot confirm the cache is current; allowing")
		return resp, "", fmt.Sprintf("fitgate: %s was not checked: could not confirm the cluster cache is current", ref)
	case !current:
		h.Metrics.observeLookup(feasibility.KindNode, "behind")
		log.Info("the cluster cache is behind the API server; allowing")
		return resp, "", fmt.Sprintf("fitgate: the cluster cache is behind the API server; %s was not checked", ref)
	}
	rep, synced, err := h.check(ctx, r.workload)
	switch {
	case err != nil:
		return resp, "", fmt.Sprintf("fitgate: %s was not checked: %v", ref, err)
	case !synced:
		return resp, "", fmt.Sprintf("fitgate: the cluster cache is still syncing; %s was not checked", ref)
	}
	r.report, r.unverified, r.staleVolumes = rep, nil, false
	h.confirmReferences(ctx, r)
	resp, result = h.decide(r, notes)
	outcome := "confirmed"
	if result != "denied" {
		outcome = "averted"
		log.Info("a denial on a stale cache was averted", "waitedForCache", waited)
	}
	h.Metrics.observeLookup(feasibility.KindNode, outcome)
	return resp, result, ""
}

// resolveMode reads the namespace's labels from the cache, or with one live
// GET for a namespace the cache has not seen yet.
func (h *Handler) resolveMode(ctx context.Context, r *request) Decision {
	if h.Policy.IsExempt(r.namespace) {
		return h.Policy.Resolve(r.namespace, nil, r.barePod)
	}
	labels, found := h.Source.NamespaceLabels(r.namespace)
	if !found && h.Live != nil {
		l, ok, err := h.Live.NamespaceLabels(ctx, r.namespace)
		switch {
		case err != nil:
			h.Metrics.observeLookup(feasibility.KindNamespace, "error")
			logf.FromContext(ctx).Error(err, "live namespace lookup failed; using the default mode", "namespace", r.namespace)
		case ok:
			h.Metrics.observeLookup(feasibility.KindNamespace, "found")
			labels = l
		default:
			h.Metrics.observeLookup(feasibility.KindNamespace, "missing")
		}
	}
	return h.Policy.Resolve(r.namespace, labels, r.barePod)
}

// judgeUpdate decides whether an update of a replicated kind needs judging,
// and narrows the workload to the additional replicas when only replicas
// grew.
func (h *Handler) judgeUpdate(r *request, req admission.Request, gvk schema.GroupVersionKind) (bool, error) {
	if len(req.OldObject.Raw) == 0 {
		return true, nil // no old object to compare with: judge it like a create
	}
	old, err := requestObject(req.OldObject, gvk)
	if err != nil {
		return false, fmt.Errorf("fitgate: decoding old %s: %w", gvk.Kind, err)
	}
	oldW, err := feasibility.WorkloadFromObject(old)
	if err != nil {
		return true, nil
	}
	w := r.workload
	if !equality.Semantic.DeepEqual(oldW.Template, w.Template) ||
		!equality.Semantic.DeepEqual(oldW.VolumeClaimTemplates, w.VolumeClaimTemplates) {
		r.newTmpl = true
		return true, nil
	}
	if w.IsDaemonSet() || w.Replicas <= oldW.Replicas {
		return false, nil
	}
	w.Replicas -= oldW.Replicas
	r.scaleUp = true
	return true, nil
}

// check runs the engine within the budget. The engine cannot be stopped
// once started; a check past the budget finishes in the background and its
// result is dropped.
func (h *Handler) check(ctx context.Context, w *feasibility.Workload) (*feasibility.Report, bool, error) {
	type result struct {
		rep    *feasibility.Report
		synced bool
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("internal error: %v", p)}
			}
		}()
		rep, synced := h.Source.Check(w, h.Options)
		ch <- result{rep: rep, synced: synced}
	}()
	select {
	case res := <-ch:
		if res.err == nil && res.synced && res.rep == nil {
			res.err = errors.New("internal error: no report")
		}
		return res.rep, res.synced, res.err
	case <-ctx.Done():
		return nil, true, fmt.Errorf("the check did not finish within %v", h.budget())
	}
}

// Reference kinds: findings about an object that does not exist (yet).
var referenceKinds = map[feasibility.Code]feasibility.Kind{
	feasibility.CodeSecretNotFound:         feasibility.KindSecret,
	feasibility.CodeConfigMapNotFound:      feasibility.KindConfigMap,
	feasibility.CodeServiceAccountNotFound: feasibility.KindServiceAccount,
	feasibility.CodePriorityClassNotFound:  feasibility.KindPriorityClass,
	feasibility.CodeRuntimeClassNotFound:   feasibility.KindRuntimeClass,
	feasibility.CodeStorageClassNotFound:   feasibility.KindStorageClass,
	feasibility.CodePVCNotFound:            feasibility.KindPVC,
	feasibility.CodeNoDefaultStorageClass:  feasibility.KindStorageClass,
	feasibility.CodeNamespaceNotFound:      feasibility.KindNamespace,
}

// podWaits are references a bare pod waits for rather than being refused:
// the kubelet retries mounts and env, the scheduler waits for claims.
var podWaits = map[feasibility.Code]bool{
	feasibility.CodeSecretNotFound: true, feasibility.CodeConfigMapNotFound: true,
	feasibility.CodePVCNotFound: true, feasibility.CodeStorageClassNotFound: true,
	feasibility.CodeNoDefaultStorageClass: true,
}

// confirmReferences asks the API server about each missing reference,
// drops the findings the cache was wrong about, and marks those it could
// not confirm.
func (h *Handler) confirmReferences(ctx context.Context, r *request) {
	rep := r.report
	lookups := 0
	var kept []feasibility.Reason
	r.unverified = map[int]bool{}
	confirmed := map[int]bool{} // by index in kept
	for _, reason := range rep.Reasons {
		kind, isRef := referenceKinds[reason.Code]
		if !isRef || reason.Severity == feasibility.SeverityInfo {
			kept = append(kept, reason)
			continue
		}
		names, namespace := referenceNames(r.workload, reason)
		if h.Live == nil || len(names) == 0 || lookups+len(names) > h.maxLiveLookups() {
			r.unverified[len(kept)] = true
			kept = append(kept, reason)
			continue
		}
		lookups += len(names)
		missing, failed := false, false
		for _, name := range names {
			ok, err := h.Live.Exists(ctx, kind, namespace, name)
			switch {
			case err != nil:
				h.Metrics.observeLookup(kind, "error")
				logf.FromContext(ctx).Error(err, "live lookup failed", "kind", kind, "name", name)
				failed = true
			case ok:
				h.Metrics.observeLookup(kind, "found")
			default:
				h.Metrics.observeLookup(kind, "missing")
				missing = true
			}
		}
		switch {
		case missing:
			confirmed[len(kept)] = true
			kept = append(kept, reason)
		case failed:
			r.unverified[len(kept)] = true
			kept = append(kept, reason)
		default: // the cache was behind: the object exists
			if kind == feasibility.KindPVC || kind == feasibility.KindStorageClass {
				r.staleVolumes = true
			}
		}
	}
	if len(kept) == len(rep.Reasons) {
		return
	}
	fixed := *rep
	fixed.Reasons = kept
	if r.staleVolumes {
		// A claim or class the cache missed also made the engine fail the
		// pod before looking at nodes ("unbound immediate
		// PersistentVolumeClaims"). Without it the pod's placement cannot
		// be judged this time: drop those findings too.
		fixed.Reasons = nil
		unverified := map[int]bool{}
		covered := false
		for i, x := range kept {
			if x.Field == "" && volumePrefilterCodes[x.Code] && !confirmed[i] {
				continue
			}
			if r.unverified[i] {
				unverified[len(fixed.Reasons)] = true
			}
			fixed.Reasons = append(fixed.Reasons, x)
			covered = covered || (x.Field == "" && placementCodes[x.Code])
		}
		r.unverified = unverified
		if !covered {
			fixed.Summary, fixed.Hint, fixed.ReplicasFit, fixed.Placed = "", "", fixed.Replicas, fixed.Replicas
		}
	}
	restoreFit(&fixed)
	fixed.Verdict = feasibility.VerdictOf(&fixed)
	r.report = &fixed
}

// blockingReferences keep every pod from being created (the API server's
// admission refuses them), so the engine reports no replica fitting.
var blockingReferences = map[feasibility.Code]bool{
	feasibility.CodePriorityClassNotFound: true, feasibility.CodeRuntimeClassNotFound: true,
	feasibility.CodeServiceAccountNotFound: true, feasibility.CodeNamespaceNotFound: true,
}

// restoreFit recomputes how many replicas fit once stale findings that
// blocked every pod are gone: all of them when placement found no
// shortfall, capped by what quotas admit.
func restoreFit(rep *feasibility.Report) {
	if rep.ReplicasFit == rep.Replicas {
		return
	}
	admitted := rep.Replicas
	for _, x := range rep.Reasons {
		if x.Severity == feasibility.SeverityInfo {
			continue
		}
		if blockingReferences[x.Code] {
			return // still blocked
		}
		if x.Code == feasibility.CodeQuotaExceeded {
			var n int32
			if _, err := fmt.Sscan(x.Details["admitted"], &n); err == nil && n < admitted {
				admitted = n
			}
		}
	}
	rep.ReplicasFit = min(rep.Placed, admitted)
}

// volumePrefilterCodes fail a pod before any node is looked at because of
// its claims.
var volumePrefilterCodes = map[feasibility.Code]bool{
	feasibility.CodePVCNotFound: true, feasibility.CodePVCUnbound: true, feasibility.CodePVNotFound: true,
}

// referenceNames returns the names a reference finding is about, and the
// namespace to look in ("" for cluster-scoped kinds).
func referenceNames(w *feasibility.Workload, r feasibility.Reason) ([]string, string) {
	spec := &w.Template.Spec
	switch r.Code {
	case feasibility.CodeSecretNotFound, feasibility.CodeConfigMapNotFound, feasibility.CodeServiceAccountNotFound:
		if n := r.Details["name"]; n != "" {
			return []string{n}, w.Namespace
		}
		if r.Code == feasibility.CodeServiceAccountNotFound {
			n := spec.ServiceAccountName
			if n == "" {
				n = "default"
			}
			return []string{n}, w.Namespace
		}
	case feasibility.CodePriorityClassNotFound:
		if spec.PriorityClassName != "" {
			return []string{spec.PriorityClassName}, ""
		}
	case feasibility.CodeRuntimeClassNotFound:
		if spec.RuntimeClassName != nil && *spec.RuntimeClassName != "" {
			return []string{*spec.RuntimeClassName}, ""
		}
	case feasibility.CodeStorageClassNotFound:
		if n := r.Details["storageClassName"]; n != "" {
			return []string{n}, ""
		}
	case feasibility.CodeNamespaceNotFound:
		return []string{w.Namespace}, ""
	case feasibility.CodePVCNotFound:
		var names []string
		for _, v := range spec.Volumes {
			if v.PersistentVolumeClaim != nil && !slices.Contains(names, v.PersistentVolumeClaim.ClaimName) {
				names = append(names, v.PersistentVolumeClaim.ClaimName)
			}
		}
		return names, w.Namespace
	}
	return nil, ""
}

// effectiveSeverity is how a finding counts towards a denial for this
// request, which can be milder than the engine's severity.
func (r *request) effectiveSeverity(i int, reason feasibility.Reason) feasibility.Severity {
	sev := reason.Severity
	if _, isRef := referenceKinds[reason.Code]; isRef && sev != feasibility.SeverityInfo {
		switch {
		case r.unverified[i]:
			return feasibility.SeverityInfo // never deny on what could not be confirmed
		case r.kind != "Pod":
			// Ordering: `kubectl apply -f dir/` or a chart may create the
			// object right after, and the controller waits for it.
			return feasibility.SeverityInfo
		case podWaits[reason.Code] && sev == feasibility.SeverityPermanent:
			sev = feasibility.SeverityTransient
		}
	}
	if r.newTmpl && sev == feasibility.SeverityTransient {
		// The old pods still hold resources until the rollout replaces them.
		return feasibility.SeverityInfo
	}
	return sev
}

// decide applies the mode to the findings.
func (h *Handler) decide(r *request, notes []string) (admission.Response, string) {
	rep := r.report
	reasons := slices.Clone(rep.Reasons)
	if rep.ReplicasFit < rep.Replicas && feasibility.WorstSeverity(reasons) == feasibility.SeverityInfo {
		msg := rep.Summary
		if msg == "" {
			msg = fmt.Sprintf("only %d of %d replicas fit now", rep.ReplicasFit, rep.Replicas)
		}
		reasons = append(reasons, feasibility.Reason{Code: feasibility.CodeReplicasPartiallyFit,
			Severity: feasibility.SeverityTransient, Message: msg})
	}
	mode := r.decision.Mode
	if r.owned {
		mode = ModeWarn // the owner was the place to deny
	}
	var denied, warned []feasibility.Reason
	for i, reason := range reasons {
		if mode.Denies(r.effectiveSeverity(i, reason)) {
			denied = append(denied, reason)
		} else {
			warned = append(warned, reason)
		}
	}
	m := Message{Report: rep, ScaleUp: r.scaleUp}
	warnings := m.Warnings(warned, h.maxWarnings())
	warnings = append(warnings, notes...)
	if len(denied) > 0 {
		resp := admission.Denied(m.Denial(denied))
		return withWarnings(resp, warnings...), "denied"
	}
	if len(warnings) > 0 {
		return withWarnings(admission.Allowed(""), warnings...), "warned"
	}
	return admission.Allowed(""), "allowed"
}

func auditAnnotations(r *request) map[string]string {
	rep := r.report
	var codes []string
	for _, x := range rep.Reasons {
		if !slices.Contains(codes, string(x.Code)) {
			codes = append(codes, string(x.Code))
		}
	}
	return map[string]string{
		AuditVerdict:     string(rep.Verdict),
		AuditReasons:     strings.Join(codes, ","),
		AuditReplicasFit: fmt.Sprintf("%d/%d", rep.ReplicasFit, rep.Replicas),
		AuditMode:        string(r.decision.Mode),
	}
}

func withWarnings(resp admission.Response, warnings ...string) admission.Response {
	if len(warnings) > 0 {
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	return resp
}

// kindString is "apps/v1 Deployment" rather than "apps/v1, Kind=Deployment".
func kindString(gvk schema.GroupVersionKind) string {
	return strings.TrimSpace(gvk.GroupVersion().String() + " " + gvk.Kind)
}

func (h *Handler) budget() time.Duration {
	if h.Budget > 0 {
		return h.Budget
	}
	return DefaultBudget
}

func (h *Handler) maxObjectBytes() int {
	if h.MaxObjectBytes > 0 {
		return h.MaxObjectBytes
	}
	return DefaultMaxObjectBytes
}

func (h *Handler) maxWarnings() int {
	if h.MaxWarnings > 0 {
		return h.MaxWarnings
	}
	return DefaultMaxWarnings
}

func (h *Handler) maxLiveLookups() int {
	if h.MaxLiveLookups > 0 {
		return h.MaxLiveLookups
	}
	return DefaultMaxLiveLookups
}

func formatBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
