#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, etcd, kubectl) from source at
# the versions pinned in hack/testenv/go.mod and prints the absolute folder
# holding them, and nothing else, on stdout:
#
#   export KUBEBUILDER_ASSETS=$(hack/testenv.sh)
#
# With the argument "nodes" it does the same for what the lab's real nodes
# run (kubelet, kube-proxy, kube-scheduler, kube-controller-manager), from the
# same module and flags, into a folder of their own beside the control plane:
#
#   export HERALD_NODE_ASSETS=$(hack/testenv.sh nodes)
#
# Binaries are built rather than downloaded because the Go module proxy is the
# only thing our machines and CI can reach. The first run takes 5-7 minutes on
# 2 cores; later runs find the folder and return in a second.
#
# The node binaries add about 8 minutes cold (they share most of the build
# cache with the control plane) and a second warm.
#
# Environment:
#   HERALD_CACHE         cache root (default $HOME/.cache/herald)
#   HERALD_TESTENV_JOBS  parallel build jobs (default 2)
set -euo pipefail

log() { printf 'testenv: %s\n' "$*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$repo/hack/testenv"

# The versions live in go.mod only, so bumping is pin.sh plus nothing else.
modversion() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod"; }
k8s=$(modversion k8s.io/kubernetes)
etcd=$(modversion go.etcd.io/etcd/server/v3)
if [[ ! $k8s =~ ^v1\.([0-9]+)\.[0-9]+$ || -z $etcd ]]; then
	log "$mod/go.mod: cannot read the k8s.io/kubernetes and etcd versions"
	exit 1
fi
k8s_minor=${BASH_REMATCH[1]}

mode=${1:-control-plane}
case $mode in
control-plane | nodes) ;;
*)
	log "usage: $0 [nodes]"
	exit 2
	;;
esac

cache="${HERALD_CACHE:-${HOME:?HOME or HERALD_CACHE must be set}/.cache/herald}/testenv"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# healthy DIR: all binaries are there, run, and are the pinned versions.
if [[ $mode == nodes ]]; then
	dir="$cache/nodes-k8s-$k8s"
	binaries=(kubelet kube-proxy kube-scheduler kube-controller-manager)
	packages=("${binaries[@]/#/k8s.io/kubernetes/cmd/}")
	healthy() {
		local d=$1 b out
		for b in "${binaries[@]}"; do
			out=$("$d/$b" --version 2>&1) && [[ $out == "Kubernetes $k8s" ]] || return 1
		done
	} 2>/dev/null
else
	dir="$cache/k8s-$k8s-etcd-$etcd"
	binaries=(kube-apiserver etcd kubectl)
	packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3)
	healthy() {
		local d=$1 out
		out=$("$d/kube-apiserver" --version 2>&1) && [[ $out == "Kubernetes $k8s" ]] &&
			out=$("$d/etcd" --version 2>&1) && [[ $out == *"etcd Version: ${etcd#v}"* ]] &&
			out=$("$d/kubectl" version --client 2>&1) && [[ $out == *"Client Version: $k8s"* ]]
	} 2>/dev/null
fi

if healthy "$dir"; then
	printf '%s\n' "$dir"
	exit 0
fi

# Serialise concurrent runs (two test targets started at once): the second
# waits and then finds the first one's result. Both modes share the lock, so
# only one Kubernetes build runs at a time.
locked=false
if command -v flock >/dev/null; then
	exec 9>"$cache/.lock"
	if ! flock -n 9; then
		log "waiting for another testenv build to finish"
		flock 9
	fi
	locked=true
	if healthy "$dir"; then
		printf '%s\n' "$dir"
		exit 0
	fi
fi

# Build next to the final folder (same file system) and rename it into place,
# so an interrupted build never leaves a folder that looks complete. Leftovers
# of a killed build are removed once we hold the lock and none can be running.
if $locked; then
	rm -rf "$cache"/.build.*
fi
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

log "building ${binaries[*]} ($k8s, etcd $etcd; takes several minutes)"
start=$SECONDS

# Stamp the version the way Kubernetes' own release build does: the API server
# reports it, and kubectl and envtest compare it against the client's.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
done

# Tags as in Kubernetes' release build: notest and grpcnotrace drop test-only
# and tracing code. GOFLAGS from the caller is ignored so that, say, -mod=vendor
# meant for the main module does not leak in.
(
	unset GOOS GOARCH
	export CGO_ENABLED=0 GOWORK=off GOFLAGS=
	go -C "$mod" build \
		-p "${HERALD_TESTENV_JOBS:-2}" \
		-trimpath -buildvcs=false \
		-tags=selinux,notest,grpcnotrace \
		-ldflags="$ldflags" \
		-o "$tmp/" \
		"${packages[@]}"
) >&2
# go build names a /v3 package after the element before the version suffix.
if [[ -e $tmp/server ]]; then
	mv "$tmp/server" "$tmp/etcd"
fi
chmod 0755 "$tmp"

if ! healthy "$tmp"; then
	log "built binaries do not report the expected versions:"
	for b in "${binaries[@]}"; do "$tmp/$b" --version >&2 || true; done
	exit 1
fi

# A folder that failed the health check above is stale; replace it.
if [[ -e $dir ]]; then
	mv "$dir" "$tmp.stale"
	rm -rf "$tmp.stale"
fi
mv -T "$tmp" "$dir"
log "built in $((SECONDS - start))s: $dir"
printf '%s\n' "$dir"
