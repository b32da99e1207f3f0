#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm
# from the Go module proxy into a cache outside the repository, keyed by version.
# Prints the cache directory on stdout. Safe to run repeatedly: a complete cache is reused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

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
  local minor staging upstream_mod cmds ld p
  minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$work/k8s" && cd "$work/k8s"
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  {
    echo "module local/k8sbins"
    echo "go 1.24"
    # Only the main module's godebug line counts, so upstream's must be repeated here.
    grep -m1 '^godebug default=' "$upstream_mod" || true
    echo "require k8s.io/kubernetes $K8S_VERSION"
  } > go.mod
  # k8s.io/kubernetes requires its staging modules at v0.0.0; point each at its published tag.
  grep -oE '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk '{print $1}' |
    while read -r m; do go mod edit -replace="$m=$m@$staging"; done
  cmds=""
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do cmds+=" k8s.io/kubernetes/cmd/$c"; done
  # shellcheck disable=SC2086
  go get -tool $(for c in $cmds; do echo "$c@$K8S_VERSION"; done) >&2
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=$(date -u +%FT%TZ)"
  done
  # shellcheck disable=SC2086
  go build -ldflags "$ld" -o "$bin/" $cmds
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
