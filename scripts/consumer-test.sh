#!/usr/bin/env bash
# Package consumer test: installs the package the way a user gets it from npm and uses it from
# two fresh projects outside the repository.
#
#   1. `npm pack` of the root package (JS loader, types, bin, MCP server) and of this host's
#      platform package (npm/<platform>/ with the addon built here and, on Linux, the guest
#      daemon next to it): the layout the release workflow publishes.
#   2. In a temp directory under /tmp: an ESM TypeScript project and a CommonJS one, each
#      installing both tarballs plus typescript, tsx, vitest and @types/node (the versions of this
#      repo's devDependencies) from npm.
#   3. In each: `tsc --noEmit` under strict settings (our index.d.ts included: skipLibCheck off),
#      an `npx tsx` script that creates a sandbox on agentic-sandbox/busybox:1, starts it, runs
#      echo, checks the output and destroys it, the same as one vitest test, and
#      `npx agentic-sandbox --help` (the bin). The scripts also check that the addon was loaded
#      from node_modules/agentic-sandbox-<platform>/ (not from this repository) and that the
#      sandbox runs on the guest engine, i.e. the guest binary was found next to the installed addon.
#
# Needs: the addon and the guest built (scripts/setup.sh), a Docker engine; the BusyBox image is
# built here when missing (offline, seconds). Network: the npm registry for the installs only.
# Exits non-zero with a message naming the failed step; the temp directory is always removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
started=$SECONDS
step="setup"
fail() { echo "consumer-test: FAILED at '$step': $*" >&2; exit 1; }
run() { # run <step description> <command...>: output shown only on failure
  step=$1; shift
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" | tail -60 >&2
    fail "command failed: $*"
  fi
  [ -z "${CONSUMER_TEST_VERBOSE:-}" ] || printf '%s\n' "$out" >&2
  LAST_OUT=$out
}

# --- what this host loads: <platform>-<arch>[-<abi>], as the napi loader names it
platform=$(node -e '
  const p = process.platform, a = process.arch;
  const r = p === "linux" && process.report ? process.report.getReport() : null;
  const abi = p === "linux" ? (r && r.header && r.header.glibcVersionRuntime ? "-gnu" : "-musl") : p === "win32" ? "-msvc" : "";
  console.log(`${p}-${a}${abi}`);')
addon="agentic-sandbox.$platform.node"
[ -f "$addon" ] || fail "$addon is missing: build the addon first (bash scripts/setup.sh)"
[ -f "npm/$platform/package.json" ] || fail "npm/$platform/package.json is missing: $platform is not a target in package.json napi.targets"
guest=""
if [ "$(uname -s)" = Linux ]; then
  [ -x agentic-sandbox-guest ] || fail "agentic-sandbox-guest is missing: build it first (bash scripts/setup.sh)"
  guest=agentic-sandbox-guest
fi
command -v docker >/dev/null 2>&1 || fail "no docker CLI (bash scripts/ensure-docker.sh)"
run "busybox image" bash scripts/build-images.sh busybox

work=$(mktemp -d /tmp/agentic-sandbox-consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP   # through the EXIT trap
mkdir -p "$work/tarballs"

# --- 1. the tarballs
# the platform package as the release publishes it: npm/<platform>/package.json + addon + guest
stage="$work/stage/$platform"
mkdir -p "$stage"
cp "npm/$platform/package.json" "npm/$platform/README.md" "$addon" ${guest:+"$guest"} "$stage/"
root_version=$(node -p "require('./package.json').version")
plat_version=$(node -p "require('$stage/package.json').version")
[ "$root_version" = "$plat_version" ] || fail "npm/$platform/package.json has version $plat_version, package.json $root_version (napi version syncs them)"
run "npm pack (root)" npm pack --json --pack-destination "$work/tarballs" --loglevel=error
root_json=$LAST_OUT
run "npm pack ($platform)" npm pack "$stage" --json --pack-destination "$work/tarballs" --loglevel=error
plat_json=$LAST_OUT
step="tarball contents"
ROOT_JSON=$root_json PLAT_JSON=$plat_json ADDON=$addon GUEST=$guest node -e '
  const root = JSON.parse(process.env.ROOT_JSON)[0], plat = JSON.parse(process.env.PLAT_JSON)[0]
  const files = (p) => new Map(p.files.map((f) => [f.path, f]))
  const r = files(root), q = files(plat), errors = []
  for (const f of ["index.js", "index.d.ts", "binding.js", "binding.d.ts", "bin/agentic-sandbox.js", "mcp/server.js", "package.json"])
    if (!r.has(f)) errors.push(`${root.filename} lacks ${f}`)
  for (const f of r.keys())
    if (f.endsWith(".node") || f === "agentic-sandbox-guest") errors.push(`${root.filename} carries ${f} (binaries belong in the platform packages)`)
  if (!q.has(process.env.ADDON)) errors.push(`${plat.filename} lacks ${process.env.ADDON}`)
  if (process.env.GUEST) {
    const g = q.get(process.env.GUEST)
    if (!g) errors.push(`${plat.filename} lacks ${process.env.GUEST} (is it in npm/<platform>/package.json "files"?)`)
    else if ((g.mode & 0o111) === 0) errors.push(`${process.env.GUEST} in ${plat.filename} is not executable (mode ${g.mode.toString(8)})`)
  }
  if (errors.length) { console.error(errors.join("\n")); process.exit(1) }
  const mb = (n) => (n / 1048576).toFixed(1) + " MB"
  console.error(`[consumer-test] ${root.filename}: ${root.entryCount} files, ${mb(root.size)}; ${plat.filename}: ${plat.entryCount} files, ${mb(plat.size)}`)
' || fail "the tarballs do not have the expected layout"
root_tgz="$work/tarballs/$(ROOT_JSON=$root_json node -p 'JSON.parse(process.env.ROOT_JSON)[0].filename')"
plat_tgz="$work/tarballs/$(PLAT_JSON=$plat_json node -p 'JSON.parse(process.env.PLAT_JSON)[0].filename')"

# --- 2. the consumer projects
dev() { node -p "require('./package.json').devDependencies['$1']"; }
tools=("typescript@$(dev typescript)" "tsx@$(dev tsx)" "vitest@$(dev vitest)" "@types/node@$(dev @types/node)")

tsconfig() { # tsconfig <extra compilerOptions JSON members>
  cat <<EOF
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "exactOptionalPropertyTypes": true,
    "noImplicitOverride": true,
    "noImplicitReturns": true,
    "isolatedModules": true,
    "skipLibCheck": false,
    "noEmit": true,
    "types": ["node"]$1
  },
  "include": ["*.ts", "*.cjs"]
}
EOF
}

