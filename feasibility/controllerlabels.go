package feasibility

import v1 "k8s.io/api/core/v1"

// This file adds the labels a workload controller stamps on the pods it
// creates, which a template never carries: a Deployment's ReplicaSet adds
// pod-template-hash, StatefulSets and DaemonSets add controller-revision-hash,
// and a Job adds its controller-uid. matchLabelKeys in topology spread and
// pod (anti-)affinity exist to pick exactly these up, so that pods of an
// older revision stop counting. Without them the engine would count an old
// revision's pods against the new one: a rolling update that spreads fine
// would be judged not to fit.
//
// The values are unknown until the controller runs (a hash of the defaulted
// template, a UID), so they are placeholders no running pod carries: the
// workload is judged as a new revision. Left out: per-pod labels (pod-name,
// pod-index, job-completion-index), which differ between replicas.

// newRevisionLabelValue stands for the hash or UID of a revision not yet
// created.
const newRevisionLabelValue = "fitgate-new-revision"

var controllerRevisionLabels = map[string][]string{
	"Deployment":  {"pod-template-hash"},
	"StatefulSet": {"controller-revision-hash"},
	"DaemonSet":   {"controller-revision-hash"},
	"Job":         {"batch.kubernetes.io/controller-uid", "controller-uid"},
	"CronJob":     {"batch.kubernetes.io/controller-uid", "controller-uid"},
}

// addControllerLabels gives pod the revision labels its controller will add,
// unless the template already sets them.
func addControllerLabels(kind string, pod *v1.Pod) {
	keys := controllerRevisionLabels[kind]
	if len(keys) == 0 {
		return
	}
	out := make(map[string]string, len(pod.Labels)+len(keys))
	for k, v := range pod.Labels {
		out[k] = v
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			out[k] = newRevisionLabelValue
		}
	}
	pod.Labels = out
}
