package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MaxReviewBytes bounds an AdmissionReview body, as controller-runtime
// does: two objects of at most 3 MiB each (etcd's limit, doubled for JSON)
// and the rest.
const MaxReviewBytes = 7 << 20

// supportedReviewVersions are the AdmissionReview versions fitgate reads.
// The configuration asks for v1 only; v1beta1 has the same shape.
var supportedReviewVersions = map[string]bool{
	admissionv1.SchemeGroupVersion.String():      true,
	admissionv1beta1.SchemeGroupVersion.String(): true,
}

// reviewHandler serves AdmissionReviews. It reads the body, decodes it
// once, checks it is an AdmissionReview fitgate can read, hands the request
// to h through controller-runtime's admission.Webhook.Handle (which
// recovers from panics and completes the response with the UID), and
// answers in the review version it was asked in.
//
// Why not controller-runtime's own ServeHTTP: it decodes any JSON object
// as a v1 review, so a body of another kind or an unknown version
// (admission.k8s.io/v2) would be judged as if it were v1 and answered in a
// version the sender may not read, and a body without a request would be
// "allowed" with a message about kind "/, Kind=". The API server only ever
// sends what the configuration asks for, so such a body is a client error;
// a 400 makes the API server apply the failure policy, which never blocks a
// deploy with the default Ignore. And decoding once matters: parsing the
// body is most of what a review costs, and every pod create waits for it.
func reviewHandler(h admission.Handler) http.Handler {
	wh := &admission.Webhook{Handler: h, LogConstructor: requestLogger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeReviewError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s: AdmissionReviews are POSTed", r.Method))
			return
		}
		buf := bodyBuffers.Get().(*bytes.Buffer)
		defer putBodyBuffer(buf)
		if n := r.ContentLength; n > 0 && n <= MaxReviewBytes {
			buf.Grow(int(n) + bytes.MinRead) // one allocation, not a doubling series
		}
		_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxReviewBytes+1))
		_ = r.Body.Close()
		body := buf.Bytes()
		switch {
		case err != nil:
			writeReviewError(w, http.StatusBadRequest, "", "reading the body: "+err.Error())
			return
		case len(body) > MaxReviewBytes:
			writeReviewError(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("the body is over %s", formatBytes(MaxReviewBytes)))
			return
		case len(body) == 0:
			writeReviewError(w, http.StatusBadRequest, "", "the body is empty; want an AdmissionReview")
			return
		}
		// v1beta1 has the same shape as v1; the version is kept to answer
		// in it. Case-sensitive and typed, like the API machinery.
		ar, err := decodeReview(body)
		if err != nil {
			uid, msg := describeBadReview(body, err)
			writeReviewError(w, http.StatusBadRequest, uid, msg)
			return
		}
		var uid types.UID
		if ar.Request != nil {
			uid = ar.Request.UID
		}
		if msg := envelopeProblem(ar.Kind, ar.APIVersion, ar.Request != nil); msg != "" {
			writeReviewError(w, http.StatusBadRequest, uid, msg)
			return
		}
		// The API server sends exactly application/json; parameters such
		// as a charset are fine (JSON is UTF-8 anyway).
		ct := r.Header.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeReviewError(w, http.StatusUnsupportedMediaType, uid, truncate(fmt.Sprintf("content type %q: want application/json", ct), 200))
			return
		}
		resp := wh.Handle(r.Context(), admission.Request{AdmissionRequest: *ar.Request})
		out := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: ar.APIVersion, Kind: "AdmissionReview"},
			Response: &resp.AdmissionResponse,
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out) // a failed write is the client gone
	})
}

// decodeReview reads an AdmissionReview from body in one pass: an object
// of a kind fitgate judges is decoded as it is read, when the request
// names its kind before it (the API server writes kind first), and kept in
// the request's RawExtension.Object. Raw is always the object's bytes, a
// slice of body rather than a copy: the handler reads it only while the
// body is alive, and nothing decoded points into it.
//
// An object that does not decode leaves the review to be read again
// without decoding objects, so that the handler can word the problem.
// Objects are left as bytes, too, in a body over the default limit of the
// objects fitgate checks, and when the request names its kind after them.
// The fast path (fastdecode.go) reads the body first and returns the same
// review, or leaves the body to v2.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	if ar, err := fastDecodeReview(body); err == nil {
		return ar, nil
	}
	return decodeReviewV2(body)
}

