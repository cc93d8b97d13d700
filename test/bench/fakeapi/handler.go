package fakeapi

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// format is what a response carries: full objects or metadata only.
type format int

const (
	formatFull format = iota
	formatMeta
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.refuse(w, r, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			fmt.Sprintf("%s is not supported: the fake apiserver is read-only", r.Method))
		return
	}
	p := r.URL.Path
	switch p {
	case "/healthz", "/livez", "/readyz":
		s.count("health")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
		return
	case "/version":
		s.count("discovery")
		writeJSON(w, http.StatusOK, version.Info{Major: "1", Minor: "37", GitVersion: "v1.37.0-fakeapi",
			GitTreeState: "clean", GoVersion: goruntime.Version(), Compiler: goruntime.Compiler,
			Platform: goruntime.GOOS + "/" + goruntime.GOARCH})
		return
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	var gv schema.GroupVersion
	var rest []string
	switch {
	case segs[0] == "api" && len(segs) == 1:
		s.count("discovery")
		host, _, _ := net.SplitHostPort(s.ln.Addr().String())
		writeJSON(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: host}}})
		return
	case segs[0] == "api" && segs[1] == "v1":
		gv, rest = schema.GroupVersion{Version: "v1"}, segs[2:]
	case segs[0] == "apis" && len(segs) == 1:
		s.count("discovery")
		writeJSON(w, http.StatusOK, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: s.groups()})
		return
	case segs[0] == "apis" && len(segs) == 2:
		for _, g := range s.groups() {
			if g.Name == segs[1] {
				s.count("discovery")
				g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
				writeJSON(w, http.StatusOK, &g)
				return
			}
		}
	case segs[0] == "apis" && len(segs) >= 3:
		gv, rest = schema.GroupVersion{Group: segs[1], Version: segs[2]}, segs[3:]
	}
	if gv.Version == "" {
		s.refuse(w, r, http.StatusNotFound, metav1.StatusReasonNotFound, "the fake apiserver does not serve "+p)
		return
	}
	if len(rest) == 0 {
		if list := s.resourceList(gv); list != nil {
			s.count("discovery")
			writeJSON(w, http.StatusOK, list)
			return
		}
		s.refuse(w, r, http.StatusNotFound, metav1.StatusReasonNotFound, "the fake apiserver does not serve "+p)
		return
	}
	var ns, plural, name string
	switch {
	case len(rest) >= 3 && rest[0] == "namespaces":
		ns, plural = rest[1], rest[2]
		if len(rest) == 4 {
			name = rest[3]
		} else if len(rest) > 4 {
			plural = "" // subresources are not served
		}
	case len(rest) == 1:
		plural = rest[0]
	case len(rest) == 2:
		plural, name = rest[0], rest[1]
	}
	res := s.byPath[gv.Group+"/"+gv.Version+"/"+plural]
	if res == nil || (ns != "" && !res.namespaced) || (name != "" && ns == "" && res.namespaced) {
		s.refuse(w, r, http.StatusNotFound, metav1.StatusReasonNotFound, "the fake apiserver does not serve "+p)
		return
	}
	q, err := parseQuery(res, r.URL.Query())
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	f, ok := negotiate(r.Header.Get("Accept"), name == "" && !q.watch)
	if !ok {
		s.refuse(w, r, http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			fmt.Sprintf("none of %q is served: only application/json, with as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1 or without as", r.Header.Get("Accept")))
		return
	}
	switch {
	case name != "" && q.watch:
		s.refuse(w, r, http.StatusBadRequest, metav1.StatusReasonBadRequest, "watching a single object by path is not supported; use a fieldSelector on metadata.name")
	case name != "":
		s.get(w, res, ns, name, f)
	case q.watch:
		s.watch(w, r, res, ns, q, f)
	default:
		s.list(w, r, res, ns, q, f)
	}
}

// refuse answers a request the fake cannot serve, and records it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reason metav1.StatusReason, msg string) {
	what := fmt.Sprintf("%s %s (%d %s: %s)", r.Method, r.URL.RequestURI(), code, reason, msg)
	s.mu.Lock()
	s.unserved[what]++
	s.mu.Unlock()
	if s.logf != nil {
		s.logf("fakeapi: cannot serve %s", what)
	}
	writeStatus(w, code, reason, msg)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// negotiate picks the response format from the Accept header: the first
