package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// MaxReviewBytes bounds an AdmissionReview body, as controller-runtime
// does: two objects of at most 3 MiB each (etcd's limit, doubled for JSON)
// and the rest.
const MaxReviewBytes = 7 << 20

// reviewCodecs decode AdmissionReviews the way controller-runtime does.
var (
	reviewScheme = runtime.NewScheme()
	reviewCodecs = serializer.NewCodecFactory(reviewScheme)
)

func init() {
	utilruntime.Must(admissionv1.AddToScheme(reviewScheme))
	utilruntime.Must(admissionv1beta1.AddToScheme(reviewScheme))
}

// anyVersionReview decodes v1 and v1beta1 reviews alike (they have the
// same shape), as controller-runtime's unversionedAdmissionReview does.
type anyVersionReview struct {
	admissionv1.AdmissionReview
}

var _ runtime.Object = &anyVersionReview{}

// supportedReviewVersions are the AdmissionReview versions fitgate reads.
// The configuration asks for v1 only; v1beta1 has the same shape.
var supportedReviewVersions = map[string]bool{
	admissionv1.SchemeGroupVersion.String():      true,
	admissionv1beta1.SchemeGroupVersion.String(): true,
}

// checkEnvelope answers 400, with a message that says what is wrong,
// for a body that is not an AdmissionReview fitgate can read, before
// controller-runtime sees it.
//
// Why: controller-runtime decodes any JSON object as a v1 review. A body
// of another kind or an unknown version (admission.k8s.io/v2) would be
// judged as if it were v1 and answered in a version the sender may not
// read, and a body without a request would be "allowed" with a message
// about kind "/, Kind=". The API server only ever sends what the
// configuration asks for, so such a body is a client error; a 400 makes
// the API server apply the failure policy, which never blocks a deploy
// with the default Ignore.
func checkEnvelope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeReviewError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s: AdmissionReviews are POSTed", r.Method))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxReviewBytes+1))
		_ = r.Body.Close()
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
		var env struct {
			metav1.TypeMeta
			Request *struct {
				UID types.UID `json:"uid"`
			} `json:"request"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			writeReviewError(w, http.StatusBadRequest, "", truncate("the body is not an AdmissionReview: "+jsonProblem(err), 200))
			return
		}
		var uid types.UID
		if env.Request != nil {
			uid = env.Request.UID
		}
		switch {
		case env.Kind != "AdmissionReview":
			writeReviewError(w, http.StatusBadRequest, uid, truncate(fmt.Sprintf("kind %q: want an AdmissionReview", env.Kind), 200))
			return
		case !supportedReviewVersions[env.APIVersion]:
			writeReviewError(w, http.StatusBadRequest, uid, truncate(fmt.Sprintf(
				"AdmissionReview version %q is not supported: want admission.k8s.io/v1", env.APIVersion), 200))
			return
		case env.Request == nil:
			writeReviewError(w, http.StatusBadRequest, "", "the AdmissionReview has no request")
			return
		}
		// Decode it as controller-runtime will (case-sensitive, typed), so
		// that a body it would refuse is refused here, with the request's
		// UID: controller-runtime's own refusal carries none, which the API
		// server would read as a broken webhook.
		ar := anyVersionReview{}
		ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
		if _, _, err := reviewCodecs.UniversalDeserializer().Decode(body, nil, &ar); err != nil {
			writeReviewError(w, http.StatusBadRequest, uid, truncate("the body is not an AdmissionReview: "+err.Error(), 200))
			return
		}
		// controller-runtime wants exactly application/json; parameters
		// such as a charset are fine (JSON is UTF-8 anyway).
		ct := r.Header.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeReviewError(w, http.StatusUnsupportedMediaType, uid, truncate(fmt.Sprintf("content type %q: want application/json", ct), 200))
			return
		}
		r.Header.Set("Content-Type", "application/json")
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
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
