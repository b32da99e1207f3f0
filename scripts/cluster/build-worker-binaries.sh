#!/usr/bin/env bash
# Builds the real worker's Go programs into the cache outside the repository:
#   kubelet and kube-proxy (Kubernetes $K8S_VERSION, the same wrapper module as the control plane, so the
#   Go build cache of that build is reused) and a slim CoreDNS ($COREDNS_VERSION, only the plugins the
#   cluster's Corefile uses), keyed by version; pause and httpget (scripts/cluster/images), keyed by the
#   hash of their source.
# Prints two lines on stdout: the versioned directory, then the directory of the small programs.
# Safe to run repeatedly and from several processes at once: builds are serialised by a lock, and a
# complete cache is reused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=k8s-wrapper-module.sh
source "$here/k8s-wrapper-module.sh"

cache_root=${IOTEDGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotedge-operator}
bin="$cache_root/bin/worker-k8s-$K8S_VERSION-coredns-$COREDNS_VERSION"
source_hash=$(cd "$here/images" && cat go.mod pause/main.go httpget/main.go | sha256sum | cut -c1-16)
tools="$cache_root/bin/worker-tools-$source_hash"

log() { echo "[build-worker-binaries] $*" >&2; }
complete() { [ -f "$bin/.complete" ] && [ -f "$tools/.complete" ]; }
if complete; then echo "$bin"; echo "$tools"; exit 0; fi

command -v go >/dev/null || { log "missing prerequisite: go (install Go 1.24 or newer)"; exit 1; }
mkdir -p "$cache_root/bin"
exec 9>"$cache_root/bin/.worker-build.lock"
flock 9
if complete; then echo "$bin"; echo "$tools"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
mkdir -p "$bin" "$tools"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build_node_agents() {
  mkdir -p "$work/k8s" && cd "$work/k8s"
  write_k8s_wrapper_module
  build_k8s_commands "$bin" kubelet kube-proxy
}

build_coredns() {
  # The full CoreDNS links every plugin (about 5 minutes on 2 cores); the cluster needs nine of them.
  mkdir -p "$work/coredns" && cd "$work/coredns"
  local plugins="cache errors health kubernetes loadbalance log loop ready reload" plugin
  printf 'module local/corednsbin\ngo 1.24\n' > go.mod
  {
    echo 'package main'
    echo 'import ('
    echo '	"github.com/coredns/coredns/coremain"'
    for plugin in $plugins; do echo "	_ \"github.com/coredns/coredns/plugin/$plugin\""; done
    echo ')'
    echo 'func main() { coremain.Run() }'
  } > main.go
  # go get of these packages (not of the module, whose root package imports every plugin) fetches only what they need.
  # shellcheck disable=SC2046
  go get "github.com/coredns/coredns/coremain@$COREDNS_VERSION" \
    $(for plugin in $plugins; do echo "github.com/coredns/coredns/plugin/$plugin@$COREDNS_VERSION"; done) >&2
  go build -ldflags "-s -w" -o "$bin/coredns" .
}

build_tools() {
  cd "$here/images"
  go build -ldflags "-s -w" -o "$tools/" ./pause ./httpget
}

start=$(date +%s)
if [ ! -f "$tools/.complete" ]; then
  log "building pause and httpget"
  build_tools
  touch "$tools/.complete"
fi
if [ ! -f "$bin/.complete" ]; then
  [ -x "$bin/kubelet" ] && [ -x "$bin/kube-proxy" ] || { log "building kubelet and kube-proxy $K8S_VERSION"; build_node_agents; }
  [ -x "$bin/coredns" ] || { log "building CoreDNS $COREDNS_VERSION (slim)"; build_coredns; }
  reported=$("$bin/kubelet" --version)
  [ "$reported" = "Kubernetes $K8S_VERSION" ] || { log "kubelet reports '$reported', expected Kubernetes $K8S_VERSION"; exit 1; }
  touch "$bin/.complete"
fi
log "built in $(( $(date +%s) - start ))s into $bin and $tools"
echo "$bin"
echo "$tools"
