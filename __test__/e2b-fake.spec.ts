// Fidelity of examples/lib/fake-e2b.ts: drive the fake with the official `e2b` SDK and check that what
// the SDK does against real E2B works against it, errors map to the SDK's error classes, and the
// processes and files are real (inside Docker containers). The last tests read the raw Connect wire
// format. No outside network: both listeners are on 127.0.0.1 and the containers have no network.
import { execFileSync } from 'node:child_process'
import {
  AuthenticationError,
  CommandExitError,
  FileNotFoundError,
  NotFoundError,
  Sandbox,
  SandboxError,
  SandboxNotFoundError,
  TimeoutError,
  type SandboxOpts,
} from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAKE_E2B_LABEL, startFakeE2b, type FakeE2b } from '../examples/lib/fake-e2b.js'

const KEY = `e2b_${'a1'.repeat(20)}`
const OWN_CONTAINERS = [`label=${FAKE_E2B_LABEL}`, `label=agentic-sandbox.fake-e2b.owner-pid=${process.pid}`]

let fake: FakeE2b
const sandboxes: Sandbox[] = []

beforeAll(async () => {
  fake = await startFakeE2b({ requireKey: KEY, keepaliveMs: 200 })
})

afterAll(async () => {
  await fake?.close()
})

const conn = () => ({ apiKey: KEY, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl, requestTimeoutMs: 30_000 })

async function create(opts: SandboxOpts = {}): Promise<Sandbox> {
  const sbx = await Sandbox.create({ ...conn(), timeoutMs: 120_000, ...opts })
  sandboxes.push(sbx)
  return sbx
}

function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

const containerIds = (filters: string[]) =>
  docker(['ps', '-a', '-q', '--no-trunc', ...filters.flatMap((f) => ['--filter', f])]).split('\n').filter(Boolean)

const containerOf = (sbx: Sandbox) => fake.sandboxes().find((s) => s.id === sbx.sandboxId)?.container

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection, but it resolved')
}

async function waitFor<T>(fn: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  let v = await fn()
  while (!v && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    v = await fn()
  }
  return v
}