# ESM: import { SandboxManager } from 'agentic-sandbox'
esm="$work/esm"
mkdir -p "$esm"
echo '{ "name": "consumer-esm", "version": "1.0.0", "private": true, "type": "module" }' >"$esm/package.json"
tsconfig "" >"$esm/tsconfig.json"
cat >"$esm/smoke.ts" <<'EOF'
import { createRequire } from 'node:module'
import { SandboxManager, SandboxState, type ExecutionResult, type Sandbox } from 'agentic-sandbox'

const manager = new SandboxManager({ provider: 'docker', limits: { memoryMB: 128, timeoutSeconds: 30 } })
const sandbox: Sandbox = await manager.createSandbox({ image: 'agentic-sandbox/busybox:1' })
try {
  await sandbox.start()
  if (sandbox.state !== SandboxState.RUNNING) throw new Error(`state after start(): ${sandbox.state}`)
  const result: ExecutionResult = await sandbox.execute('echo', ['hello from the esm consumer'])
  if (result.exitCode !== 0 || result.stdout !== 'hello from the esm consumer\n') {
    throw new Error(`unexpected result: ${JSON.stringify(result)}`)
  }
  const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.endsWith('.node'))
  const expected = `/node_modules/agentic-sandbox-${process.env.CONSUMER_PLATFORM}/`
  if (!loaded.some((p) => p.includes(expected))) throw new Error(`addon not loaded from ${expected}: ${loaded.join(', ')}`)
  if (process.env.CONSUMER_EXPECT_GUEST && sandbox.execEngine !== 'guest') {
    throw new Error(`engine ${sandbox.execEngine}: the guest binary was not found next to the installed addon`)
  }
  console.log(`esm tsx: ok (engine ${sandbox.execEngine}, addon ${loaded.join(', ')})`)
} finally {
  await manager.destroySandbox(sandbox.id)
}
EOF
cat >"$esm/smoke.test.ts" <<'EOF'
import { expect, test } from 'vitest'
import { DockerSandbox, Sandbox, SandboxManager } from 'agentic-sandbox'

