package webhook

// The fast path's contract (fastdecode.go): it returns exactly what the v2
// path returns, or falls back. These tests hold it to that on the fuzz
// corpora, on the load test's realistic objects, on random objects of
// every judged kind and on mutations of them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"

	"github.com/fitgate/fitgate/webhook/internal/decodegen/gen"
)

func TestGeneratedDecoderIsFresh(t *testing.T) {
	want, err := gen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated_fastdecode.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("zz_generated_fastdecode.go is stale: run go generate ./webhook")
	}
}

func TestFastRootsAreTheLeanKinds(t *testing.T) {
	for gvk := range leanKinds {
		if fastRoots[gvk] == nil {
			t.Errorf("no fast decoder for %v", gvk)
		}
	}
	for gvk := range fastRoots {
		if _, ok := leanKinds[gvk]; !ok {
			t.Errorf("fast decoder for %v, which is not judged", gvk)
		}
	}
}

// agreeDecode checks fastDecode against decodeV2 on raw as gvk, and
// reports whether the fast path decoded it.
func agreeDecode(t testing.TB, raw []byte, gvk schema.GroupVersionKind) bool {
	t.Helper()
	if len(raw) == 0 {
		return false // decode refuses it before either path
	}
	before := fastPanics.Load()
	fast, ferr := fastDecode(raw, gvk)
	if fastPanics.Load() != before {
		t.Fatalf("fast path panicked on %s as %v", truncate(string(raw), 300), gvk)
	}
	if ferr != nil {
		if ferr != errFallback {
			t.Fatalf("fast path error %v, want errFallback", ferr)
		}
		return false
	}
	slow, serr := decodeV2(raw, gvk)
	if kerr := kindMatches(fast, gvk); kerr != nil {
		if serr == nil || serr.Error() != kerr.Error() {
			t.Fatalf("fast path's kind check says %v, v2 path %v", kerr, serr)
		}
		return true
	}
	if serr != nil {
		t.Fatalf("fast path decoded what v2 refuses (%v): %s", serr, truncate(string(raw), 300))
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast and v2 paths disagree on %s as %v:\nfast %+v\nv2   %+v", truncate(string(raw), 500), gvk, fast, slow)
	}
	return true
}

// agreeReview checks fastDecodeReview against decodeReviewV2, and reports
// whether the fast path decoded the review.
func agreeReview(t testing.TB, body []byte) bool {
	t.Helper()
	before := fastPanics.Load()
	fast, ferr := fastDecodeReview(body)
	if fastPanics.Load() != before {
		t.Fatalf("fast path panicked on %s", truncate(string(body), 300))
	}
	if ferr != nil {
		if ferr != errFallback {
			t.Fatalf("fast path error %v, want errFallback", ferr)
		}
		return false
	}
	slow, serr := decodeReviewV2(body)
	if serr != nil {
		t.Fatalf("fast path decoded a review v2 refuses (%v): %s", serr, truncate(string(body), 300))
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast and v2 paths disagree on %s:\nfast %+v\nv2   %+v", truncate(string(body), 500), fast, slow)
	}
	if fast.Request != nil {
		for _, raw := range [][]byte{fast.Request.Object.Raw, fast.Request.OldObject.Raw, fast.Request.Options.Raw} {
			if cap(raw) != len(raw) {
				t.Fatalf("Raw has capacity %d past its %d bytes", cap(raw), len(raw))
			}
		}
	}
	return true
}

// agreeAll checks b as a review and as an object of every kind the fuzz
// targets name.
func agreeAll(t testing.TB, b []byte) {
	t.Helper()
	agreeReview(t, b)
	for _, k := range fuzzKinds {
		agreeDecode(t, b, schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind})
	}
}

