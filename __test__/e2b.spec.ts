// The E2B provider (src/providers/e2b/) end to end through the public `Sandbox` API, against the local fake E2B of
// examples/lib/fake-e2b.ts: its control plane and envd speak the real wire protocol (REST + Connect) on
// 127.0.0.1, and each fake sandbox is a real Docker container, so processes and files are real. Faults
// (HTTP statuses, cut process streams, delays) are injected into the fake. No outside address is used:
// every config points apiUrl/sandboxUrl at the fake, and the E2B_* variables of the environment are
// cleared for the whole file (a real key in the environment must not send anything to e2b.app).
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { startFakeE2b, FAKE_E2B_LABEL, type FakeE2b, type RecordedRequest } from '../examples/lib/fake-e2b.js'
import { BUSYBOX, MANAGED_LABEL, docker, expectCode, ownerPidLabel, sleep, waitFor, within } from './helpers.js'

const KEY = `e2b_${'c3'.repeat(20)}`
const OTHER_KEY = `e2b_${'d4'.repeat(20)}`
const E2B_VARS = ['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_TEMPLATE_ID', 'E2B_DOMAIN', 'E2B_REGION']
const savedEnv: Record<string, string | undefined> = {}

let fake: FakeE2b
const managers: any[] = []

/** The `e2b` config object that points the provider at the fake. */
const conn = (extra: Record<string, any> = {}) => ({ apiKey: KEY, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl, ...extra })

function manager(config: Record<string, any> = {}): any {
  const m: any = new SandboxManager({ provider: 'e2b', e2b: conn(), ...config } as any)
  managers.push(m)
  return m
}

/** A started e2b sandbox on a fresh manager. */
async function started(config: Record<string, any> = {}): Promise<any> {
  const sb = await manager().createSandbox(config)
  await sb.start()
  return sb
}

/** E2B's own sandbox id behind one of ours: the fake sandbox created by the create request after `from`. */
function remoteOf(from: number): string {
  const created = fake.requests.slice(from).filter((r) => r.plane === 'api' && r.method === 'POST' && /^\/(v2\/)?sandboxes$/.test(r.path) && r.status === 201)
  expect(created, 'create requests after the mark').toHaveLength(1)
  const ids = new Set(fake.sandboxes().map((s) => s.id))
  const hit = [...ids].filter((id) => fake.requests.slice(from).some((r) => r.headers['e2b-sandbox-id'] === id))
  expect(hit.length, `fake sandboxes addressed since the mark: ${hit}`).toBe(1)
  return hit[0]
}

const since = (mark: number, pred: (r: RecordedRequest) => boolean = () => true) => fake.requests.slice(mark).filter(pred)
const summary = (rs: RecordedRequest[]) => rs.map((r) => `${r.plane} ${r.method} ${r.path} ${r.status}`)
/** Lifetime refreshes (`POST /sandboxes/{id}/timeout`) run in the background and may land anywhere. */
const notRefresh = (r: RecordedRequest) => !/^\/sandboxes\/[^/]+\/timeout$/.test(r.path)
const api = (r: RecordedRequest) => r.plane === 'api' && notRefresh(r)
const fakeContainers = (sandboxId: string) =>
  docker(['ps', '-a', '-q', '--filter', `label=${FAKE_E2B_LABEL}`, '--filter', `label=agentic-sandbox.fake-e2b.sandbox-id=${sandboxId}`])
    .split('\n')
    .filter(Boolean)
const CREATE = /^\/v2\/sandboxes$/

beforeAll(async () => {
  for (const k of E2B_VARS) {
    savedEnv[k] = process.env[k]
    delete process.env[k]
  }
  fake = await startFakeE2b({ requireKey: KEY, keepaliveMs: 1000 })
})

afterEach(() => {
  fake?.clearFaults()
})

afterAll(async () => {
  for (const m of managers) await m.destroyAll().catch((e: any) => console.error('destroyAll failed:', e))
  await fake?.close()
  for (const k of E2B_VARS) {
    if (savedEnv[k] === undefined) delete process.env[k]
    else process.env[k] = savedEnv[k]
  }
})

