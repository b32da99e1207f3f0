# Sourced by build-binaries.sh and build-worker-binaries.sh: both build commands of k8s.io/kubernetes
# through one wrapper module, so they resolve identical dependencies and share Go's build cache.

# Writes go.mod of the wrapper module into the current directory.
write_k8s_wrapper_module() {
  local staging upstream_mod
  staging="v0.${K8S_VERSION#v1.}"
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
}

# Builds the given k8s.io/kubernetes/cmd/<name> commands into directory $1, stamped with $K8S_VERSION
# (kubectl and the API server's version checks read these variables).
build_k8s_commands() {
  local out=$1 minor ld p c cmds=""
  shift
  minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  for c in "$@"; do cmds+=" k8s.io/kubernetes/cmd/$c"; done
  # shellcheck disable=SC2046
  go get -tool $(for c in $cmds; do echo "$c@$K8S_VERSION"; done) >&2
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # shellcheck disable=SC2086
  go build -ldflags "$ld" -o "$out/" $cmds
}
