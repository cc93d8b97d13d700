package feasibility

// Verdict says whether a workload's pods can run.
type Verdict string

const (
	// Fits: the pod, or every replica, can be placed now.
	Fits Verdict = "fits"
	// Transient: it cannot be placed now, but could be later without anyone
	// changing the workload or the cluster's configuration (capacity in use,
	// preemption, an autoscaler adding a node).
	Transient Verdict = "transient"
	// Permanent: it cannot run as the cluster is configured.
	Permanent Verdict = "permanent"
)

// Severity grades a single reason. A workload's verdict is the worst severity
// among its reasons, with Info never counting.
type Severity string

const (
	SeverityInfo      Severity = "info"
	SeverityTransient Severity = "transient"
	SeverityPermanent Severity = "permanent"
)

// Reason is one finding. Code is stable for machines; Message is for people.
type Reason struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Field is the path of the field at fault, relative to the workload
	// object (e.g. "spec.template.spec.containers[0].resources.requests.cpu"),
	// when one field is.
	Field string `json:"field,omitempty"`
	// Details holds the numbers behind the message, e.g. "requested": "6".
	Details map[string]string `json:"details,omitempty"`
}

// Report is the engine's answer for one workload.
type Report struct {
	Kind      string  `json:"kind"`
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	Verdict   Verdict `json:"verdict"`
	// Replicas is how many pods the workload wants at once; for a DaemonSet,
	// the number of nodes it targets.
	Replicas int32 `json:"replicas"`
	// ReplicasFit is how many of them can be placed now, simulated one after
	// another so that each placement consumes capacity.
	ReplicasFit int32 `json:"replicasFit"`
	// Placed is how many replicas the scheduler's filters alone could place,
	// before quotas and admission rejections (which ReplicasFit includes).
	Placed int32 `json:"placed"`
	// Gated is true when the pod has scheduling gates: the scheduler will not
	// consider it until they are removed. The verdict judges the pod as it
	// will be once ungated.
	Gated bool `json:"gated,omitempty"`
	// Summary speaks the scheduler's language, e.g.
	// "0/12 nodes are available: 7 Insufficient cpu, 5 node(s) had untolerated taint(s)."
	// It is empty when every replica fits.
	Summary string `json:"summary,omitempty"`
	// Hint is one actionable sentence, e.g.
	// "requests 6 cpu; largest free node has 3.5 cpu; largest node allocatable is 8".
	Hint    string   `json:"hint,omitempty"`
	Reasons []Reason `json:"reasons"`
}

// Code is a stable identifier of a kind of finding.
type Code string

// Node filter codes, one per scheduler failure reason.
const (
	CodeNodeNameNotFound       Code = "NodeNameNotFound"
	CodeNodeNameMismatch       Code = "NodeNameMismatch"
	CodeNodeUnschedulable      Code = "NodeUnschedulable"
	CodeUntoleratedTaint       Code = "UntoleratedTaint"
	CodeNodeAffinityMismatch   Code = "NodeAffinityMismatch"
	CodeHostPortConflict       Code = "HostPortConflict"
	CodeInsufficientCPU        Code = "InsufficientCPU"
	CodeInsufficientMemory     Code = "InsufficientMemory"
	CodeInsufficientEphemeral  Code = "InsufficientEphemeralStorage"
	CodeInsufficientResource   Code = "InsufficientResource"
	CodeTooManyPods            Code = "TooManyPods"
	CodeTopologySpread         Code = "TopologySpreadConstraint"
	CodeTopologyLabelMissing   Code = "TopologyLabelMissing"
	CodePodAffinity            Code = "PodAffinityMismatch"
	CodePodAntiAffinity        Code = "PodAntiAffinityConflict"
	CodeExistingPodAntiAffnity Code = "ExistingPodAntiAffinityConflict"
	CodeVolumeNodeAffinity     Code = "VolumeNodeAffinityConflict"
	CodeVolumeBindConflict     Code = "VolumeBindConflict"
	CodeVolumeZoneConflict     Code = "VolumeZoneConflict"
	CodeVolumeCountExceeded    Code = "VolumeCountExceeded"
	CodeReadWriteOncePodInUse  Code = "ReadWriteOncePodInUse"
	CodeDiskConflict           Code = "DiskConflict"
	CodeNoNodes                Code = "NoNodes"
)

// Cluster-wide codes, for what the scheduler never sees.
const (
	CodeSchedulingGated        Code = "SchedulingGated"
	CodeQuotaExceeded          Code = "QuotaExceeded"
	CodeQuotaTooSmall          Code = "QuotaTooSmall"
	CodeQuotaMissingField      Code = "QuotaRequiresField"
	CodeLimitRangeMax          Code = "LimitRangeMaxExceeded"
	CodeLimitRangeMin          Code = "LimitRangeMinNotMet"
	CodeLimitRangeRatio        Code = "LimitRangeRatioExceeded"
	CodeSecretNotFound         Code = "SecretNotFound"
	CodeConfigMapNotFound      Code = "ConfigMapNotFound"
	CodeServiceAccountNotFound Code = "ServiceAccountNotFound"
	CodePriorityClassNotFound  Code = "PriorityClassNotFound"
	CodeRuntimeClassNotFound   Code = "RuntimeClassNotFound"
	CodeUnknownScheduler       Code = "UnknownScheduler"
	CodePVCNotFound            Code = "PersistentVolumeClaimNotFound"
	CodePVCUnbound             Code = "PersistentVolumeClaimUnbound"
	CodePVNotFound             Code = "PersistentVolumeNotFound"
	CodeStorageClassNotFound   Code = "StorageClassNotFound"
	CodeNoDefaultStorageClass  Code = "NoDefaultStorageClass"
	CodeNamespaceNotFound      Code = "NamespaceNotFound"
	CodeInvalidSpec            Code = "InvalidSpec"
	CodePreemptionWouldHelp    Code = "PreemptionWouldHelp"
	CodeAutoscalerWouldHelp    Code = "AutoscalerWouldHelp"
	CodeReplicasPartiallyFit   Code = "ReplicasPartiallyFit"
)
