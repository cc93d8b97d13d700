// Package chart tests the Helm chart in charts/fitgate and the Dockerfile.
//
// The tests run bin/helm, bin/kubectl and bin/fitgate (built by `make tools`
// and `make build`, found through $FITGATE_BIN_DIR or the repository's bin/)
// and fail, never skip, when one is missing:
//
//   - helm lint, and values.schema.json rejecting typos and wrong types;
//   - helm template for the default values and every ci/*-values.yaml,
//     with assertions on the rendered objects, the RBAC rules and the
//     webhook configuration, which must equal what
//     webhook.NewWebhookConfiguration builds;
//   - against a real local control plane: a server-side dry-run apply of
//     every variant (cert-manager's CRDs installed first from its published
//     manifests, bin/cert-manager-crds.yaml), then a real install of each
//     variant with fitgate running on exactly the chart's arguments and RBAC;
//   - the Dockerfile's build flags against `make build`'s, and the binary
//     they produce.
package chart
