// Self-hosted E2B (README "Use the E2B SDK with your own Docker host"): the official `e2b` SDKs,
// unchanged, against a `SandboxServer` this test starts on 127.0.0.1, with E2B_API_URL and
// E2B_SANDBOX_URL (here: apiUrl / sandboxUrl) both set to its address. Real sandboxes on the
// local engine; nothing else is contacted.
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import {
  AuthenticationError,
  RateLimitError,
  CommandExitError,
  FileNotFoundError,
  NotFoundError,
  Sandbox,
  SandboxNotFoundError,
  TimeoutError,
  type SandboxOpts,
} from 'e2b'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxServer } from '../index.js'
import { DEBIAN, DEVTOOLS, dockerLabelled, waitFor } from './helpers.js'

const KEY = `e2b_${'c3'.repeat(20)}`
const OTHER = `e2b_${'d4'.repeat(20)}`
const SMALL = `e2b_${'e5'.repeat(20)}`

let server: any
let url = ''
let baseline = 0
const sandboxes: Sandbox[] = []

beforeAll(async () => {
  baseline = dockerLabelled().containers
  server = new SandboxServer({
    port: 0,
    readEnv: false,
    apiKeys: [
      { key: KEY, name: 'alice' },
      { key: OTHER, name: 'bob' },
      { key: SMALL, name: 'carol', maxSandboxes: 1 },
    ],
    config: { image: DEBIAN, templates: { base: DEBIAN, python: DEVTOOLS } },
    shutdownTimeout: 3,
  })
  url = (await server.listen()).url
})

afterAll(async () => {
  await server?.close()
})

const conn = (key = KEY) => ({ apiKey: key, apiUrl: url, sandboxUrl: url, requestTimeoutMs: 30_000 })

async function create(opts: SandboxOpts = {}): Promise<Sandbox> {
  const sbx = await Sandbox.create({ ...conn(), timeoutMs: 120_000, ...opts })
  sandboxes.push(sbx)
  return sbx
}

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection, but it resolved')
}

