// The sandbox service (`SandboxServer`, `agentic-sandbox serve`): seed 004's curl session through
// fetch against a server this file starts on 127.0.0.1:0, every error case, hostile commands, the
// graceful shutdown, and the command line's SIGTERM. One server is shared by the tests (they run in
// order); its last test closes it.
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxServer } from '../index.js'
import { BUSYBOX, DEVTOOLS, TEST_TEMPLATES, dockerLabelled, goneOf, ownerPidLabel, sandboxLabel } from './helpers.js'

const BIN = path.join(__dirname, '..', 'bin', 'agentic-sandbox.js')
const NONE = { containers: 0, volumes: 0, networks: 0 }
const key = () => crypto.randomBytes(24).toString('hex')
const ALICE = key()
const BOB = key()
// a tenant with small limits: one sandbox, one execution at a time, 4 KiB bodies
const CAROL = key()
const MAX_OUTPUT = 64 * 1024

let server: SandboxServer
let base = ''
const created: string[] = []

beforeAll(async () => {
  server = new SandboxServer({
    port: 0,
    readEnv: false,
    apiKeys: [
      { key: ALICE, name: 'alice' },
      { key: BOB, name: 'bob' },
      { key: CAROL, name: 'carol', maxSandboxes: 1, maxConcurrentExecutions: 1, maxBodyBytes: 4096 },
    ],
    config: { image: BUSYBOX, templates: TEST_TEMPLATES },
    maxOutputBytes: MAX_OUTPUT,
    shutdownTimeout: 3,
  })
  const address = await server.listen()
  expect(address.host).toBe('127.0.0.1')
  expect(address.port).toBeGreaterThan(0)
  base = address.url
  expect(server.address?.url).toBe(base)
})

afterAll(async () => {
  await server?.close()
})

interface Reply {
  status: number
  body: any
  headers: Headers
}

async function api(method: string, route: string, opts: { key?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.key) headers.authorization = `Bearer ${opts.key}`
  let body: string | undefined
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json)
    headers['content-type'] = 'application/json'
  } else if (opts.raw !== undefined) {
    body = opts.raw
    headers['content-type'] ??= 'application/json'
  }
  const res = await fetch(base + route, { method, headers, body })
  const text = await res.text()
  let parsed: any = text
  try {
    parsed = JSON.parse(text)
  } catch {
    /* left as text */
  }
  return { status: res.status, body: parsed, headers: res.headers }
}

async function create(key: string, environment = 'nodejs-18', timeout = 600): Promise<string> {
  const r = await api('POST', '/sandbox/create', { key, json: { environment, timeout } })
  expect(r.status, JSON.stringify(r.body)).toBe(201)
  created.push(r.body.sandbox_id)
  return r.body.sandbox_id
}

const show = (r: Reply) => JSON.stringify(r.body, null, 1).slice(0, 4000)

const MULTIPLY = {
  'package.json': JSON.stringify({ name: 'multiply', private: true, scripts: { test: 'jest' } }),
  'multiply.js': 'function multiply(a, b) {\n  return a * b;\n}\nmodule.exports = { multiply };\n',
  'multiply.test.js': `const { multiply } = require('./multiply');

test('multiplies positive numbers', () => {
  expect(multiply(2, 3)).toBe(6);
});

test('multiplies by zero', () => {
  expect(multiply(5, 0)).toBe(1);
});
`,
}

