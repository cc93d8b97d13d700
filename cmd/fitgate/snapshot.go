package main

import "github.com/fitgate/fitgate/preflight"

// `fitgate snapshot` writes the live cluster state that `fitgate check
// --state` reads; see package preflight.
func init() {
	register("snapshot", "write the cluster state for check --state (read-only)", func(args []string) int {
		return preflight.DefaultEnv().Snapshot(args)
	})
}
