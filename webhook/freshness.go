package webhook

import (
	"context"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Freshness is asked before every denial whether the cache has caught up
// with the API server, so that nothing is denied because an informer is a
// few milliseconds (or, after an API server restart, a few seconds) behind:
// a node added just before a pod that only fits on it.
//
// Nodes are what a capacity or placement denial rests on; pods only ever
// make findings transient, and references are confirmed one by one with
// live GETs (confirmReferences).
type Freshness interface {
	// WaitForNodes waits until the cache holds every node the API server
	// holds now, each at least as new, or until ctx ends. current says
	// whether it caught up; waited, whether it had to wait. A check made
	// before the call may be stale either way: the handler judges again.
	WaitForNodes(ctx context.Context) (current, waited bool, err error)
}

var _ Freshness = (*Cache)(nil)

var nodesResource = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}

// freshnessPoll is how often WaitForNodes looks at the cache again.
const freshnessPoll = 10 * time.Millisecond

// WaitForNodes implements Freshness with a LIST of the nodes' metadata
// (resourceVersion unset: a consistent read, served from the API server's
// watch cache) and a comparison with the versions the snapshot holds.
//
// Denials can come in bursts (a CI loop re-applying a pod that never
// fits), and on a large cluster each LIST is megabytes for the API server
// to send. So concurrent callers share LISTs: a caller joins the next LIST
// to start, never one already under way (that one may predate the state
// the caller judged), and at most one LIST runs at a time.
func (c *Cache) WaitForNodes(ctx context.Context) (current, waited bool, err error) {
	want, err := c.nodeLists.await(ctx, c.listNodeVersions)
	if err != nil {
		return false, false, err
	}
	t := time.NewTicker(freshnessPoll)
	defer t.Stop()
	for {
		if c.nodes.atLeast(want) {
			return true, waited, nil
		}
		waited = true
		select {
		case <-ctx.Done():
			return false, true, nil
		case <-t.C:
		}
	}
}

// nodeListTimeout bounds a shared LIST; each caller also stops waiting when
// its own context ends.
const nodeListTimeout = 10 * time.Second

func (c *Cache) listNodeVersions() (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), nodeListTimeout)
	defer cancel()
	list, err := c.metaClient.Resource(nodesResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	want := make(map[string]string, len(list.Items))
	for i := range list.Items {
		want[list.Items[i].Name] = list.Items[i].ResourceVersion
	}
	return want, nil
}

// sharedLists runs LISTs on behalf of concurrent callers.
type sharedLists struct {
	mu      sync.Mutex
	next    *listCall // not started yet; new callers join it
	running bool
}

type listCall struct {
	done chan struct{}
	want map[string]string
	err  error
}

// await joins the next LIST, starting it if none is under way, and waits
// for its result or for ctx to end.
func (f *sharedLists) await(ctx context.Context, list func() (map[string]string, error)) (map[string]string, error) {
	f.mu.Lock()
	call := f.next
	if call == nil {
		call = &listCall{done: make(chan struct{})}
		f.next = call
	}
	if !f.running {
		f.running = true
		go f.run(list)
	}
	f.mu.Unlock()
	select {
	case <-call.done:
		return call.want, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run starts the waiting LIST, and the one queued behind it, until none is
// waiting.
func (f *sharedLists) run(list func() (map[string]string, error)) {
	for {
		f.mu.Lock()
		call := f.next
		f.next = nil
		if call == nil {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		call.want, call.err = list()
		close(call.done)
	}
}

// nodeVersions records the resource version of every node the snapshot
// holds, and of every node it saw deleted lately: a node the LIST returned
// may be gone from the cache by the time it is compared, deleted since,
// and that cache is not behind. The node event handler updates it right
// after the snapshot.
type nodeVersions struct {
	mu   sync.Mutex
	rv   map[string]string
	gone map[string]tombstone
}

type tombstone struct {
	rv string
	at time.Time
}

// tombstoneTTL is how long a deletion is remembered: far longer than any
// LIST-to-compare gap.
const tombstoneTTL = 5 * time.Minute

func (n *nodeVersions) set(obj runtime.Object, deleted bool) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rv == nil {
		n.rv, n.gone = map[string]string{}, map[string]tombstone{}
	}
	now := time.Now()
	for name, t := range n.gone {
		if now.Sub(t.at) > tombstoneTTL {
			delete(n.gone, name)
		}
	}
	if deleted {
		delete(n.rv, m.GetName())
		n.gone[m.GetName()] = tombstone{rv: m.GetResourceVersion(), at: now}
		return
	}
	n.rv[m.GetName()] = m.GetResourceVersion()
	delete(n.gone, m.GetName())
}

// atLeast reports whether every node in want is held at its version or a
// later one, or was seen deleted at a later version. Nodes held but not
// wanted (deleted since the LIST, as far as the cache knows) do not
// matter: they can only make a check more lenient, never deny.
func (n *nodeVersions) atLeast(want map[string]string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, wantRV := range want {
		have, ok := n.rv[name]
		if !ok {
			t, gone := n.gone[name]
			if !gone {
				return false
			}
			have = t.rv
		}
		if !rvAtLeast(have, wantRV) {
			return false
		}
	}
	return true
}

// rvAtLeast compares resource versions. They are opaque strings to
// clients, but etcd3's are revision numbers; when either does not parse,
// only equality counts.
func rvAtLeast(have, want string) bool {
	if have == want {
		return true
	}
	h, errH := strconv.ParseUint(have, 10, 64)
	w, errW := strconv.ParseUint(want, 10, 64)
	return errH == nil && errW == nil && h >= w
}