describe("seed 004's session", () => {
  let id = ''

  it('GET /health: the engine is reachable; counts', async () => {
    const r = await api('GET', '/health')
    expect(r.status, show(r)).toBe(200)
    expect(r.body).toMatchObject({ status: 'healthy', provider: 'docker', engine: { reachable: true }, auth: 'api-key' })
    expect(r.body.tenant).toBeUndefined()
    const mine = await api('GET', '/health', { key: ALICE })
    expect(mine.body.tenant).toMatchObject({ name: 'alice', sandboxes: 0, max_sandboxes: 10, max_concurrent_executions: 4 })
  })

  it('POST /sandbox/create { environment: nodejs-18, timeout }', async () => {
    const r = await api('POST', '/sandbox/create', { key: ALICE, json: { environment: 'nodejs-18', timeout: 3600 } })
    expect(r.status, show(r)).toBe(201)
    id = r.body.sandbox_id
    created.push(id)
    expect(id).toMatch(/^docker-[0-9a-f]{16}$/)
    expect(r.body).toMatchObject({ status: 'ready', environment: 'nodejs-18', template: 'node', image: DEVTOOLS, provider: 'docker', timeout: 3600 })
    expect(Date.parse(r.body.expires_at) - Date.parse(r.body.created_at)).toBe(3_600_000)
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
  })

  it('POST /sandbox/{id}/execute: files, then commands in order; a failing jest run parsed', async () => {
    const r = await api('POST', `/sandbox/${id}/execute`, {
      key: ALICE,
      json: { files: MULTIPLY, commands: ['node -e "console.log(require(\'./multiply\').multiply(2, 3))"', 'ls', 'npm test'], timeout: 120 },
    })
    expect(r.status, show(r)).toBe(200)
    expect(r.body.sandbox_id).toBe(id)
    expect(r.body.success).toBe(false)
    expect([...r.body.files_written].sort()).toEqual(Object.keys(MULTIPLY).sort())
    const [node, ls, test] = r.body.results
    expect(node).toMatchObject({ command: expect.stringContaining('node -e'), status: 'completed', exit_code: 0, stdout: '6\n', timed_out: false, truncated: false, test_results: null })
    expect(node.duration_ms).toBeGreaterThan(0)
    expect(ls.stdout.split('\n')).toEqual(expect.arrayContaining(['multiply.js', 'multiply.test.js', 'package.json']))
    expect(test.command).toBe('npm test')
    expect(test.status, show(r)).toBe('failed')
    expect(test.exit_code).not.toBe(0)
    expect(test.test_results, show(r)).toMatchObject({ framework: 'jest', parsed: true, total: 2, passed: 1, failed: 1, skipped: 0 })
    expect(test.test_results.failures).toHaveLength(1)
    expect(test.test_results.failures[0].name).toBe('multiplies by zero')
    expect(test.test_results.failures[0].message).toContain('Expected: 1')
    expect(r.body.test_results).toEqual(test.test_results)
  })

  it('the fix: the same tests pass, and the seed troubleshooting call (test.js) runs', async () => {
    const fixed = MULTIPLY['multiply.test.js'].replace('toBe(1)', 'toBe(0)')
    const r = await api('POST', `/sandbox/${id}/execute`, { key: ALICE, json: { files: { 'multiply.test.js': fixed }, commands: ['npm test'] } })
    expect(r.status, show(r)).toBe(200)
    expect(r.body.success, show(r)).toBe(true)
    expect(r.body.test_results).toMatchObject({ framework: 'jest', total: 2, passed: 2, failed: 0 })
    const t = await api('POST', `/sandbox/${id}/execute`, { key: ALICE, json: { files: { 'test.js': 'console.log("test");' }, commands: ['node test.js'] } })
    expect(t.body.results[0]).toMatchObject({ status: 'completed', exit_code: 0, stdout: 'test\n' })
  })

  it('python-3.11: pytest output parsed too', async () => {
    const py = await create(ALICE, 'python-3.11')
    const r = await api('POST', `/sandbox/${py}/execute`, {
      key: ALICE,
      json: {
        files: { 'calc.py': 'def add(a, b):\n    return a + b\n', 'test_calc.py': 'from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n\ndef test_add_wrong():\n    assert add(2, 2) == 5\n' },
        commands: ['python3 -m pytest -q'],
      },
    })
    expect(r.status, show(r)).toBe(200)
    expect(r.body.results[0].test_results, show(r)).toMatchObject({ framework: 'pytest', total: 2, passed: 1, failed: 1 })
    expect(r.body.results[0].test_results.failures[0].name).toContain('test_add_wrong')
    const d = await api('DELETE', `/sandbox/${py}`, { key: ALICE })
    expect(d.status).toBe(200)
  })

  it('GET /sandbox/{id}/status and GET /sandboxes', async () => {
    const s = await api('GET', `/sandbox/${id}/status`, { key: ALICE })
    expect(s.status, show(s)).toBe(200)
    expect(s.body).toMatchObject({ sandbox_id: id, status: 'ready', state: 'running', environment: 'nodejs-18', template: 'node', executions: 3, commands: 5 })
    expect(s.body.uptime).toBeGreaterThanOrEqual(0)
    expect(s.body.resource_usage.memory_limit_mb).toBeGreaterThan(0)
    const l = await api('GET', '/sandboxes', { key: ALICE })
    expect(l.status).toBe(200)
    expect(l.body.sandboxes).toEqual([
      expect.objectContaining({ sandbox_id: id, status: 'ready', environment: 'nodejs-18', executions: 3, uptime: expect.any(Number) }),
    ])
    // the seed's cost estimate: [.sandboxes[].uptime] | add
    expect(l.body.sandboxes.map((x: any) => x.uptime).reduce((a: number, b: number) => a + b, 0)).toBeGreaterThanOrEqual(0)
  })

  it("DELETE /sandbox/{id}: the seed's delete-all loop", async () => {
    await create(ALICE, 'go-1.21')
    const ids = (await api('GET', '/sandboxes', { key: ALICE })).body.sandboxes.map((x: any) => x.sandbox_id)
    expect(ids).toHaveLength(2)
    for (const sid of ids) {
      const r = await api('DELETE', `/sandbox/${sid}`, { key: ALICE })
      expect(r.status, show(r)).toBe(200)
      expect(r.body).toMatchObject({ sandbox_id: sid, deleted: true })
      expect(await goneOf(sid)).toEqual(NONE)
    }
    expect((await api('GET', '/sandboxes', { key: ALICE })).body.sandboxes).toEqual([])
    const again = await api('DELETE', `/sandbox/${id}`, { key: ALICE })
    expect([again.status, again.body.error.code]).toEqual([404, 'SANDBOX_NOT_FOUND'])
  })
})

