package feasibility

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// Document is one object read from a manifest stream, with where it came
// from so that errors can point at it.
type Document struct {
	Source string // file name, or "-" for stdin
	Index  int    // 0-based document index within Source (list items share their list's index)
	Object runtime.Object
	// Unknown is set, instead of Object, for a well-formed object of a kind
	// fitgate does not understand (a CRD instance, say). Callers report and
	// skip these rather than failing.
	Unknown *unstructured.Unstructured
}

// DecodeError says which document of which source was bad, and why.
type DecodeError struct {
	Source string
	Index  int
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s: document %d: %v", e.Source, e.Index, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

var (
	strictCodecs  = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)
	lenientCodecs = serializer.NewCodecFactory(scheme.Scheme)
)

// maxDocumentBytes bounds one YAML document, so a hostile stream cannot make
// the reader buffer without limit. It is large because `kubectl get -o yaml`
// prints a whole cluster as one List document.
const maxDocumentBytes = 1 << 30

// DecodeDocuments reads multi-document YAML or JSON, expanding `kind: List`
// (what `kubectl get -o yaml` prints) into its items. Documents that are
// empty or only comments are skipped. Each object is decoded into its typed
// Go form; unknown kinds come back as Unknown, and malformed documents as a
// *DecodeError naming the source and index.
func DecodeDocuments(source string, r io.Reader) ([]Document, error) {
	return decodeDocuments(source, r, true)
}

// DecodeState is DecodeDocuments for cluster state dumped by kubectl: fields
// this version of the API does not know (a newer server's) are dropped
// rather than rejected, since they cannot change what v1.37's scheduler
// does. Manifests use the strict DecodeDocuments, like `kubectl apply`.
func DecodeState(source string, r io.Reader) ([]Document, error) {
	return decodeDocuments(source, r, false)
}

func decodeDocuments(source string, r io.Reader, strict bool) ([]Document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReaderSize(r, 64<<10))
	var docs []Document
	for idx := 0; ; idx++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, &DecodeError{Source: source, Index: idx, Err: err}
		}
		if len(raw) > maxDocumentBytes {
			return docs, &DecodeError{Source: source, Index: idx, Err: fmt.Errorf("document is larger than %d bytes", maxDocumentBytes)}
		}
		if isBlankDocument(raw) {
			continue
		}
		got, err := decodeOne(raw, strict)
		if err != nil {
			return docs, &DecodeError{Source: source, Index: idx, Err: err}
		}
		for _, d := range got {
			d.Source, d.Index = source, idx
			docs = append(docs, d)
		}
	}
}

func isBlankDocument(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		t := strings.TrimSpace(string(line))
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

func decodeOne(raw []byte, strict bool) ([]Document, error) {
	jsonData, err := utilyaml.ToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var tm metav1.TypeMeta
	if err := utilyaml.Unmarshal(jsonData, &tm); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if tm.Kind == "" {
		return nil, errors.New("object has no kind")
	}
	if tm.APIVersion == "" {
		return nil, fmt.Errorf("%s has no apiVersion", tm.Kind)
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	// kubectl prints `kind: List`; typed lists (PodList, …) carry items too.
	if strings.HasSuffix(tm.Kind, "List") {
		return decodeList(jsonData, strict)
	}
	if !scheme.Scheme.Recognizes(gvk) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(jsonData); err != nil {
			return nil, fmt.Errorf("%s: %w", gvk, err)
		}
		return []Document{{Unknown: u}}, nil
	}
	codecs := lenientCodecs
	if strict {
		codecs = strictCodecs
	}
	obj, _, err := codecs.UniversalDeserializer().Decode(jsonData, &gvk, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return []Document{{Object: obj}}, nil
}

func decodeList(jsonData []byte, strict bool) ([]Document, error) {
	var list struct {
		Items []runtime.RawExtension `json:"items"`
	}
	if err := utilyaml.Unmarshal(jsonData, &list); err != nil {
		return nil, fmt.Errorf("List: %w", err)
	}
	var out []Document
	for i, item := range list.Items {
		got, err := decodeOne(item.Raw, strict)
		if err != nil {
			return out, fmt.Errorf("List item %d: %w", i, err)
		}
		out = append(out, got...)
	}
	return out, nil
}