// corpusInputs are the []byte values of the fuzz corpora in testdata.
func corpusInputs(t testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/fuzz/*/*")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			lit, ok := strings.CutPrefix(line, "[]byte(")
			if !ok {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, []byte(s))
		}
	}
	return out
}

func fixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "fastdecode", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reviewOf wraps objects in a v1 review for gvk.
func reviewOf(t testing.TB, gvk schema.GroupVersionKind, obj, old []byte) []byte {
	t.Helper()
	return mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: &admissionv1.AdmissionRequest{
		UID: "u", Operation: admissionv1.Update, Namespace: "ns", Name: "x",
		Kind:      metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Object:    runtime.RawExtension{Raw: obj},
		OldObject: runtime.RawExtension{Raw: old},
		Options:   runtime.RawExtension{Raw: []byte(`{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}`)},
	}})
}

func TestFastDecodeRealisticReviews(t *testing.T) {
	for _, name := range []string{"pod-review.json", "deployment-review.json"} {
		body := fixture(t, name)
		if !agreeReview(t, body) {
			t.Fatalf("%s: the fast path fell back", name)
		}
		ar, _ := fastDecodeReview(body)
		if ar.Request.Object.Object == nil {
			t.Fatalf("%s: the object was not decoded", name)
		}
		gvk := ar.Request.Object.Object.GetObjectKind().GroupVersionKind()
		if !agreeDecode(t, ar.Request.Object.Raw, gvk) {
			t.Fatalf("%s: the fast path fell back on the object", name)
		}
		if m := ar.Request.Object.Object.(metav1.Object); m.GetManagedFields() != nil {
			t.Fatalf("%s: managedFields decoded", name)
		}
	}
}

func TestFastDecodeCorpora(t *testing.T) {
	inputs := corpusInputs(t)
	for _, obj := range seedObjects() {
		gvk := obj.GetObjectKind().GroupVersionKind()
		raw := mustJSON(t, obj)
		inputs = append(inputs, raw, reviewOf(t, gvk, raw, nil), reviewOf(t, gvk, raw, raw))
	}
	for _, b := range inputs {
		agreeAll(t, b)
		for _, k := range fuzzKinds {
			// A corpus object as the object of a review, too.
			if json.Valid(b) {
				agreeReview(t, reviewOf(t, schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}, b, nil))
			}
		}
	}
}

// TestFastDecodeCases are the shapes the brief names, each checked for
// agreement and for whether the fast path takes it.
func TestFastDecodeCases(t *testing.T) {
	podGVK := v1.SchemeGroupVersion.WithKind("Pod")
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"},"creationTimestamp":null,` +
		`"managedFields":[{"manager":"m","time":"2026-01-05T10:00:00Z","fieldsV1":{"f:x":{}}}]},` +
		`"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"500m"}},"ports":[{"containerPort":80}]}],"priority":7}}`
	for _, c := range []struct {
		name string
		obj  string
		fast bool // the fast path decodes it
	}{
		{"plain", pod, true},
		{"null", `null`, true},
		{"empty", `{}`, true},
		{"array", `[]`, false},
		{"string", `"x"`, false},
		{"nulls", `{"metadata":null,"spec":{"containers":null,"nodeSelector":null,"affinity":null,"priority":null,"hostNetwork":null,"nodeName":null},"status":null}`, true},
		{"nested nulls", `{"spec":{"containers":[{"name":null,"resources":{"requests":null,"limits":{"cpu":null}},"ports":[{"containerPort":null}]}]}}`, true},
		{"empty list and map", `{"spec":{"containers":[],"nodeSelector":{}}}`, true},
		{"duplicate struct", `{"metadata":{"name":"a"},"metadata":{"namespace":"b"}}`, true},
		{"duplicate list", `{"spec":{"containers":[{"name":"a"},{"name":"b"}],"containers":[{"image":"i"}]}}`, true},
		{"duplicate map", `{"metadata":{"labels":{"a":"1","b":"2"},"labels":{"b":"3"}}}`, true},
		{"duplicate map key", `{"metadata":{"labels":{"a":"1","a":"2"}}}`, true},
		{"duplicate pointer", `{"spec":{"securityContext":{"runAsUser":1},"securityContext":{"runAsGroup":2}}}`, true},
		{"duplicate quantity", `{"spec":{"containers":[{"resources":{"requests":{"cpu":"1","cpu":"2"}}}]}}`, true},
		{"null quantity", `{"spec":{"containers":[{"resources":{"requests":{"cpu":null}}}]}}`, true},
		{"escapes", `{"metadata":{"name":"\u00e9\ud83d\ude00\/x","labels":{"\u0061":"\"q\"\\"}},"sp\u0065c":{"nodeName":"caf\u00e9"}}`, true},
		{"non-ASCII", `{"metadata":{"name":"café 😀","annotations":{"ключ":"值"}}}`, true},
		{"lone surrogate", `{"metadata":{"name":"\ud800"}}`, false},
		{"invalid UTF-8", "{\"metadata\":{\"name\":\"\xff\"}}", false},
		{"minus zero", `{"spec":{"priority":-0}}`, true},
		{"exponent", `{"spec":{"priority":1e2}}`, false},
		{"fraction", `{"spec":{"priority":1.0}}`, false},
		{"huge int", `{"spec":{"priority":99999999999999999999}}`, false},
		{"int32 overflow", `{"spec":{"priority":2147483648}}`, false},
		{"int32 min", `{"spec":{"priority":-2147483648}}`, true},
		{"int64", `{"spec":{"activeDeadlineSeconds":-9223372036854775808}}`, true},
		{"string for int", `{"spec":{"priority":"7"}}`, false},
		{"number for string", `{"spec":{"nodeName":7}}`, false},
		{"bool for struct", `{"spec":true}`, false},
		{"bad quantity", `{"spec":{"containers":[{"resources":{"requests":{"cpu":"lots"}}}]}}`, false},
		{"int-or-string", `{"spec":{"containers":[{"livenessProbe":{"httpGet":{"port":"http"}},"readinessProbe":{"httpGet":{"port":8080}}}]}}`, true},
		{"bad time", `{"metadata":{"creationTimestamp":"yesterday"}}`, false},
		{"unknown members", `{"x":{"y":[1,{"z":null}]},"metadata":{"q":"\"}"},"spec":{"Containers":[1]}}`, true},
		{"case", `{"Metadata":{"Name":"p"}}`, true},
		{"other kind", `{"apiVersion":"apps/v1","kind":"Deployment"}`, true},
		{"white space", " \n{ \"metadata\" :\t{ \"name\" : \"p\" } , \"spec\" : { \"containers\" : [ { } , { } ] } } \r\n", true},
		{"trailing garbage", `{} x`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := agreeDecode(t, []byte(c.obj), podGVK)
			if got != c.fast {
				t.Errorf("fast path took it: %v, want %v", got, c.fast)
			}
			if json.Valid([]byte(c.obj)) {
				agreeReview(t, reviewOf(t, podGVK, []byte(c.obj), []byte(c.obj)))
			}
		})
	}
}

func TestFastDecodeReviewCases(t *testing.T) {
	const obj = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`
	const kind = `"kind":{"group":"","version":"v1","kind":"Pod"}`
	for _, c := range []struct {
		name string
		body string
		fast bool
		// decoded says whether request.object is decoded, when fast.
		decoded bool
	}{
		{"kind first", `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u",` + kind + `,"object":` + obj + `}}`, true, true},
		{"object first", `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","object":` + obj + `,` + kind + `}}`, true, false},
		{"kind twice", `{"request":{` + kind + `,"object":` + obj + `,"kind":{"kind":"Service"},"oldObject":` + obj + `}}`, true, true},
		{"object twice", `{"request":{` + kind + `,"object":` + obj + `,"object":null}}`, true, false},
		{"request twice", `{"request":{` + kind + `,"object":` + obj + `},"request":{"uid":"v"}}`, true, true},
		{"request null", `{"request":{` + kind + `},"request":null}`, true, false},
		{"unjudged kind", `{"request":{"kind":{"version":"v1","kind":"Service"},"object":{"spec":1}}}`, true, false},
		{"options", `{"request":{` + kind + `,"options":` + obj + `,"object":null}}`, true, false},
		{"response", `{"kind":"AdmissionReview","response":{"uid":"u","allowed":true},"request":{"uid":"u"}}`, true, false},
		{"undecodable object", `{"request":{` + kind + `,"object":{"spec":{"priority":"high"}}}}`, false, false},
		{"undecodable unjudged", `{"request":{"kind":{"version":"v1","kind":"Service"},"object":{"spec":{"priority":"high"}}}}`, true, false},
		{"null body", `null`, false, false},
		{"request string", `{"request":"x"}`, false, false},
		{"user extra", `{"request":{"userInfo":{"username":"u","extra":{"a":["1","2"],"a":["3"],"b":null}},"dryRun":true}}`, true, false},
		{"invalid", `{"request":`, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := agreeReview(t, []byte(c.body))
			if got != c.fast {
				t.Fatalf("fast path took it: %v, want %v", got, c.fast)
			}
			if !got {
				return
			}
			ar, _ := fastDecodeReview([]byte(c.body))
			decoded := ar.Request != nil && ar.Request.Object.Object != nil
			if decoded != c.decoded {
				t.Fatalf("object decoded: %v, want %v", decoded, c.decoded)
			}
		})
	}
	// Over the limit objects stay bytes, as in the v2 path.
	big := `{"request":{` + kind + `,"object":{"metadata":{"annotations":{"a":"` + strings.Repeat("x", DefaultMaxObjectBytes) + `"}}}}}`
	if !agreeReview(t, []byte(big)) {
		t.Fatal("the fast path fell back on a large review")
	}
	if ar, _ := fastDecodeReview([]byte(big)); ar.Request.Object.Object != nil || len(ar.Request.Object.Raw) == 0 {
		t.Fatal("a large review's object was decoded, or lost")
	}
}

// fastKindsUnderTest are the judged kinds with a new object of each.
var fastKindsUnderTest = []struct {
	gvk schema.GroupVersionKind
	new func() runtime.Object
}{
	{v1.SchemeGroupVersion.WithKind("Pod"), func() runtime.Object { return new(v1.Pod) }},
	{v1.SchemeGroupVersion.WithKind("ReplicationController"), func() runtime.Object { return new(v1.ReplicationController) }},
	{appsv1.SchemeGroupVersion.WithKind("Deployment"), func() runtime.Object { return new(appsv1.Deployment) }},
	{appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), func() runtime.Object { return new(appsv1.ReplicaSet) }},
	{appsv1.SchemeGroupVersion.WithKind("StatefulSet"), func() runtime.Object { return new(appsv1.StatefulSet) }},
	{appsv1.SchemeGroupVersion.WithKind("DaemonSet"), func() runtime.Object { return new(appsv1.DaemonSet) }},
	{batchv1.SchemeGroupVersion.WithKind("Job"), func() runtime.Object { return new(batchv1.Job) }},
	{batchv1.SchemeGroupVersion.WithKind("CronJob"), func() runtime.Object { return new(batchv1.CronJob) }},
}

var quantities = []string{"0", "1", "500m", "1.5", "2Gi", "128Mi", "1e3", "100k", "-1", "0.001", "12345678901234"}

func newFiller(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.4).NumElements(0, 2).MaxDepth(12).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = resource.MustParse(quantities[c.Intn(len(quantities))])
		},
		func(t *metav1.Time, c randfill.Continue) {
			if c.Intn(4) == 0 {
				*t = metav1.Time{}
				return
			}
			*t = metav1.NewTime(time.Unix(c.Int63n(4e9), 0))
		},
		func(t *metav1.MicroTime, c randfill.Continue) {
			*t = metav1.NewMicroTime(time.Unix(c.Int63n(4e9), c.Int63n(1e9)))
		},
		func(v *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*v = intstr.FromInt32(c.Int31())
			} else {
				*v = intstr.FromString(c.String(8))
			}
		},
		func(f *metav1.FieldsV1, c randfill.Continue) {
			f.Raw = []byte(`{"f:metadata":{"f:name":{}}}`)
		},
		func(r *runtime.RawExtension, c randfill.Continue) {
			r.Raw = []byte(`{"a":1}`)
		},
	)
}

// randomObjects are n objects of each judged kind, as JSON from v1 and
// from v2 (which writes nil slices and maps as [] and {}).
func randomObjects(t testing.TB, n int, seed int64) (out []struct {
	gvk schema.GroupVersionKind
	raw []byte
}) {
	f := newFiller(seed)
	for i := range n {
		for _, k := range fastKindsUnderTest {
			obj := k.new()
			f.Fill(obj)
			obj.GetObjectKind().SetGroupVersionKind(k.gvk)
			var raw []byte
			var err error
			if i%2 == 0 {
				raw, err = json.Marshal(obj)
			} else {
				raw, err = jsonv2.Marshal(obj)
			}
			if err != nil {
				t.Fatalf("%v: %v", k.gvk, err)
			}
			out = append(out, struct {
				gvk schema.GroupVersionKind
				raw []byte
			}{k.gvk, raw})
		}
	}
	return out
}

func TestFastDecodeRandomObjects(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 25
	}
	var total, fast, slowOK, reviews, fastReviews, size int
	f := newFiller(5)
	for i, o := range randomObjects(t, n, 1) {
		total++
		size += len(o.raw)
		if _, err := decodeV2(o.raw, o.gvk); err == nil {
			slowOK++
		}
		if agreeDecode(t, o.raw, o.gvk) {
			fast++
		}
		// The object in a request whose other fields are random too.
		req := new(admissionv1.AdmissionRequest)
		f.Fill(req)
		req.Kind = metav1.GroupVersionKind{Group: o.gvk.Group, Version: o.gvk.Version, Kind: o.gvk.Kind}
		req.Object.Raw = o.raw
		if i%3 == 0 {
			req.OldObject.Raw = o.raw
		}
		reviews++
		if agreeReview(t, mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metaTypeReview, Request: req})) {
			fastReviews++
		}
	}
	t.Logf("random objects: %d (%d bytes on average), v2 decodes %d, fast path decodes %d (%.2f%% fall back); reviews: %d, fast %d",
		total, size/total, slowOK, fast, 100*float64(total-fast)/float64(total), reviews, fastReviews)
	if fast != slowOK || fastReviews != reviews {
		t.Fatalf("the fast path fell back on %d of the %d objects v2 decodes, and on %d of %d reviews",
			slowOK-fast, slowOK, reviews-fastReviews, reviews)
	}
}

func TestFastDecodeMutatedObjects(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 10
	}
	rnd := rand.New(rand.NewSource(2))
	var total, fast, slowOnly int
	for _, o := range randomObjects(t, n, 3) {
		for range 3 {
			m := mutateJSON(t, rnd, o.raw)
			total++
			if agreeDecode(t, m, o.gvk) {
				fast++
			} else if _, err := decodeV2(m, o.gvk); err == nil {
				slowOnly++
				if slowOnly <= 3 {
					t.Logf("only v2 decodes %s", truncate(string(m), 2000))
				}
			}
			agreeReview(t, reviewOf(t, o.gvk, m, nil))
			agreeReview(t, kindLast(t, reviewOf(t, o.gvk, m, nil)))
		}
	}
	t.Logf("mutated objects: %d, fast path decodes %d, only v2 decodes %d", total, fast, slowOnly)
	if slowOnly > 0 {
		t.Fatalf("the fast path fell back on %d mutated objects v2 decodes", slowOnly)
	}
}

// kindLast moves the request's kind after its objects.
func kindLast(t testing.TB, body []byte) []byte {
	root := parseJSON(t, body)
	for i, n := range root.names {
		if n != "request" {
			continue
		}
		req := root.kids[i]
		for j, rn := range req.names {
			if rn == "kind" {
				k := req.kids[j]
				req.names = append(append(req.names[:j:j], req.names[j+1:]...), "kind")
				req.kids = append(append(req.kids[:j:j], req.kids[j+1:]...), k)
				break
			}
		}
	}
	var b bytes.Buffer
	root.write(&b, nil)
	return b.Bytes()
}

// jnode is a parsed JSON value that keeps member order and can be
// written back with duplicates, escapes and odd numbers.
type jnode struct {
	kind  byte // '{', '[' or 0 for a scalar
	raw   string
	names []string
	kids  []*jnode
}

func parseJSON(t testing.TB, b []byte) *jnode {
	d := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true))
	n, err := parseNode(d)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func parseNode(d *jsontext.Decoder) (*jnode, error) {
	switch d.PeekKind() {
	case '{', '[':
		tok, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		n := &jnode{kind: byte(tok.Kind())}
		for d.PeekKind() != '}' && d.PeekKind() != ']' {
			if n.kind == '{' {
				name, err := d.ReadToken()
				if err != nil {
					return nil, err
				}
				n.names = append(n.names, name.String())
			}
			kid, err := parseNode(d)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		_, err = d.ReadToken()
		return n, err
	}
	v, err := d.ReadValue()
	return &jnode{raw: string(v)}, err
}

// write writes n, mutated by rnd if it is not nil.
func (n *jnode) write(b *bytes.Buffer, rnd *rand.Rand) {
	chance := func(p float64) bool { return rnd != nil && rnd.Float64() < p }
	if chance(0.02) {
		b.WriteString(" \n\t")
	}
	switch {
	case n.kind == 0 && strings.HasPrefix(n.raw, `"`):
		s, err := strconv.Unquote(n.raw)
		if err != nil || !chance(0.2) {
			b.WriteString(n.raw)
			return
		}
		writeEscaped(b, s, rnd)
	case n.kind == 0:
		switch {
		case chance(0.03):
			b.WriteString("null")
		case n.raw == "0" && chance(0.3):
			b.WriteString("-0")
		case n.raw != "true" && n.raw != "false" && n.raw != "null" && chance(0.01):
			b.WriteString([]string{n.raw + ".0", n.raw + "e0", "1e2", "99999999999999999999", "2147483648", `"` + n.raw + `"`}[rnd.Intn(6)])
		default:
			b.WriteString(n.raw)
		}
	case n.kind == '[':
		b.WriteByte('[')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte(',')
			}
			k.write(b, rnd)
		}
		b.WriteByte(']')
	default:
		if chance(0.01) {
			b.WriteString("null")
			return
		}
		b.WriteByte('{')
		first := true
		member := func(name string, v func()) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			if chance(0.05) {
				writeEscaped(b, name, rnd)
			} else {
				writeEscaped(b, name, nil)
			}
			b.WriteByte(':')
			v()
		}
		for i, name := range n.names {
			kid := n.kids[i]
			switch {
			case chance(0.03): // null in its place
				member(name, func() { b.WriteString("null") })
			case chance(0.03): // a duplicate before it
				member(name, func() { kid.write(b, rnd) })
				member(name, func() { kid.write(b, rnd) })
			case chance(0.02): // a null duplicate after it
				member(name, func() { kid.write(b, rnd) })
				member(name, func() { b.WriteString("null") })
			default:
				member(name, func() { kid.write(b, rnd) })
			}
		}
		if chance(0.02) {
			member("unknownMember", func() { b.WriteString(`{"a":[1,"}",null]}`) })
		}
		b.WriteByte('}')
	}
}

// writeEscaped writes s as a JSON string, escaping what must be and, with
// rnd, other characters at random (\uXXXX, surrogate pairs, \/).
func writeEscaped(b *bytes.Buffer, s string, rnd *rand.Rand) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		case rnd != nil && r == '/' && rnd.Intn(2) == 0:
			b.WriteString(`\/`)
		case rnd != nil && rnd.Intn(3) == 0:
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

func mutateJSON(t testing.TB, rnd *rand.Rand, raw []byte) []byte {
	var b bytes.Buffer
	parseJSON(t, raw).write(&b, rnd)
	return b.Bytes()
}

func FuzzFastDecodeAgrees(f *testing.F) {
	for _, b := range corpusInputs(f) {
		f.Add(b)
	}
	for _, name := range []string{"pod-review.json", "deployment-review.json"} {
		body := fixture(f, name)
		f.Add(body)
		ar, err := fastDecodeReview(body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(ar.Request.Object.Raw))
	}
	for _, obj := range seedObjects() {
		raw := mustJSON(f, obj)
		f.Add(raw)
		f.Add(reviewOf(f, obj.GetObjectKind().GroupVersionKind(), raw, raw))
	}
	for _, o := range randomObjects(f, 2, 4) {
		f.Add(o.raw)
		f.Add(reviewOf(f, o.gvk, o.raw, nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		agreeAll(t, b)
		if json.Valid(b) {
			for _, k := range fastKindsUnderTest {
				agreeReview(t, reviewOf(t, k.gvk, b, b))
			}
		}
	})
}

func BenchmarkDecodeReview(b *testing.B) {
	for _, name := range []string{"pod-review.json", "deployment-review.json"} {
		body := fixture(b, name)
		ar, err := decodeReviewV2(body)
		if err != nil {
			b.Fatal(err)
		}
		raw := ar.Request.Object.Raw
		gvk := ar.Request.Object.Object.GetObjectKind().GroupVersionKind()
		kind := strings.TrimSuffix(name, "-review.json")
		for _, c := range []struct {
			name string
			in   []byte
			fn   func() error
		}{
			{kind + "/review/v2", body, func() error { _, err := decodeReviewV2(body); return err }},
			{kind + "/review/fast", body, func() error { _, err := fastDecodeReview(body); return err }},
			{kind + "/object/v2", raw, func() error { _, err := decodeV2(raw, gvk); return err }},
			{kind + "/object/fast", raw, func() error { _, err := fastDecode(raw, gvk); return err }},
			{kind + "/object/validate", raw, func() error {
				if !jsontext.Value(raw).IsValid(fastValid) {
					return errFallback
				}
				return nil
			}},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.in)))
				b.ReportAllocs()
				for b.Loop() {
					if err := c.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
