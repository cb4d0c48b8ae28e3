#!/usr/bin/env bash
# Everything a fresh machine needs before the examples or tests run: a Docker engine, the offline
# test images, npm dependencies, and the addon built in debug mode (or release with RELEASE=1).
# --images "busybox ...": build only these offline images (see build-images.sh); the default is all
# three, which the test suite needs. The quick start passes --images busybox.
set -euo pipefail
cd "$(dirname "$0")/.."
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --images) [ $# -ge 2 ] || { echo "setup.sh: --images needs a list" >&2; exit 2; }; read -ra images <<<"${2//,/ }"; shift 2 ;;
    *) echo "usage: setup.sh [--images 'busybox debian devtools']" >&2; exit 2 ;;
  esac
done
bash scripts/ensure-docker.sh
bash scripts/build-images.sh ${images[@]+"${images[@]}"}
if [ ! -x node_modules/.bin/napi ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm install ..." >&2
  npm install --no-audit --no-fund >/dev/null
fi
# the guest daemon: a static binary that runs inside every sandbox (always an optimized build;
# it is small, and its own workspace keeps the static-linking flags away from the addon)
(cd guest && cargo build --release --quiet >&2)
cp -f guest/target/x86_64-unknown-linux-gnu/release/agentic-sandbox-guest agentic-sandbox-guest
if [ "${RELEASE:-0}" = 1 ]; then
  npx napi build --platform --release --js binding.js --dts binding.d.ts >&2
else
  npx napi build --platform --js binding.js --dts binding.d.ts >&2
fi
