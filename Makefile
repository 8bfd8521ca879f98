# Herald's build. `make lab` and `make test` are the two commands a newcomer runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/herald-lb/herald/internal/version.Version=$(VERSION) -X github.com/herald-lb/herald/internal/version.Commit=$(COMMIT)
GO      ?= go

.PHONY: all build generate verify-generated testenv testenv-nodes test test-unit vet fuzz fuzz-short clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/herald
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/herald ./cmd/herald

generate: ## regenerate deepcopy code and CRDs with controller-gen
	$(GO) tool controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(GO) tool controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases

testenv: ## build (once) and print the kube-apiserver/etcd/kubectl folder for KUBEBUILDER_ASSETS
	@hack/testenv.sh

testenv-nodes: ## build (once) and print the kubelet/kube-proxy/scheduler/controller-manager folder for HERALD_NODE_ASSETS
	@hack/testenv.sh nodes

vet:
	$(GO) vet ./...
	$(GO) vet -tags lab ./cmd/herald

test-unit: ## unit tests only: tests that need the control plane skip themselves
	$(GO) test -count=1 ./...

# The control plane and the lab's node binaries are built by hack/testenv.sh
# when missing; HERALD_REQUIRE_ENVTEST and HERALD_REQUIRE_NETNS turn the
# integration and lab tests' skip into a failure, so `make test` cannot pass
# without them having run.
test: vet ## everything: unit tests, tests against a real kube-apiserver and etcd, the lab's end-to-end tests (also on real nodes), the image tool
	assets="$$(hack/testenv.sh)"; nodes="$$(hack/testenv.sh nodes)"; \
	KUBEBUILDER_ASSETS="$$assets" HERALD_NODE_ASSETS="$$nodes" HERALD_REQUIRE_ENVTEST=1 HERALD_REQUIRE_NETNS=1 $(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory test-image
	$(MAKE) --no-print-directory fuzz-short

# Every `func FuzzXxx(f *testing.F)` in the tree, one at a time: `go test
# -fuzz` takes one target per package run. Their seed corpora
# (testdata/fuzz) run in plain `go test` as well.
# FUZZTIME is a duration (60s) or a count of inputs (100000x); see
# fuzz-short for why make test uses a count.
FUZZTIME ?= 60s
# A new interesting input is minimized for up to 60s by default, time that
# is not spent fuzzing.
FUZZFLAGS ?= -fuzzminimizetime=10s
fuzz: ## run every fuzz target for FUZZTIME (default 60s, or a count such as 100000x) each, one after another
	@for f in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' api bench cmd internal test | sort); do \
		for t in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$$f"); do \
			echo "fuzz: $$t in ./$$(dirname "$$f") for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) "./$$(dirname "$$f")/"; \
		done; \
	done

# A count, not a duration: Go 1.26's coordinator can fail a target with a
# bare "context deadline exceeded" when a duration -fuzztime runs out
# (golang/go#75804, fixed in Go 1.27), with no failing input. It failed CI
# once; a count has no deadline to race.
fuzz-short: ## every fuzz target for 10,000 inputs (run by make test)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

clean:
	rm -rf bin dist

bench-controller: build ## controller end to end against a real API server: writes bench/results/controller.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/controllerbench

# The lab's subcommands need envtest, which must not be in the binary that
# ships (its init writes to the filesystem): they are built into
# bin/herald-lab with the lab tag, and the lab runs bin/herald, the shipped
# binary, as its controller and speakers.
.PHONY: lab lab-down lab-build
lab-build:
	CGO_ENABLED=0 $(GO) build -tags lab -trimpath -ldflags '$(LDFLAGS)' -o bin/herald-lab ./cmd/herald

lab: build lab-build ## Herald on a LAN of network namespaces: addresses, ARP/NDP, curl, a measured failover (root; LAB_FLAGS=--hold keeps it up)
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" bin/herald-lab lab --herald $(CURDIR)/bin/herald $(LAB_FLAGS)

# Herald as users run it: real nodes (containerd, kubelet, kube-proxy) in
# the lab's namespaces, the chart installed with Helm's install action, the
# image from `make image` loaded into every node.
.PHONY: lab-cluster test-cluster
lab-cluster: lab-build image ## Herald from its chart as Pods on three real nodes: helm install, a Service reached through kube-proxy (root; LAB_FLAGS=--hold keeps it up)
	assets="$$(hack/testenv.sh)"; nodes="$$(hack/testenv.sh nodes)"; \
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/labpod ./test/labpod; \
	$(GO) -C hack/chart build -o $(CURDIR)/bin/herald-chart .; \
	KUBEBUILDER_ASSETS="$$assets" HERALD_NODE_ASSETS="$$nodes" bin/herald-lab lab-cluster \
		--image dist/herald-$(VERSION).tar --labpod bin/labpod --chart-tool bin/herald-chart \
		--set image.repository='$(firstword $(subst :, ,$(IMAGE)))' --set image.tag='$(VERSION)' $(LAB_FLAGS)

test-cluster: ## only the tests on real nodes (root): the chart as Pods, Layer 2, failover, BGP ECMP (make test runs them too)
	assets="$$(hack/testenv.sh)"; nodes="$$(hack/testenv.sh nodes)"; \
	KUBEBUILDER_ASSETS="$$assets" HERALD_NODE_ASSETS="$$nodes" HERALD_REQUIRE_ENVTEST=1 HERALD_REQUIRE_NETNS=1 \
		$(GO) test -count=1 -timeout 20m -v -run 'Cluster|Chart|Seed' ./internal/lab/ ./test/cluster/

.PHONY: lab-cloud
lab-cloud: build lab-build ## Hetzner Cloud floating IPs in a routed lab against an API stand-in: assign, curl from another subnet, a measured failover (root)
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" bin/herald-lab lab-cloud --herald $(CURDIR)/bin/herald $(LAB_FLAGS)

lab-down: lab-build ## remove whatever a killed `make lab` left behind (namespaces, processes, files)
	bin/herald-lab lab-down

.PHONY: bench-l2
bench-l2: build ## Layer 2 in the lab: failover, graceful handover, footprint, ARP flood (root, ~10 min): writes bench/results/l2-*.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/l2bench $(L2BENCH_FLAGS)

.PHONY: bench-bgp
bench-bgp: build ## BGP in the lab with its FRR router: node loss with/without BFD, graceful stop, 1,000 Services, speaker RSS (root, ~10 min): writes bench/results/bgp-*.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/bgpbench $(BGPBENCH_FLAGS)

.PHONY: bench-cloud
bench-cloud: build ## Hetzner floating IPs in the routed lab against the API stand-in: hard failover (detection, decision, API action) at action times 0/1/3 s and leases 3/15 s, API requests at idle and per failover for 1 and 10 IPs (root, ~60 min): writes bench/results/cloud-*.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/cloudbench $(CLOUDBENCH_FLAGS)

.PHONY: bench-chaos
bench-chaos: build ## the chaos suite at length in the lab: loss, jitter, partition, starved speaker, API server down, flapping link, rolling restart (Layer 2, and BGP with graceful restart), controller leader killed, bad frames (root; ~2 h at the default 10 min per fault, CHAOSBENCH_FLAGS=-for 2m for ~45 min): writes bench/results/chaos.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/chaosbench $(CHAOSBENCH_FLAGS)

.PHONY: bench-scale
bench-scale: ## internal/membership at 10, 50, 100, 250 and 500 members (as far as the machine holds), fast and lan profiles, on loopback (~15 min; on a shared machine run it under chrt -r 10 as root): writes bench/results/scale.{json,md}
	$(GO) run ./bench/scalebench $(SCALEBENCH_FLAGS)

# The image: bin/herald at /herald on an empty base, packed by hack/image (a
# module of its own, so Herald's module does not depend on go-containerregistry).
# No Docker engine, no registry: dist/herald-$(VERSION).tar is a `docker save`
# archive for docker load, ctr images import and kind load image-archive;
# dist/herald-$(VERSION)-oci/ is the same image as an OCI layout (crane, skopeo).
IMAGE   ?= ghcr.io/herald-lb/herald:$(VERSION)
CREATED ?= $(shell git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)

.PHONY: image test-image
image: build ## build dist/herald-$(VERSION).tar, the container image (IMAGE= sets its name)
	$(GO) -C hack/image run . -binary $(CURDIR)/bin/herald -image '$(IMAGE)' -version '$(VERSION)' -revision '$(COMMIT)' \
		-created '$(CREATED)' -out $(CURDIR)/dist/herald-$(VERSION).tar -oci-layout $(CURDIR)/dist/herald-$(VERSION)-oci

test-image: ## the image tool's own tests (hack/image is a separate module that ./... does not reach)
	$(GO) -C hack/image vet ./...
	$(GO) -C hack/image test -count=1 ./...

.PHONY: manifests chart-lint
manifests: ## render charts/herald with default values into config/manifests/herald.yaml (Namespace and CRDs included)
	mkdir -p config/manifests
	{ echo '# Generated by `make manifests` from charts/herald with default values: do not edit.'; \
	  echo '# kubectl apply --server-side -f config/manifests/herald.yaml'; \
	  $(GO) -C hack/chart run . template -namespace metallb-system -namespace-object; } > config/manifests/herald.yaml.tmp
	mv config/manifests/herald.yaml.tmp config/manifests/herald.yaml

chart-lint: ## helm lint charts/herald, with default values and with test/install/testdata/full-values.yaml
	$(GO) -C hack/chart run . lint
	$(GO) -C hack/chart run . lint -f $(CURDIR)/test/install/testdata/full-values.yaml
