package main

import "github.com/fitgate/fitgate/preflight"

// `fitgate check` judges manifests before they are applied; the command
// itself, flags included, lives in package preflight so that its tests can
// run it in-process.
func init() {
	register("check", "judge the workloads in manifests before applying them (-f FILE|DIR|-)", func(args []string) int {
		return preflight.DefaultEnv().Check(args)
	})
}
