#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm
# from the Go module proxy into a cache outside the repository, keyed by version.
# Prints the cache directory on stdout. Safe to run repeatedly: a complete cache is reused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=k8s-wrapper-module.sh
source "$here/k8s-wrapper-module.sh"

cache_root=${IOTEDGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotedge-operator}
bin="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

complete() { for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done; [ -f "$bin/.complete" ]; }
if complete; then echo "$bin"; exit 0; fi

log() { echo "[build-binaries] $*" >&2; }
need() { command -v "$1" >/dev/null || { log "missing prerequisite: $1 ($2)"; exit 1; }; }
need go "install Go 1.24 or newer"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
mkdir -p "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

build_kubernetes() {
  mkdir -p "$work/k8s" && cd "$work/k8s"
  write_k8s_wrapper_module
  build_k8s_commands "$bin" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  # etcd's own go.mod carries replace directives, so go install cannot build it; a wrapper module can.
  mkdir -p "$work/etcd" && cd "$work/etcd"
  printf 'module local/etcdbin\ngo 1.24\n' > go.mod
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
}

build_go_installable() {
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  GOBIN="$bin" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

[ -x "$bin/etcd" ] || { log "building etcd $ETCD_VERSION"; build_etcd; }
[ -x "$bin/kwok" ] && [ -x "$bin/helm" ] || { log "building kwok $KWOK_VERSION and helm $HELM_VERSION"; build_go_installable; }
for t in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$bin/$t" ] || { log "building Kubernetes $K8S_VERSION"; build_kubernetes; break; }
done

reported=$("$bin/kube-apiserver" --version)
[ "$reported" = "Kubernetes $K8S_VERSION" ] || { log "kube-apiserver reports '$reported', expected Kubernetes $K8S_VERSION"; exit 1; }
touch "$bin/.complete"
log "built in $(( $(date +%s) - start ))s into $bin ($(du -sh "$bin" | cut -f1))"
echo "$bin"