// decodeReviewV2 is decodeReview with encoding/json/v2 only, for what the
// fast path leaves to it.
func decodeReviewV2(body []byte) (*admissionv1.AdmissionReview, error) {
	if len(body) <= DefaultMaxObjectBytes {
		var sr streamedReview
		err := jsonv2.Unmarshal(body, &sr, lenientSyntax)
		if err == nil {
			return newReview(sr.TypeMeta, (*wireRequest)(sr.Request), body), nil
		}
		if !errors.Is(err, errObjectUndecodable) {
			return nil, err
		}
	}
	var rr rawReview
	if err := jsonv2.Unmarshal(body, &rr, lenientSyntax); err != nil {
		return nil, err
	}
	return newReview(rr.TypeMeta, rr.Request, body), nil
}

// An AdmissionReview as read off the wire: streamedReview decodes the
// objects of a kind fitgate judges, rawReview keeps them as bytes.
type (
	streamedReview struct {
		metav1.TypeMeta `json:",inline"`
		Request         *streamedRequest `json:"request"`
	}
	rawReview struct {
		metav1.TypeMeta `json:",inline"`
		Request         *wireRequest `json:"request"`
	}
)

// wireRequest is an AdmissionRequest whose objects and options are read as
// wireObjects: the fields of the same JSON name here, shallower than the
// embedded request's, are the ones decoded.
type wireRequest struct {
	admissionv1.AdmissionRequest `json:",inline"`
	Object                       wireObject `json:"object"`
	OldObject                    wireObject `json:"oldObject"`
	Options                      wireObject `json:"options"`
}

// streamedRequest is a wireRequest whose objects know the request's kind,
// decoded before them, so that they can be decoded as they are read.
type streamedRequest wireRequest

func (r *streamedRequest) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	r.Object.kind, r.OldObject.kind = &r.Kind, &r.Kind
	return jsonv2.UnmarshalDecode(dec, (*wireRequest)(r))
}

// newReview is the AdmissionReview read as tm and r from body.
func newReview(tm metav1.TypeMeta, r *wireRequest, body []byte) *admissionv1.AdmissionReview {
	ar := &admissionv1.AdmissionReview{TypeMeta: tm}
	if r != nil {
		ar.Request = &r.AdmissionRequest
		ar.Request.Object = r.Object.rawExtension(body)
		ar.Request.OldObject = r.OldObject.rawExtension(body)
		ar.Request.Options = r.Options.rawExtension(body)
	}
	return ar
}

// wireObject is an embedded object: its place in the body and, for a kind
// fitgate judges, the object decoded.
type wireObject struct {
	kind       *metav1.GroupVersionKind // nil: keep the bytes only
	start, end int64                    // offsets in the body; end 0 for null or absent
	obj        runtime.Object
}

// errObjectUndecodable: an object of a kind fitgate judges did not decode.
var errObjectUndecodable = errors.New("the object does not decode")

func (o *wireObject) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	o.start, o.end, o.obj = 0, 0, nil
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	start := dec.InputOffset() // before the value, possibly before ':' and spaces
	var lk leanKind
	var ok bool
	if o.kind != nil {
		lk, ok = leanKinds[schema.GroupVersionKind{Group: o.kind.Group, Version: o.kind.Version, Kind: o.kind.Kind}]
	}
	if ok {
		w := lk.wrapper()
		if err := jsonv2.UnmarshalDecode(dec, w); err != nil {
			return fmt.Errorf("%w: %w", errObjectUndecodable, err)
		}
		o.obj = lk.finish(w)
	} else if _, err := dec.ReadValue(); err != nil {
		return err
	}
	o.start, o.end = start, dec.InputOffset()
	return nil
}

// rawExtension is the object as a RawExtension: its bytes in body, and the
// object if it was decoded.
func (o *wireObject) rawExtension(body []byte) runtime.RawExtension {
	if o.end == 0 {
		return runtime.RawExtension{}
	}
	// A JSON value starts with neither ':' nor white space.
	b := bytes.TrimLeft(body[o.start:o.end], ": \t\r\n")
	return runtime.RawExtension{Raw: b[:len(b):len(b)], Object: o.obj}
}

// bodyBuffers recycles request bodies: every review would otherwise
// allocate its body afresh, several times over as the buffer grows. A
// buffer goes back only once its review is answered.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBodyBuffer returns a buffer to the pool, unless a huge review grew it.
func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bodyBuffers.Put(b)
}

