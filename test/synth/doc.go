// Package synth generates synthetic clusters from a seed: realistic large
// ones (node pools of different shapes across zones, tainted pools, pods
// with requests, host ports, labels, anti-affinity and spread, quotas) for
// benchmarks and memory measurements, and small random ones with random
// pods for the randomized parity run against the real scheduler.
//
// It builds plain API objects, so the same output feeds the engine, the
// webhook cache and a real apiserver.
package synth