describe('errors', () => {
  let mine = ''

  beforeAll(async () => {
    mine = await create(ALICE, 'base')
  })

  it('401 without a key or with a wrong one; JSON, never echoing the key', async () => {
    for (const opts of [{}, { key: key() }, { headers: { authorization: `Basic ${ALICE}` } }]) {
      const r = await api('GET', '/sandboxes', opts)
      expect(r.status).toBe(401)
      expect(r.body.error.code).toBe('UNAUTHORIZED')
      expect(r.headers.get('www-authenticate')).toBe('Bearer')
      expect(JSON.stringify(r.body)).not.toContain(ALICE)
    }
    const viaHeader = await api('GET', '/sandboxes', { headers: { 'x-api-key': ALICE } })
    expect(viaHeader.status).toBe(200)
  })

  it("404 for another tenant's sandbox, exactly as for an unknown one", async () => {
    const theirs = await api('GET', `/sandbox/${mine}/status`, { key: BOB })
    expect([theirs.status, theirs.body.error.code]).toEqual([404, 'SANDBOX_NOT_FOUND'])
    const unknown = await api('GET', '/sandbox/docker-0000000000000000/status', { key: BOB })
    expect(unknown.body.error.message.replace('docker-0000000000000000', 'X')).toBe(theirs.body.error.message.replace(mine, 'X'))
    for (const [method, route, json] of [
      ['POST', `/sandbox/${mine}/execute`, { commands: ['id'] }],
      ['DELETE', `/sandbox/${mine}`, undefined],
    ] as const) {
      const r = await api(method, route, { key: BOB, json })
      expect([r.status, r.body.error.code]).toEqual([404, 'SANDBOX_NOT_FOUND'])
    }
    expect((await api('GET', '/sandboxes', { key: BOB })).body.sandboxes).toEqual([])
    expect((await api('GET', `/sandbox/${mine}/status`, { key: ALICE })).status).toBe(200)
  })

  it('429 past maxSandboxes and maxConcurrentExecutions; 413 past maxBodyBytes', async () => {
    const one = await create(CAROL, 'base')
    const second = await api('POST', '/sandbox/create', { key: CAROL, json: { environment: 'base' } })
    expect([second.status, second.body.error.code]).toEqual([429, 'QUOTA_EXCEEDED'])
    const slow = api('POST', `/sandbox/${one}/execute`, { key: CAROL, json: { commands: ['sleep 2; echo slept'] } })
    await new Promise((r) => setTimeout(r, 500))
    const busy = await api('POST', `/sandbox/${one}/execute`, { key: CAROL, json: { commands: ['echo hi'] } })
    expect([busy.status, busy.body.error.code]).toEqual([429, 'QUOTA_EXCEEDED'])
    const st = await api('GET', `/sandbox/${one}/status`, { key: CAROL })
    expect(st.body.status).toBe('busy')
    expect((await slow).body.results[0].stdout).toBe('slept\n')
    // the slot is back
    expect((await api('POST', `/sandbox/${one}/execute`, { key: CAROL, json: { commands: ['echo hi'] } })).status).toBe(200)
    const big = await api('POST', `/sandbox/${one}/execute`, { key: CAROL, json: { files: { 'big.txt': 'x'.repeat(8000) } } })
    expect([big.status, big.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE'])
    // alice's limit (10 MiB) takes the same body
    expect((await api('POST', `/sandbox/${mine}/execute`, { key: ALICE, json: { files: { 'big.txt': 'x'.repeat(8000) } } })).status).toBe(200)
    expect((await api('DELETE', `/sandbox/${one}`, { key: CAROL })).status).toBe(200)
  })

  it('400 INVALID_ARGUMENT naming the field for malformed JSON and wrong types; 415; 404/405 routes', async () => {
    const cases: Array<[string, string, string | unknown, string]> = [
      ['POST', '/sandbox/create', '{"environment": "nodejs-18",', 'not valid JSON'],
      ['POST', '/sandbox/create', '"nodejs-18"', 'must be a JSON object, got a string'],
      ['POST', '/sandbox/create', { environment: 18 }, 'environment must be a string, got a number'],
      ['POST', '/sandbox/create', {}, 'environment is missing'],
      ['POST', '/sandbox/create', { environment: 'ruby-3' }, 'environment "ruby-3" is not known'],
      ['POST', '/sandbox/create', { environment: 'go-1.21', timeout: '1h' }, 'timeout must be a number of seconds, got a string'],
      ['POST', '/sandbox/create', { environment: 'go-1.21', timeout: 0 }, 'timeout must be a number of seconds in (0,'],
      ['POST', `/sandbox/${mine}/execute`, { commands: 'ls' }, 'commands must be an array of strings, got a string'],
      ['POST', `/sandbox/${mine}/execute`, { commands: ['ls', null] }, 'commands[1] must be a string, got null'],
      ['POST', `/sandbox/${mine}/execute`, { files: ['a.txt'] }, 'files must be an object of path → text, got an array'],
      ['POST', `/sandbox/${mine}/execute`, { files: { 'a.txt': 42 } }, 'files["a.txt"] must be a string'],
      ['POST', `/sandbox/${mine}/execute`, { commands: ['ls'], timeout: -1 }, 'timeout must be a number of seconds in (0,'],
      ['POST', `/sandbox/${mine}/execute`, { commands: ['ls'], stop_on_error: 'yes' }, 'stop_on_error must be true or false'],
    ]
    for (const [method, route, body, want] of cases) {
      const r = typeof body === 'string' ? await api(method, route, { key: ALICE, raw: body }) : await api(method, route, { key: ALICE, json: body })
      expect([r.status, r.body.error?.code], `${route} ${JSON.stringify(body)}: ${show(r)}`).toEqual([400, 'INVALID_ARGUMENT'])
      expect(r.body.error.message).toContain(want)
    }
    const noType = await api('POST', '/sandbox/create', { key: ALICE, raw: '{"environment":"base"}', headers: { 'content-type': 'text/plain' } })
    expect([noType.status, noType.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE'])
    const route = await api('GET', '/sandbox/create/now', { key: ALICE })
    expect([route.status, route.body.error.code]).toEqual([404, 'NOT_FOUND'])
    const method = await api('PATCH', '/sandboxes', { key: ALICE })
    expect([method.status, method.body.error.code]).toEqual([405, 'METHOD_NOT_ALLOWED'])
  })

  it('a failing command is a result, a file write failure an error; stop_on_error skips the rest', async () => {
    const r = await api('POST', `/sandbox/${mine}/execute`, { key: ALICE, json: { commands: ['echo out; echo err >&2; exit 3', 'echo next'], stop_on_error: true } })
    expect(r.status).toBe(200)
    expect(r.body.results[0]).toMatchObject({ status: 'failed', exit_code: 3, stdout: 'out\n', stderr: 'err\n' })
    expect(r.body.results[1]).toMatchObject({ status: 'skipped', exit_code: null, stdout: '' })
    const ro = await api('POST', `/sandbox/${mine}/execute`, { key: ALICE, json: { files: { '/etc/passwd': 'x' }, commands: ['echo never'] } })
    expect(ro.status, show(ro)).toBe(422)
    expect(ro.body.error.code).toBe('EXECUTION_ERROR')
    expect(ro.body.error.message).toContain('/etc/passwd')
  })

  it('the server still serves after all of that', async () => {
    expect((await api('GET', '/health')).status).toBe(200)
    const r = await api('POST', `/sandbox/${mine}/execute`, { key: ALICE, json: { commands: ['echo still here'] } })
    expect(r.body.results[0].stdout).toBe('still here\n')
  })
})

describe('hostile commands', () => {
  let sb = ''

  beforeAll(async () => {
    sb = await create(BOB, 'base')
  })

  it('100 MB of output is capped at maxOutputBytes; the server stays responsive meanwhile', async () => {
    const flood = api('POST', `/sandbox/${sb}/execute`, { key: BOB, json: { commands: ['head -c 104857600 /dev/zero | tr "\\000" x', 'echo after'] } })
    const t0 = Date.now()
    const health = await api('GET', '/health')
    expect(health.status).toBe(200)
    expect(Date.now() - t0).toBeLessThan(5000)
    const r = await flood
    expect(r.status, show(r)).toBe(200)
    expect(r.body.results[0]).toMatchObject({ status: 'completed', exit_code: 0, truncated: true })
    expect(r.body.results[0].stdout.length).toBe(MAX_OUTPUT)
    expect(r.body.results[1].stdout).toBe('after\n')
    // many floods in one request: all of its output together stays within 8 caps
    const many = await api('POST', `/sandbox/${sb}/execute`, { key: BOB, json: { commands: Array(12).fill('head -c 1000000 /dev/zero | tr "\\000" y') } })
    expect(many.status).toBe(200)
    const sizes = many.body.results.map((x: any) => x.stdout.length)
    expect(many.body.results.every((x: any) => x.truncated && x.status === 'completed')).toBe(true)
    expect(sizes.slice(0, 7)).toEqual(Array(7).fill(MAX_OUTPUT))
    expect(sizes.reduce((a: number, b: number) => a + b, 0)).toBeLessThanOrEqual(8 * MAX_OUTPUT + 12 * 4096)
  })

  it('a command that never exits (and prints without end) is killed at the timeout; the rest are skipped', async () => {
    const t0 = Date.now()
    const r = await api('POST', `/sandbox/${sb}/execute`, { key: BOB, json: { commands: ['yes', 'echo never'], timeout: 2 } })
    expect(r.status, show(r)).toBe(200)
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(r.body.results[0]).toMatchObject({ status: 'timeout', timed_out: true, exit_code: 124, truncated: true })
    expect(r.body.results[1].status).toBe('skipped')
    const after = await api('POST', `/sandbox/${sb}/execute`, { key: BOB, json: { commands: ['echo alive'] } })
    expect(after.body.results[0].stdout).toBe('alive\n')
  })
})

describe('shutdown', () => {
  it('close(): in-flight work finishes within shutdownTimeout, the rest is cancelled, every sandbox is destroyed', async () => {
    const sb = await create(ALICE, 'base')
    const quick = api('POST', `/sandbox/${sb}/execute`, { key: ALICE, json: { commands: ['sleep 1; echo done'] } })
    const stuck = api('POST', `/sandbox/${sb}/execute`, { key: ALICE, json: { commands: ['sleep 60'] } })
    await new Promise((r) => setTimeout(r, 300))
    const t0 = Date.now()
    await server.close()
    const took = Date.now() - t0
    expect(took).toBeGreaterThan(2500) // the stuck one had its 3 s
    expect(took).toBeLessThan(30_000)
    const q = await quick
    expect(q.status, show(q)).toBe(200)
    expect(q.body.results[0].stdout).toBe('done\n')
    const s = await stuck
    expect([s.status, s.body.error?.code], show(s)).toEqual([503, 'ABORTED'])
    // nothing is left: every sandbox this server made, and anything labelled with this process
    for (const id of created) expect(await goneOf(id), id).toEqual(NONE)
    expect(dockerLabelled(ownerPidLabel(process.pid))).toEqual(NONE)
    await expect(fetch(base + '/health')).rejects.toThrow()
    await server.close() // twice is fine
    await expect(server.listen()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })
})

describe('command line', () => {
  let dir = ''
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'service-spec-'))
    fs.writeFileSync(path.join(dir, 'sandboxrc.json'), JSON.stringify({ image: BUSYBOX, templates: TEST_TEMPLATES }))
  })
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('serve --port 0: serves, logs requests without keys, and exits 0 on SIGTERM leaving no container', async () => {
    const apiKey = key()
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
    delete env.PORT
    delete env.HOST
    delete env.RUST_LOG
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--config', path.join(dir, 'sandboxrc.json'), '--access-log'], {
      env: { ...env, SANDBOX_API_KEYS: apiKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const deadline = Date.now() + 30_000
      let m: RegExpExecArray | null = null
      while (!(m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50))
      expect(m, stderr).not.toBeNull()
      const url = m![1]
      const auth = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }
      const c = await fetch(`${url}/sandbox/create`, { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'base' }) })
      expect(c.status).toBe(201)
      const id = (await c.json()).sandbox_id
      expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
      const e = await fetch(`${url}/sandbox/${id}/execute`, { method: 'POST', headers: auth, body: JSON.stringify({ commands: ['echo from cli'] }) })
      expect((await e.json()).results[0].stdout).toBe('from cli\n')
      expect((await fetch(`${url}/sandboxes`)).status).toBe(401)
      child.kill('SIGTERM')
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('hung'), 40_000))])
      expect(code, stderr).toBe(0)
      expect(await goneOf(id)).toEqual(NONE)
      expect(stderr).toContain('SIGTERM: shutting down')
      // the access log names the tenant (SANDBOX_API_KEYS' first key is env-1), never the key
      expect(stderr).toMatch(/agentic_sandbox::server::access.*method=POST.*path=\/sandbox\/create.*status=201.*tenant=env-1/)
      expect(stderr).toMatch(/status=401/)
      expect(stderr).not.toContain(apiKey)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  it('refuses to listen beyond loopback without API keys, and bad options', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const env = { ...process.env }
        delete env.SANDBOX_API_KEYS
        const p = spawn(process.execPath, [BIN, 'serve', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
        let stderr = ''
        p.stderr!.on('data', (d) => (stderr += d))
        p.on('exit', (code) => resolve({ code, stderr }))
      })
    const open = await run(['--host', '0.0.0.0', '--port', '0'])
    expect(open.code).toBe(1)
    expect(open.stderr).toContain('INVALID_CONFIG: listening on 0.0.0.0 is beyond loopback and needs API keys')
    const bad = await run(['--port', '99999'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("option '--port' must be")
  })
})
