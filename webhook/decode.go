package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Decoding is most of what a review costs, so reviews and objects are read
// with encoding/json/v2 (github.com/go-json-experiment/json mirrors it, and
// is an alias of the standard library's from Go 1.27): it checks the syntax
// while it decodes, where v1 scans every value once to validate and again
// to decode, and it makes about half as many allocations.
//
// The options keep what the API machinery's decoder accepts (names match
// case-sensitively, which is v2's default; a repeated name and invalid
// UTF-8 are tolerated, as v1 does), since the API server has already
// validated the object and fitgate must not refuse what it accepted.
var lenientSyntax = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// The API server sends every object with its managedFields, often half of
// its bytes, and the checks never read them, so each judged kind is decoded
// through a wrapper whose metadata skips that field (a shallower field of
// the same JSON name wins over the embedded one) instead of building it.
// A wrapper, not a type-specific unmarshaler option: with such an option
// the decoder looks every value's type up in it, which costs more than
// decoding managedFields does.

// skipJSON accepts any JSON value and keeps nothing.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return dec.SkipValue() }

type leanMeta struct {
	metav1.ObjectMeta `json:",inline"`
	ManagedFields     skipJSON `json:"managedFields"`
}

type (
	leanPod struct {
		v1.Pod   `json:",inline"`
		Metadata leanMeta `json:"metadata"`
	}
	leanReplicationController struct {
		v1.ReplicationController `json:",inline"`
		Metadata                 leanMeta `json:"metadata"`
	}
	leanDeployment struct {
		appsv1.Deployment `json:",inline"`
		Metadata          leanMeta `json:"metadata"`
	}
	leanReplicaSet struct {
		appsv1.ReplicaSet `json:",inline"`
		Metadata          leanMeta `json:"metadata"`
	}
	leanStatefulSet struct {
		appsv1.StatefulSet `json:",inline"`
		Metadata           leanMeta `json:"metadata"`
	}
	leanDaemonSet struct {
		appsv1.DaemonSet `json:",inline"`
		Metadata         leanMeta `json:"metadata"`
	}
	leanJob struct {
		batchv1.Job `json:",inline"`
		Metadata    leanMeta `json:"metadata"`
	}
	leanCronJob struct {
		batchv1.CronJob `json:",inline"`
		Metadata        leanMeta `json:"metadata"`
	}
)

// leanKind makes a kind's wrapper and turns a decoded one into the object.
type leanKind struct {
	wrapper func() any
	finish  func(any) runtime.Object
}

func leanOf[W any](finish func(*W) runtime.Object) leanKind {
	return leanKind{wrapper: func() any { return new(W) }, finish: func(w any) runtime.Object { return finish(w.(*W)) }}
}

var leanKinds = map[schema.GroupVersionKind]leanKind{
	v1.SchemeGroupVersion.WithKind("Pod"): leanOf(func(w *leanPod) runtime.Object {
		w.Pod.ObjectMeta = w.Metadata.ObjectMeta
		return &w.Pod
	}),
	v1.SchemeGroupVersion.WithKind("ReplicationController"): leanOf(func(w *leanReplicationController) runtime.Object {
		w.ReplicationController.ObjectMeta = w.Metadata.ObjectMeta
		return &w.ReplicationController
	}),
	appsv1.SchemeGroupVersion.WithKind("Deployment"): leanOf(func(w *leanDeployment) runtime.Object {
		w.Deployment.ObjectMeta = w.Metadata.ObjectMeta
		return &w.Deployment
	}),
	appsv1.SchemeGroupVersion.WithKind("ReplicaSet"): leanOf(func(w *leanReplicaSet) runtime.Object {
		w.ReplicaSet.ObjectMeta = w.Metadata.ObjectMeta
		return &w.ReplicaSet
	}),
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"): leanOf(func(w *leanStatefulSet) runtime.Object {
		w.StatefulSet.ObjectMeta = w.Metadata.ObjectMeta
		return &w.StatefulSet
	}),
	appsv1.SchemeGroupVersion.WithKind("DaemonSet"): leanOf(func(w *leanDaemonSet) runtime.Object {
		w.DaemonSet.ObjectMeta = w.Metadata.ObjectMeta
		return &w.DaemonSet
	}),
	batchv1.SchemeGroupVersion.WithKind("Job"): leanOf(func(w *leanJob) runtime.Object {
		w.Job.ObjectMeta = w.Metadata.ObjectMeta
		return &w.Job
	}),
	batchv1.SchemeGroupVersion.WithKind("CronJob"): leanOf(func(w *leanCronJob) runtime.Object {
		w.CronJob.ObjectMeta = w.Metadata.ObjectMeta
		return &w.CronJob
	}),
}

