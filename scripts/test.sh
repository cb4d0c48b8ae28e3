#!/usr/bin/env bash
# The README's second command: set up what is missing, then run the whole test suite:
# the Rust unit tests (cargo test) and the vitest suites against the real Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# redis-server for the distributed-mode tests (src/cluster, __test__/distributed.spec.ts), which
# start their own on free loopback ports
bash scripts/ensure-redis.sh
echo "== cargo test" >&2
cargo test 2>&1
(cd guest && cargo test 2>&1)
# src/lib.rs denies clippy::all; clippy is a rustup component, so a toolchain without it skips this
if cargo clippy --version >/dev/null 2>&1; then
  echo "== cargo clippy" >&2
  cargo clippy --all-targets 2>&1
fi
echo "== tsc (types of index.d.ts, examples, tests)" >&2
npx tsc -p .
# gVisor for the docker.runtime tests (best effort: without it those tests skip)
bash scripts/ensure-runsc.sh || true
echo "== vitest (guest engine, the default)" >&2
npx vitest run "$@"
# the same suites on the docker-exec fallback engine (guest.spec.ts is about the guest itself;
# the E2B suites do not run commands through Docker's engines; the MCP server's and the sandbox
# service's suites (service, observability, distributed mode) test the servers, whose calls
# configure.spec.ts and the rest already cover on both engines)
echo "== vitest (exec engine: SANDBOX_EXEC_ENGINE=exec)" >&2
SANDBOX_EXEC_ENGINE=exec npx vitest run --exclude '__test__/guest.spec.ts' --exclude '__test__/e2b*.spec.ts' --exclude '__test__/mcp.spec.ts' --exclude '__test__/service.spec.ts' --exclude '__test__/observability.spec.ts' --exclude '__test__/distributed.spec.ts' "$@"
# the agent examples, against the scripted model server (every tool call runs in a real sandbox)
echo "== examples (agent, --mock)" >&2
for e in agent-level2 agent-single agent-swarm agent-interceptors; do
  out=$(npx tsx "examples/$e.ts" --mock 2>&1) || { echo "$out" | tail -40 >&2; echo "examples/$e.ts --mock failed" >&2; exit 1; }
  echo "examples/$e.ts --mock: ok" >&2
done
# the service examples of seeds 002-004 (sessions, runCode, runTests) and the remote mode, on the offline images
echo "== examples (sessions, code, tests)" >&2
for e in bash-tool sandbox-service test-fix-loop mcp-client remote-mode data-analysis-notebook; do
  out=$(npx tsx "examples/$e.ts" 2>&1) || { echo "$out" | tail -40 >&2; echo "examples/$e.ts failed" >&2; exit 1; }
  echo "examples/$e.ts: ok" >&2
done
# the E2B examples, against the local fake E2B (real containers behind E2B's wire protocol)
echo "== examples (E2B, local fake)" >&2
for e in e2b-quick-start e2b-python-analysis e2b-production; do
  out=$(env -u E2B_API_KEY npx tsx "examples/$e.ts" 2>&1) || { echo "$out" | tail -40 >&2; echo "examples/$e.ts failed" >&2; exit 1; }
  echo "examples/$e.ts: ok" >&2
done
# the package as npm users get it: packed, installed into fresh ESM and CommonJS projects under /tmp
echo "== package consumer (npm pack)" >&2
bash scripts/consumer-test.sh
