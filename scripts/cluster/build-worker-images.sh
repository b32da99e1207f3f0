#!/usr/bin/env bash
# Builds the real worker's own images with podman (a private store under the cache) and saves each as
# a docker-archive that containerd imports:
#   localhost/pause:1    the pod sandbox (pause, from build-worker-binaries.sh)
#   localhost/busybox:1  Debian's static busybox, its applets, passwd/group, /tmp, and httpget
#   localhost/coredns:1  the slim CoreDNS
# None has a RUN step, so nothing is fetched. Archives are cached by the hash of their build context.
# Usage: build-worker-images.sh <worker-bin-dir> <worker-tools-dir>; prints "<image> <archive>" lines.
set -euo pipefail
bin=$1
tools=$2
cache_root=${IOTEDGE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotedge-operator}
archives="$cache_root/images"
log() { echo "[build-worker-images] $*" >&2; }
mkdir -p "$archives"
exec 9>"$archives/.worker-images.lock"
flock 9

podman_() {
  podman --root "$cache_root/podman/root" --runroot "$cache_root/podman/runroot" \
    --cgroup-manager cgroupfs --events-backend file "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build_image <tag> <context-dir>: the context holds a Containerfile and rootfs.tar.
build_image() {
  local tag=$1 context=$2 hash name archive
  hash=$(cat "$context/Containerfile" "$context/rootfs.tar" | sha256sum | cut -c1-16)
  name=$(tr '/:' '__' <<<"$tag")
  archive="$archives/$name-$hash.tar"
  if [ ! -f "$archive" ]; then
    log "building $tag"
    podman_ build --quiet --pull=never --network=none -t "$tag" "$context" >&2
    podman_ save --format docker-archive -o "$archive.tmp" "$tag" >&2
    mv "$archive.tmp" "$archive"
  fi
  echo "$tag $archive"
}

# rootfs_tar <dir> <out>: a reproducible tar, so equal content gives an equal hash.
rootfs_tar() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .
}

image_pause() {
  local c="$work/pause"
  mkdir -p "$c/rootfs"
  cp "$tools/pause" "$c/rootfs/pause"
  rootfs_tar "$c/rootfs" "$c/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$c/Containerfile"
  build_image localhost/pause:1 "$c"
}

image_busybox() {
  local c="$work/busybox" root applet
  root="$c/rootfs"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/var" "$root/home"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  cp "$tools/httpget" "$root/bin/httpget"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  rootfs_tar "$root" "$c/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nENV PATH=/bin\nCMD ["sh"]\n' > "$c/Containerfile"
  build_image localhost/busybox:1 "$c"
}

image_coredns() {
  local c="$work/coredns"
  mkdir -p "$c/rootfs"
  cp "$bin/coredns" "$c/rootfs/coredns"
  rootfs_tar "$c/rootfs" "$c/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nUSER 65534:65534\nENTRYPOINT ["/coredns"]\n' > "$c/Containerfile"
  build_image localhost/coredns:1 "$c"
}

image_pause
image_busybox
image_coredns
