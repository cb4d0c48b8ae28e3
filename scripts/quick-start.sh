#!/usr/bin/env bash
# The README's first command: set up what is missing, then run the seed's Level 1 quick start.
# No container registry is needed: the sandbox image is the offline-built BusyBox image
# (DOCKER_IMAGE is the documented way to pick the default image).
set -euo pipefail
cd "$(dirname "$0")/.."
# only the BusyBox image: the quick start runs in it, and the ~1 GB debian/devtools images are for the tests
bash scripts/setup.sh --images busybox
export DOCKER_IMAGE="${DOCKER_IMAGE:-agentic-sandbox/busybox:1}"
exec npx tsx examples/quick-start.ts
