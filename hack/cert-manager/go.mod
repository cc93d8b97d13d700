// Pins cert-manager for its published CRD manifests (deploy/crds in the
// module zip), which the chart tests install into the test apiserver before
// dry-running the cert-manager variant. Nothing imports it, so never run
// `go mod tidy` here: `make tools` reads the module with go mod download.
// A module of its own, so that cert-manager's dependencies never take part
// in the version selection of hack/tools (the Kubernetes build).
module github.com/fitgate/fitgate/hack/cert-manager

go 1.26.0

require github.com/cert-manager/cert-manager v1.21.2