test('a sandbox runs echo (ESM import)', async () => {
  const manager = new SandboxManager({ provider: 'docker' })
  const sandbox = await manager.createSandbox({ image: 'agentic-sandbox/busybox:1' })
  try {
    await sandbox.start()
    const result = await sandbox.execute('echo', ['hello from vitest'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toBe('hello from vitest\n')
  } finally {
    await manager.destroySandbox(sandbox.id)
  }
}, 60_000)

test("the entry's JavaScript classes: new DockerSandbox, await using", async () => {
  let id = ''
  {
    await using sandbox = new DockerSandbox({ image: 'agentic-sandbox/busybox:1' })
    expect(sandbox).toBeInstanceOf(Sandbox)
    id = sandbox.id
    await sandbox.start()
    expect((await sandbox.execute('echo', ['disposed next'])).stdout).toBe('disposed next\n')
  }
  expect(id).toMatch(/^docker-/)
}, 60_000)
EOF

# CommonJS: import ... = require('agentic-sandbox') in TypeScript, const { ... } = require(...) in
# JavaScript (type-checked through checkJs), and the vitest test in a CommonJS package
cjs="$work/cjs"
mkdir -p "$cjs"
echo '{ "name": "consumer-cjs", "version": "1.0.0", "private": true, "type": "commonjs" }' >"$cjs/package.json"
tsconfig ',
    "allowJs": true,
    "checkJs": true' >"$cjs/tsconfig.json"
cat >"$cjs/smoke.ts" <<'EOF'
import sandboxLib = require('agentic-sandbox')

async function main(): Promise<void> {
  const manager = new sandboxLib.SandboxManager({ provider: 'docker' })
  const sandbox: sandboxLib.Sandbox = await manager.createSandbox({ image: 'agentic-sandbox/busybox:1' })
  try {
    await sandbox.start()
    const result: sandboxLib.ExecutionResult = await sandbox.execute('echo', ['hello from the cjs consumer'])
    if (result.exitCode !== 0 || result.stdout !== 'hello from the cjs consumer\n') {
      throw new Error(`unexpected result: ${JSON.stringify(result)}`)
    }
    const loaded = Object.keys(require.cache).filter((p) => p.endsWith('.node'))
    const expected = `/node_modules/agentic-sandbox-${process.env['CONSUMER_PLATFORM']}/`
    if (!loaded.some((p) => p.includes(expected))) throw new Error(`addon not loaded from ${expected}: ${loaded.join(', ')}`)
    console.log(`cjs tsx (import = require): ok (engine ${sandbox.execEngine})`)
  } finally {
    await manager.destroySandbox(sandbox.id)
  }
}
main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
EOF
cat >"$cjs/smoke.cjs" <<'EOF'
// @ts-check
const { SandboxManager } = require('agentic-sandbox')

async function main() {
  const manager = new SandboxManager({ provider: 'docker' })
  const sandbox = await manager.createSandbox({ image: 'agentic-sandbox/busybox:1' })
  try {
    await sandbox.start()
    const result = await sandbox.execute('echo', ['hello from require'])
    if (result.exitCode !== 0 || result.stdout !== 'hello from require\n') {
      throw new Error(`unexpected result: ${JSON.stringify(result)}`)
    }
    console.log(`cjs node (require): ok (engine ${sandbox.execEngine})`)
  } finally {
    await manager.destroySandbox(sandbox.id)
  }
}
main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
EOF
cat >"$cjs/smoke.test.ts" <<'EOF'
import { expect, test } from 'vitest'
import { SandboxManager } from 'agentic-sandbox'

test('a sandbox runs echo (CommonJS package)', async () => {
  const manager = new SandboxManager({ provider: 'docker' })
  const sandbox = await manager.createSandbox({ image: 'agentic-sandbox/busybox:1' })
  try {
    await sandbox.start()
    const result = await sandbox.execute('echo', ['hello from vitest'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toBe('hello from vitest\n')
  } finally {
    await manager.destroySandbox(sandbox.id)
  }
}, 60_000)
EOF

# --- 3. install and use, in each project
# the user's environment must not pick another guest or engine than the package's own
export CONSUMER_PLATFORM=$platform CONSUMER_EXPECT_GUEST=$guest
unset AGENTIC_SANDBOX_GUEST SANDBOX_EXEC_ENGINE NAPI_RS_NATIVE_LIBRARY_PATH
npm_install=(npm install --no-audit --no-fund --prefer-offline --loglevel=error)
for kind in esm cjs; do
  dir="$work/$kind"
  cd "$dir"
  run "$kind: npm install" timeout 600 "${npm_install[@]}" "$root_tgz" "$plat_tgz" "${tools[@]}"
  run "$kind: tsc --noEmit (strict)" npx --no-install tsc -p .
  run "$kind: npx tsx smoke.ts" timeout 120 npx --no-install tsx smoke.ts
  echo "[consumer-test] $LAST_OUT" >&2
  if [ "$kind" = cjs ]; then
    run "cjs: node smoke.cjs" timeout 120 node smoke.cjs
    echo "[consumer-test] $LAST_OUT" >&2
  fi
  run "$kind: vitest run" timeout 180 npx --no-install vitest run --reporter=dot
  echo "[consumer-test] $kind vitest: ok" >&2
  run "$kind: npx agentic-sandbox --help" npx --no-install agentic-sandbox --help
  case "$LAST_OUT" in *"Usage: agentic-sandbox"*) ;; *) fail "unexpected --help output: $LAST_OUT" ;; esac
done
cd "$repo"
echo "[consumer-test] ok: ESM and CommonJS consumers of the packed package ($platform) in $((SECONDS - started)) s" >&2
