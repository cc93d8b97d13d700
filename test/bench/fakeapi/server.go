package fakeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fitgate/fitgate/test/synth"
)

// Options tune New.
type Options struct {
	// Addr is the address to listen on; default 127.0.0.1:0, a free
	// loopback port.
	Addr string
	// Logf, if set, gets a line for each request the fake cannot serve
	// (unknown path, write, unsupported parameter or format).
	Logf func(format string, args ...any)
}

// Server is a running fake apiserver.
type Server struct {
	url    string
	ln     net.Listener
	http   *http.Server
	res    []*resource
	byPath map[string]*resource
	// rv is the resource version lists and bookmarks are served at: the
	// largest any object has.
	rv   int64
	logf func(format string, args ...any)

	stop      chan struct{}
	closeOnce sync.Once
	serveErr  chan error

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	unserved map[string]int
	requests map[string]int
}

// New serves the cluster until Close. A nil cluster is an empty one (no
// objects of any kind). It fails on an unusable cluster (nil objects,
// missing names or namespaces, duplicates) or if it cannot listen.
func New(c *synth.Cluster, opts Options) (*Server, error) {
	res := kinds()
	rv, err := load(res, c)
	if err != nil {
		return nil, fmt.Errorf("fakeapi: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeapi: listen: %w", err)
	}
	s := &Server{
		url:      "http://" + ln.Addr().String(),
		ln:       ln,
		res:      res,
		byPath:   map[string]*resource{},
		rv:       rv,
		logf:     opts.Logf,
		stop:     make(chan struct{}),
		serveErr: make(chan error, 1),
		watchers: map[*watcher]struct{}{},
		unserved: map[string]int{},
		requests: map[string]int{},
	}
	for _, r := range res {
		s.byPath[r.path()] = r
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	return s, nil
}

// Start serves the cluster on a free loopback port and returns its URL
// (http://127.0.0.1:port) and a function that stops it.
func Start(c *synth.Cluster) (url string, stop func(), err error) {
	s, err := New(c, Options{})
	if err != nil {
		return "", nil, err
	}
	return s.URL(), s.Close, nil
}

// URL is the server's base URL, http://host:port.
func (s *Server) URL() string { return s.url }

// ResourceVersion is the resource version lists are served at.
func (s *Server) ResourceVersion() int64 { return s.rv }

// Close ends every watch and stops the server. It is safe to call more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		<-s.serveErr
	})
}

// Unserved lists the requests the fake could not serve, as
// "METHOD path (code reason: message) ×count", sorted.
func (s *Server) Unserved() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.unserved))
	for k, n := range s.unserved {
		out = append(out, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(out)
	return out
}

// Requests counts the requests served by verb and resource: "list pods",
// "watch pods" (a plain watch), "watchlist pods" (sendInitialEvents=true),
// "get pods", "discovery", "health".
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, n := range s.requests {
		out[k] = n
	}
	return out
}

// Watches is the number of open watches on the resource (its plural,
// e.g. "pods") whose initial events have been sent.
func (s *Server) Watches(plural string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for w := range s.watchers {
		if w.res.plural == plural {
			n++
		}
	}
	return n
}

func (s *Server) count(what string) {
	s.mu.Lock()
	s.requests[what]++
	s.mu.Unlock()
}

// resourceByPlural finds a served resource by its plural name.
func (s *Server) resourceByPlural(plural string) *resource {
	for _, r := range s.res {
		if r.plural == plural {
			return r
		}
	}
	return nil
}

// Kinds lists the plurals of every resource served, e.g. "pods".
func (s *Server) Kinds() []string {
	out := make([]string, len(s.res))
	for i, r := range s.res {
		out[i] = r.plural
	}
	return out
}

// String describes the server for logs.
func (s *Server) String() string {
	var parts []string
	for _, r := range s.res {
		if len(r.objs) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", len(r.objs), r.plural))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no objects"}
	}
	return fmt.Sprintf("fake apiserver at %s serving %s (resourceVersion %d)", s.url, strings.Join(parts, ", "), s.rv)
}
