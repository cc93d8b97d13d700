// Package parity replays fitgate's scenario corpus against a real
// kube-apiserver, kube-controller-manager and kube-scheduler, and fails when
// the real components disagree with a scenario's expected outcome. It has
// its own control plane (its own TestMain) so no other test's nodes or
// pending pods can change what the scheduler decides.
package parity