// envelopeProblem says what makes a review unreadable, or "".
func envelopeProblem(kind, apiVersion string, hasRequest bool) string {
	switch {
	case kind != "AdmissionReview":
		return truncate(fmt.Sprintf("kind %q: want an AdmissionReview", kind), 200)
	case !supportedReviewVersions[apiVersion]:
		return truncate(fmt.Sprintf("AdmissionReview version %q is not supported: want admission.k8s.io/v1", apiVersion), 200)
	case !hasRequest:
		return "the AdmissionReview has no request"
	}
	return ""
}

// describeBadReview words why a body did not decode, and finds the
// request's UID if it has one: a refusal without the UID reads to the API
// server as a broken webhook. Only bad input comes here, so it may parse
// the body again, leniently.
func describeBadReview(body []byte, decodeErr error) (types.UID, string) {
	var env struct {
		metav1.TypeMeta
		Request *struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", truncate("the body is not an AdmissionReview: "+jsonProblem(err), 200)
	}
	var uid types.UID
	if env.Request != nil {
		uid = env.Request.UID
	}
	if msg := envelopeProblem(env.Kind, env.APIVersion, env.Request != nil); msg != "" {
		return uid, msg
	}
	return uid, truncate("the body is not an AdmissionReview: "+decodeErr.Error(), 200)
}

// jsonProblem words a decoding error without Go type names.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		where := "the body"
		if typ.Field != "" {
			where = typ.Field
		}
		return fmt.Sprintf("%s is a JSON %s, want an object", where, typ.Value)
	}
	return err.Error()
}

// writeReviewError answers with status and a v1 AdmissionReview whose
// response carries the same code and the message.
func writeReviewError(w http.ResponseWriter, status int, uid types.UID, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{UID: uid, Allowed: false,
			Result: &metav1.Status{Status: metav1.StatusFailure, Code: int32(status), Message: "fitgate: " + msg}},
	})
}

// requestLogger gives each request the values controller-runtime's default
// logger has (object, namespace, name, resource, user, requestID), but adds
// them only when a line is written: building them eagerly cost about 3% of
// a review, and almost every review logs nothing.
func requestLogger(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil || base.GetSink() == nil {
		return base
	}
	ns, name, resource, user, uid := req.Namespace, req.Name, req.Resource, req.UserInfo.Username, req.UID
	return base.WithSink(&lazyValuesSink{base: base.GetSink(), values: func() []any {
		return []any{"object", klog.KRef(ns, name), "namespace", ns, "name", name,
			"resource", resource, "user", user, "requestID", uid}
	}})
}

// lazyValuesSink adds values to base the first time it writes a line.
type lazyValuesSink struct {
	base   logr.LogSink
	values func() []any
	once   sync.Once
	sink   logr.LogSink
	depth  int
}

func (s *lazyValuesSink) resolved() logr.LogSink {
	s.once.Do(func() { s.sink = s.base.WithValues(s.values()...) })
	return s.sink
}

func (s *lazyValuesSink) Init(logr.RuntimeInfo)  {} // base was initialised by its own logger
func (s *lazyValuesSink) Enabled(level int) bool { return s.base.Enabled(level) }
func (s *lazyValuesSink) Info(level int, msg string, kv ...any) {
	s.resolved().Info(level, msg, kv...)
}
func (s *lazyValuesSink) Error(err error, msg string, kv ...any) { s.resolved().Error(err, msg, kv...) }

// WithValues and WithName stay lazy (controller-runtime's FromContext
// calls WithValues on every use, most often with nothing), and keep the
// request's values first, as the eager logger would.
func (s *lazyValuesSink) WithValues(kv ...any) logr.LogSink {
	if len(kv) == 0 {
		return s
	}
	kv = slices.Clone(kv)
	return &lazyValuesSink{base: s.base, values: func() []any { return append(s.values(), kv...) }}
}

func (s *lazyValuesSink) WithName(name string) logr.LogSink {
	return &lazyValuesSink{base: s.base.WithName(name), values: s.values}
}

// WithCallDepth keeps the caller's file and line right when base reports
// them.
func (s *lazyValuesSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.base.(logr.CallDepthLogSink); ok {
		return &lazyValuesSink{base: cd.WithCallDepth(depth), values: s.values}
	}
	return s
}
