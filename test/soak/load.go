package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/fitgate/fitgate/test/controlplane"
)

// maxInFlight bounds concurrent requests, as the API server's connection
// pool to a webhook does.
const maxInFlight = 32

// template is one kind of request of the mix.
type template struct {
	name   string
	weight int
	req    admissionv1.AdmissionRequest
}

type generator struct {
	url    string
	client *http.Client
	mix    []template // repeated by weight
	stats  *stats
}

func newGenerator(cp *controlplane.ControlPlane, url string, cl *cluster) (*generator, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cp.CACertPEM()) {
		return nil, errors.New("cannot read the cluster CA")
	}
	g := &generator{url: url, stats: &stats{}, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxConnsPerHost: maxInFlight, MaxIdleConnsPerHost: maxInFlight, IdleConnTimeout: 90 * time.Second,
	}}}
	for _, t := range templates(cl) {
		for range t.weight {
			g.mix = append(g.mix, t)
		}
	}
	return g, nil
}

func podSpec(cpu string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse("128Mi")}}}}}
}

func tmpl(app, cpu string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}}, Spec: podSpec(cpu)}
}

func sel(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

// templates is the mix: mostly pods and workloads that fit, some that
// warn, a few denials (each costs a node LIST, see webhook.Freshness),
// missing references (live lookups), updates, and exempt namespaces.
func templates(cl *cluster) []template {
	ns := cl.namespaces
	mk := func(name string, weight int, op admissionv1.Operation, obj, old runtime.Object) template {
		gvk := obj.GetObjectKind().GroupVersionKind()
		m := obj.(metav1.Object)
		req := admissionv1.AdmissionRequest{Operation: op, Namespace: m.GetNamespace(), Name: m.GetName(),
			Kind:     metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource: metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"},
			Object:   runtime.RawExtension{Raw: mustJSON(obj)}}
		if old != nil {
			req.OldObject = runtime.RawExtension{Raw: mustJSON(old)}
		}
		return template{name: name, weight: weight, req: req}
	}
	pod := func(namespace, name, cpu string) *corev1.Pod {
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: podSpec(cpu)}
	}
	deploy := func(namespace, name, cpu string, replicas int32) *appsv1.Deployment {
		return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: sel(name), Template: tmpl(name, cpu)}}
	}
	withSecret := pod(ns["enforce"], "with-secret", "100m")
	withSecret.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent"}}}}
	spread := deploy(ns["strict"], "spread", "500m", 4)
	spread.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1,
		TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel("spread")}}
	sts := &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns["warn"], Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(3)), Selector: sel("db"), Template: tmpl("db", "1"),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("fast"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}}}
	ds := &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns[""], Name: "agent"}, Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: tmpl("agent", "100m")}}
	job := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns["warn"], Name: "batch"},
		Spec:       batchv1.JobSpec{Parallelism: ptr.To(int32(6)), Template: tmpl("batch", "2")}}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	return []template{
		mk("pod fits", 30, admissionv1.Create, pod(ns["enforce"], "small", "100m"), nil),
		mk("deployment fits", 15, admissionv1.Create, deploy(ns[""], "web", "250m", 3), nil),
		mk("deployment partly fits (warn)", 10, admissionv1.Create, deploy(ns["warn"], "wide", "3", 12), nil),
		mk("spread deployment", 8, admissionv1.Create, spread, nil),
		mk("scale up", 8, admissionv1.Update, deploy(ns["enforce"], "web", "250m", 5), deploy(ns["enforce"], "web", "250m", 2)),
		mk("statefulset, missing class", 5, admissionv1.Create, sts, nil),
		mk("daemonset", 5, admissionv1.Create, ds, nil),
		mk("job", 5, admissionv1.Create, job, nil),
		mk("pod, missing secret", 5, admissionv1.Create, withSecret, nil),
		mk("pod too big (denied)", 4, admissionv1.Create, pod(ns[""], "huge", "64"), nil),
		mk("exempt", 5, admissionv1.Create, pod("kube-system", "sys", "64"), nil),
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// run sends rate requests per second until ctx ends.
func (g *generator) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		t := g.mix[i%len(g.mix)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.send(t, types.UID(fmt.Sprintf("soak-%d", i)))
		}()
	}
}

func (g *generator) send(t template, uid types.UID) {
	req := t.req
	req.UID = uid
	body := mustJSON(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req})
	start := time.Now()
	resp, err := g.client.Post(g.url, "application/json", bytes.NewReader(body))
	if err != nil {
		g.stats.fail(t.name, err.Error())
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		g.stats.fail(t.name, fmt.Sprintf("HTTP %d %v", resp.StatusCode, err))
		return
	}
	var out admissionv1.AdmissionReview
	switch {
	case json.Unmarshal(data, &out) != nil || out.Response == nil:
		g.stats.fail(t.name, "not an AdmissionReview")
	case out.Response.UID != uid:
		g.stats.fail(t.name, "wrong UID")
	case !out.Response.Allowed && (out.Response.Result == nil || out.Response.Result.Code != http.StatusForbidden):
		g.stats.fail(t.name, fmt.Sprintf("refused: %+v", out.Response.Result))
	default:
		g.stats.ok(took, out.Response.Allowed, len(out.Response.Warnings) > 0, strings.Contains(strings.Join(out.Response.Warnings, " "), "not checked"))
	}
}

// stats are the traffic's totals.
type stats struct {
	mu                     sync.Mutex
	latencies              []time.Duration
	errors                 map[string]int
	allowed, denied, warns int
	unchecked              atomic.Int64
}

func (s *stats) ok(took time.Duration, allowed, warned, unchecked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, took)
	if allowed {
		s.allowed++
	} else {
		s.denied++
	}
	if warned {
		s.warns++
	}
	if unchecked {
		s.unchecked.Add(1)
	}
}

func (s *stats) fail(what, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errors == nil {
		s.errors = map[string]int{}
	}
	s.errors[what+": "+why]++
}

func (s *stats) counts() (ok, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.errors {
		failed += n
	}
	return len(s.latencies), failed
}

func (s *stats) summary() string {
	ok, failed := s.counts()
	return fmt.Sprintf("%d answered, %d errors", ok, failed)
}

func (s *stats) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*p))]
}
