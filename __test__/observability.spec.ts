// The sandbox service's observability: GET /metrics (who may read it, and that it parses as
// Prometheus text and counts what was done), the audit log (a JSON line per command, secrets
// redacted, hostile arguments unable to forge or break lines), and the command line's
// --audit-log / --worker-id / SANDBOX_METRICS_TOKEN. One server is shared by the tests (they run
// in order); the file's afterAll closes it.
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxServer } from '../index.js'
import { BUSYBOX, TEST_TEMPLATES, goneOf, waitFor } from './helpers.js'

const BIN = path.join(__dirname, '..', 'bin', 'agentic-sandbox.js')
const NONE = { containers: 0, volumes: 0, networks: 0 }
const key = () => crypto.randomBytes(24).toString('hex')
const ALICE = key()
const BOB = key()
const METRICS = key()
const WORKER = 'obs-worker-1'
const MAX_LINE = 16 * 1024

let dir = ''
let auditPath = ''
let server: SandboxServer
let url = ''
let manager: any
const ids: string[] = []

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'observability-spec-'))
  auditPath = path.join(dir, 'audit.jsonl')
  server = new SandboxServer({
    port: 0,
    readEnv: false,
    apiKeys: [
      { key: ALICE, name: 'alice' },
      { key: BOB, name: 'bob' },
    ],
    config: { image: BUSYBOX, templates: TEST_TEMPLATES, networkMode: 'none' },
    auditLog: auditPath,
    workerId: WORKER,
    metricsToken: METRICS,
    shutdownTimeout: 3,
  })
  url = (await server.listen()).url
  manager = new SandboxManager({ provider: 'remote', remote: { url, apiKey: BOB }, image: BUSYBOX, networkMode: 'none' })
})

afterAll(async () => {
  await manager?.destroyAll()
  await server?.close()
  for (const id of ids) expect(await goneOf(id)).toEqual(NONE)
  fs.rmSync(dir, { recursive: true, force: true })
})

async function call(method: string, route: string, apiKey?: string, body?: unknown) {
  const headers: Record<string, string> = {}
  if (apiKey) headers.authorization = `Bearer ${apiKey}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${url}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json: any = null
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, text, body: json, headers: res.headers }
}

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A strict reader of the Prometheus / OpenMetrics text exposition: throws on any line that is neither a comment nor a sample. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  const lines = text.split('\n')
  expect(lines.pop(), 'the exposition ends with a newline').toBe('')
  expect(lines[lines.length - 1]).toBe('# EOF')
  for (const line of lines) {
    if (line.startsWith('#')) {
      expect(line, 'a comment line').toMatch(/^# (HELP|TYPE|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]* .*$|^# EOF$/)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"(,|$)/y
      let at = 0
      while (at < m[2].length) {
        re.lastIndex = at
        const l = re.exec(m[2])
        if (!l) throw new Error(`bad labels in ${JSON.stringify(line)}`)
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')
        at = re.lastIndex
      }
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3])
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in ${JSON.stringify(line)}`)
    samples.push({ name: m[1], labels, value })
  }
  return samples
}

/** The value of the one sample named `name` whose labels include `labels` (undefined when none). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1)
  return found[0]?.value
}

async function scrape(): Promise<Sample[]> {
  const r = await call('GET', '/metrics', METRICS)
  expect(r.status, r.text).toBe(200)
  expect(r.headers.get('content-type')).toContain('application/openmetrics-text')
  return parseExposition(r.text)
}

/** The audit file's lines, each parsed (a line that is not one JSON object fails the test). */
function auditLines(file = auditPath): any[] {
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, 'utf8')
  if (text === '') return []
  expect(text.endsWith('\n'), 'the last line is whole').toBe(true)
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => {
      expect(Buffer.byteLength(l)).toBeLessThan(MAX_LINE)
      const v = JSON.parse(l)
      expect(typeof v).toBe('object')
      return v
    })
}

/** Waits until the writer thread has written lines matching `pred` (it writes behind the requests). */
async function auditWhere(pred: (l: any) => boolean, count: number): Promise<any[]> {
  const ok = await waitFor(() => auditLines().filter(pred).length >= count, 10_000, 100)
  const lines = auditLines().filter(pred)
  expect(ok, `${JSON.stringify(lines).slice(0, 2000)}; the file: ${fs.existsSync(auditPath) ? fs.readFileSync(auditPath, 'utf8').slice(0, 2000) : 'none'}`).toBe(true)
  return lines
}

