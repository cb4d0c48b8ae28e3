// Shared helpers for the agentic-sandbox vitest suites.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import os from 'node:os'
import { expect } from 'vitest'
import { SandboxManager } from '../index.js'

export const BUSYBOX = 'agentic-sandbox/busybox:1'
export const DEBIAN = 'agentic-sandbox/debian:12'

export const MANAGED_LABEL = 'agentic-sandbox.managed=true'
export const sandboxLabel = (id: string) => `agentic-sandbox.sandbox-id=${id}`
export const ownerPidLabel = (pid: number) => `agentic-sandbox.owner-pid=${pid}`

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Run the docker CLI and return trimmed stdout (throws on non-zero exit). */
export function docker(args: string[]): string {
  return execFileSync('docker', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  }).trim()
}

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean)

/** Ids of containers (all states), volumes and networks carrying `label` (key=value). */
export function dockerLabelledIds(label: string = MANAGED_LABEL) {
  return {
    containers: lines(docker(['ps', '-a', '-q', '--filter', `label=${label}`])),
    volumes: lines(docker(['volume', 'ls', '-q', '--filter', `label=${label}`])),
    networks: lines(docker(['network', 'ls', '-q', '--filter', `label=${label}`])),
  }
}

/** Counts of containers/volumes/networks carrying `label` (default: every sandbox resource). */
export function dockerLabelled(label: string = MANAGED_LABEL) {
  const ids = dockerLabelledIds(label)
  return { containers: ids.containers.length, volumes: ids.volumes.length, networks: ids.networks.length }
}

/** The single docker container that backs sandbox `id` (fails the test if there is not exactly one). */
export function containerOf(id: string): string {
  const ids = dockerLabelledIds(sandboxLabel(id)).containers
  expect(ids, `containers labelled ${sandboxLabel(id)}`).toHaveLength(1)
  return ids[0]
}

export function inspectContainer(id: string): any {
  return JSON.parse(docker(['inspect', containerOf(id)]))[0]
}

/**
 * Create + start a sandbox on a fresh SandboxManager, run fn, and always destroy it.
 * The image defaults to the BusyBox test image (the PoC default image is not available offline).
 */
export async function withSandbox<T>(
  config: Record<string, any>,
  fn: (sandbox: any, manager: any) => Promise<T>,
  managerConfig?: Record<string, any>,
): Promise<T> {
  const manager: any = new SandboxManager(managerConfig as any)
  let sandbox: any
  let failed = false
  try {
    sandbox = await manager.createSandbox({ image: BUSYBOX, ...config })
    await sandbox.start()
    return await fn(sandbox, manager)
  } catch (e) {
    failed = true
    throw e
  } finally {
    try {
      if (sandbox) await sandbox.destroy()
      await manager.destroyAll()
    } catch (e) {
      if (!failed) throw e
      console.error('withSandbox: destroy failed after test failure:', e)
    }
  }
}

/** Await a promise (or call a function) that must fail with err.code === code; returns the error. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<any> {
  let err: any
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    err = e
  }
  expect(err, `expected an error with code ${code}, but it resolved`).toBeDefined()
  expect(err?.code, `err.code (message: ${err?.message})`).toBe(code)
  return err
}

/** Synchronous variant for constructors. */
export function expectCodeSync(fn: () => unknown, code: string): any {
  let err: any
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err, `expected ${code} to be thrown synchronously`).toBeDefined()
  expect(err?.code, `err.code (message: ${err?.message})`).toBe(code)
  return err
}

/** Poll until fn returns a truthy value or the deadline passes; returns the last value. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 5000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let v = await fn()
  while (!v && Date.now() < deadline) {
    await sleep(intervalMs)
    v = await fn()
  }
  return v
}

/**
 * Command lines of every process visible in the sandbox (read from /proc, works with BusyBox and Debian).
 * The probing script itself contains none of the strings the tests look for.
 */
export async function processList(sandbox: any): Promise<string[]> {
  const r = await sandbox.execute('sh', [
    '-c',
    'for d in /proc/[0-9]*; do c=$(tr "\\000" " " < $d/cmdline 2>/dev/null); [ -n "$c" ] && echo "${d#/proc/}:$c"; done; true',
  ])
  expect(r.exitCode, `process listing failed: ${r.stderr}`).toBe(0)
  return lines(r.stdout)
}

