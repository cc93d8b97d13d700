package webhook

//go:generate go run ./internal/decodegen

import (
	"errors"
	"strconv"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The fast path. Even encoding/json/v2 spends half of a review in its
// tokenizer, so reviews and objects are first read another way: the bytes
// are validated once (jsontext's validator allocates nothing), then a
// trusting scanner walks them and generated code
// (zz_generated_fastdecode.go, one function per Go type) fills the
// objects. It is an optimisation, never a second source of truth: it
// either returns exactly what the v2 path would, or errFallback, and then
// the v2 path runs as it always has, so anything unusual (a value of
// another JSON kind than the field's, a number out of range, invalid
// UTF-8, a method that fails) is worded by the same code as before.
// fastdecode_test.go holds it to that on fuzzed and random objects.

// errFallback: the fast path does not decode this input; use the v2 path.
var errFallback = errors.New("fast decoding does not apply")

// fastValid accepts what the v2 path's options accept, except invalid
// UTF-8: v2 would replace it, the fast path leaves that to v2. Every
// string the scanner meets is therefore valid UTF-8.
var fastValid = jsontext.AllowDuplicateNames(true)

// fastDecode decodes an object of a judged kind as decode's v2 path does.
func fastDecode(raw []byte, gvk schema.GroupVersionKind) (obj runtime.Object, err error) {
	root, ok := fastRoots[gvk]
	if !ok || !jsontext.Value(raw).IsValid(fastValid) {
		return nil, errFallback
	}
	defer recoverToFallback(&err)
	s := scanner{b: raw}
	obj, ok = root(&s)
	if !ok || s.failed {
		return nil, errFallback
	}
	return obj, nil
}

// fastDecodeReview decodes a review as decodeReview's v2 path does.
func fastDecodeReview(body []byte) (ar *admissionv1.AdmissionReview, err error) {
	if !jsontext.Value(body).IsValid(fastValid) {
		return nil, errFallback
	}
	defer recoverToFallback(&err)
	// Within the limit a judged object is decoded as it is met, with the
	// kind the request has named so far; beyond it objects stay bytes.
	s := scanner{b: body, decodeObjects: len(body) <= DefaultMaxObjectBytes}
	ar = new(admissionv1.AdmissionReview)
	if !s.openObject() {
		return nil, errFallback
	}
	for s.nextMember() {
		ok := true
		switch string(s.name()) {
		case "apiVersion":
			ok = s.readString(&ar.APIVersion)
		case "kind":
			ok = s.readString(&ar.Kind)
		case "request":
			if s.null() {
				ar.Request = nil
				continue
			}
			if ar.Request == nil {
				ar.Request = new(admissionv1.AdmissionRequest)
			}
			ok = fdAdmissionv1AdmissionRequest(&s, ar.Request)
		default:
			s.skip()
		}
		if !ok {
			return nil, errFallback
		}
	}
	if s.failed {
		return nil, errFallback
	}
	return ar, nil
}

// fastPanics counts panics turned into fallbacks: the scanner trusts the
// validator, and should that trust be misplaced the v2 path still answers.
// The tests want none.
var fastPanics atomic.Int64

func recoverToFallback(err *error) {
	if recover() != nil {
		fastPanics.Add(1)
		*err = errFallback
	}
}

// embeddedObject reads a request's object, old object or options as
// wireObject does: null is no object, and anything else is its bytes in
// the body and, for a judged kind (kind non-nil) while decodeObjects, the
// object decoded.
func (s *scanner) embeddedObject(kind *metav1.GroupVersionKind, dst *runtime.RawExtension) bool {
	if s.null() {
		*dst = runtime.RawExtension{}
		return true
	}
	s.ws()
	start := s.i
	var root func(*scanner) (runtime.Object, bool)
	if kind != nil && s.decodeObjects {
		root = fastRoots[schema.GroupVersionKind{Group: kind.Group, Version: kind.Version, Kind: kind.Kind}]
	}
	if root == nil {
		s.skip()
		*dst = runtime.RawExtension{Raw: s.b[start:s.i:s.i]}
		return true
	}
	obj, ok := root(s)
	*dst = runtime.RawExtension{Raw: s.b[start:s.i:s.i], Object: obj}
	return ok
}

// scanner walks JSON that jsontext has validated, so it checks nothing
// the validator did: a value is complete, a string ends, a number is well
// formed. What it checks is what the Go value needs, the value's kind.
// Its loops still stop at the end of the input, so that a gap in that
// trust is a fallback (recoverToFallback), not a runaway.
type scanner struct {
	b             []byte
	i             int
	decodeObjects bool   // in a review: decode the objects of judged kinds
	buf           []byte // unquoted strings
	failed        bool   // something the scanner cannot go on from: fall back
}

func (s *scanner) ws() {
	b := s.b
	i := s.i
	for i < len(b) && b[i] <= ' ' {
		i++
	}
	s.i = i
}

// peek is the next value's first byte.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// null consumes a null.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		s.i += len("null")
		return true
	}
	return false
}

