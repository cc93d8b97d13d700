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

// WaitForNodes implements Freshness with one LIST of the nodes' metadata
// (resourceVersion unset: a consistent read, served from the API server's
// watch cache) and a comparison with the versions the snapshot holds.
func (c *Cache) WaitForNodes(ctx context.Context) (current, waited bool, err error) {
	list, err := c.metaClient.Resource(nodesResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, false, err
	}
	want := make(map[string]string, len(list.Items))
	for i := range list.Items {
		want[list.Items[i].Name] = list.Items[i].ResourceVersion
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