// JSON media type, metadata-only if it asks for PartialObjectMetadataList
// (lists) or PartialObjectMetadata (single objects and watch events) in
// meta.k8s.io/v1. Protobuf, CBOR and Table are not served.
func negotiate(accept string, list bool) (format, bool) {
	if strings.TrimSpace(accept) == "" {
		return formatFull, true
	}
	want := "PartialObjectMetadata"
	if list {
		want = "PartialObjectMetadataList"
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt != "application/json" && mt != "application/*" && mt != "*/*" {
			continue
		}
		switch as := params["as"]; {
		case as == "":
			return formatFull, true
		case as == want && params["g"] == "meta.k8s.io" && params["v"] == "v1":
			return formatMeta, true
		}
	}
	return 0, false
}

// query holds the list and watch parameters the fake understands. Others
// (timeout, pretty, ...) are ignored, as they change nothing here.
type query struct {
	watch       bool
	label       labels.Selector
	field       fields.Selector
	limit       int64
	start       int // from continue
	rv          string
	rvMatch     metav1.ResourceVersionMatch
	sendInitial *bool
	bookmarks   bool
	timeout     time.Duration
}

func parseQuery(res *resource, v url.Values) (query, error) {
	q := query{label: labels.Everything(), field: fields.Everything()}
	boolean := func(name string) (bool, bool, error) {
		s, ok := v[name]
		if !ok || len(s) == 0 || s[0] == "" {
			return false, false, nil
		}
		b, err := strconv.ParseBool(s[0])
		if err != nil {
			return false, false, fmt.Errorf("%s=%q: want true or false", name, s[0])
		}
		return b, true, nil
	}
	var err error
	if q.watch, _, err = boolean("watch"); err != nil {
		return q, err
	}
	if q.bookmarks, _, err = boolean("allowWatchBookmarks"); err != nil {
		return q, err
	}
	if b, set, err := boolean("sendInitialEvents"); err != nil {
		return q, err
	} else if set {
		q.sendInitial = &b
	}
	if s := v.Get("labelSelector"); s != "" {
		if q.label, err = labels.Parse(s); err != nil {
			return q, fmt.Errorf("labelSelector %q: %v", s, err)
		}
	}
	if s := v.Get("fieldSelector"); s != "" {
		if q.field, err = fields.ParseSelector(s); err != nil {
			return q, fmt.Errorf("fieldSelector %q: %v", s, err)
		}
		for _, req := range q.field.Requirements() {
			if !res.supportsField(req.Field) {
				return q, fmt.Errorf("field label not supported: %s", req.Field)
			}
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.limit, err = strconv.ParseInt(s, 10, 64); err != nil || q.limit < 0 {
			return q, fmt.Errorf("limit=%q: want a non-negative integer", s)
		}
	}
	if s := v.Get("continue"); s != "" {
		if q.start, err = decodeContinue(s); err != nil {
			return q, err
		}
	}
	q.rv = v.Get("resourceVersion")
	if q.rv != "" {
		if n, err := strconv.ParseInt(q.rv, 10, 64); err != nil || n < 0 {
			return q, fmt.Errorf("resourceVersion=%q: want a non-negative integer", q.rv)
		}
	}
	q.rvMatch = metav1.ResourceVersionMatch(v.Get("resourceVersionMatch"))
	if s := v.Get("timeoutSeconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("timeoutSeconds=%q: want a non-negative integer", s)
		}
		q.timeout = time.Duration(n) * time.Second
	}
	if q.watch {
		switch {
		case q.sendInitial != nil && *q.sendInitial && (q.rvMatch != metav1.ResourceVersionMatchNotOlderThan || !q.bookmarks):
			return q, fmt.Errorf("sendInitialEvents=true needs resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true")
		case q.sendInitial == nil && q.rvMatch != "":
			return q, fmt.Errorf("resourceVersionMatch is forbidden for watch unless sendInitialEvents is set")
		case q.start != 0:
			return q, fmt.Errorf("continue is forbidden for watch")
		}
	} else {
		switch q.rvMatch {
		case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
		default:
			return q, fmt.Errorf("resourceVersionMatch=%q: want NotOlderThan or Exact", q.rvMatch)
		}
		if q.sendInitial != nil {
			return q, fmt.Errorf("sendInitialEvents is only allowed with watch=true")
		}
	}
	return q, nil
}

