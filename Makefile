# Herald's build. `make lab` and `make test` are the two commands a newcomer runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/herald-lb/herald/internal/version.Version=$(VERSION) -X github.com/herald-lb/herald/internal/version.Commit=$(COMMIT)
GO      ?= go

.PHONY: all build generate verify-generated testenv test test-unit vet fuzz clean help

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

vet:
	$(GO) vet ./...

test-unit: ## unit tests only: tests that need the control plane skip themselves
	$(GO) test -count=1 ./...

# The control plane is built by hack/testenv.sh when missing; HERALD_REQUIRE_ENVTEST
# turns the integration tests' skip into a failure, so `make test` cannot pass
# without them having run.
test: vet ## everything: unit tests, then tests against a real kube-apiserver and etcd
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" HERALD_REQUIRE_ENVTEST=1 HERALD_REQUIRE_NETNS=1 $(GO) test -count=1 -timeout 20m ./...

fuzz: ## run each fuzz target briefly
	$(GO) test -run '^$$' -fuzz=. -fuzztime=30s ./internal/ipam/

clean:
	rm -rf bin dist

bench-controller: build ## controller end to end against a real API server: writes bench/results/controller.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/controllerbench

.PHONY: lab lab-down
lab: build ## Herald on a LAN of network namespaces: addresses, ARP/NDP, curl, a measured failover (root; LAB_FLAGS=--hold keeps it up)
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" bin/herald lab $(LAB_FLAGS)

lab-down: build ## remove whatever a killed `make lab` left behind (namespaces, processes, files)
	bin/herald lab-down

.PHONY: bench-l2
bench-l2: build ## Layer 2 in the lab: failover, graceful handover, footprint, ARP flood (root, ~10 min): writes bench/results/l2-*.{json,md}
	assets="$$(hack/testenv.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) run ./bench/l2bench $(L2BENCH_FLAGS)
