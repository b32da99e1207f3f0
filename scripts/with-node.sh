#!/usr/bin/env bash
# Runs a command with Node 22+ first on PATH and the project's dependencies installed.
# When the machine's node is older, a pinned Node is fetched once from the npm registry
# (the node-linux-<arch> package) into the cache outside the repository.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pinned_node=24.21.0
minimum_major=22
cache_root=${IOTEDGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotedge-operator}

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if ! command -v node >/dev/null || [ "$(major node)" -lt "$minimum_major" ]; then
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  prefix="$cache_root/node/$pinned_node"
  node_bin="$prefix/node_modules/node-linux-$arch/bin"
  if [ ! -x "$node_bin/node" ]; then
    echo "[with-node] machine node is older than $minimum_major; installing Node $pinned_node into $prefix" >&2
    mkdir -p "$prefix"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$prefix" "node-linux-$arch@$pinned_node" >&2
  fi
  export PATH="$node_bin:$PATH"
fi

# npm itself keeps running on whichever node it was started with; only the project's code needs 22+.
stamp="$root/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$root/package-lock.json" -nt "$stamp" ]; then
  echo "[with-node] installing dependencies (npm ci)" >&2
  # Some npm 11 releases leave other platforms' optional packages (e.g. @swc/core-darwin-*) out of a
  # lockfile and then refuse it in `npm ci`; `npm install --no-save` installs the same locked versions.
  (cd "$root" && { npm ci --no-audit --no-fund --loglevel=error >&2 2>/dev/null ||
    npm install --no-save --no-audit --no-fund --loglevel=error >&2; })
fi

export PATH="$root/node_modules/.bin:$PATH"
cd "$root"
exec "$@"
