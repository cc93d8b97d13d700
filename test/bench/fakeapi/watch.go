package fakeapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PaddingAnnotation carries the padding of the bookmarks SendBookmarks
// sends.
const PaddingAnnotation = "fakeapi.fitgate.dev/padding"

// watcher is an open watch whose initial events have been sent.
type watcher struct {
	res  *resource
	cmds chan bookmarkCmd
	gone chan struct{}
}

type bookmarkCmd struct {
	n       int
	padding string
	done    chan error
}

// watch streams a watch: the initial events if asked for, then nothing but
// bookmarks pushed by SendBookmarks until the client goes away,
// timeoutSeconds passes or the server stops.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, res *resource, ns string, q query, f format) {
	// A real apiserver sends the current state as ADDED events when asked
	// to (sendInitialEvents=true) and, for the legacy semantics, when the
	// watch starts at resourceVersion "" or "0" without sendInitialEvents.
	initial := q.sendInitial == nil && (q.rv == "" || q.rv == "0") || q.sendInitial != nil && *q.sendInitial
	endBookmark := q.sendInitial != nil && *q.sendInitial
	if endBookmark {
		s.count("watchlist " + res.plural)
	} else {
		s.count("watch " + res.plural)
	}
	kind, apiVersion := res.kind, res.gv.String()
	if f == formatMeta {
		kind, apiVersion = "PartialObjectMetadata", metav1.SchemeGroupVersion.String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	ctx := r.Context()
	if initial {
		for i := range res.objs {
			if !q.matches(res, ns, i) {
				continue
			}
			_, _ = bw.WriteString(`{"type":"ADDED","object":`)
			var err error
			if f == formatMeta {
				err = enc.Encode(res.partial(i))
			} else {
				err = enc.Encode(res.object(i, true))
			}
			_, _ = bw.WriteString("}\n")
			if err != nil || ctx.Err() != nil {
				return
			}
		}
	}
	if endBookmark {
		writeBookmark(bw, kind, apiVersion, s.rv, metav1.InitialEventsAnnotationKey, "true")
	}
	if bw.Flush() != nil || rc.Flush() != nil {
		return
	}

	wt := &watcher{res: res, cmds: make(chan bookmarkCmd), gone: make(chan struct{})}
	s.mu.Lock()
	s.watchers[wt] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
		close(wt.gone)
	}()
	var timeout <-chan time.Time
	if q.timeout > 0 {
		t := time.NewTimer(q.timeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-timeout:
			return
		case cmd := <-wt.cmds:
			for i := 0; i < cmd.n; i++ {
				writeBookmark(bw, kind, apiVersion, s.rv, PaddingAnnotation, cmd.padding)
			}
			err := bw.Flush()
			if err == nil {
				err = rc.Flush()
			}
			cmd.done <- err
			if err != nil {
				return
			}
		}
	}
}

// writeBookmark writes a BOOKMARK event whose object has only a resource
// version and one annotation.
func writeBookmark(bw *bufio.Writer, kind, apiVersion string, rv int64, key, value string) {
	fmt.Fprintf(bw, `{"type":"BOOKMARK","object":{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"%d","annotations":{%q:%q}}}}`+"\n",
		kind, apiVersion, rv, key, value)
}

// SendBookmarks sends n BOOKMARK events down every open watch of the
// resource (its plural, e.g. "pods") whose initial events are done, each
// padded with a padBytes-long annotation, and waits until they are written.
// Bookmarks change nothing a client caches, but decoding them allocates
// about padBytes each: n*padBytes of garbage, which makes the client run
// its garbage collector. It returns how many watches got them.
func (s *Server) SendBookmarks(ctx context.Context, plural string, n, padBytes int) (int, error) {
	if n < 0 || padBytes < 0 {
		return 0, fmt.Errorf("fakeapi: SendBookmarks(%d, %d): want non-negative counts", n, padBytes)
	}
	res := s.resourceByPlural(plural)
	if res == nil {
		return 0, fmt.Errorf("fakeapi: no resource %q (serving %s)", plural, strings.Join(s.Kinds(), ", "))
	}
	s.mu.Lock()
	var targets []*watcher
	for w := range s.watchers {
		if w.res == res {
			targets = append(targets, w)
		}
	}
	s.mu.Unlock()
	padding := strings.Repeat("x", padBytes)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		reached int
		errs    []error
	)
	for _, w := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := bookmarkCmd{n: n, padding: padding, done: make(chan error, 1)}
			select {
			case w.cmds <- cmd:
			case <-w.gone:
				return
			case <-ctx.Done():
				return
			}
			var err error
			select {
			case err = <-cmd.done:
			case <-w.gone:
				return
			case <-ctx.Done():
				err = ctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			reached++
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return reached, err
	}
	return reached, errors.Join(errs...)
}
