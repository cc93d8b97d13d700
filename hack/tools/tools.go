//go:build tools

// Package tools pins the control-plane programs that the local test cluster
// runs. It is its own module so that k8s.io/kubernetes never enters the main
// fitgate go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