describe('GET /metrics: who may read it', () => {
  it('takes the metrics token; no credential and a tenant key are 401 with a code, the token is never echoed', async () => {
    const none = await call('GET', '/metrics')
    expect(none.status).toBe(401)
    expect(none.body.error.code).toBe('UNAUTHORIZED')
    expect(none.body.error.message).toContain('metrics token')
    const tenant = await call('GET', '/metrics', ALICE)
    expect(tenant.status).toBe(401)
    const wrong = await call('GET', '/metrics', key())
    expect(wrong.status).toBe(401)
    expect(wrong.text).not.toContain(METRICS)
    const samples = await scrape()
    for (const s of samples) expect(s.labels.worker, s.name).toBe(WORKER)
  })

  it('a server with API keys and no token refuses it, naming the options; metricsPublic opens it', async () => {
    const closed = new SandboxServer({ port: 0, readEnv: false, apiKeys: [key()], config: { image: BUSYBOX } })
    const open = new SandboxServer({ port: 0, readEnv: false, apiKeys: [key()], config: { image: BUSYBOX }, metricsPublic: true })
    try {
      const c = await fetch(`${(await closed.listen()).url}/metrics`)
      expect(c.status).toBe(401)
      expect(((await c.json()) as any).error.message).toContain('--metrics-public')
      const o = await fetch(`${(await open.listen()).url}/metrics`)
      expect(o.status).toBe(200)
      parseExposition(await o.text())
    } finally {
      await closed.close()
      await open.close()
    }
  })

  it('bad observability options are INVALID_CONFIG naming the option', () => {
    const bad = (o: any) => {
      try {
        new SandboxServer({ port: 0, readEnv: false, ...o })
      } catch (e: any) {
        return `${e.code}: ${e.message}`
      }
      return 'no error'
    }
    expect(bad({ workerId: 'a b' })).toMatch(/^INVALID_CONFIG: workerId must be/)
    expect(bad({ metricsToken: 'short' })).toMatch(/^INVALID_CONFIG: the metrics token .* API keys need at least 16/)
    expect(bad({ auditLog: path.join(dir, 'no', 'such', 'dir', 'a.jsonl') })).toMatch(/^INVALID_CONFIG: cannot open the audit log/)
    expect(bad({ metricsPublic: 'yes' })).toMatch(/^INVALID_CONFIG: metricsPublic must be a boolean/)
  })
})