describe('fake E2B via the official e2b SDK', () => {
  let sbx: Sandbox

  it('Sandbox.create makes a labelled container with the metadata, envs and timeout', async () => {
    const before = Date.now()
    sbx = await create({ metadata: { suite: 'e2b-fake', run: String(process.pid) }, envs: { GREETING: 'hello from envs' }, timeoutMs: 120_000 })
    expect(sbx.sandboxId).toMatch(/^[a-z0-9]{20}$/)

    const info = fake.sandboxes().find((s) => s.id === sbx.sandboxId)!
    expect(info).toMatchObject({ state: 'running', templateID: 'base', metadata: { suite: 'e2b-fake' }, envVars: { GREETING: 'hello from envs' }, secure: true })
    expect(info.endAt).toBeGreaterThanOrEqual(before + 119_000)
    expect(containerIds([...OWN_CONTAINERS, `label=agentic-sandbox.fake-e2b.sandbox-id=${sbx.sandboxId}`])).toEqual([info.container])

    const createReq = fake.requests.find((r) => r.method === 'POST' && r.path === '/v2/sandboxes')!
    expect(createReq.headers['x-api-key']).toBe(KEY)
    expect(createReq.body).toEqual({ templateID: 'base', timeout: 120, metadata: { suite: 'e2b-fake', run: String(process.pid) }, envVars: { GREETING: 'hello from envs' } })
    expect(createReq.status).toBe(201)
  })

  it('commands.run streams stdout and stderr as the process writes them', async () => {
    const events: Array<{ at: number; out?: string; err?: string }> = []
    const result = await sbx.commands.run('echo one; sleep 0.4; echo two >&2; sleep 0.4; echo "$GREETING"; id -un; pwd', {
      onStdout: (out) => void events.push({ at: Date.now(), out }),
      onStderr: (err) => void events.push({ at: Date.now(), err }),
    })
    expect(result).toMatchObject({ exitCode: 0, stdout: 'one\nhello from envs\nuser\n/home/user\n', stderr: 'two\n' })
    expect(events[0]).toMatchObject({ out: 'one\n' })
    expect(events[1]).toMatchObject({ err: 'two\n' })
    // streamed, not delivered at exit: the chunks arrive as far apart as the process wrote them
    expect(events[1].at - events[0].at).toBeGreaterThanOrEqual(300)
    expect(events.at(-1)!.at - events[1].at).toBeGreaterThanOrEqual(300)

    const start = fake.requests.filter((r) => r.path === '/process.Process/Start').at(-1)!
    expect(start.headers['content-type']).toBe('application/connect+json')
    expect(start.headers['keepalive-ping-interval']).toBe('50')
    expect(start.headers['connect-timeout-ms']).toBe('60000')
    expect(start.headers['e2b-sandbox-id']).toBe(sbx.sandboxId)
    expect(start.headers['e2b-sandbox-port']).toBe('49983')
    expect(start.body).toMatchObject({ process: { cmd: '/bin/bash', args: ['-l', '-c', expect.stringContaining('echo one')] }, stdin: false })
  })

  it('a non-zero exit is a CommandExitError; an unknown command exits 127', async () => {
    const err = await rejection(sbx.commands.run('echo partial; echo oops >&2; exit 3'))
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err).toMatchObject({ exitCode: 3, stdout: 'partial\n', stderr: 'oops\n', error: 'exit status 3' })

    const missing = await rejection(sbx.commands.run('no-such-command-xyz'))
    expect(missing).toBeInstanceOf(CommandExitError)
    expect(missing.exitCode).toBe(127)
    expect(missing.stderr).toContain('no-such-command-xyz')
  })

  it('a background command reads stdin from sendStdin until closeStdin', async () => {
    const chunks: string[] = []
    const handle = await sbx.commands.run('tr a-z A-Z', { background: true, stdin: true, onStdout: (d) => void chunks.push(d) })
    expect(handle.pid).toBeGreaterThan(1)
    await handle.sendStdin('hello ')
    await sbx.commands.sendStdin(handle.pid, new TextEncoder().encode('stdin\n'))
    await handle.closeStdin()
    const result = await handle.wait()
    expect(result.stdout).toBe('HELLO STDIN\n')
    expect(chunks.join('')).toBe('HELLO STDIN\n')
  })

  it('commands.connect attaches to a running command and receives its further output', async () => {
    const first: string[] = []
    const handle = await sbx.commands.run('echo before; sleep 0.6; echo after', { background: true, onStdout: (d) => void first.push(d) })
    await waitFor(() => first.length > 0)
    await handle.disconnect()
    const later: string[] = []
    const attached = await sbx.commands.connect(handle.pid, { onStdout: (d) => void later.push(d) })
    expect(attached.pid).toBe(handle.pid)
    const result = await attached.wait()
    expect(result.exitCode).toBe(0)
    expect(first).toEqual(['before\n'])
    expect(later.join('')).toBe('after\n')
    expect(fake.requests.filter((r) => r.path === '/process.Process/Connect').at(-1)!.body).toEqual({ process: { pid: handle.pid } })
  })

  it('commands.list shows running commands and commands.kill ends them with SIGKILL', async () => {
    const handle = await sbx.commands.run('sleep 30', { background: true, cwd: '/tmp', envs: { MARK: 'list-me' } })
    const listed = await sbx.commands.list()
    expect(listed).toContainEqual({ pid: handle.pid, cmd: '/bin/bash', args: ['-l', '-c', 'sleep 30'], envs: { MARK: 'list-me' }, cwd: '/tmp' })
    // the pid is the process's pid inside the container
    expect(docker(['exec', containerOf(sbx)!, 'cat', `/proc/${handle.pid}/cmdline`]).replace(/\0/g, ' ')).toContain('sleep 30')

    expect(await sbx.commands.kill(handle.pid)).toBe(true)
    const err = await rejection(handle.wait())
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err).toMatchObject({ exitCode: -1, error: 'signal: killed' })
    expect((await sbx.commands.list()).map((p) => p.pid)).not.toContain(handle.pid)
    expect(await sbx.commands.kill(handle.pid)).toBe(false)
  })

  it('timeoutMs ends the command: Connect-Timeout-Ms kills the process and the SDK throws TimeoutError', async () => {
    const t0 = Date.now()
    const err = await rejection(sbx.commands.run('sleep 20; echo never', { timeoutMs: 1000 }))
    expect(err).toBeInstanceOf(TimeoutError)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(fake.requests.filter((r) => r.path === '/process.Process/Start').at(-1)!.headers['connect-timeout-ms']).toBe('1000')
    expect(await waitFor(async () => !(await sbx.commands.list()).some((p) => p.args.includes('sleep 20; echo never')))).toBe(true)
  })

  it('files: write/read text and bytes, list, makeDir, exists, rename, remove', async () => {
    expect(await sbx.files.write('notes/a.txt', 'hello file')).toMatchObject({ path: '/home/user/notes/a.txt', name: 'a.txt', type: 'file' })
    expect(await sbx.files.read('/home/user/notes/a.txt')).toBe('hello file')
    expect(docker(['exec', containerOf(sbx)!, 'stat', '-c', '%U', '/home/user/notes/a.txt'])).toBe('user')

    const bytes = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) % 256)
    await sbx.files.write('/tmp/blob.bin', bytes.buffer)
    expect(Buffer.from(await sbx.files.read('/tmp/blob.bin', { format: 'bytes' }))).toEqual(Buffer.from(bytes))
    expect(await sbx.files.read('/tmp/empty', { format: 'bytes' }).catch((e) => e)).toBeInstanceOf(FileNotFoundError)

    await sbx.files.write('raw/octet.txt', 'octet body', { useOctetStream: true })
    await sbx.files.write('raw/gzip.txt', 'gzipped body', { gzip: true })
    expect(await sbx.files.read('raw/octet.txt')).toBe('octet body')
    expect(await sbx.files.read('raw/gzip.txt', { gzip: true })).toBe('gzipped body')
    const uploads = fake.requests.filter((r) => r.method === 'POST' && r.path === '/files').slice(-2)
    expect(uploads.map((r) => [r.headers['content-type'], r.headers['content-encoding']])).toEqual([
      ['application/octet-stream', undefined],
      ['application/octet-stream', 'gzip'],
    ])

    const many = await sbx.files.write([
      { path: 'multi/one.txt', data: '1' },
      { path: '/tmp/multi-two.txt', data: new Blob(['2']) },
    ])
    expect(many.map((w) => w.path)).toEqual(['/home/user/multi/one.txt', '/tmp/multi-two.txt'])
    expect(await sbx.files.read('multi/one.txt')).toBe('1')

    expect(await sbx.files.makeDir('notes/sub/deeper')).toBe(true)
    expect(await sbx.files.makeDir('notes/sub/deeper')).toBe(false)
    const entries = await sbx.files.list('notes')
    expect(entries.map((e) => [e.name, e.type])).toEqual([['a.txt', 'file'], ['sub', 'dir']])
    expect(entries[0]).toMatchObject({ path: '/home/user/notes/a.txt', size: 10, mode: 0o644, permissions: '-rw-r--r--', owner: 'user', group: 'user' })
    expect(entries[0].modifiedTime).toBeInstanceOf(Date)
    expect((await sbx.files.list('notes', { depth: 3 })).map((e) => e.path)).toEqual([
      '/home/user/notes/a.txt', '/home/user/notes/sub', '/home/user/notes/sub/deeper',
    ])

    expect(await sbx.files.exists('notes/a.txt')).toBe(true)
    expect(await sbx.files.exists('notes/missing')).toBe(false)
    expect(await sbx.files.rename('notes/a.txt', 'notes/b.txt')).toMatchObject({ name: 'b.txt', type: 'file', path: '/home/user/notes/b.txt' })
    expect(await sbx.files.getInfo('notes/b.txt')).toMatchObject({ type: 'file', size: 10 })
    await sbx.files.remove('notes')
    expect(await sbx.files.exists('notes')).toBe(false)
    expect(await rejection(sbx.files.read('notes/b.txt'))).toBeInstanceOf(FileNotFoundError)
  })

  it('setTimeout, getInfo and Sandbox.list with a metadata filter', async () => {
    await sbx.setTimeout(200_000)
    const endAt = fake.sandboxes().find((s) => s.id === sbx.sandboxId)!.endAt
    expect(endAt).toBeGreaterThan(Date.now() + 190_000)
    const info = await sbx.getInfo()
    expect(info).toMatchObject({ sandboxId: sbx.sandboxId, name: 'base', state: 'running', metadata: { suite: 'e2b-fake' }, envdVersion: '0.6.13' })
    expect(Math.abs(info.endAt.getTime() - endAt)).toBeLessThan(1000)

    const other = await create({ metadata: { suite: 'other' } })
    const page = await Sandbox.list({ ...conn(), query: { metadata: { suite: 'e2b-fake', run: String(process.pid) } } }).nextItems()
    expect(page.map((s) => s.sandboxId)).toEqual([sbx.sandboxId])
    const all = (await Sandbox.list({ ...conn() }).nextItems()).map((s) => s.sandboxId)
    expect(all).toEqual(expect.arrayContaining([sbx.sandboxId, other.sandboxId]))
    const paginator = Sandbox.list({ ...conn(), limit: 1 })
    const firstPage = await paginator.nextItems()
    expect(firstPage).toHaveLength(1)
    expect(paginator.hasNext).toBe(true)
    expect((await paginator.nextItems()).map((s) => s.sandboxId)).not.toEqual(firstPage.map((s) => s.sandboxId))
    await other.kill()
  })

  it('network: Sandbox.create({ network, allowInternetAccess }), getInfo() and updateNetwork() (stored, not enforced)', async () => {
    const net = await create({ network: { allowOut: ['registry.npmjs.org', '*.github.com', '1.2.3.4'], denyOut: ['0.0.0.0/0'] } })
    const create_ = fake.requests.filter((r) => r.method === 'POST' && r.path === '/v2/sandboxes' && r.status === 201).at(-1)!
    expect(create_.body.network).toEqual({ allowOut: ['registry.npmjs.org', '*.github.com', '1.2.3.4'], denyOut: ['0.0.0.0/0'] })
    let info = await net.getInfo()
    expect(info.network).toMatchObject({ allowOut: ['registry.npmjs.org', '*.github.com', '1.2.3.4'], denyOut: ['0.0.0.0/0'] })
    expect(info.allowInternetAccess).toBeUndefined() // null on the wire: not given

    // the whole config is replaced: what the update leaves out is cleared
    await net.updateNetwork({ allowOut: ['pypi.org'] })
    const put = fake.requests.filter((r) => r.method === 'PUT').at(-1)!
    expect([put.path, put.status, put.body]).toEqual([`/sandboxes/${net.sandboxId}/network`, 204, { allowOut: ['pypi.org'] }])
    info = await net.getInfo()
    expect(info.network?.allowOut).toEqual(['pypi.org'])
    expect(info.network?.denyOut).toBeUndefined()
    expect(fake.sandboxes().find((s) => s.id === net.sandboxId)).toMatchObject({ network: { allowOut: ['pypi.org'] }, allowInternetAccess: null })
    await net.updateNetwork({ allowInternetAccess: false })
    expect(await net.getInfo()).toMatchObject({ allowInternetAccess: false, network: undefined })

    // E2B's validation: domains only in allowOut, no ports, lists of strings; 404 for an unknown sandbox
    for (const bad of [{ denyOut: ['evil.example'] }, { allowOut: ['example.com:443'] }, { allowOut: 'pypi.org' as any }]) {
      const err = await rejection(net.updateNetwork(bad))
      expect(err, JSON.stringify(bad)).toBeInstanceOf(SandboxError)
      expect(err.message, JSON.stringify(bad)).toMatch(/^400: /)
    }
    expect((await rejection(Sandbox.updateNetwork('nosuchsandbox0000000', { allowOut: ['pypi.org'] }, conn())))).toBeInstanceOf(SandboxNotFoundError)
    expect(await rejection(create({ network: { denyOut: ['*.evil.example'] } }))).toBeInstanceOf(SandboxError)

    const none = await create({ allowInternetAccess: false })
    expect(await none.getInfo()).toMatchObject({ allowInternetAccess: false, network: undefined })
    await Promise.all([net.kill(), none.kill()])
  })

  it('getMetrics reports the container usage', async () => {
    const metrics = await sbx.getMetrics()
    expect(metrics.length).toBeGreaterThanOrEqual(1)
    const m = metrics.at(-1)!
    expect(m.timestamp).toBeInstanceOf(Date)
    expect(m.memUsed).toBeGreaterThan(0)
    expect(m.memTotal).toBeGreaterThan(m.memUsed)
    expect(m.diskTotal).toBeGreaterThan(0)
    expect(m.cpuCount).toBeGreaterThan(0)
  })

  it('pause freezes the container and Sandbox.connect resumes it', async () => {
    await sbx.files.write('kept.txt', 'survives pause')
    expect(await sbx.pause()).toBe(true)
    expect(docker(['inspect', '-f', '{{.State.Paused}}', containerOf(sbx)!])).toBe('true')
    expect(await sbx.pause()).toBe(false)
    expect((await sbx.getInfo()).state).toBe('paused')
    expect(await sbx.isRunning()).toBe(false)

    const resumed = await Sandbox.connect(sbx.sandboxId, { ...conn(), timeoutMs: 60_000 })
    expect(fake.requests.filter((r) => r.path === `/v2/sandboxes/${sbx.sandboxId}/connect`).map((r) => r.status)).toEqual([201])
    expect(docker(['inspect', '-f', '{{.State.Paused}}', containerOf(sbx)!])).toBe('false')
    expect(await resumed.files.read('kept.txt')).toBe('survives pause')
    expect((await resumed.commands.run('echo resumed')).stdout).toBe('resumed\n')
    // connecting to a running sandbox answers 200
    await Sandbox.connect(sbx.sandboxId, conn())
    expect(fake.requests.filter((r) => r.path === `/v2/sandboxes/${sbx.sandboxId}/connect`).map((r) => r.status)).toEqual([201, 200])
  })

  it('kill removes the container; the killed id is not found afterwards', async () => {
    const container = containerOf(sbx)!
    expect(await sbx.kill()).toBe(true)
    expect(containerIds([`id=${container}`])).toEqual([])
    expect(await sbx.kill()).toBe(false)
    expect(await rejection(Sandbox.connect(sbx.sandboxId, conn()))).toBeInstanceOf(SandboxNotFoundError)
    expect(await rejection(Sandbox.getInfo(sbx.sandboxId, conn()))).toBeInstanceOf(NotFoundError)
    // envd of a gone sandbox answers like the edge (502): the SDK reports it as not running
    expect(await sbx.isRunning()).toBe(false)
  })

  it('the sandbox timeout removes the container when it passes', async () => {
    const short = await create({ timeoutMs: 1000 })
    const container = containerOf(short)!
    expect(await waitFor(() => containerIds([`id=${container}`]).length === 0, 10_000)).toBe(true)
    expect(await rejection(short.getInfo())).toBeInstanceOf(SandboxNotFoundError)
  })

  it('a wrong API key is an AuthenticationError', async () => {
    const err = await rejection(Sandbox.create({ ...conn(), apiKey: `e2b_${'0'.repeat(40)}` }))
    expect(err).toBeInstanceOf(AuthenticationError)
    expect(err.message).toContain('Invalid API key')
    expect(fake.requests.at(-1)).toMatchObject({ path: '/v2/sandboxes', status: 401 })
  })

  it('a 429 with Retry-After is retried by the SDK and then succeeds', async () => {
    fake.inject({ path: '/v2/sandboxes', method: 'POST', status: 429, headers: { 'Retry-After': '0' } })
    const before = fake.requests.length
    const retried = await create()
    expect(fake.requests.slice(before).filter((r) => r.path === '/v2/sandboxes').map((r) => r.status)).toEqual([429, 201])
    await retried.kill()
  })

  it('delay and status faults on envd: a slow call, then an error the SDK maps, then normal service', async () => {
    const s = await create()
    fake.inject({ plane: 'envd', path: '/process.Process/List', delayMs: 400 })
    const t0 = Date.now()
    expect(await s.commands.list()).toEqual([])
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400)

    fake.inject({ plane: 'envd', path: '/filesystem.Filesystem/Stat', status: 500, times: 2 })
    for (let i = 0; i < 2; i++) {
      const err = await rejection(s.files.exists('anything'))
      expect(err).toBeInstanceOf(SandboxError)
      expect(err.message).toContain('fake-e2b: injected 500')
    }
    expect(await s.files.exists('anything')).toBe(false)
    await s.kill()
  })

  it('a process stream cut mid-way (no end-of-stream envelope) is an error for the SDK', async () => {
    const s = await create()
    fake.inject({ cutStreamAfterEvents: 2 })
    const err = await rejection(s.commands.run('echo first; sleep 0.3; echo second'))
    expect(err).toBeInstanceOf(SandboxError)
    expect(err).not.toBeInstanceOf(CommandExitError)
    // the next stream is served normally again
    expect((await s.commands.run('echo fine')).stdout).toBe('fine\n')
    await s.kill()
  })
})

