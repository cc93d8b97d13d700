# fitgate — build, run and test.
#
#   make run    a local control plane with the fitgate webhook registered
#   make test   vet, unit, end-to-end and chart tests against a real control plane

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN        := $(CURDIR)/bin
GO         ?= go
export GOFLAGS ?= -buildvcs=false

# Control-plane versions. Kubernetes and etcd are pinned in hack/tools/go.mod;
# Helm is installed from its own module at this version.
K8S_VERSION  := v1.37.2
HELM_VERSION := v4.3.1

TOOLS_DIR  := hack/tools
# The scheduler framework measured beside the engine (make bench); its own
# module, so k8s.io/kubernetes stays out of the main go.mod.
PEER_DIR   := hack/peer
TOOLS_DEPS := $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum
K8S_BINS   := $(addprefix $(BIN)/,kube-apiserver kube-controller-manager kube-scheduler kubectl)
VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
K8S_LDFLAGS := -s -w $(foreach p,$(VERSION_PKGS),\
	-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37 \
	-X $(p).gitTreeState=clean -X $(p).buildDate=1970-01-01T00:00:00Z)

.PHONY: help
help:
	@echo "make run        start a local control plane with fitgate registered (Ctrl-C stops it)"
	@echo "make test       build the tools, then vet, unit, end-to-end and chart tests"
	@echo "make test-unit  vet and the fast unit tests only (no control plane)"
	@echo "make tools      build kube-apiserver, kube-scheduler, kube-controller-manager, kubectl, etcd, helm into bin/,"
	@echo "                and copy cert-manager's CRDs there for the chart tests"
	@echo "make build      build bin/fitgate"
	@echo "make bench      engine, scheduler-framework peer, cache memory and admission throughput figures (~10 min)"
	@echo "make fuzz       run every fuzz target for FUZZTIME (default 1m) each"
	@echo "make soak       SOAK_DURATION (default 10m) of admission traffic at SOAK_RATE/s against fitgate; fails on leaks or errors"

# Packages that need no control plane. Everything else under test/ starts one.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /test/e2e -e /test/parity -e /test/localrun -e /test/chart -e /test/reliability)
E2E_PKGS  = ./test/...

## fitgate itself: a static binary built the way the Dockerfile builds it.
FITGATE_LDFLAGS := -s -w
.PHONY: build
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(FITGATE_LDFLAGS)' -o $(BIN)/fitgate ./cmd/fitgate

## make run: the real thing, locally.
.PHONY: run
run: tools build
	$(GO) build -o $(BIN)/fitgate-localrun ./test/localrun
	$(BIN)/fitgate-localrun --fitgate $(BIN)/fitgate

## Tests. The end-to-end packages fail, never skip, when the control plane
## cannot start, so `make test` on a machine without the tools is red.
.PHONY: vet
vet:
	$(GO) vet ./...
	cd $(TOOLS_DIR) && $(GO) vet ./...
	cd $(PEER_DIR) && $(GO) vet ./...

.PHONY: test-unit
test-unit: vet
	$(GO) test -count=1 $(UNIT_PKGS)

.PHONY: test-e2e
test-e2e: tools build
	FITGATE_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 30m $(E2E_PKGS)

.PHONY: test
test: tools build vet
	FITGATE_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 40m ./...
	cd $(PEER_DIR) && $(GO) test -count=1 ./...

## Benchmarks (issue #9): each part prints a markdown table. BENCH_SCALES
## limits the engine and peer runs, e.g. BENCH_SCALES=500x15000 for a quick look.
BENCH_SCALES ?= 500x15000,5000x150000
.PHONY: bench
bench: tools build
	@echo "# fitgate benchmarks"
	@echo
	@echo "## Engine: go test -bench ./feasibility/"
	@echo
	$(GO) test ./feasibility/ -run '^$$' -bench . -benchtime 2000x -benchmem -timeout 20m | $(GO) run ./test/bench/benchtable
	@echo
	@echo "## Engine beside the kube-scheduler framework (hack/peer)"
	@echo
	cd $(PEER_DIR) && $(GO) run . -scales $(BENCH_SCALES)
	@echo
	@echo "## Cache memory: fitgate serve beside a plain informer"
	@echo
	$(GO) run ./test/bench/memory -fitgate $(BIN)/fitgate
	@echo
	@echo "## Admission throughput and apiserver pod creates"
	@echo
	FITGATE_BIN_DIR=$(BIN) $(GO) run ./test/bench/load -bin-dir $(BIN)

