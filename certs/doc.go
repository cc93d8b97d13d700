// Package certs provisions and rotates fitgate's webhook serving certificate
// on clusters that have no cert-manager.
//
// The package is split the way open-policy-agent/cert-controller splits it,
// though the code is written from scratch:
//
//   - keys.go, rotation.go and material.go are pure certificate maths. They
//     take the time as an argument and never talk to the API server, so every
//     decision (issue, renew, stage and promote a CA, prune the bundle) is
//     unit-tested with an injected clock.
//   - rotator.go, secret.go, webhook.go, files.go and watch.go are the
//     runnable: it stores the material in one Secret, copies the serving pair
//     to disk for controller-runtime's certwatcher, and publishes the CA bundle
//     in the ValidatingWebhookConfiguration.
//
// # Secret layout
//
// One Secret of type kubernetes.io/tls holds everything every replica needs:
//
//	tls.crt      serving certificate, signed by the signing CA
//	tls.key      its private key
//	ca.crt       CA bundle: the signing CA first, then older CAs until they
//	             expire, and last the staged next CA while there is one
//	ca.key       the signing CA's private key, so any replica can renew
//	ca-next.key  the staged next CA's private key, only during a CA rotation
//
// The Secret is the single source of truth. Replicas agree through optimistic
// concurrency: every write is an Update carrying the resourceVersion that was
// read, a Conflict or AlreadyExists makes the loser re-read and re-evaluate,
// and the re-read material is then valid so the loser writes nothing. Two
// replicas therefore never fight, and never stage two next CAs.
//
// # CA rotation
//
// A client must trust a CA before it is shown a certificate from it, and the
// API server only trusts what it has read from the webhook configuration's
// caBundle. So the CA is rotated in two steps, each one sync of whichever
// replica gets there first:
//
//  1. Stage. When the signing CA enters its rotation window, a next CA is
//     generated, appended to ca.crt and its key stored in ca-next.key. The
//     serving pair stays as it is, signed by the old CA; the rotator
//     publishes the grown bundle in the webhook configuration.
//  2. Promote. Once the staged CA has been in the bundle for the publish
//     lead (IssueConfig.CAPublishLead; by default two check intervals, at
//     least a minute, at most a third of the CA's rotation window), it
//     becomes the signing CA: ca.key takes its key, ca-next.key goes, it
//     moves to the front of ca.crt and signs a new serving pair. The old CA
//     stays in ca.crt (and so in the published caBundle) until it expires,
//     so a client that still sees a replica serving the old certificate
//     keeps verifying it.
//
// Every replica computes the same step from the Secret alone: the staged
// CA's issue time is its NotBefore plus the clock-skew backdate, and it went
// into the bundle in the write that created it. Meanwhile the serving pair
// is not renewed for being close to its CA's expiry (the promotion replaces
// it); only if it would expire before the handover ends is it renewed, once,
// from the old CA.
//
// What cannot wait does not: a signing CA that is expired, missing,
// unparsable or matches no certificate is replaced in one step, by the
// staged CA if there is a good one, else by a fresh one. If staging comes so
// late that the old CA has less than the lead left (no replica ran while the
// window opened), the CA is likewise replaced in one step; if a staged CA
// has been published for less than the lead when the old CA gets that close
// to expiry, it is promoted then, so that every replica has switched before
// the old certificates expire. A ca-next.key that is unparsable, matches no
// CA in the bundle, or whose CA has itself become due or expired (the Secret
// sat untouched for most of a CA lifetime) is replaced by a new staging, or
// dropped if the signing CA is not due.
//
// The rotator publishes a bundle in the webhook configuration before it
// writes a serving pair from that bundle to disk, so a replica whose
// injection fails never serves ahead of what it published. The lead itself
// runs from the staging write, not from a confirmed injection (the Secret
// has no record of that): should injecting fail on every replica for
// longer than the lead, the new CA reaches the API server together with
// the first certificate from it, as it did before there were two steps.
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
