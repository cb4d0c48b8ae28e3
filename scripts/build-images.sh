#!/usr/bin/env bash
# Build the test images offline (no container registry is needed), cached by tag:
#   agentic-sandbox/busybox:1   a static BusyBox (sh, coreutils, ping, nc, dd, ...)   ~2 MB
#   agentic-sandbox/debian:12   Debian bookworm minbase + python3 + nodejs          ~200 MB
# Set REBUILD=1 to rebuild even when a tag exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/ensure-docker.sh"

BUSYBOX_TAG=${BUSYBOX_TAG:-agentic-sandbox/busybox:1}
DEBIAN_TAG=${DEBIAN_TAG:-agentic-sandbox/debian:12}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { [ "${REBUILD:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
need_pkg() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "need Debian packages: ${missing[*]} (run as root or install them)" >&2; exit 1; }
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if ! have "$BUSYBOX_TAG"; then
  echo "[build-images] building $BUSYBOX_TAG from busybox-static ..." >&2
  need_pkg busybox-static
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,workspace,etc,root,proc,sys,dev}
  cp /bin/busybox "$root/bin/busybox"
  # one link per applet, so `sh`, `ls`, `ping`, ... exist like on any BusyBox image
  for applet in $("$root/bin/busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/workspace:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\nagent:x:1000:\nnobody:x:65534:\n' > "$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - "$BUSYBOX_TAG" >/dev/null
  rm -rf "$root"; trap - EXIT
fi

if ! have "$DEBIAN_TAG"; then
  echo "[build-images] building $DEBIAN_TAG with debootstrap (takes a few minutes) ..." >&2
  need_pkg debootstrap
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,nodejs,procps,iproute2,iputils-ping,netcat-openbsd,ca-certificates \
    bookworm "$root" "$MIRROR" >/tmp/agentic-sandbox-debootstrap.log 2>&1 || {
      echo "debootstrap failed; see /tmp/agentic-sandbox-debootstrap.log" >&2; exit 1; }
  chroot "$root" sh -c 'useradd -u 1000 -m -d /home/agent -s /bin/bash agent 2>/dev/null || true; mkdir -p /workspace; apt-get clean; rm -rf /var/lib/apt/lists/*'
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/bin/bash"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' - "$DEBIAN_TAG" >/dev/null
  rm -rf "$root"; trap - EXIT
fi
echo "[build-images] images ready: $BUSYBOX_TAG $DEBIAN_TAG" >&2