// openObject consumes the '{' of an object, or reports that the value is
// not one.
func (s *scanner) openObject() bool {
	if s.peek() == '{' {
		s.i++
		return true
	}
	return false
}

// nextMember moves to the next member's name, or past the object's end.
func (s *scanner) nextMember() bool {
	switch s.peek() {
	case '"':
		return true
	case ',':
		s.i++
		s.ws()
		return true
	}
	s.i++ // '}'
	return false
}

func (s *scanner) openArray() bool {
	if s.peek() == '[' {
		s.i++
		return true
	}
	return false
}

// nextElem moves to the next element, or past the array's end.
func (s *scanner) nextElem() bool {
	switch s.peek() {
	case ']':
		s.i++
		return false
	case ',':
		s.i++
	}
	return true
}

// name reads a member's name and its ':'. The bytes are valid until the
// next string with escapes is read.
func (s *scanner) name() []byte {
	b := s.stringBytes()
	s.ws()
	s.i++ // ':'
	return b
}

// key reads a map key and its ':'.
func (s *scanner) key() string {
	return text(s.name())
}

// text is b as a string: one of the values every pod repeats (v2 interns
// strings while it decodes, which saves as many allocations), or a copy.
func text(b []byte) string {
	if len(b) > 0 {
		if t := wellKnown[wellKnownSlot(b)]; t == string(b) {
			return t
		}
	}
	return string(b)
}

// wellKnown is a small open table: a string's slot comes from its length
// and its first and last bytes, and a value whose slot is taken is simply
// not interned.
var wellKnown [1024]string

func wellKnownSlot[B []byte | string](b B) int {
	return (len(b)*67 + int(b[0])*31 + int(b[len(b)-1])*7 + int(b[len(b)/2])) & (len(wellKnown) - 1)
}

func init() {
	for _, t := range []string{
		// Envelopes and kinds.
		"admission.k8s.io/v1", "AdmissionReview", "CREATE", "UPDATE", "DELETE", "CONNECT",
		"v1", "apps", "apps/v1", "batch", "batch/v1", "Pod", "pods", "ReplicationController", "replicationcontrollers",
		"Deployment", "deployments", "ReplicaSet", "replicasets", "StatefulSet", "statefulsets",
		"DaemonSet", "daemonsets", "Job", "jobs", "CronJob", "cronjobs", "status", "scale",
		"system:authenticated", "system:serviceaccounts", "system:masters", "system:nodes",
		"CreateOptions", "UpdateOptions", "meta.k8s.io/v1", "kubectl", "kubectl-client-side-apply",
		"Update", "Apply", "FieldsV1", "kube-controller-manager", "default-scheduler",
		// Resource names.
		"cpu", "memory", "ephemeral-storage", "pods", "nvidia.com/gpu", "hugepages-2Mi", "hugepages-1Gi",
		// Pod spec defaults and enumerations.
		"TCP", "UDP", "SCTP", "HTTP", "HTTPS", "IfNotPresent", "Always", "Never", "OnFailure",
		"File", "FallbackToLogsOnError", "/dev/termination-log", "ClusterFirst", "ClusterFirstWithHostNet",
		"Default", "None", "default", "PreemptLowerPriority", "RuntimeDefault", "Localhost", "Unconfined",
		"ALL", "NET_BIND_SERVICE", "Burstable", "BestEffort", "Guaranteed", "Pending", "Running",
		"Exists", "Equal", "In", "NotIn", "DoesNotExist", "Gt", "Lt",
		"NoSchedule", "PreferNoSchedule", "NoExecute", "DoNotSchedule", "ScheduleAnyway", "Honor", "Ignore",
		"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
		"kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
		"kubernetes.io/os", "kubernetes.io/arch", "linux", "amd64", "arm64",
		"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
		"spec.nodeName", "spec.serviceAccountName", "status.podIP", "status.hostIP",
		"limits.cpu", "limits.memory", "requests.cpu", "requests.memory",
		"kube-root-ca.crt", "ca.crt", "token", "namespace", "/var/run/secrets/kubernetes.io/serviceaccount",
		"RollingUpdate", "Recreate", "OrderedReady", "Parallel", "Retain", "Delete", "Allow", "Forbid", "Replace",
		"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "Filesystem", "Block", "Directory", "DirectoryOrCreate",
		"FileOrCreate", "NonIndexed", "Indexed", "TerminatingOrFailed", "Failed",
		"app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
		"app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "Helm",
		"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
		"true", "false",
	} {
		if i := wellKnownSlot(t); wellKnown[i] == "" {
			wellKnown[i] = t
		}
	}
}

