// Package certs provisions and rotates fitgate's webhook serving certificate
// on clusters that have no cert-manager.
//
// The package is split the way open-policy-agent/cert-controller splits it,
// though the code is written from scratch:
//
//   - keys.go, rotation.go and material.go are pure certificate maths. They
//     take the time as an argument and never talk to the API server, so every
//     decision (issue, renew, rotate the CA, prune the bundle) is unit-tested
//     with an injected clock.
//   - rotator.go, secret.go, webhook.go, files.go and watch.go are the
//     runnable: it stores the material in one Secret, copies the serving pair
//     to disk for controller-runtime's certwatcher, and publishes the CA bundle
//     in the ValidatingWebhookConfiguration.
//
// # Secret layout
//
// One Secret of type kubernetes.io/tls holds everything every replica needs:
//
//	tls.crt  serving certificate, signed by the current CA
//	tls.key  its private key
//	ca.crt   CA bundle: the current CA first, then older CAs until they expire
//	ca.key   the current CA's private key, so any replica can renew
//
// The Secret is the single source of truth. Replicas agree through optimistic
// concurrency: every write is an Update carrying the resourceVersion that was
// read, a Conflict or AlreadyExists makes the loser re-read and re-evaluate,
// and the re-read material is then valid so the loser writes nothing. Two
// replicas therefore never fight.
//
// # CA rotation
//
// The CA is rotated, together with the serving certificate, when it enters
// its own rotation window. The old CA stays in ca.crt (and so in the published
// caBundle) until it expires, so a client that still sees a replica serving
// the old certificate keeps verifying it. The rotator publishes the new bundle
// in the webhook configuration before it writes the new serving pair to disk,
// so the API server trusts the new CA before this replica presents it.
//
// # RBAC
//
// Secrets in the webhook's namespace: get, list, watch and update restricted
// with resourceNames to the one Secret (list and watch are only ever issued
// with a metadata.name field selector, which the authorizer matches against
// resourceNames), plus create, which RBAC cannot restrict by name because the
// name is not known at authorization time. ValidatingWebhookConfigurations:
// get, list, watch and update restricted by resourceNames to the one
// configuration. Tools that diff live objects (Argo CD, Helm) should ignore
// webhooks[].clientConfig.caBundle, or they will keep reverting it and the
// rotator will keep re-injecting it.
//
// # Wiring
//
// Call Bootstrap before mgr.Start, then mgr.Add the Rotator (a Runnable that
// does not need leader election) and register ReadyCheck as a readiness
// check. The order matters: the manager starts webhook servers before other
// runnables, and the webhook server's certwatcher fails at start-up if
// tls.crt and tls.key are not on disk yet. Set the webhook server's CertDir
// to the Rotator's; certwatcher then hot-reloads every rotation.
package certs
