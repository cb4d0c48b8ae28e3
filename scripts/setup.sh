#!/usr/bin/env bash
# Everything a fresh machine needs before the examples or tests run: a Docker engine, the offline
# test images, npm dependencies, and the addon built in debug mode (or release with RELEASE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-docker.sh
bash scripts/build-images.sh
if [ ! -x node_modules/.bin/napi ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm install ..." >&2
  npm install --no-audit --no-fund >/dev/null
fi
# the guest daemon: a static binary that runs inside every sandbox (always an optimized build;
# it is small, and its own workspace keeps the static-linking flags away from the addon)
(cd guest && cargo build --release --quiet >&2)
cp -f guest/target/x86_64-unknown-linux-gnu/release/agentic-sandbox-guest agentic-sandbox-guest
if [ "${RELEASE:-0}" = 1 ]; then
  npx napi build --platform --release >&2
else
  npx napi build --platform >&2
fi