/** IPv4 address of the host side of Docker's default bridge (docker0). */
export function bridgeGateway(): string {
  try {
    const gw = docker(['network', 'inspect', 'bridge', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}'])
    if (/^\d+\.\d+\.\d+\.\d+$/.test(gw)) return gw
  } catch {
    /* fall through */
  }
  // os.networkInterfaces() omits docker0 while no container is attached (the link is down), so ask ip(8)
  try {
    const m = /inet (\d+\.\d+\.\d+\.\d+)/.exec(
      execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8' }),
    )
    if (m) return m[1]
  } catch {
    /* fall through */
  }
  const docker0 = os.networkInterfaces()['docker0']?.find((a) => a.family === 'IPv4')
  if (docker0) return docker0.address
  throw new Error('cannot determine the docker0 bridge gateway address')
}

/** Non-loopback IPv4 addresses of this machine (all of them are local, so probing them is allowed). */
export function hostIPv4s(): string[] {
  const out = new Set<string>()
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) out.add(a.address)
  }
  return [...out]
}

/** Resolves with p's value, or rejects when p has not settled within ms (proves "did not hang"). */
export function within(p: Promise<any>, ms: number, what: string): Promise<any> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ])
}

/** debian:12 + go, pytest, pip, numpy, pandas, jq, jest/vitest/tsx on PATH (scripts/build-images.sh). */
export const DEVTOOLS = 'agentic-sandbox/devtools:2'
/** The `templates` table pointing every built-in template at the offline-built test images. */
export const TEST_TEMPLATES = { base: DEBIAN, python: DEVTOOLS, node: DEVTOOLS, nodejs: DEVTOOLS, go: DEVTOOLS }

/** Polls until no container/volume/network of sandbox `id` is left; returns what is left. */
export async function goneOf(id: string) {
  let left = dockerLabelled(sandboxLabel(id))
  await waitFor(() => {
    left = dockerLabelled(sandboxLabel(id))
    return left.containers + left.volumes + left.networks === 0
  }, 15_000, 100)
  return left
}

/** Settles (never rejects) with { ok, value | error } within ms, or fails the test (proves "did not hang"). */
export async function settle(p: Promise<any>, ms: number, what: string): Promise<{ ok: boolean; value?: any; error?: any }> {
  return within(
    p.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    ),
    ms,
    what,
  )
}

/** Writes the wheel of a tiny package, agentic_demo 0.1 (VALUE = 'agentic-demo-42'), into `dir`. */
function buildWheel(dir: string) {
  const script = `
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
name, ver = 'agentic_demo', '0.1'
info = f'{name}-{ver}.dist-info'
files = {
    f'{name}/__init__.py': 'VALUE = "agentic-demo-42"\\n',
    f'{info}/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n',
    f'{info}/WHEEL': 'Wheel-Version: 1.0\\nGenerator: agentic-sandbox-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
def digest(data):
    return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
record = ''.join(f'{p},{digest(c.encode())},{len(c.encode())}\\n' for p, c in files.items()) + f'{info}/RECORD,,\\n'
files[f'{info}/RECORD'] = record
with zipfile.ZipFile(os.path.join(out, f'{name}-{ver}-py3-none-any.whl'), 'w') as z:
    for p, c in files.items():
        z.writestr(p, c)
`
  execFileSync('python3', ['-c', script, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
}

export interface PipIndex {
  /** env that points pip in a bridge-networked sandbox at this index (and only at it) */
  env: Record<string, string>
  /** paths asked for, in order */
  requests: string[]
  close(): Promise<void>
}

/**
 * A pip --find-links index served by this process on the Docker bridge's gateway address, with
 * one package: agentic_demo. Sandboxes with networkMode 'bridge' and `env` install from it.
 */
export async function startPipIndex(): Promise<PipIndex> {
  const wheelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-wheels-'))
  buildWheel(wheelDir)
  const gateway = bridgeGateway()
  const requests: string[] = []
  // a --find-links index: a directory listing with links to the wheels, and the wheels
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0])
    requests.push(url)
    if (url === '/' || url === '') {
      const links = fs
        .readdirSync(wheelDir)
        .filter((f) => f.endsWith('.whl'))
        .map((f) => `<a href="${f}">${f}</a>`)
        .join('\n')
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!DOCTYPE html><html><body>\n${links}\n</body></html>\n`)
      return
    }
    const file = path.join(wheelDir, path.basename(url))
    if (url.endsWith('.whl') && fs.existsSync(file)) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      fs.createReadStream(file).pipe(res)
      return
    }
    res.writeHead(404)
    res.end('not found')
  })
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', () => resolve()))
  const port = (server.address() as AddressInfo).port
  return {
    env: { PIP_NO_INDEX: '1', PIP_FIND_LINKS: `http://${gateway}:${port}/`, PIP_TRUSTED_HOST: gateway },
    requests,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      fs.rmSync(wheelDir, { recursive: true, force: true })
    },
  }
}
