// Package fakeapi is a small, read-only fake kube-apiserver for memory and
// load measurements. It serves a synthetic cluster (test/synth) over plain
// HTTP on loopback, as JSON, to unmodified client-go clients: `fitgate
// serve`, plain informers, kubectl.
//
// What it serves:
//
//   - GET, LIST and WATCH of every kind fitgate's cache watches: nodes, pods,
//     namespaces and resource quotas from the cluster; persistent volumes and
//     claims, storage classes, CSI nodes, limit ranges, priority classes,
//     runtime classes, service accounts, secrets and config maps as empty
//     collections.
//   - Metadata-only responses (PartialObjectMetadata and
//     PartialObjectMetadataList) when the Accept header asks for them, as the
//     client-go metadata client does.
//   - Label and field selectors (the field labels a real apiserver supports
//     for these kinds), namespaced paths, and paging with limit and continue.
//   - Watch-list (KEP-3157), which client-go informers use by default: a WATCH
//     with sendInitialEvents=true gets an ADDED event per object, then a
//     BOOKMARK whose object carries the annotation k8s.io/initial-events-end
//     and the list's resource version. A plain WATCH from resourceVersion ""
//     or "0" gets the ADDED events without the bookmark, as from a real
//     apiserver. Watches then stay open, without events, until the client goes
//     away, timeoutSeconds passes or the server stops.
//   - Enough discovery (/version, /api, /apis, /api/v1, /apis/<group>/<version>)
//     for kubectl, and /healthz, /livez and /readyz.
//
// Objects are served as the generator made them plus what an apiserver always
// sets: a resourceVersion (every object its own, the list's is the largest),
// a uid and a creationTimestamp when they have none. The cluster's objects
// are never modified; each is shallow-copied as it is encoded, and responses
// are streamed, never built in memory.
//
// Writes (POST, PUT, PATCH, DELETE) are refused with 405 MethodNotAllowed.
// Requests the fake cannot serve are recorded (see Server.Unserved), so a
// client's needs can be found by running it.
//
// SendBookmarks pushes extra, padded BOOKMARK events down open watches: a
// way to make a client allocate short-lived garbage, and so run its garbage
// collector, without changing what it caches.
package fakeapi