describe('E2B provider (against the local fake E2B)', () => {
  describe('configuration', () => {
    it('a missing API key is INVALID_CONFIG before any request', async () => {
      const before = fake.requests.length
      const m: any = new SandboxManager({ provider: 'e2b', e2b: { apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl } } as any)
      managers.push(m)
      const err = await expectCode(m.createSandbox(), 'INVALID_CONFIG')
      expect(err.message).toMatch(/E2B_API_KEY/)
      expect(err.message).toMatch(/e2b\.apiKey/)
      expect(m.listSandboxes()).toHaveLength(0)
      expect(fake.requests.length).toBe(before)
      expect(fake.requests).toEqual([])
    })

    it('a malformed API key is INVALID_CONFIG and the message does not echo it', async () => {
      const before = fake.requests.length
      const m: any = manager()
      for (const bad of ['sk-secret-value-12345', 'e2b_NOT-HEX-9999', 'E2B_abcdef']) {
        const err = await expectCode(m.createSandbox({ e2b: conn({ apiKey: bad }) }), 'INVALID_CONFIG')
        expect(err.message).not.toContain(bad)
        expect(err.message).toMatch(/e2b\.apiKey/)
      }
      expect(fake.requests.length).toBe(before)
    })

    it("provider 'e2b': id 'e2b-' + 16 hex, region accepted, nothing sent before start()", async () => {
      const before = fake.requests.length
      const sb = await manager().createSandbox({ e2b: conn({ region: 'eu-central-1', templateId: 'base' }) })
      expect(sb.provider).toBe('e2b')
      expect(sb.id).toMatch(/^e2b-[0-9a-f]{16}$/)
      expect(sb.state).toBe('created')
      expect(fake.requests.length).toBe(before)
    })

    it('E2B_API_KEY / E2B_API_URL / E2B_SANDBOX_URL / E2B_TEMPLATE_ID from the environment; a custom workdir is created', async () => {
      const mark = fake.requests.length
      const vars = { E2B_API_KEY: KEY, E2B_API_URL: fake.apiUrl, E2B_SANDBOX_URL: fake.sandboxUrl, E2B_TEMPLATE_ID: 'env-template' }
      Object.assign(process.env, vars)
      let sb: any
      try {
        const m: any = new SandboxManager({ provider: 'e2b' } as any)
        managers.push(m)
        sb = await m.createSandbox({ workdir: '/tmp/work' })
        await sb.start()
      } finally {
        for (const k of Object.keys(vars)) delete process.env[k]
      }
      const create = since(mark, (r) => r.method === 'POST' && CREATE.test(r.path))
      expect(summary(create)).toEqual(['api POST /v2/sandboxes 201'])
      expect(create[0].headers['x-api-key']).toBe(KEY)
      expect(create[0].body).toMatchObject({ templateID: 'env-template' })
      expect(since(mark, (r) => r.path === '/filesystem.Filesystem/MakeDir').map((r) => r.body)).toEqual([{ path: '/tmp/work' }])
      // the environment is read when the sandbox is created: it keeps working without the variables
      expect(await sb.execute('pwd')).toMatchObject({ exitCode: 0, stdout: '/tmp/work\n' })
      expect(await sb.writeFile('rel.txt', 'in workdir')).toMatchObject({ success: true, path: '/tmp/work/rel.txt' })
      const remote = remoteOf(mark)
      await sb.destroy()
      expect(fake.sandboxes().some((s) => s.id === remote)).toBe(false)
    })
  })

  describe('a started sandbox', () => {
    let sb: any
    let remote: string
    let mark: number

    beforeAll(async () => {
      mark = fake.requests.length
      sb = await manager().createSandbox({
        env: { FOO: 'foo value', QUOTED: `it's "quoted" $HOME` },
        metadata: { suite: 'e2b-spec', attempt: 3 },
        limits: { timeoutSeconds: 120 },
        e2b: conn({ templateId: 'spec-template', region: 'us-east-1' }),
      })
      await sb.start()
      remote = remoteOf(mark)
    })

    it('snapshot() is NOT_SUPPORTED (pause/resume is not a copy) and sends nothing; fromSnapshot is INVALID_CONFIG', async () => {
      const before = fake.requests.length
      const err = await expectCode(sb.snapshot({ name: 'e2b-snap' }), 'NOT_SUPPORTED')
      expect(err.message).toMatch(/pause\/resume/)
      expect(err.message).toMatch(/template/)
      expect(fake.requests.length).toBe(before)
      await expectCode(manager().createSandbox({ fromSnapshot: 'any-snap' }), 'INVALID_CONFIG')
    })

    it('start() creates the E2B sandbox: templateID, timeout, metadata and envVars in the create request', async () => {
      expect(sb.provider).toBe('e2b')
      expect(sb.state).toBe('running')
      const create = since(mark, (r) => r.method === 'POST' && CREATE.test(r.path))
      expect(create).toHaveLength(1)
      expect(create[0].headers['x-api-key']).toBe(KEY)
      expect(create[0].body).toMatchObject({
        templateID: 'spec-template',
        timeout: 120,
        metadata: { suite: 'e2b-spec', attempt: '3' },
        envVars: { FOO: 'foo value', QUOTED: `it's "quoted" $HOME` },
      })
      const info = fake.sandboxes().find((s) => s.id === remote)!
      expect(info).toMatchObject({ state: 'running', templateID: 'spec-template', envVars: { FOO: 'foo value' } })
      expect(fakeContainers(remote)).toEqual([expect.stringMatching(/^[0-9a-f]+$/)])
    })

    it('execute: env, argv verbatim, exit codes, stderr, command not found, default workdir /home/user', async () => {
      expect(await sb.execute('sh', ['-c', 'echo $FOO; printf "%s\\n" "$QUOTED"; pwd; id -un'])).toMatchObject({
        exitCode: 0,
        stdout: `foo value\nit's "quoted" $HOME\n/home/user\nuser\n`,
        stderr: '',
        timedOut: false,
      })
      const argv = await sb.execute('printf', ['%s|', 'a b', '$(id)', `"q" 'q'`, '*', ';', ''])
      expect(argv).toMatchObject({ exitCode: 0, stdout: `a b|$(id)|"q" 'q'|*|;||` })
      const start = since(mark, (r) => r.path === '/process.Process/Start').at(-1)!
      expect(start.body).toMatchObject({ process: { cmd: 'printf', args: ['%s|', 'a b', '$(id)', `"q" 'q'`, '*', ';', ''], cwd: '/home/user' } })

      expect(await sb.execute('sh', ['-c', 'echo partial; echo oops >&2; exit 3'])).toMatchObject({ exitCode: 3, stdout: 'partial\n', stderr: 'oops\n' })
      expect(await sb.execute('sh', ['-c', 'exit 42'])).toMatchObject({ exitCode: 42 })
      expect((await sb.execute('no-such-command-xyz')).exitCode).toBe(127)
      // per-call env and a relative workdir
      await sb.writeFile('wd/sub/x.txt', 'x')
      expect(await sb.execute('sh', ['-c', 'echo "$BAR:$FOO"; pwd'], { env: { BAR: 'bar value' }, workdir: 'wd/sub' })).toMatchObject({
        exitCode: 0,
        stdout: 'bar value:foo value\n/home/user/wd/sub\n',
      })
    })

    it('execute: output cap, NUL bytes, bad arguments', async () => {
      const big = await sb.execute('sh', ['-c', 'head -c 100000 /dev/zero | tr "\\000" a; echo done >&2'], { maxOutputBytes: 1000 })
      expect(big).toMatchObject({ exitCode: 0, truncated: true, stderr: 'done\n' })
      expect(big.stdout).toBe('a'.repeat(1000))
      expect(await sb.execute('printf', ['a\\000b'])).toMatchObject({ exitCode: 0, stdout: 'a\u0000b', truncated: false })
      await expectCode(sb.execute(''), 'INVALID_ARGUMENT')
      await expectCode(sb.execute('echo', ['x'], { timeout: -1 }), 'INVALID_ARGUMENT')
      await expectCode(sb.execute('echo', ['x'], { env: { 'A=B': 'c' } }), 'INVALID_ARGUMENT')
    })

    it('timeout: timedOut, exit code 124, SIGKILL, and the process is really gone', async () => {
      const t0 = Date.now()
      const r = await within(sb.execute('sleep', ['37'], { timeout: 1 }), 15_000, 'execute with timeout 1')
      expect(r).toMatchObject({ timedOut: true, exitCode: 124, signal: 'SIGKILL' })
      expect(Date.now() - t0).toBeLessThan(6000)
      expect(since(mark, (r) => r.path === '/process.Process/Start').at(-1)!.headers['connect-timeout-ms']).toBe('1000')
      const gone = async () => !(await sb.listProcesses()).some((p: any) => p.command === 'sleep' && p.args[0] === '37')
      expect(await waitFor(gone, 3000, 100)).toBe(true)
      expect(fake.sandboxes().find((s) => s.id === remote)!.processes).toEqual([])
      const container = fake.sandboxes().find((s) => s.id === remote)!.container
      // in the container itself (the fake's wrapper shell, which names the command in its own argv, may linger a moment)
      expect(docker(['exec', container, 'ps', '-o', 'pid,args'])).not.toMatch(/^\s*\d+\s+sleep 37\s*$/m)
    })

    it('streaming: onStdout/onStderr chunks add up to the final output', async () => {
      const out: string[] = []
      const err: string[] = []
      const r = await sb.execute('sh', ['-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.2; done; printf "é€😀"'], {
        onStdout: (c: string) => out.push(c),
        onStderr: (c: string) => err.push(c),
      })
      expect(r).toMatchObject({ exitCode: 0, stdout: 'out1\nout2\nout3\né€😀', stderr: 'err1\nerr2\nerr3\n' })
      expect(out.length).toBeGreaterThanOrEqual(3)
      expect(out.join('')).toBe(r.stdout)
      expect(err.join('')).toBe(r.stderr)
    })

    it('stdin: string and Buffer are written, then stdin is closed; without stdin the process reads EOF', async () => {
      expect(await sb.execute('cat', [], { stdin: 'hello stdin\n' })).toMatchObject({ exitCode: 0, stdout: 'hello stdin\n' })
      expect(await sb.execute('wc', ['-c'], { stdin: Buffer.alloc(300_000, 0x61) })).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^\s*300000\s*$/) })
      expect(await within(sb.execute('cat'), 10_000, 'cat without stdin')).toMatchObject({ exitCode: 0, stdout: '' })
    })

    it('background: wait(), sendStdin/closeStdin, kill(), listProcesses()', async () => {
      const chunks: string[] = []
      const cat = await sb.execute('cat', [], { background: true, onStdout: (c: string) => chunks.push(c) })
      expect(cat.pid).toBeGreaterThan(1)
      expect(cat.running).toBe(true)
      await cat.sendStdin('hello ')
      await cat.sendStdin(Buffer.from('world'))
      await cat.closeStdin()
      expect(await within(cat.wait(), 10_000, 'cat.wait()')).toMatchObject({ exitCode: 0, stdout: 'hello world' })
      expect(chunks.join('')).toBe('hello world')
      expect(cat.running).toBe(false)

      const bg = await sb.execute('sleep', ['41'], { background: true })
      const listed = await sb.listProcesses()
      expect(listed).toContainEqual(expect.objectContaining({ pid: bg.pid, command: 'sleep', args: ['41'], background: true }))
      expect(fake.sandboxes().find((s) => s.id === remote)!.processes).toContain(bg.pid)
      await bg.kill()
      expect(await within(bg.wait(), 10_000, 'bg.wait() after kill')).toMatchObject({ exitCode: 137, signal: 'SIGKILL', timedOut: false })
      expect(bg.running).toBe(false)
      expect((await sb.listProcesses()).some((p: any) => p.pid === bg.pid)).toBe(false)
      // wait() may be called again
      expect((await bg.wait()).exitCode).toBe(137)
    })

    it('signals other than SIGKILL reach the process as SIGTERM (envd accepts only those two)', async () => {
      const mk = fake.requests.length
      const p = await sb.execute('sh', ['-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done'], { background: true })
      await sleep(300)
      await p.kill('SIGINT')
      expect(await within(p.wait(), 10_000, 'wait after SIGINT')).toMatchObject({ exitCode: 7 })
      const signals = since(mk, (r) => r.path === '/process.Process/SendSignal').map((r) => r.body)
      expect(signals).toEqual([{ process: { pid: p.pid }, signal: 'SIGNAL_SIGTERM' }])
      await expectCode(p.kill('SIGNOTREAL'), 'INVALID_ARGUMENT')
    })

    it('AbortSignal: aborting kills the process and rejects with ABORTED; an aborted signal starts nothing', async () => {
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 300)
      const t0 = Date.now()
      await expectCode(within(sb.execute('sleep', ['43'], { signal: ac.signal }), 15_000, 'aborted execute'), 'ABORTED')
      expect(Date.now() - t0).toBeLessThan(5000)
      const gone = async () => !(await sb.listProcesses()).some((p: any) => p.args[0] === '43')
      expect(await waitFor(gone, 3000, 100)).toBe(true)

      const before = since(mark, (r) => r.path === '/process.Process/Start').length
      await expectCode(sb.execute('echo', ['never'], { signal: AbortSignal.abort() }), 'ABORTED')
      expect(since(mark, (r) => r.path === '/process.Process/Start').length).toBe(before)
    })

    it('files: text and binary (all 256 byte values) round-trip; parents are created', async () => {
      expect(await sb.writeFile('/home/user/notes/deep/er/a.txt', 'hello file\n')).toMatchObject({ success: true, path: '/home/user/notes/deep/er/a.txt' })
      expect(await sb.readFile('/home/user/notes/deep/er/a.txt')).toMatchObject({ success: true, content: 'hello file\n' })

      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      const w = await sb.writeFile('/tmp/bin/all.bin', bytes)
      expect(w).toMatchObject({ success: true, path: '/tmp/bin/all.bin' })
      const asBuffer = await sb.readFile('/tmp/bin/all.bin', { encoding: 'buffer' })
      expect(asBuffer.success).toBe(true)
      expect(Buffer.isBuffer(asBuffer.buffer)).toBe(true)
      expect(Buffer.compare(asBuffer.buffer, bytes)).toBe(0)
      expect((await sb.readFile('/tmp/bin/all.bin', { encoding: 'base64' })).content).toBe(bytes.toString('base64'))
      expect(await sb.execute('wc', ['-c', '/tmp/bin/all.bin'])).toMatchObject({ stdout: expect.stringMatching(/^\s*256 /) })
      // a Uint8Array too
      await sb.writeFile('/tmp/bin/u8.bin', new Uint8Array([0, 255, 10, 13]))
      expect([...(await sb.readFile('/tmp/bin/u8.bin', { encoding: 'buffer' })).buffer]).toEqual([0, 255, 10, 13])
      // overwrite
      await sb.writeFile('/home/user/notes/deep/er/a.txt', 'short')
      expect((await sb.readFile('/home/user/notes/deep/er/a.txt')).content).toBe('short')

      const missing = await sb.readFile('/home/user/no/such/file.txt')
      expect(missing.success).toBe(false)
      expect(missing.error).toBeTruthy()
      const dir = await sb.readFile('/home/user/notes')
      expect(dir.success).toBe(false)
    })

    it('relative paths resolve against /home/user (the default workdir /workspace maps there)', async () => {
      expect(await sb.writeFile('a.txt', 'relative')).toMatchObject({ success: true, path: '/home/user/a.txt' })
      expect(await sb.execute('cat', ['/home/user/a.txt'])).toMatchObject({ exitCode: 0, stdout: 'relative' })
      expect(await sb.readFile('./sub/../a.txt')).toMatchObject({ success: true, path: '/home/user/a.txt', content: 'relative' })
      await sb.execute('sh', ['-c', 'echo made-by-shell > /home/user/from-shell.txt'])
      expect((await sb.readFile('from-shell.txt')).content).toBe('made-by-shell\n')
      expect(await sb.listFiles()).toEqual(expect.arrayContaining(['a.txt', 'from-shell.txt']))
    })

    it("absolute /workspace/... paths map to /home/user too (README: 'file paths and execute's workdir under /workspace/ are mapped along')", async () => {
      expect(sb.execEngine).toBe('e2b')
      expect(await sb.writeFile('/workspace/ws/mapped.txt', 'mapped')).toMatchObject({ success: true, path: '/home/user/ws/mapped.txt' })
      expect(await sb.execute('cat', ['/home/user/ws/mapped.txt'])).toMatchObject({ exitCode: 0, stdout: 'mapped' })
      expect(await sb.readFile('/workspace/ws/mapped.txt')).toMatchObject({ success: true, path: '/home/user/ws/mapped.txt', content: 'mapped' })
      expect(await sb.listFiles('/workspace/ws')).toEqual(['mapped.txt'])
      expect(await sb.execute('pwd', [], { workdir: '/workspace/ws' })).toMatchObject({ exitCode: 0, stdout: '/home/user/ws\n' })
    })

    it('listFiles, listFiles({ recursive }), listFilesDetailed, deleteFile', async () => {
      await sb.writeFile('tree/f1.txt', '12345')
      await sb.writeFile('tree/d1/f2.txt', 'ab')
      await sb.writeFile('tree/d1/d2/f3.bin', Buffer.from([1, 2, 3]))
      await sb.writeFile('tree/.dot', 'hidden')

      expect(await sb.listFiles('tree')).toEqual(['d1', 'f1.txt'])
      expect(await sb.listFiles('/home/user/tree', { all: true })).toEqual(['.dot', 'd1', 'f1.txt'])
      expect(await sb.listFiles('tree', { recursive: true })).toEqual(['d1', 'd1/d2', 'd1/d2/f3.bin', 'd1/f2.txt', 'f1.txt'])
      expect(await sb.listFiles('/home/user/no-such-dir')).toEqual([])

      const flat = await sb.listFilesDetailed('tree')
      expect(flat.map((e: any) => e.path)).toEqual(['d1', 'f1.txt'])
      const all = await sb.listFilesDetailed('tree', { recursive: true })
      const by = (p: string) => all.find((e: any) => e.path === p)
      expect(all.map((e: any) => e.path)).toEqual(['d1', 'd1/d2', 'd1/d2/f3.bin', 'd1/f2.txt', 'f1.txt'])
      expect(by('f1.txt')).toMatchObject({ name: 'f1.txt', type: 'file', size: 5, permissions: expect.stringMatching(/^[0-7]{3,4}$/) })
      expect(by('d1/d2')).toMatchObject({ name: 'd2', type: 'directory' })
      expect(by('d1/d2/f3.bin')).toMatchObject({ name: 'f3.bin', type: 'file', size: 3 })
      expect(Math.abs(by('f1.txt')!.mtimeMs - Date.now())).toBeLessThan(120_000)
      await expect(sb.listFilesDetailed('/home/user/no-such-dir')).rejects.toHaveProperty('code')

      expect(await sb.deleteFile('tree/f1.txt')).toMatchObject({ success: true, path: '/home/user/tree/f1.txt' })
      expect(await sb.deleteFile('tree/f1.txt')).toMatchObject({ success: true }) // rm -f: already gone
      const dirNoRec = await sb.deleteFile('tree/d1')
      expect(dirNoRec.success).toBe(false)
      expect(dirNoRec.error).toMatch(/recursive/)
      expect(await sb.deleteFile('tree/d1', { recursive: true })).toMatchObject({ success: true })
      expect(await sb.listFiles('tree', { all: true })).toEqual(['.dot'])
    })

    it('getStats() returns the numbers of the metrics endpoint; healthCheck() is healthy', async () => {
      const mk = fake.requests.length
      const stats = await sb.getStats()
      for (const k of ['memoryUsageMB', 'cpuPercent', 'diskUsageMB', 'networkRxMB', 'networkTxMB']) {
        expect(typeof stats[k], k).toBe('number')
        expect(Number.isFinite(stats[k]), k).toBe(true)
        expect(stats[k], k).toBeGreaterThanOrEqual(0)
      }
      expect(stats.memoryUsageMB).toBeGreaterThan(0)
      expect(stats.diskUsageMB).toBeGreaterThan(0)
      expect(summary(since(mk, (r) => r.path.includes('metrics')))).toEqual([`api GET /sandboxes/${remote}/metrics 200`])

      const health = await sb.healthCheck()
      expect(health).toMatchObject({ healthy: true, message: expect.stringMatching(/responded in \d+ ms/) })
      expect(summary(since(mk, (r) => r.path === '/health'))).toEqual(['envd GET /health 204'])
    })

    it('manager.getAllStats() / healthCheckAll() include the e2b sandbox', async () => {
      const m = managers.find((x) => x.getSandbox(sb.id))
      const stats = (await m.getAllStats()).find((e: any) => e.id === sb.id)
      expect(stats).toMatchObject({ provider: 'e2b', stats: { memoryUsageMB: expect.any(Number) } })
      expect(stats.stats.memoryUsageMB).toBeGreaterThan(0)
      expect((await m.healthCheckAll()).find((e: any) => e.id === sb.id)).toMatchObject({ provider: 'e2b', health: { healthy: true } })
    })

    it('stop() kills the processes and pauses the sandbox; start() resumes it with the files', async () => {
      await sb.writeFile('keep/kept.txt', 'survives the pause')
      const bg = await sb.execute('sleep', ['47'], { background: true })
      const mk = fake.requests.length
      await sb.stop()
      expect(sb.state).toBe('stopped')
      expect(fake.sandboxes().find((s) => s.id === remote)!.state).toBe('paused')
      expect(summary(since(mk, api))).toEqual([`api POST /sandboxes/${remote}/pause 204`])
      // as for Docker (guest.spec.ts): across stop() a background handle's wait() settles, with a non-zero
      // exit or a rejection (the pause may cut its stream before envd sent the end event)
      const waited = await within(bg.wait().then((r: any) => ({ ok: true, r }), (e: any) => ({ ok: false, e })), 10_000, 'background process after stop')
      if (waited.ok) expect(waited.r.exitCode).toBe(137)
      else expect(waited.e.code).toBe('EXECUTION_ERROR')
      expect(bg.running).toBe(false)
      expect(docker(['inspect', '-f', '{{.State.Paused}}', fake.sandboxes().find((s) => s.id === remote)!.container])).toBe('true')

      await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_RUNNING')
      expect((await sb.readFile('keep/kept.txt')).success).toBe(false)
      expect(await sb.listFiles()).toEqual([])
      expect((await sb.healthCheck()).healthy).toBe(false)
      await sb.stop() // no-op unless running

      const mk2 = fake.requests.length
      await sb.start()
      expect(sb.state).toBe('running')
      expect(summary(since(mk2, api))).toEqual([`api POST /v2/sandboxes/${remote}/connect 201`])
      expect(since(mk2, api)[0].body).toEqual({ timeout: 120 })
      expect(fake.sandboxes().find((s) => s.id === remote)!.state).toBe('running')
      expect(await sb.readFile('keep/kept.txt')).toMatchObject({ success: true, content: 'survives the pause' })
      expect(await sb.listProcesses()).toEqual([])
      expect(await sb.execute('echo', ['after resume'])).toMatchObject({ exitCode: 0, stdout: 'after resume\n' })
    })

    it('a sandbox killed behind our back: SANDBOX_NOT_FOUND, then SANDBOX_NOT_RUNNING; start() creates a new one', async () => {
      const res = await fetch(`${fake.apiUrl}/sandboxes/${remote}`, { method: 'DELETE', headers: { 'X-API-Key': KEY } })
      expect(res.status).toBe(204)
      expect(fake.sandboxes().some((s) => s.id === remote)).toBe(false)

      const mk = fake.requests.length
      const lost = await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_FOUND')
      expect(lost.message).toMatch(/not reachable any more/)
      expect(summary(since(mk, notRefresh))).toEqual(['envd POST /process.Process/Start 502'])
      expect(sb.state).toBe('error')
      await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_RUNNING')
      expect((await sb.readFile('a.txt')).success).toBe(false)
      expect(await sb.listFiles()).toEqual([])
      expect((await sb.healthCheck()).healthy).toBe(false)

      const mk2 = fake.requests.length
      await sb.start()
      expect(sb.state).toBe('running')
      const fresh = remoteOf(mk2)
      expect(fresh).not.toBe(remote)
      expect(await sb.execute('echo', ['again'])).toMatchObject({ exitCode: 0, stdout: 'again\n' })
      expect((await sb.readFile('a.txt')).success).toBe(false) // a new sandbox: the files are gone
      remote = fresh
    })

    it('destroy() kills the E2B sandbox (container gone); state destroyed; later calls fail', async () => {
      const container = fake.sandboxes().find((s) => s.id === remote)!.container
      const mk = fake.requests.length
      await sb.destroy()
      expect(sb.state).toBe('destroyed')
      expect(summary(since(mk, api))).toEqual([`api DELETE /sandboxes/${remote} 204`])
      expect(fake.sandboxes().some((s) => s.id === remote)).toBe(false)
      expect(fakeContainers(remote)).toEqual([])
      expect(docker(['ps', '-a', '-q', '--no-trunc', '--filter', `id=${container}`])).toBe('')
      await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_RUNNING')
      await expectCode(sb.start(), 'SANDBOX_DESTROYED')
      await sb.destroy() // idempotent
    })
  })

  describe('network', () => {
    // src/providers/e2b/network.rs: networkMode 'none' -> allow_internet_access: false; network rules -> E2B's
    // network { allowOut, denyOut } with presets expanded; what E2B cannot express is INVALID_CONFIG at start().
    // (The fake stores and reports the rules; its containers have no network, so nothing is enforced here.)
    const detail = async (id: string) => (await fetch(`${fake.apiUrl}/sandboxes/${id}`, { headers: { 'X-API-Key': KEY } })).json()

    it('network rules go to the create request, presets expanded, and E2B reports them back', async () => {
      const mark = fake.requests.length
      const sb = await started({ network: { allowOut: ['npm', 'API.example.com', '*.github.com'], denyOut: ['0.0.0.0/0'] } })
      const create = since(mark, (r) => r.method === 'POST' && CREATE.test(r.path))
      expect(summary(create)).toEqual(['api POST /v2/sandboxes 201'])
      expect(create[0].body.network).toEqual({ allowOut: ['registry.npmjs.org', 'registry.yarnpkg.com', 'api.example.com', '*.github.com'], denyOut: ['0.0.0.0/0'] })
      expect(create[0].body).not.toHaveProperty('allow_internet_access')
      const remote = remoteOf(mark)
      expect(await detail(remote)).toMatchObject({
        network: { allowOut: ['registry.npmjs.org', 'registry.yarnpkg.com', 'api.example.com', '*.github.com'], denyOut: ['0.0.0.0/0'] },
        allowInternetAccess: null,
      })
      // seed 000's restricted policy: allowedHosts allowed, everything else denied
      const mk2 = fake.requests.length
      const restricted = await started({ network: { policy: 'restricted', allowedHosts: ['pypi'] } })
      expect(since(mk2, (r) => r.method === 'POST' && CREATE.test(r.path))[0].body.network).toEqual({ allowOut: ['pypi.org', 'files.pythonhosted.org'], denyOut: ['0.0.0.0/0'] })
      await Promise.all([sb.destroy(), restricted.destroy()])
    })

    it("networkMode 'none' sends allow_internet_access: false; the default sends neither field", async () => {
      const mark = fake.requests.length
      const sb = await started({ networkMode: 'none' })
      const create = since(mark, (r) => r.method === 'POST' && CREATE.test(r.path))
      expect(create[0].body).toMatchObject({ allow_internet_access: false })
      expect(create[0].body).not.toHaveProperty('network')
      expect(await detail(remoteOf(mark))).toMatchObject({ allowInternetAccess: false })
      expect((await detail(remoteOf(mark))).network).toBeUndefined()
      const mk2 = fake.requests.length
      const other = await started()
      const plain = since(mk2, (r) => r.method === 'POST' && CREATE.test(r.path))[0].body
      expect(plain).not.toHaveProperty('network')
      expect(plain).not.toHaveProperty('allow_internet_access')
      await Promise.all([sb.destroy(), other.destroy()])
    })

    it('updateNetwork is PUT /sandboxes/{id}/network; getStatus().network shows the rules sent', async () => {
      const sb = await started({ network: { allowOut: ['npm'], denyOut: ['0.0.0.0/0'] } })
      const mark = fake.requests.length
      await sb.updateNetwork({ allowOut: ['pypi'], denyOut: ['0.0.0.0/0'] })
      const put = since(mark, (r) => r.method === 'PUT')
      expect(put).toHaveLength(1)
      expect(put[0].path).toMatch(/^\/sandboxes\/[^/]+\/network$/)
      expect(put[0].body).toEqual({ allowOut: ['pypi.org', 'files.pythonhosted.org'], denyOut: ['0.0.0.0/0'] })
      expect((await detail(put[0].path.split('/')[2])).network).toEqual({ allowOut: ['pypi.org', 'files.pythonhosted.org'], denyOut: ['0.0.0.0/0'] })
      expect((await sb.getStatus()).network).toMatchObject({ allowOut: ['pypi'], denyOut: ['0.0.0.0/0'], allowed: 0, denied: 0 })
      expect((await sb.getStatus()).network.gateway).toBeFalsy()
      const m2 = fake.requests.length
      await expectCode(sb.updateNetwork({ allowOut: ['example.com:443'] }), 'INVALID_CONFIG')
      expect(since(m2, (r) => r.method === 'PUT')).toEqual([])
      await sb.stop()
      await expectCode(sb.updateNetwork({ allowOut: ['pypi'] }), 'SANDBOX_NOT_RUNNING')
      await sb.destroy()
    })

    it('a port, or a domain in denyOut (also as a preset), is INVALID_CONFIG at start() naming the entry; nothing is sent', async () => {
      const mark = fake.requests.length
      const cases: Array<[Record<string, any>, RegExp]> = [
        [{ allowOut: ['example.com:443'] }, /network\.allowOut: entry "example\.com:443" names a port.*every port of example\.com/],
        [{ denyOut: ['10.0.0.1:5432'] }, /network\.denyOut: entry "10\.0\.0\.1:5432" names a port/],
        [{ denyOut: ['evil.example'] }, /network\.denyOut: entry "evil\.example" is a domain.*only IPv4 addresses and CIDRs/],
        [{ allowOut: ['npm'], denyOut: ['github'] }, /network\.denyOut: preset "github" is a list of domains/],
      ]
      for (const [network, message] of cases) {
        const sb = await manager().createSandbox({ network })
        const err = await expectCode(sb.start(), 'INVALID_CONFIG')
        expect(err.message).toMatch(message)
        expect(sb.state).toBe('created')
      }
      expect(since(mark)).toEqual([])
    })
  })

  describe('lifetime', () => {
    // What src/providers/e2b/sandbox.rs promises: E2B kills a sandbox `limits.timeoutSeconds` after the last lifetime
    // update. While the sandbox is used, after every call (and on every output or keepalive event of a
    // running process), when more than 30 s -- or half the lifetime, if shorter (here 3 s) -- passed since
    // the last update, `POST /sandboxes/{id}/timeout {"timeout": timeoutSeconds}` is sent in the background.
    // An idle sandbox therefore ends `timeoutSeconds` after its last use.
    it('activity keeps a sandbox with a 6 s lifetime alive for 10 s (POST .../timeout); idle, it ends', async () => {
      const mark = fake.requests.length
      const sb = await started({ limits: { timeoutSeconds: 6 } })
      const remote = remoteOf(mark)
      expect(since(mark, (r) => CREATE.test(r.path))[0].body).toMatchObject({ timeout: 6 })
      const t0 = Date.now()
      while (Date.now() - t0 < 10_500) {
        expect(await sb.execute('true')).toMatchObject({ exitCode: 0 })
        await sleep(1000)
      }
      expect(fake.sandboxes().find((s) => s.id === remote)?.state).toBe('running')
      expect(await sb.execute('echo', ['still alive'])).toMatchObject({ stdout: 'still alive\n' })
      const refreshes = since(mark, (r) => r.path === `/sandboxes/${remote}/timeout`)
      expect(refreshes.length).toBeGreaterThanOrEqual(2)
      expect(refreshes.length).toBeLessThanOrEqual(6) // debounced: about one per 3 s, not one per call
      for (const r of refreshes) expect(r).toMatchObject({ method: 'POST', status: 204, body: { timeout: 6 } })

      // left alone, it ends timeoutSeconds after its last use
      expect(await waitFor(() => !fake.sandboxes().some((s) => s.id === remote), 10_000, 200)).toBe(true)
      await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_FOUND')
      expect(sb.state).toBe('error')
      await sb.destroy()
    })

    it('a long silent command keeps a sandbox with a 4 s lifetime alive (keepalive events refresh it)', async () => {
      const mark = fake.requests.length
      const sb = await started({ limits: { timeoutSeconds: 4 } })
      const remote = remoteOf(mark)
      const r = await within(sb.execute('sh', ['-c', 'sleep 9; echo woke'], { timeout: 30 }), 30_000, 'sleep 9 in a 4 s sandbox')
      expect(r).toMatchObject({ exitCode: 0, stdout: 'woke\n', timedOut: false })
      expect(fake.sandboxes().find((s) => s.id === remote)?.state).toBe('running')
      expect(since(mark, (x) => x.path === `/sandboxes/${remote}/timeout` && x.status === 204).length).toBeGreaterThanOrEqual(2)
      await sb.destroy()
      expect(fake.sandboxes().some((s) => s.id === remote)).toBe(false)
    })
  })

  describe('faults', () => {
    it('401 on create (a key the API rejects) -> PERMISSION_DENIED quoting E2B, no key in the message', async () => {
      const mark = fake.requests.length
      const sb = await manager().createSandbox({ e2b: conn({ apiKey: OTHER_KEY }) })
      const err = await expectCode(sb.start(), 'PERMISSION_DENIED')
      expect(err.message).toContain('"Invalid API key, please visit https://e2b.dev/docs/api-key for more information."')
      expect(err.message).not.toContain(OTHER_KEY)
      expect(sb.state).toBe('error')
      // 401 is not repeated
      expect(summary(since(mark, notRefresh))).toEqual(['api POST /v2/sandboxes 401'])

      const mark2 = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 401 })
      const sb2 = await manager().createSandbox()
      const err2 = await expectCode(sb2.start(), 'PERMISSION_DENIED')
      expect(err2.message).toContain('"fake-e2b: injected 401"')
      expect(summary(since(mark2, notRefresh))).toEqual(['api POST /v2/sandboxes 401'])
    })

    it('429 with Retry-After on create, then success: the start waits as told and succeeds', async () => {
      const mark = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 429, headers: { 'Retry-After': '1.5' } })
      const sb = await manager().createSandbox()
      const t0 = Date.now()
      await sb.start()
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400) // the backoff alone would be 125-250 ms
      expect(summary(since(mark, api))).toEqual(['api POST /v2/sandboxes 429', 'api POST /v2/sandboxes 201'])
      expect(sb.state).toBe('running')
      await sb.destroy()
    })

    it('429 on every create attempt -> QUOTA_EXCEEDED after 4 attempts', async () => {
      const mark = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 429, times: 4 })
      const sb = await manager().createSandbox()
      const err = await expectCode(sb.start(), 'QUOTA_EXCEEDED')
      expect(err.message).toMatch(/after 4 attempts/)
      expect(summary(since(mark, api))).toEqual(Array(4).fill('api POST /v2/sandboxes 429'))
      expect(sb.state).toBe('error')
    })

    it('an API nobody listens on -> PROVIDER_UNAVAILABLE naming the URL', async () => {
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (srv.address() as net.AddressInfo).port
          srv.close(() => resolve(p))
        })
      })
      const sb = await manager().createSandbox({ e2b: conn({ apiUrl: `http://127.0.0.1:${port}` }) })
      const err = await expectCode(within(sb.start(), 30_000, 'start against a closed port'), 'PROVIDER_UNAVAILABLE')
      expect(err.message).toContain(`http://127.0.0.1:${port}`)
      expect(sb.state).toBe('error')
    })

    it('404 on POST /v2/sandboxes -> the older POST /sandboxes; 404 on both -> INVALID_CONFIG (no such template)', async () => {
      const mark = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 404 })
      const sb = await manager().createSandbox()
      await sb.start()
      expect(summary(since(mark, api))).toEqual(['api POST /v2/sandboxes 404', 'api POST /sandboxes 201'])
      expect(await sb.execute('echo', ['v1'])).toMatchObject({ stdout: 'v1\n' })
      await sb.destroy()

      const mark2 = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: /^\/(v2\/)?sandboxes$/, status: 404, times: 2, body: { code: 404, message: "template 'nope' not found" } })
      const sb2 = await manager().createSandbox({ e2b: conn({ templateId: 'nope' }) })
      const err = await expectCode(sb2.start(), 'INVALID_CONFIG')
      expect(err.message).toContain("template 'nope' not found")
      expect(summary(since(mark2, api))).toEqual(['api POST /v2/sandboxes 404', 'api POST /sandboxes 404'])
    })

    it('a lifetime E2B refuses (400) -> INVALID_CONFIG quoting E2B and naming limits.timeoutSeconds', async () => {
      const sb = await manager().createSandbox({ limits: { timeoutSeconds: 7200 } })
      const err = await expectCode(sb.start(), 'INVALID_CONFIG')
      expect(err.message).toContain('Timeout cannot be greater than 1 hours')
      expect(err.message).toContain('limits.timeoutSeconds')
      expect(sb.state).toBe('error')
    })

    it('500 on create is not repeated (E2B may have created it): PROVIDER_ERROR', async () => {
      const mark = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 500 })
      const sb = await manager().createSandbox()
      const err = await expectCode(sb.start(), 'PROVIDER_ERROR')
      expect(err.message).toContain('fake-e2b: injected 500')
      expect(summary(since(mark, api))).toEqual(['api POST /v2/sandboxes 500'])
      expect(sb.state).toBe('error')
    })

    describe('on a running sandbox', () => {
      let sb: any
      let remote: string

      beforeAll(async () => {
        const mark = fake.requests.length
        sb = await started({ limits: { timeoutSeconds: 120 } })
        remote = remoteOf(mark)
      })

      it('429 then 500 then ok on the metrics endpoint: getStats() retries and succeeds', async () => {
        const mark = fake.requests.length
        fake.inject({ plane: 'api', method: 'GET', path: '/metrics', status: 429 })
        fake.inject({ plane: 'api', method: 'GET', path: '/metrics', status: 500 })
        const stats = await sb.getStats()
        expect(stats.memoryUsageMB).toBeGreaterThan(0)
        expect(summary(since(mark, notRefresh))).toEqual([
          `api GET /sandboxes/${remote}/metrics 429`,
          `api GET /sandboxes/${remote}/metrics 500`,
          `api GET /sandboxes/${remote}/metrics 200`,
        ])
      })

      it('500 then 429 then ok on GET /files: readFile() retries and succeeds', async () => {
        await sb.writeFile('retry.txt', 'read me')
        const mark = fake.requests.length
        fake.inject({ plane: 'envd', method: 'GET', path: '/files', status: 500 })
        fake.inject({ plane: 'envd', method: 'GET', path: '/files', status: 429 })
        expect(await sb.readFile('retry.txt')).toMatchObject({ success: true, content: 'read me' })
        expect(summary(since(mark, notRefresh))).toEqual(['envd GET /files 500', 'envd GET /files 429', 'envd GET /files 200'])
      })

      it('a process stream cut mid-command is re-attached with Connect and the command completes', async () => {
        const mark = fake.requests.length
        // cut the Start stream after its second event (start, then the first output). The output comes
        // 0.5 s after the start: the fake's cut drops what was written in the same moment (see the report)
        fake.inject({ cutStreamAfterEvents: 2, path: '/process.Process/Start' })
        const r = await within(sb.execute('sh', ['-c', 'sleep 0.5; echo one; sleep 1.5; echo two; exit 5']), 20_000, 'execute with a cut stream')
        expect(r).toMatchObject({ exitCode: 5, timedOut: false })
        expect(r.stdout).toMatch(/two\n$/)
        const start = since(mark, (x) => x.path === '/process.Process/Start')
        const connect = since(mark, (x) => x.path === '/process.Process/Connect')
        expect(start).toHaveLength(1)
        expect(connect).toHaveLength(1)
        expect(connect[0].body).toMatchObject({ process: { pid: expect.any(Number) } })
      })

      it('a stream cut whose re-attach is cut too -> EXECUTION_ERROR "was cut", never a hang', async () => {
        const mark = fake.requests.length
        fake.inject({ cutStreamAfterEvents: 2, path: '/process.Process/Start' })
        fake.inject({ cutStreamAfterEvents: 0, path: '/process.Process/Connect' })
        const t0 = Date.now()
        const err = await expectCode(within(sb.execute('sh', ['-c', 'sleep 0.5; echo one; sleep 3; echo two']), 20_000, 'execute with cut streams'), 'EXECUTION_ERROR')
        expect(err.message).toMatch(/was cut/)
        expect(Date.now() - t0).toBeLessThan(10_000)
        expect(since(mark, (x) => x.path === '/process.Process/Connect')).toHaveLength(1)
        // the provider says the command may still run; it ends on its own
        expect(await waitFor(async () => (await sb.listProcesses()).length === 0, 8000, 200)).toBe(true)
      })

      it('a re-attach refused by envd -> EXECUTION_ERROR "was cut", never a hang', async () => {
        const mark = fake.requests.length
        fake.inject({ cutStreamAfterEvents: 2, path: '/process.Process/Start' })
        fake.inject({ plane: 'envd', path: '/process.Process/Connect', status: 503 })
        const err = await expectCode(within(sb.execute('sh', ['-c', 'sleep 0.5; echo one; sleep 1; echo two']), 20_000, 'execute with a refused re-attach'), 'EXECUTION_ERROR')
        expect(err.message).toMatch(/was cut/)
        expect(err.message).toMatch(/re-attaching failed/)
        expect(since(mark, (x) => x.path === '/process.Process/Connect').map((x) => x.status)).toEqual([503])
        expect(await waitFor(async () => (await sb.listProcesses()).length === 0, 8000, 200)).toBe(true)
      })

      it('a slow envd (Start held past the execute timeout) -> timedOut/124, never a hang', async () => {
        const mark = fake.requests.length
        fake.inject({ plane: 'envd', path: '/process.Process/Start', delayMs: 3000 })
        const t0 = Date.now()
        const r = await within(sb.execute('sleep', ['53'], { timeout: 1 }), 20_000, 'execute against a slow envd')
        expect(r).toMatchObject({ timedOut: true, exitCode: 124 })
        expect(Date.now() - t0).toBeLessThan(10_000)
        expect(since(mark, (x) => x.path === '/process.Process/Start')).toHaveLength(1)
        expect(await waitFor(async () => !(await sb.listProcesses()).some((p: any) => p.args[0] === '53'), 5000, 200)).toBe(true)
      })

      it('404 on the metrics of an existing sandbox -> SANDBOX_NOT_FOUND (and the sandbox counts as lost)', async () => {
        fake.inject({ plane: 'api', method: 'GET', path: `/sandboxes/${remote}/metrics`, status: 404 })
        const err = await expectCode(sb.getStats(), 'SANDBOX_NOT_FOUND')
        expect(err.message).toContain('fake-e2b: injected 404')
        expect(sb.state).toBe('error')
        await expectCode(sb.execute('echo', ['x']), 'SANDBOX_NOT_RUNNING')
        await sb.destroy()
        expect(fake.sandboxes().some((s) => s.id === remote)).toBe(false)
      })
    })
  })

  describe('provider fallback', () => {
    const fallbackConfig = () => ({
      provider: 'e2b',
      fallbackProviders: ['docker'],
      image: BUSYBOX,
      networkMode: 'none',
      e2b: conn(),
    })

    it('E2B answering 503 on create -> start() succeeds on Docker, same id', async () => {
      const mark = fake.requests.length
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 503, times: 4 })
      const m: any = new SandboxManager()
      managers.push(m)
      const sb = await m.createSandbox(fallbackConfig())
      const id = sb.id
      expect(sb.provider).toBe('e2b')
      await sb.start()
      expect(sb.provider).toBe('docker')
      expect(sb.id).toBe(id)
      expect(sb.state).toBe('running')
      expect(m.getSandbox(id)?.provider).toBe('docker')
      // Retry::Create repeats 503 (E2B created nothing), at most 4 attempts, then falls back
      expect(summary(since(mark, api))).toEqual(Array(4).fill('api POST /v2/sandboxes 503'))
      expect(await sb.execute('sh', ['-c', 'echo on docker; pwd'])).toMatchObject({ exitCode: 0, stdout: 'on docker\n/workspace\n' })
      expect(fake.sandboxes()).toEqual([])
      await m.destroyAll()
      expect(sb.state).toBe('destroyed')
    })

    it('E2B answering 401 (not an availability problem) -> no fallback, PERMISSION_DENIED', async () => {
      const labelled = () => docker(['ps', '-a', '-q', '--filter', `label=${MANAGED_LABEL}`, '--filter', `label=${ownerPidLabel(process.pid)}`])
      const before = labelled()
      fake.inject({ plane: 'api', method: 'POST', path: CREATE, status: 401 })
      const m: any = new SandboxManager()
      managers.push(m)
      const sb = await m.createSandbox(fallbackConfig())
      await expectCode(sb.start(), 'PERMISSION_DENIED')
      expect(sb.provider).toBe('e2b')
      expect(sb.state).toBe('error')
      expect(labelled()).toBe(before)
      await m.destroyAll()
    })
  })

  describe('pools', () => {
    it('a pool of e2b sandboxes: release() kills processes and empties the workdir and /tmp', async () => {
      const m = manager({ limits: { timeoutSeconds: 120 } })
      const pool = await m.createPool({}, { min: 1, max: 1 })
      const sb = await pool.acquire()
      expect(sb.provider).toBe('e2b')
      await sb.writeFile('work.txt', 'w')
      await sb.writeFile('dir/nested.txt', 'n')
      await sb.writeFile('/tmp/t.txt', 't')
      await sb.execute('sleep', ['59'], { background: true })
      await pool.release(sb)
      const again = await pool.acquire()
      expect(again.id).toBe(sb.id)
      expect(await again.listFiles('.', { all: true })).toEqual([])
      expect((await again.readFile('/tmp/t.txt')).success).toBe(false)
      expect(await again.listProcesses()).toEqual([])
      await pool.release(again)
      const remoteCount = fake.sandboxes().length
      await pool.destroy()
      expect(fake.sandboxes().length).toBe(remoteCount - 1)
    })
  })

  describe('cleanup', () => {
    it('a process that exits without destroying its e2b sandboxes kills them (exit hook), paused ones too', async () => {
      const addon = fileURLToPath(new URL('../index.js', import.meta.url))
      const child = `
        const { SandboxManager } = require(${JSON.stringify(addon)});
        (async () => {
          const m = new SandboxManager({ provider: 'e2b', e2b: ${JSON.stringify(conn())} });
          const a = await m.createSandbox(); const b = await m.createSandbox();
          await a.start(); await b.start(); await b.stop();
          const r = await a.execute('echo', ['child-ok']);
          console.log('READY ' + r.stdout.trim());
          process.exit(0);
        })().catch((e) => { console.error('CHILD_ERROR', e && e.stack || e); process.exit(2); });`
      const before = new Set(fake.sandboxes().map((s) => s.id))
      const mark = fake.requests.length
      const proc = spawn(process.execPath, ['-e', child], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } })
      let out = ''
      proc.stdout!.on('data', (d) => (out += d))
      proc.stderr!.on('data', (d) => (out += d))
      const code = await within(new Promise((resolve) => proc.on('exit', resolve)), 60_000, 'child process')
      expect(out).toContain('READY child-ok')
      expect(code).toBe(0)
      const created = since(mark, (r) => r.method === 'POST' && CREATE.test(r.path) && r.status === 201)
      expect(created).toHaveLength(2)
      const deletes = since(mark, (r) => r.method === 'DELETE')
      expect(deletes.map((r) => r.status)).toEqual([204, 204])
      expect(fake.sandboxes().filter((s) => !before.has(s.id))).toEqual([])
    })


    it('manager.destroyAll() kills every e2b sandbox, running and paused', async () => {
      const m = manager({ limits: { timeoutSeconds: 120 } })
      const a = await m.createSandbox()
      const b = await m.createSandbox()
      await Promise.all([a.start(), b.start()])
      await b.stop()
      expect(fake.sandboxes().map((s) => s.state).sort()).toEqual(['paused', 'running'])
      const containers = fake.sandboxes().map((s) => s.container)
      await m.destroyAll()
      expect(a.state).toBe('destroyed')
      expect(b.state).toBe('destroyed')
      expect(m.listSandboxes()).toEqual([])
      expect(fake.sandboxes()).toEqual([])
      for (const c of containers) expect(docker(['ps', '-a', '-q', '--no-trunc', '--filter', `id=${c}`])).toBe('')
    })

    it('nothing is left: no fake sandboxes, no managed Docker resources of this process', async () => {
      for (const m of managers) await m.destroyAll()
      expect(fake.sandboxes()).toEqual([])
      const own = (kind: 'ps' | 'volume' | 'network') =>
        docker([...(kind === 'ps' ? ['ps', '-a'] : [kind, 'ls']), '-q', '--filter', `label=${MANAGED_LABEL}`, '--filter', `label=${ownerPidLabel(process.pid)}`])
      expect(own('ps')).toBe('')
      expect(own('volume')).toBe('')
      expect(own('network')).toBe('')
    })
  })
})