// stringBytes reads the string at s.i, a '"': its bytes in the input if
// it has no escapes, else unquoted into s.buf.
func (s *scanner) stringBytes() []byte {
	b := s.b
	start := s.i
	i := quoteOrBackslash(b, start+1)
	if i < len(b) && b[i] == '"' {
		s.i = i + 1
		return b[start+1 : i]
	}
	s.i = skipString(b, start)
	u, err := jsontext.AppendUnquote(s.buf[:0], b[start:s.i])
	if err != nil {
		s.failed = true // validated strings unquote; should one not, fall back
	}
	s.buf = u
	return u
}

// skipString is the index past the string at i.
func skipString(b []byte, i int) int {
	for i = quoteOrBackslash(b, i+1); i < len(b); i = quoteOrBackslash(b, i+2) {
		if b[i] == '"' {
			return i + 1
		}
	}
	return len(b)
}

// quoteOrBackslash is the index of the first '"' or '\\' in b from i, or
// len(b).
func quoteOrBackslash(b []byte, i int) int {
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}

func (s *scanner) readString(p *string) bool {
	switch s.peek() {
	case 'n':
		s.i += len("null")
		*p = ""
		return true
	case '"':
		*p = text(s.stringBytes())
		return true
	}
	return false
}

func (s *scanner) readBool(p *bool) bool {
	switch s.peek() {
	case 'n':
		s.i += len("null")
		*p = false
	case 't':
		s.i += len("true")
		*p = true
	case 'f':
		s.i += len("false")
		*p = false
	default:
		return false
	}
	return true
}

// number reads a number, or null (isNull), or reports another kind.
func (s *scanner) number() (b []byte, isNull, ok bool) {
	switch c := s.peek(); {
	case c == 'n':
		s.i += len("null")
		return nil, true, true
	case c != '-' && (c < '0' || c > '9'):
		return nil, false, false
	}
	start := s.i
	s.i = skipNumber(s.b, start)
	return s.b[start:s.i], false, true
}

func skipNumber(b []byte, i int) int {
	for i++; i < len(b); i++ {
		if c := b[i]; !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			break
		}
	}
	return i
}

// parseInt parses an integer of the given size as v2 does: digits only,
// no fraction or exponent, in range; -0 is 0.
func parseInt(b []byte, bits int) (int64, bool) {
	if len(b) > 18 {
		n, err := strconv.ParseInt(string(b), 10, bits)
		return n, err == nil
	}
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if b[0] == '-' {
		n = -n
	}
	if n < -1<<(bits-1) || n > 1<<(bits-1)-1 {
		return 0, false
	}
	return n, true
}

func (s *scanner) readInt64(p *int64) bool {
	b, isNull, ok := s.number()
	if !ok || isNull {
		*p = 0
		return ok
	}
	n, ok := parseInt(b, 64)
	*p = n
	return ok
}

func (s *scanner) readInt32(p *int32) bool {
	b, isNull, ok := s.number()
	if !ok || isNull {
		*p = 0
		return ok
	}
	n, ok := parseInt(b, 32)
	*p = int32(n)
	return ok
}

// noErr is err == nil, for generated expressions.
func noErr(err error) bool { return err == nil }

// viaV2 decodes the value with v2 itself, for the types the generator
// leaves to it.
func (s *scanner) viaV2(p any) bool {
	return jsonv2.Unmarshal(s.value(), p, lenientSyntax) == nil
}

// value returns the next value's bytes.
func (s *scanner) value() []byte {
	s.ws()
	start := s.i
	s.skip()
	return s.b[start:s.i]
}

// skipClass sorts the bytes skip looks for.
var skipClass = [256]uint8{'"': 1, '{': 2, '[': 2, '}': 3, ']': 3}

// skip moves past the next value.
func (s *scanner) skip() {
	b := s.b
	i := s.i
	for i < len(b) && b[i] <= ' ' {
		i++
	}
	if i >= len(b) {
		s.i = i
		return
	}
	switch b[i] {
	case '"':
		s.i = skipString(b, i)
		return
	case 't', 'n':
		s.i = i + 4
		return
	case 'f':
		s.i = i + 5
		return
	case '{', '[':
	default:
		s.i = skipNumber(b, i)
		return
	}
	depth := 0
	for i < len(b) {
		switch skipClass[b[i]] {
		case 0:
			i++
		case 1:
			i = skipString(b, i)
		case 2:
			depth++
			i++
		case 3:
			depth--
			i++
			if depth == 0 {
				s.i = i
				return
			}
		}
	}
	s.i = i
}
