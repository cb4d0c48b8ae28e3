#!/usr/bin/env bash
# Side-by-side benchmark (bench/bench.ts): builds the addon in release mode (with everything else
# setup.sh installs when missing), then runs the same workload through the addon (guest and
# docker-exec engines), dockerode, the docker CLI and child_process.spawn, in one run.
# Flags go to bench.ts (`npm run bench -- --help`). BENCH_SKIP_SETUP=1 uses the addon as built.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SKIP_SETUP:-0}" != 1 ]; then
  RELEASE=1 bash scripts/setup.sh
  export BENCH_ADDON_BUILD=release
fi
# node --import tsx rather than the tsx CLI: the CLI relays signals to its child and SIGKILLs it
# when the child is slow to acknowledge one, which would skip the cleanup on Ctrl-C.
exec node --import tsx bench/bench.ts "$@"