describe('metrics and audit after a few calls', () => {
  let seedId = ''

  it('seed API: two commands of alice, one failing; an unknown sandbox is a 404', async () => {
    const c = await call('POST', '/sandbox/create', ALICE, { environment: 'base', timeout: 600 })
    expect(c.status, c.text).toBe(201)
    seedId = c.body.sandbox_id
    ids.push(seedId)
    const e = await call('POST', `/sandbox/${seedId}/execute`, ALICE, { commands: ['echo hi', 'exit 3'] })
    expect(e.status, e.text).toBe(200)
    expect(e.body.results.map((r: any) => r.exit_code)).toEqual([0, 3])
    expect((await call('GET', '/sandbox/sb-nope/status', ALICE)).status).toBe(404)
    expect((await call('GET', '/sandbox/sb-nope/status', BOB)).status).toBe(404)
  })

  it('remote mode (/v1): bob runs commands with a secret env value and a secret sandbox variable', async () => {
    const sb = await manager.createSandbox({ env: { GITHUB_TOKEN: 'ghp_configured_secret' } })
    await sb.start()
    ids.push(...(await call('GET', '/v1/sandboxes', BOB)).body.sandboxes.map((s: any) => s.id))
    const r = await sb.execute('sh', ['-c', 'test -n "$API_TOKEN" && echo set; echo sekret-in-argv'], { env: { API_TOKEN: 'sekret-in-argv' } })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('set\nsekret-in-argv\n')
    const s = await sb.execute('echo', ['ghp_configured_secret', '--password', 'pw-next-arg', 'TOKEN=assigned-secret'])
    expect(s.stdout).toBe('ghp_configured_secret --password pw-next-arg TOKEN=assigned-secret\n')
  })

  it('/metrics parses as Prometheus text and shows the counts', async () => {
    const m = await scrape()
    expect(valueOf(m, 'agentic_sandbox_executions_total', { tenant: 'alice', api: 'seed' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_executions_total', { tenant: 'bob', api: 'v1' })).toBeGreaterThanOrEqual(2)
    expect(valueOf(m, 'agentic_sandbox_execution_duration_seconds_count', { api: 'seed' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_execution_duration_seconds_bucket', { api: 'seed', le: '+Inf' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_execution_duration_seconds_sum', { api: 'seed' })).toBeGreaterThan(0)
    expect(valueOf(m, 'agentic_sandbox_sandboxes', { state: 'ready' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_sandboxes', { state: 'busy' })).toBe(0)
    expect(valueOf(m, 'agentic_sandbox_executions_running')).toBe(0)
    expect(valueOf(m, 'agentic_sandbox_errors_total', { code: 'SANDBOX_NOT_FOUND' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_errors_total', { code: 'UNAUTHORIZED' })).toBeGreaterThanOrEqual(3)
    expect(valueOf(m, 'agentic_sandbox_http_requests_total', { method: 'POST', route: '/sandbox/{id}/execute', status: '200' })).toBe(1)
    expect(valueOf(m, 'agentic_sandbox_http_requests_total', { method: 'GET', route: '/sandbox/{id}/status', status: '404' })).toBe(2)
    expect(valueOf(m, 'agentic_sandbox_http_requests_total', { method: 'POST', route: '/v1/sandboxes/{id}/processes', status: '200' })).toBeGreaterThanOrEqual(2)
    expect(valueOf(m, 'agentic_sandbox_audit_lines_dropped_total')).toBe(0)
    // routes are patterns, never paths with ids
    expect(m.some((s) => s.labels.route?.includes(seedId))).toBe(false)
  })

  it('the audit log has a line per command, by tenant and sandbox, with the outcome', async () => {
    const alice = await auditWhere((l) => l.tenant === 'alice', 2)
    expect(alice.length).toBe(2)
    expect(alice.map((l) => [l.sandbox, l.api, l.argv, l.exit_code, l.worker])).toEqual([
      [seedId, 'seed', ['/bin/sh', '-c', 'echo hi'], 0, WORKER],
      [seedId, 'seed', ['/bin/sh', '-c', 'exit 3'], 3, WORKER],
    ])
    for (const l of alice) {
      expect(Date.parse(l.time)).toBeGreaterThan(0)
      expect(l.duration_ms).toBeGreaterThan(0)
      expect(l.timed_out).toBe(false)
    }
    const bob = await auditWhere((l) => l.tenant === 'bob' && (l.argv[0] === 'sh' || l.argv[0] === 'echo'), 2)
    const withEnv = bob.find((l) => l.argv[0] === 'sh')
    expect(withEnv.env).toEqual(['API_TOKEN'])
    expect(withEnv.argv).toEqual(['sh', '-c', 'test -n "$API_TOKEN" && echo set; echo ***'])
    const flags = bob.find((l) => l.argv[0] === 'echo')
    expect(flags.argv).toEqual(['echo', '***', '--password', '***', 'TOKEN=***'])
    expect(flags.api).toBe('v1')
    const text = fs.readFileSync(auditPath, 'utf8')
    for (const secret of ['sekret-in-argv', 'ghp_configured_secret', 'pw-next-arg', 'assigned-secret', ALICE, BOB, METRICS]) expect(text).not.toContain(secret)
    expect(fs.statSync(auditPath).mode & 0o777).toBe(0o600)
  })

  it('hostile arguments (huge argv, newlines, quotes, control characters) cannot forge or break audit lines', async () => {
    const sb = (await call('GET', '/v1/sandboxes', BOB)).body.sandboxes[0]
    const forged = 'x"}\n{"tenant":"root","sandbox":"forged","argv":["rm"]}\r\n\u001b[2J\u0007\u2028'
    const args = ['%s', forged, ...Array.from({ length: 1000 }, (_, i) => `${i}:${'A'.repeat(1000)}`)]
    const res = await fetch(`${url}/v1/sandboxes/${sb.id}/processes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BOB}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'printf', args, options: { maxOutputBytes: 1024 } }),
    })
    expect(res.status).toBe(200)
    const events = (await res.text()).trim().split('\n').map((l) => JSON.parse(l))
    expect(events[events.length - 1].type, JSON.stringify(events[events.length - 1])).toBe('exit')
    const [line] = await auditWhere((l) => l.argv[0] === 'printf', 1)
    expect(line.tenant).toBe('bob')
    expect(line.sandbox).toBe(sb.id)
    expect(line.argc).toBe(1003)
    expect(line.truncated).toBe(true)
    expect(line.argv[2]).toBe(forged)
    const all = auditLines()
    expect(all.every((l) => l.tenant === 'alice' || l.tenant === 'bob'), 'no forged line').toBe(true)
    expect(all.some((l) => l.sandbox === 'forged')).toBe(false)
    expect(all.filter((l) => l.argv[0] === 'printf').length).toBe(1)
  })
})

describe('commands that cannot run', () => {
  it('a command the sandbox policy refuses is audited with its error code and no exit code', async () => {
    const c = await call('POST', '/v1/sandboxes', BOB, { config: { commandPolicy: { deny: ['rm'] } } })
    expect(c.status, c.text).toBe(201)
    ids.push(c.body.id)
    const r = await call('POST', `/v1/sandboxes/${c.body.id}/processes`, BOB, { command: 'rm', args: ['-rf', '/workspace'] })
    expect(r.status, r.text).toBe(403)
    expect(r.body.error.code).toBe('PERMISSION_DENIED')
    const [line] = await auditWhere((l) => l.sandbox === c.body.id, 1)
    expect([line.tenant, line.argv, line.exit_code, line.error]).toEqual(['bob', ['rm', '-rf', '/workspace'], null, 'PERMISSION_DENIED'])
    const m = await scrape()
    expect(valueOf(m, 'agentic_sandbox_errors_total', { code: 'PERMISSION_DENIED' })).toBe(1)
    expect((await call('DELETE', `/v1/sandboxes/${c.body.id}`, BOB)).status).toBe(200)
  })
})

describe('command line', () => {
  it('serve --audit-log --worker-id with SANDBOX_METRICS_TOKEN: the label, the line, the access log route', async () => {
    const apiKey = key()
    const token = key()
    const file = path.join(dir, 'cli-audit.jsonl')
    const rc = path.join(dir, 'sandboxrc.json')
    fs.writeFileSync(rc, JSON.stringify({ image: BUSYBOX, templates: TEST_TEMPLATES, networkMode: 'none' }))
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
    for (const k of ['PORT', 'HOST', 'RUST_LOG', 'WORKER_ID', 'SANDBOX_AUDIT_LOG']) delete env[k]
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--config', rc, '--access-log', '--audit-log', file, '--worker-id', 'w-cli'], {
      env: { ...env, SANDBOX_API_KEYS: apiKey, SANDBOX_METRICS_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const m = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr) ?? (child.exitCode !== null ? 'exited' : null), 30_000, 50)
      expect(Array.isArray(m), stderr).toBe(true)
      const base = (m as RegExpExecArray)[1]
      const auth = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
      const c = await fetch(`${base}/sandbox/create`, { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'base' }) })
      expect(c.status).toBe(201)
      const id = (await c.json()).sandbox_id
      const e = await fetch(`${base}/sandbox/${id}/execute`, { method: 'POST', headers: auth, body: JSON.stringify({ commands: [`echo ${apiKey}`] }) })
      expect(e.status).toBe(200)
      const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      expect(metrics.status).toBe(200)
      const samples = parseExposition(await metrics.text())
      expect(valueOf(samples, 'agentic_sandbox_executions_total', { tenant: 'env-1', api: 'seed', worker: 'w-cli' })).toBe(1)
      child.kill('SIGTERM')
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('hung'), 40_000))])
      expect(code, stderr).toBe(0)
      expect(await goneOf(id)).toEqual(NONE)
      // the shutdown flushed the audit log
      const lines = auditLines(file)
      expect(lines.map((l) => [l.tenant, l.worker, l.sandbox, l.argv, l.exit_code])).toEqual([['env-1', 'w-cli', id, ['/bin/sh', '-c', 'echo ***'], 0]])
      expect(fs.readFileSync(file, 'utf8')).not.toContain(apiKey)
      expect(stderr).toMatch(/agentic_sandbox::server::access.*method=POST.*route=\/sandbox\/\{id\}\/execute.*status=200.*tenant=env-1/)
      expect(stderr).not.toContain(apiKey)
      expect(stderr).not.toContain(token)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