// requestObject returns a request's object (or old object) as the kind the
// request names: the one the review's decoding already built, or one
// decoded now from its bytes.
func requestObject(raw runtime.RawExtension, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if raw.Object == nil {
		return decode(raw.Raw, gvk)
	}
	if err := kindMatches(raw.Object, gvk); err != nil {
		return nil, err
	}
	return raw.Object, nil
}

// decode reads an object as the kind the request names: with the fast
// path (fastdecode.go) when it applies, which returns what v2 would.
func decode(raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if len(raw) == 0 {
		return nil, errors.New("the request has no object")
	}
	if obj, err := fastDecode(raw, gvk); err == nil {
		if err := kindMatches(obj, gvk); err != nil {
			return nil, err
		}
		return obj, nil
	}
	return decodeV2(raw, gvk)
}

// decodeV2 is decode with encoding/json/v2 only, for what the fast path
// leaves to it.
func decodeV2(raw []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	var obj runtime.Object
	if lk, ok := leanKinds[gvk]; ok {
		w := lk.wrapper()
		if err := jsonv2.Unmarshal(raw, w, lenientSyntax); err != nil {
			return nil, errors.New(decodeProblem(err))
		}
		obj = lk.finish(w)
	} else {
		var err error
		if obj, err = clientgoscheme.Scheme.New(gvk); err != nil {
			return nil, err
		}
		if err := jsonv2.Unmarshal(raw, obj, lenientSyntax); err != nil {
			return nil, errors.New(decodeProblem(err))
		}
	}
	if err := kindMatches(obj, gvk); err != nil {
		return nil, err
	}
	return obj, nil
}

// kindMatches refuses an object that says it is another kind than the
// request's.
func kindMatches(obj runtime.Object, gvk schema.GroupVersionKind) error {
	if got := obj.GetObjectKind().GroupVersionKind(); !got.Empty() && got != gvk {
		return fmt.Errorf("the object is a %s, the request is for a %s", kindString(got), kindString(gvk))
	}
	return nil
}

// decodeProblem words a decoding error for the person who wrote the
// object: where in it, in the field path kubectl explain uses, and what is
// wrong, without Go type names where it can.
func decodeProblem(err error) string {
	var sem *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &sem):
		where := fieldPath(sem.JSONPointer)
		switch {
		case errors.Is(sem.Err, resource.ErrFormatWrong):
			return where + ": not a quantity such as 500m or 2Gi" // the error itself quotes a regular expression
		case len(sem.JSONValue) > 0 && errors.Is(sem.Err, strconv.ErrRange):
			return fmt.Sprintf("%s: %s is out of range", where, truncate(string(sem.JSONValue), 40))
		case len(sem.JSONValue) > 0 && sem.GoType != nil:
			return fmt.Sprintf("%s: %s is not %s", where, truncate(string(sem.JSONValue), 40), goTypeWord(sem.GoType))
		case sem.Err != nil && !errors.As(sem.Err, new(*json.UnmarshalTypeError)):
			return where + ": " + sem.Err.Error()
		case sem.JSONKind != 0 && sem.GoType != nil:
			return fmt.Sprintf("%s: a JSON %s where %s is expected", where, jsonKindWord(sem.JSONKind), goTypeWord(sem.GoType))
		}
		return where + ": " + err.Error()
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.ByteOffset, syn.Err)
	}
	return err.Error()
}

// fieldPath turns a JSON pointer into spec.containers[0].resources, with
// keys that are not plain names quoted: requests["example.com/gpu"].
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		switch {
		case tok != "" && strings.Trim(tok, "0123456789") == "":
			b.WriteString("[" + tok + "]")
		case isPlainName(tok):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		default:
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	if b.Len() == 0 {
		return "the object"
	}
	return b.String()
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func jsonKindWord(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

func goTypeWord(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[resource.Quantity]():
		return "a quantity"
	case reflect.TypeFor[intstr.IntOrString]():
		return "an integer or a string"
	case reflect.TypeFor[metav1.Time](), reflect.TypeFor[metav1.MicroTime]():
		return "a time"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}
