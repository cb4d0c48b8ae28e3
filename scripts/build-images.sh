#!/usr/bin/env bash
# Build the test images offline (no container registry is needed), cached by tag:
#   agentic-sandbox/busybox:1   a static BusyBox (sh, coreutils, ping, nc, dd, ...)   ~2 MB
#   agentic-sandbox/debian:12   Debian bookworm minbase + python3 + nodejs          ~200 MB
#   agentic-sandbox/devtools:2  debian:12 + go, pytest, numpy, pandas, jq, and (in /opt/devtools)
#                               jest 29, vitest 3 (on vite 6: vite 7 needs Node 20), tsx 4,
#                               npm 10 (npm 11 needs Node 20)                             ~900 MB
# Set REBUILD=1 to rebuild even when a tag exists.
# Usage: build-images.sh [busybox] [debian] [devtools]: only the named images (the quick start
# needs only busybox); no argument builds all three (what the test suite needs). devtools is
# built from debian, so naming it builds debian too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wanted=" ${*:-busybox debian devtools} "
for name in $wanted; do
  case "$name" in busybox|debian|devtools) ;; *) echo "build-images.sh: unknown image '$name' (busybox, debian, devtools)" >&2; exit 2 ;; esac
done
case "$wanted" in *" devtools "*) wanted="$wanted debian " ;; esac
want() { case "$wanted" in *" $1 "*) return 0 ;; esac; return 1; }
"$here/ensure-docker.sh"

BUSYBOX_TAG=${BUSYBOX_TAG:-agentic-sandbox/busybox:1}
DEBIAN_TAG=${DEBIAN_TAG:-agentic-sandbox/debian:12}
DEVTOOLS_TAG=${DEVTOOLS_TAG:-agentic-sandbox/devtools:2}
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

if want busybox && ! have "$BUSYBOX_TAG"; then
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

if want debian && ! have "$DEBIAN_TAG"; then
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

if want devtools && ! have "$DEVTOOLS_TAG"; then
  echo "[build-images] building $DEVTOOLS_TAG from $DEBIAN_TAG (apt in a chroot + host npm) ..." >&2
  command -v npm >/dev/null 2>&1 || need_pkg npm
  [ "$(id -u)" = 0 ] || { echo "building $DEVTOOLS_TAG needs root (chroot, mount)" >&2; exit 1; }
  log=/tmp/agentic-sandbox-devtools.log
  started=$SECONDS
  root=$(mktemp -d)
  cid=""
  # Unmount before deleting: an rm -rf through a still-bound /dev would wipe the host's /dev.
  # --one-file-system is the second guard should an unmount have failed.
  devtools_cleanup() {
    [ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1
    for m in "$root/dev" "$root/proc"; do mountpoint -q "$m" && umount -l "$m"; done
    rm -rf --one-file-system "$root"
  }
  trap devtools_cleanup EXIT
  # start from the debian image's filesystem, as the engine would have it
  cid=$(docker create "$DEBIAN_TAG")
  docker export "$cid" | tar -C "$root" -x
  docker rm "$cid" >/dev/null; cid=""
  rm -f "$root/.dockerenv"
  # the engine bind-mounts resolv.conf at run time, so the exported one is empty: keep it that way
  cp /etc/resolv.conf "$root/etc/resolv.conf.devtools-build"
  mv "$root/etc/resolv.conf" "$root/etc/resolv.conf.orig"
  mv "$root/etc/resolv.conf.devtools-build" "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  # chained with && because `set -e` does not apply inside a `{ ...; } || ...` list
  {
    chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -ec '
      apt-get update
      apt-get install -y --no-install-recommends golang-go python3-pytest python3-pip python3-numpy python3-pandas python3-matplotlib jq
      apt-get clean
      rm -rf /var/lib/apt/lists/*' &&
    # the host npm installs pure-JS packages plus the linux-x64-gnu esbuild/rollup binaries, which
    # run on bookworm's glibc; vite is pinned to 6 because vite 7 refuses Node < 20.19
    npm install --prefix "$root/opt/devtools" --no-audit --no-fund --no-package-lock --no-update-notifier \
      jest@29 vitest@3 vite@6 tsx@4 npm@10 &&
    ln -sf /opt/devtools/node_modules/.bin/jest /opt/devtools/node_modules/.bin/vitest \
      /opt/devtools/node_modules/.bin/tsx /opt/devtools/node_modules/.bin/npm /opt/devtools/node_modules/.bin/npx \
      "$root/usr/local/bin/" &&
    chroot "$root" sh -ec 'jest --version; vitest --version; tsx --version; npm --version; go version; pytest --version; jq --version'
  } >"$log" 2>&1 || { echo "building $DEVTOOLS_TAG failed; see $log" >&2; exit 1; }
  mv "$root/etc/resolv.conf.orig" "$root/etc/resolv.conf"
  umount "$root/dev" "$root/proc"
  tar -C "$root" -c . | docker import \
    -c 'CMD ["/bin/bash"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' - "$DEVTOOLS_TAG" >/dev/null
  devtools_cleanup; trap - EXIT
  echo "[build-images] built $DEVTOOLS_TAG in $((SECONDS - started))s" >&2
fi
ready=""
want busybox && ready="$ready $BUSYBOX_TAG"
want debian && ready="$ready $DEBIAN_TAG"
want devtools && ready="$ready $DEVTOOLS_TAG"
echo "[build-images] images ready:$ready" >&2