// Continue tokens are the index of the next object, base64-encoded.
func encodeContinue(next int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("fakeapi:" + strconv.Itoa(next)))
}

func decodeContinue(s string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		if n, ok := strings.CutPrefix(string(b), "fakeapi:"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("continue %q: not a token this server issued", s)
}

// matches reports whether object i is in ns (all if "") and selected.
func (q *query) matches(res *resource, ns string, i int) bool {
	m := res.metas[i]
	if ns != "" && m.Namespace != ns {
		return false
	}
	if !q.label.Empty() && !q.label.Matches(labels.Set(m.Labels)) {
		return false
	}
	if !q.field.Empty() && !q.field.Matches(res.fieldSet(i)) {
		return false
	}
	return true
}

func (s *Server) get(w http.ResponseWriter, res *resource, ns, name string, f format) {
	s.count("get " + res.plural)
	i, ok := res.byKey[ns+"/"+name]
	if !ok {
		err := apierrors.NewNotFound(schema.GroupResource{Group: res.gv.Group, Resource: res.plural}, name)
		err.ErrStatus.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		writeJSON(w, http.StatusNotFound, &err.ErrStatus)
		return
	}
	if f == formatMeta {
		writeJSON(w, http.StatusOK, res.partial(i))
		return
	}
	writeJSON(w, http.StatusOK, res.object(i, true))
}

// list streams a (page of a) list.
func (s *Server) list(w http.ResponseWriter, r *http.Request, res *resource, ns string, q query, f format) {
	s.count("list " + res.plural)
	if q.rvMatch == metav1.ResourceVersionMatchExact && q.rv != strconv.FormatInt(s.rv, 10) {
		writeStatus(w, http.StatusGone, metav1.StatusReasonExpired,
			fmt.Sprintf("resourceVersion %s is not available: the fake serves only %d", q.rv, s.rv))
		return
	}
	var items []int32
	next := 0
	for i := q.start; i < len(res.objs); i++ {
		if !q.matches(res, ns, i) {
			continue
		}
		items = append(items, int32(i))
		if q.limit > 0 && int64(len(items)) == q.limit {
			next = i + 1
			break
		}
	}
	cont := ""
	if next > 0 && next < len(res.objs) {
		cont = fmt.Sprintf(",%q:%q", "continue", encodeContinue(next))
	}
	kind, apiVersion := res.kind+"List", res.gv.String()
	if f == formatMeta {
		kind, apiVersion = "PartialObjectMetadataList", metav1.SchemeGroupVersion.String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	fmt.Fprintf(bw, `{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"%d"%s},"items":[`, kind, apiVersion, s.rv, cont)
	for n, i := range items {
		if n > 0 {
			_ = bw.WriteByte(',')
		}
		var err error
		if f == formatMeta {
			err = enc.Encode(res.partial(int(i)))
		} else {
			err = enc.Encode(res.object(int(i), false))
		}
		if err != nil || r.Context().Err() != nil {
			return // the client went away
		}
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}

// groups is the discovery of the named API groups.
func (s *Server) groups() []metav1.APIGroup {
	seen := map[string]bool{}
	var out []metav1.APIGroup
	for _, r := range s.res {
		if r.gv.Group == "" || seen[r.gv.Group] {
			continue
		}
		seen[r.gv.Group] = true
		v := metav1.GroupVersionForDiscovery{GroupVersion: r.gv.String(), Version: r.gv.Version}
		out = append(out, metav1.APIGroup{Name: r.gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// resourceList is the discovery of one group version, nil if not served.
func (s *Server) resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	var list *metav1.APIResourceList
	for _, r := range s.res {
		if r.gv != gv {
			continue
		}
		if list == nil {
			list = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: r.plural, SingularName: r.singular,
			Namespaced: r.namespaced, Kind: r.kind, Verbs: metav1.Verbs{"get", "list", "watch"}})
	}
	return list
}
