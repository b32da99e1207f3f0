#!/usr/bin/env bash
# Installs the Debian packages the real worker node and its image builds use, when they are missing:
# containerd, runc and the CNI plugins (the node's runtime), iptables and conntrack (kube-proxy),
# podman (builds the node's images) and busybox-static (the busybox image). Needs root, as the worker does.
set -euo pipefail
log() { echo "[install-worker-packages] $*" >&2; }

declare -A provides=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [podman]=/usr/bin/podman
  [busybox-static]=/bin/busybox
)
missing=()
for package in "${!provides[@]}"; do
  [ -e "${provides[$package]}" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" -eq 0 ] || { log "missing packages ${missing[*]}; install them as root (apt-get install ${missing[*]})"; exit 1; }
command -v apt-get >/dev/null || { log "missing packages ${missing[*]} and no apt-get to install them"; exit 1; }
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another engineer's or CI's apt may hold the lock for a while; wait rather than fail.
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update -qq >&2
apt_get install -y -qq --no-install-recommends "${missing[@]}" >&2