describe('the official e2b JavaScript SDK against agentic-sandbox serve', () => {
  let sbx: Sandbox

  it('Sandbox.create gives a running sandbox with the metadata, envs and timeout', async () => {
    const before = Date.now()
    sbx = await create({ metadata: { suite: 'e2b-server', run: String(process.pid) }, envs: { GREETING: 'hello from envs' } })
    expect(sbx.sandboxId).toMatch(/^[a-z0-9]{20}$/)
    const info = await sbx.getInfo()
    expect(info).toMatchObject({ sandboxId: sbx.sandboxId, state: 'running', metadata: { suite: 'e2b-server' }, envdVersion: '0.6.13' })
    expect(info.endAt.getTime()).toBeGreaterThanOrEqual(before + 110_000)
    expect(await sbx.isRunning()).toBe(true)
    expect(dockerLabelled().containers).toBe(baseline + 1)
  })

  it('commands.run streams stdout and stderr as the process writes them', async () => {
    const events: Array<{ at: number; out?: string; err?: string }> = []
    const result = await sbx.commands.run('echo one; sleep 0.4; echo two >&2; sleep 0.4; echo "$GREETING"; pwd', {
      onStdout: (out) => void events.push({ at: Date.now(), out }),
      onStderr: (err) => void events.push({ at: Date.now(), err }),
    })
    expect(result).toMatchObject({ exitCode: 0, stdout: 'one\nhello from envs\n/home/user\n', stderr: 'two\n' })
    expect(events[0]).toMatchObject({ out: 'one\n' })
    expect(events[1]).toMatchObject({ err: 'two\n' })
    expect(events[1].at - events[0].at).toBeGreaterThanOrEqual(300)
  })

  it('a non-zero exit is a CommandExitError; an unknown command exits 127', async () => {
    const err = await rejection(sbx.commands.run('echo partial; echo oops >&2; exit 3'))
    expect(err).toBeInstanceOf(CommandExitError)
    expect(err).toMatchObject({ exitCode: 3, stdout: 'partial\n', stderr: 'oops\n' })
    const missing = await rejection(sbx.commands.run('no-such-command-xyz'))
    expect(missing).toBeInstanceOf(CommandExitError)
    expect(missing.exitCode).toBe(127)
  })

  it('background commands: stdin, commands.connect, commands.list and kill', async () => {
    const chunks: string[] = []
    const upper = await sbx.commands.run('tr a-z A-Z', { background: true, stdin: true, onStdout: (d) => void chunks.push(d) })
    expect(upper.pid).toBeGreaterThan(0)
    await upper.sendStdin('hello stdin\n')
    await upper.closeStdin()
    expect((await upper.wait()).stdout).toBe('HELLO STDIN\n')

    const first: string[] = []
    const handle = await sbx.commands.run('echo before; sleep 0.8; echo after', { background: true, onStdout: (d) => void first.push(d) })
    await waitFor(() => first.length > 0, 10_000)
    await handle.disconnect()
    const later: string[] = []
    const attached = await sbx.commands.connect(handle.pid, { onStdout: (d) => void later.push(d) })
    expect((await attached.wait()).exitCode).toBe(0)
    expect(later.join('')).toBe('after\n')

    const sleeper = await sbx.commands.run('sleep 30', { background: true })
    expect((await sbx.commands.list()).map((p) => p.pid)).toContain(sleeper.pid)
    expect(await sbx.commands.kill(sleeper.pid)).toBe(true)
    const killed = await rejection(sleeper.wait())
    expect(killed).toBeInstanceOf(CommandExitError)
    expect((await sbx.commands.list()).map((p) => p.pid)).not.toContain(sleeper.pid)
    expect(await sbx.commands.kill(sleeper.pid)).toBe(false)
  })

  it('timeoutMs ends the command with a TimeoutError', async () => {
    const t0 = Date.now()
    const err = await rejection(sbx.commands.run('sleep 20; echo never', { timeoutMs: 1000 }))
    expect(err).toBeInstanceOf(TimeoutError)
    expect(Date.now() - t0).toBeLessThan(8000)
  })

  it('files: write/read text and bytes, list, makeDir, exists, rename, remove', async () => {
    expect(await sbx.files.write('notes/a.txt', 'hello file')).toMatchObject({ path: '/home/user/notes/a.txt', name: 'a.txt' })
    expect(await sbx.files.read('/home/user/notes/a.txt')).toBe('hello file')
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)
    await sbx.files.write('blob.bin', bytes.buffer)
    expect(Buffer.from(await sbx.files.read('blob.bin', { format: 'bytes' }))).toEqual(Buffer.from(bytes))
    expect(await rejection(sbx.files.read('nope.txt'))).toBeInstanceOf(FileNotFoundError)
    const many = await sbx.files.write([
      { path: 'multi/one.txt', data: '1' },
      { path: 'multi/two.txt', data: '2' },
    ])
    expect(many.map((w) => w.path)).toEqual(['/home/user/multi/one.txt', '/home/user/multi/two.txt'])
    expect(await sbx.files.makeDir('notes/sub')).toBe(true)
    expect(await sbx.files.makeDir('notes/sub')).toBe(false)
    const entries = await sbx.files.list('notes')
    expect(entries.map((e) => [e.name, e.type])).toEqual([['a.txt', 'file'], ['sub', 'dir']])
    expect(entries[0]).toMatchObject({ path: '/home/user/notes/a.txt', size: 10 })
    expect(await sbx.files.exists('notes/a.txt')).toBe(true)
    expect(await sbx.files.exists('notes/missing')).toBe(false)
    expect(await sbx.files.rename('notes/a.txt', 'notes/b.txt')).toMatchObject({ name: 'b.txt', path: '/home/user/notes/b.txt' })
    await sbx.files.remove('notes')
    expect(await sbx.files.exists('notes')).toBe(false)
    // the same files through commands: one sandbox, one filesystem
    expect((await sbx.commands.run('cat multi/one.txt multi/two.txt')).stdout).toBe('12')
  })

  it('signed upload and download URLs work without the access token', async () => {
    const up = await sbx.uploadUrl('signed.txt', { useSignatureExpiration: 60_000 })
    const form = new FormData()
    form.append('file', new Blob(['signed body']), 'signed.txt')
    expect((await fetch(up, { method: 'POST', body: form, headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' } })).status).toBe(200)
    const down = await sbx.downloadUrl('signed.txt', { useSignatureExpiration: 60_000 })
    const r = await fetch(down, { headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' } })
    expect(await r.text()).toBe('signed body')
    const forged = await fetch(down.replace(/signature=[^&]+/, 'signature=v1_forged'), { headers: { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' } })
    expect(forged.status).toBe(401)
  })

  it('setTimeout, getMetrics and Sandbox.list with a metadata filter; another key sees none of them', async () => {
    await sbx.setTimeout(200_000)
    expect((await sbx.getInfo()).endAt.getTime()).toBeGreaterThan(Date.now() + 190_000)
    const m = (await sbx.getMetrics()).at(-1)!
    expect(m.memTotal).toBeGreaterThan(0)
    expect(m.cpuCount).toBeGreaterThan(0)
    const other = await create({ metadata: { suite: 'other' } })
    const page = await Sandbox.list({ ...conn(), query: { metadata: { suite: 'e2b-server', run: String(process.pid) } } }).nextItems()
    expect(page.map((s) => s.sandboxId)).toEqual([sbx.sandboxId])
    const all = (await Sandbox.list(conn()).nextItems()).map((s) => s.sandboxId)
    expect(all).toEqual(expect.arrayContaining([sbx.sandboxId, other.sandboxId]))
    expect(await Sandbox.list(conn(OTHER)).nextItems()).toEqual([])
    expect(await rejection(Sandbox.getInfo(sbx.sandboxId, conn(OTHER)))).toBeInstanceOf(NotFoundError)
    await other.kill()
  })

  it('pause keeps the files; Sandbox.connect resumes the sandbox', async () => {
    await sbx.files.write('kept.txt', 'survives pause')
    expect(await sbx.pause()).toBe(true)
    expect((await sbx.getInfo()).state).toBe('paused')
    expect(await sbx.isRunning()).toBe(false)
    const resumed = await Sandbox.connect(sbx.sandboxId, { ...conn(), timeoutMs: 60_000 })
    expect(await resumed.files.read('kept.txt')).toBe('survives pause')
    expect((await resumed.commands.run('echo resumed')).stdout).toBe('resumed\n')
  })

  it('kill removes the sandbox: gone from Sandbox.list, not found, no container left', async () => {
    expect(await sbx.kill()).toBe(true)
    expect(await sbx.kill()).toBe(false)
    expect((await Sandbox.list(conn()).nextItems()).map((s) => s.sandboxId)).not.toContain(sbx.sandboxId)
    expect(await rejection(Sandbox.connect(sbx.sandboxId, conn()))).toBeInstanceOf(SandboxNotFoundError)
    expect(await sbx.isRunning()).toBe(false)
    await waitFor(() => dockerLabelled().containers === baseline, 15_000)
  })

  it('the sandbox timeout ends it', async () => {
    const short = await create({ timeoutMs: 2000 })
    await waitFor(async () => !(await Sandbox.list(conn()).nextItems()).some((s) => s.sandboxId === short.sandboxId), 15_000)
    expect(await rejection(short.getInfo())).toBeInstanceOf(SandboxNotFoundError)
  })

  it("E2B's per-port host names (49983-<id>.<domain>) reach envd too", async () => {
    const s = await create()
    const port = new URL(url).port
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/health', headers: { Host: `49983-${s.sandboxId}.e2b.local` } }, (res) => {
          res.resume()
          resolve(res.statusCode!)
        })
        .on('error', reject)
    })
    expect(status).toBe(204)
    await s.kill()
  })

  it("a key's sandbox limit is a RateLimitError (429)", async () => {
    const first = await Sandbox.create({ ...conn(SMALL), timeoutMs: 60_000 })
    try {
      expect(await rejection(Sandbox.create({ ...conn(SMALL), timeoutMs: 60_000 }))).toBeInstanceOf(RateLimitError)
    } finally {
      await first.kill()
    }
  })

  it('a wrong API key is an AuthenticationError; an unknown sandbox is not found', async () => {
    const err = await rejection(Sandbox.create({ ...conn(`e2b_${'0'.repeat(40)}`) }))
    expect(err).toBeInstanceOf(AuthenticationError)
    expect(await rejection(Sandbox.connect('nosuchsandbox0000000', conn()))).toBeInstanceOf(SandboxNotFoundError)
  })
})

describe("this library's E2B provider against the server (a second remote mode)", () => {
  it('runs commands and files through provider: e2b', async () => {
    const manager = new SandboxManager({ provider: 'e2b', e2b: { apiKey: KEY, apiUrl: url, sandboxUrl: url } })
    try {
      const sb: any = await manager.createSandbox({ limits: { timeoutSeconds: 120 } })
      await sb.start()
      const r = await sb.execute('sh', ['-c', 'echo "$((6*7))"; echo warn >&2; exit 4'])
      expect(r).toMatchObject({ exitCode: 4, stdout: '42\n', stderr: 'warn\n' })
      await sb.writeFile('from-provider.txt', 'via the E2B provider')
      expect((await sb.readFile('from-provider.txt')).content).toBe('via the E2B provider')
      expect((await sb.listFiles('.')).includes('from-provider.txt')).toBe(true)
      await sb.destroy()
      expect(await Sandbox.list(conn()).nextItems()).toEqual([])
    } finally {
      await manager.destroyAll()
    }
  })
})

describe('the official e2b Python SDK', () => {
  it('runs the core flow unchanged (E2B_API_URL / E2B_SANDBOX_URL)', async () => {
    const py = execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'ensure-e2b-python.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
    const out = execFileSync(py, [path.join(__dirname, 'e2b-server', 'flow.py')], {
      encoding: 'utf8',
      env: { ...process.env, E2B_API_KEY: KEY, E2B_API_URL: url, E2B_SANDBOX_URL: url },
      timeout: 120_000,
    })
    const r = JSON.parse(out.trim().split('\n').pop()!)
    expect(r.id).toMatch(/^[a-z0-9]{20}$/)
    expect(r.run).toEqual({ stdout: 'hi from python\n', stderr: 'err\n', exit_code: 0, streamed: 'hi from python\n' })
    expect(r.exit).toBe(7)
    expect(r.read).toBe('written by python')
    expect(r.list).toEqual(['hello.txt'])
    expect(r.listed).toEqual([r.id])
    expect(r.info_state).toBe('running')
    expect(r.killed).toBe(true)
    expect(r.after_kill).toBe('not found')
    await waitFor(() => dockerLabelled().containers === baseline, 15_000)
  })
})