describe('fake E2B raw wire format (what a non-SDK client sees)', () => {
  let sbx: Sandbox
  let token: string

  beforeAll(async () => {
    sbx = await create()
    token = fake.sandboxes().find((s) => s.id === sbx.sandboxId)!.envdAccessToken!
  })

  const envdHeaders = (extra: Record<string, string> = {}) => ({
    'E2b-Sandbox-Id': sbx.sandboxId,
    'E2b-Sandbox-Port': '49983',
    'X-Access-Token': token,
    ...extra,
  })

  /** One Connect envelope: flags byte 0, 4-byte big-endian length, the JSON message. */
  function envelope(msg: unknown): Uint8Array<ArrayBuffer> {
    const json = new TextEncoder().encode(JSON.stringify(msg))
    const out = new Uint8Array(5 + json.length)
    new DataView(out.buffer).setUint32(1, json.length)
    out.set(json, 5)
    return out
  }

  function frames(buf: Buffer): Array<{ flags: number; msg: any }> {
    const out: Array<{ flags: number; msg: any }> = []
    for (let off = 0; off < buf.length; ) {
      const len = buf.readUInt32BE(off + 1)
      out.push({ flags: buf[off], msg: JSON.parse(buf.subarray(off + 5, off + 5 + len).toString()) })
      off += 5 + len
    }
    return out
  }

  it('Start streams start/data/keepalive/end envelopes and a 0x02 end-of-stream frame', async () => {
    const res = await fetch(`${fake.sandboxUrl}/process.Process/Start`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/connect+json', 'Connect-Protocol-Version': '1' }),
      body: envelope({ process: { cmd: '/bin/sh', args: ['-c', 'printf hi; sleep 0.5; exit 2'] } }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/connect+json')
    const got = frames(Buffer.from(await res.arrayBuffer()))
    expect(got[0]).toEqual({ flags: 0, msg: { event: { start: { pid: expect.any(Number) } } } })
    expect(got[1]).toEqual({ flags: 0, msg: { event: { data: { stdout: Buffer.from('hi').toString('base64') } } } })
    // keepaliveMs: 200 and 0.5 s of silence
    expect(got.filter((f) => f.msg.event?.keepalive).length).toBeGreaterThanOrEqual(1)
    expect(got.at(-2)).toEqual({ flags: 0, msg: { event: { end: { exitCode: 2, exited: true, status: 'exit status 2', error: 'exit status 2' } } } })
    expect(got.at(-1)).toEqual({ flags: 2, msg: {} })
  })

  it('errors: in-band end-of-stream error, unary Connect error JSON, envd 401 and edge 502', async () => {
    const bad = await fetch(`${fake.sandboxUrl}/process.Process/Start`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/connect+json' }),
      body: envelope({ process: { cmd: '/bin/sh', args: ['-c', 'true'], cwd: '/nope' } }),
    })
    expect(bad.status).toBe(200)
    expect(frames(Buffer.from(await bad.arrayBuffer()))).toEqual([
      { flags: 2, msg: { error: { code: 'invalid_argument', message: "cwd '/nope' does not exist" } } },
    ])

    const stat = await fetch(`${fake.sandboxUrl}/filesystem.Filesystem/Stat`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ path: 'missing.txt' }),
    })
    expect(stat.status).toBe(404)
    expect(await stat.json()).toEqual({ code: 'not_found', message: 'file not found: lstat /home/user/missing.txt: no such file or directory' })

    const noToken = await fetch(`${fake.sandboxUrl}/process.Process/List`, {
      method: 'POST',
      headers: { ...envdHeaders({ 'Content-Type': 'application/json' }), 'X-Access-Token': 'wrong' },
      body: '{}',
    })
    expect(noToken.status).toBe(401)
    expect((await noToken.json()).code).toBe(401)

    const gone = await fetch(`${fake.sandboxUrl}/health`, { headers: { 'E2b-Sandbox-Id': 'nosuchsandbox', 'E2b-Sandbox-Port': '49983' } })
    expect(gone.status).toBe(502)
    expect(await gone.json()).toEqual({ sandboxId: 'nosuchsandbox', message: 'The sandbox was not found', code: 502 })
  })

  it('StreamInput (client streaming) feeds stdin; CloseStdin ends it', async () => {
    const res = await fetch(`${fake.sandboxUrl}/process.Process/Start`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/connect+json' }),
      body: envelope({ process: { cmd: '/bin/sh', args: ['-c', 'tr a-z A-Z'] }, stdin: true, tag: 'upper' }),
    })
    const reader = res.body!.getReader()
    let buf = Buffer.alloc(0)
    while (buf.length < 5 || buf.length < 5 + buf.readUInt32BE(1)) buf = Buffer.concat([buf, (await reader.read()).value!])
    const pid = frames(buf.subarray(0, 5 + buf.readUInt32BE(1)))[0].msg.event.start.pid

    const input = await fetch(`${fake.sandboxUrl}/process.Process/StreamInput`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/connect+json' }),
      body: Buffer.concat([
        envelope({ start: { process: { tag: 'upper' } } }),
        envelope({ data: { input: { stdin: Buffer.from('streamed ').toString('base64') } } }),
        envelope({ keepalive: {} }),
        envelope({ data: { input: { stdin: Buffer.from('input\n').toString('base64') } } }),
      ]),
    })
    expect(input.status).toBe(200)
    expect(frames(Buffer.from(await input.arrayBuffer()))).toEqual([{ flags: 0, msg: {} }, { flags: 2, msg: {} }])
    const close = await fetch(`${fake.sandboxUrl}/process.Process/CloseStdin`, {
      method: 'POST',
      headers: envdHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ process: { pid } }),
    })
    expect([close.status, await close.json()]).toEqual([200, {}])

    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      buf = Buffer.concat([buf, value])
    }
    const got = frames(buf)
    const stdout = got.flatMap((f) => (f.msg.event?.data?.stdout ? [Buffer.from(f.msg.event.data.stdout, 'base64').toString()] : [])).join('')
    expect(stdout).toBe('STREAMED INPUT\n')
    expect(got.at(-2)!.msg).toEqual({ event: { end: { exited: true, status: 'exit status 0' } } })
    expect(got.at(-1)).toEqual({ flags: 2, msg: {} })
  })

  it('signed download/upload URLs work with the routing headers and without the token', async () => {
    const routing = { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' }
    const up = await fetch(await sbx.uploadUrl('signed/up.txt'), {
      method: 'POST',
      headers: { ...routing, 'Content-Type': 'application/octet-stream' },
      body: 'via signed url',
    })
    expect(up.status).toBe(200)
    expect(await up.json()).toEqual([{ path: '/home/user/signed/up.txt', name: 'up.txt', type: 'file' }])
    const down = await fetch(await sbx.downloadUrl('signed/up.txt', { useSignatureExpiration: 60 }), { headers: routing })
    expect([down.status, await down.text()]).toEqual([200, 'via signed url'])
    const unsigned = await fetch(`${fake.sandboxUrl}/files?path=signed%2Fup.txt`, { headers: routing })
    expect(unsigned.status).toBe(401)
  })

  it('close() removes every container the fake made', async () => {
    expect(containerIds(OWN_CONTAINERS).length).toBeGreaterThanOrEqual(1)
    await fake.close()
    expect(containerIds(OWN_CONTAINERS)).toEqual([])
  })
})