## Control-plane tools. Each target depends on the pins, so a second
## `make tools` with nothing changed does no work.
.PHONY: tools
tools: $(K8S_BINS) $(BIN)/etcd $(BIN)/helm $(BIN)/cert-manager-crds.yaml

# One go build for the four Kubernetes commands shares the compile work.
$(K8S_BINS) &: $(TOOLS_DEPS)
	@mkdir -p $(BIN)
	cd $(TOOLS_DIR) && $(GO) build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
	@touch $(K8S_BINS)

$(BIN)/etcd: $(TOOLS_DEPS) $(TOOLS_DIR)/etcd/main.go
	@mkdir -p $(BIN)
	cd $(TOOLS_DIR) && $(GO) build -trimpath -ldflags '-s -w' -o $@ ./etcd

# The stamp names the version, so helm is rebuilt when HELM_VERSION changes
# and not on every edit of this Makefile.
HELM_STAMP := $(BIN)/.helm-$(HELM_VERSION)
$(HELM_STAMP):
	@mkdir -p $(BIN)
	@rm -f $(BIN)/.helm-*
	@touch $@

$(BIN)/helm: $(HELM_STAMP)
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install -trimpath -ldflags '-s -w' helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	@touch $@

# cert-manager's published CRD manifests (deploy/crds of the module pinned in
# hack/cert-manager, a module of its own so it never affects the Kubernetes
# build), concatenated for the chart tests, which install them into the test
# apiserver before dry-running the chart's cert-manager variant.
CERT_MANAGER_MOD := github.com/cert-manager/cert-manager
$(BIN)/cert-manager-crds.yaml: hack/cert-manager/go.mod hack/cert-manager/go.sum
	@mkdir -p $(BIN)
	cd hack/cert-manager && $(GO) mod download $(CERT_MANAGER_MOD) && \
		dir=$$($(GO) list -m -f '{{.Dir}}' $(CERT_MANAGER_MOD)) && \
		{ echo "# $(CERT_MANAGER_MOD)@$$($(GO) list -m -f '{{.Version}}' $(CERT_MANAGER_MOD)) deploy/crds"; \
		  cat "$$dir"/deploy/crds/*.yaml; } > $@.tmp
	mv $@.tmp $@

## Bounded reliability runs (issue #8; docs/reliability.md). Neither is part
## of `make test`, which runs test/reliability's fault tests.

# make fuzz: each fuzz target for FUZZTIME, one after another. A failing
# input is written to the package's testdata/fuzz/<target>/; keep the ones
# that found bugs. FUZZ_TIMEOUT bounds each run even if an input hangs.
FUZZTIME     ?= 1m
FUZZ_TIMEOUT ?= 1h
FUZZ_TARGETS := webhook:FuzzHandlerBody webhook:FuzzHandlerObject webhook:FuzzFastDecodeAgrees \
	feasibility:FuzzDecodeDocuments feasibility:FuzzCheck
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name (./$$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -timeout $(FUZZ_TIMEOUT) ./$$pkg/ || exit 1; \
	done

# make soak: fitgate serve (bin/fitgate) against a local control plane,
# SOAK_DURATION of AdmissionReview POSTs at SOAK_RATE per second on
# loopback; fails on any error response, or if heap, goroutines or open fds
# grew more than 10% from the end of the one-minute warm-up.
SOAK_DURATION ?= 10m
SOAK_RATE     ?= 200
SOAK_FLAGS    ?=
.PHONY: soak
soak: $(K8S_BINS) $(BIN)/etcd build
	FITGATE_BIN_DIR=$(BIN) $(GO) run ./test/soak -duration $(SOAK_DURATION) -rate $(SOAK_RATE) \
		-fitgate $(BIN)/fitgate $(SOAK_FLAGS)
