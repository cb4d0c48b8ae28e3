// Remote mode: `new SandboxManager({ provider: 'remote', remote: { url, apiKey } })` against a
// SandboxServer this file starts on 127.0.0.1:0, with the assertions the local suites make:
// lifecycle, execute (exit codes, timeouts, streaming, stdin, abort), background processes, binary
// files, runCode, runTests, a session, an agent run with interceptors; then the failure cases
// (server down, wrong key, another tenant's sandbox), a flooding program, and nothing left behind.
import crypto from 'node:crypto'
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxServer, SandboxedAgentExecutor } from '../index.js'
import { BUSYBOX, TEST_TEMPLATES, dockerLabelled, expectCode, sandboxLabel, sleep, waitFor } from './helpers.js'

const key = () => crypto.randomBytes(24).toString('hex')
const ALICE = key()
const BOB = key()
const SERVER_MAX_OUTPUT = 2 * 1024 * 1024
const NONE = { containers: 0, volumes: 0, networks: 0 }

let server: SandboxServer
let url = ''
let manager: any
/** every server-side sandbox id seen, checked gone at the end */
const serverIds = new Set<string>()

async function v1(method: string, route: string, apiKey = ALICE, body?: unknown) {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  let json: any = null
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, body: json }
}

/** The server's ids of ALICE's sandboxes now (recorded for the final check). */
async function aliceIds(): Promise<string[]> {
  const r = await v1('GET', '/v1/sandboxes')
  expect(r.status).toBe(200)
  const ids = r.body.sandboxes.map((s: any) => s.id)
  ids.forEach((id: string) => serverIds.add(id))
  return ids
}

beforeAll(async () => {
  server = new SandboxServer({
    port: 0,
    readEnv: false,
    apiKeys: [
      { key: ALICE, name: 'alice' },
      { key: BOB, name: 'bob' },
    ],
    config: { image: BUSYBOX, templates: TEST_TEMPLATES, networkMode: 'none' },
    maxOutputBytes: SERVER_MAX_OUTPUT,
    shutdownTimeout: 3,
  })
  url = (await server.listen()).url
  manager = new SandboxManager({ provider: 'remote', remote: { url, apiKey: ALICE }, image: BUSYBOX, networkMode: 'none' })
})

// what the server holds after each test, for the final check
let closed = false
afterEach(async () => {
  if (!closed) await aliceIds()
})

afterAll(async () => {
  await manager?.destroyAll()
  await server?.close()
})

describe('lifecycle', () => {
  it('create, start, execute, stop, resume, destroy: the same states as locally', async () => {
    const sb = await manager.createSandbox()
    expect(sb.provider).toBe('remote')
    expect(sb.state).toBe('created')
    await sb.start()
    expect(sb.state).toBe('running')
    const ids = await aliceIds()
    expect(ids).toHaveLength(1)
    const r = await sb.execute('echo', ['hello', 'remote'])
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hello remote\n', stderr: '', timedOut: false })
    await sb.stop()
    expect(sb.state).toBe('stopped')
    await expectCode(sb.execute('true'), 'SANDBOX_NOT_RUNNING')
    await sb.start()
    expect((await sb.execute('echo', ['again'])).stdout).toBe('again\n')
    await sb.destroy()
    expect(sb.state).toBe('destroyed')
    expect(await aliceIds()).toEqual([])
    expect(manager.listSandboxes()).toEqual([])
  })
})

describe('execute', () => {
  let sb: any
  beforeAll(async () => {
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(async () => {
    await sb.destroy()
  })

  it('exit codes and stderr', async () => {
    const r = await sb.execute('sh', ['-c', 'echo out; echo err >&2; exit 3'])
    expect(r).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false })
  })

  it('timeouts: exit code 124, timedOut', async () => {
    const t0 = Date.now()
    const r = await sb.execute('sleep', ['30'], { timeout: 1 })
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBe(124)
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  it('streams output chunks as they come (onStdout / onStderr)', async () => {
    const chunks: string[] = []
    const times: number[] = []
    const errs: string[] = []
    const t0 = Date.now()
    const r = await sb.execute('sh', ['-c', 'echo one; sleep 1; echo two; echo bad >&2'], {
      onStdout: (c: string) => {
        chunks.push(c)
        times.push(Date.now() - t0)
      },
      onStderr: (c: string) => errs.push(c),
    })
    expect(r.stdout).toBe('one\ntwo\n')
    expect(chunks.join('')).toBe('one\ntwo\n')
    expect(errs.join('')).toBe('bad\n')
    // the first chunk arrived before the command ended
    expect(times[0]).toBeLessThan(900)
  })

  it('stdin (string and binary), env and workdir', async () => {
    expect((await sb.execute('cat', [], { stdin: 'hello stdin' })).stdout).toBe('hello stdin')
    const bytes = Buffer.from([0, 1, 2, 250, 255])
    const r = await sb.execute('sh', ['-c', 'od -An -tx1 | tr -s " "'], { stdin: bytes })
    expect(r.stdout.trim()).toBe('00 01 02 fa ff')
    expect((await sb.execute('sh', ['-c', 'echo $FOO'], { env: { FOO: 'bar' } })).stdout).toBe('bar\n')
    await sb.execute('mkdir', ['-p', 'sub/dir'])
    expect((await sb.execute('pwd', [], { workdir: 'sub/dir' })).stdout).toBe('/workspace/sub/dir\n')
  })

  it('abort through an AbortSignal kills the process: ABORTED', async () => {
    const ac = new AbortController()
    const t0 = Date.now()
    setTimeout(() => ac.abort(), 300)
    await expectCode(sb.execute('sleep', ['30'], { signal: ac.signal }), 'ABORTED')
    expect(Date.now() - t0).toBeLessThan(10_000)
    await waitFor(async () => !(await sb.execute('ps', [])).stdout.includes('sleep 30'), 5000)
  })

  it('background processes: stdin, output, kill, wait, listProcesses', async () => {
    const out: string[] = []
    const p = await sb.execute('sh', ['-c', 'while read l; do echo got:$l; done'], { background: true, onStdout: (c: string) => out.push(c) })
    expect(p.pid).toBeGreaterThan(0)
    expect(p.running).toBe(true)
    await p.sendStdin('a\n')
    await p.sendStdin(Buffer.from('b\n'))
    await waitFor(() => out.join('').includes('got:b'), 5000)
    const procs = await sb.listProcesses()
    expect(procs.some((x: any) => x.pid === p.pid && x.background)).toBe(true)
    await p.closeStdin()
    const r = await p.wait()
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('got:a\ngot:b\n')

    const sleeper = await sb.execute('sleep', ['60'], { background: true })
    await sleeper.kill('SIGTERM')
    const k = await sleeper.wait()
    expect(k.exitCode).not.toBe(0)
    expect(sleeper.running).toBe(false)
  })

  it('a command policy of the client applies before anything is sent', async () => {
    const guarded = await manager.createSandbox({ commandPolicy: { deny: ['rm'] } })
    await guarded.start()
    await expectCode(guarded.execute('rm', ['-rf', '/workspace']), 'PERMISSION_DENIED')
    await guarded.destroy()
  })
})

describe('files', () => {
  let sb: any
  beforeAll(async () => {
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(async () => {
    await sb.destroy()
  })

  it('binary-safe write and read, listings, delete', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const w = await sb.writeFile('bin/all.bytes', all)
    expect(w).toMatchObject({ success: true, path: '/workspace/bin/all.bytes' })
    const r = await sb.readFile('bin/all.bytes', { encoding: 'buffer' })
    expect(r.success).toBe(true)
    expect(Buffer.compare(r.buffer, all)).toBe(0)
    expect((await sb.readFile('bin/all.bytes', { encoding: 'base64' })).content).toBe(all.toString('base64'))
    await sb.writeFile('text.txt', 'héllo\n')
    expect((await sb.readFile('text.txt')).content.toString()).toBe('héllo\n')
    expect((await sb.listFiles('.')).sort()).toEqual(['bin', 'text.txt'])
    const detailed = await sb.listFilesDetailed('bin')
    expect(detailed.find((f: any) => f.name === 'all.bytes')?.size).toBe(256)
    expect((await sb.deleteFile('text.txt')).success).toBe(true)
    const gone = await sb.readFile('text.txt')
    expect(gone.success).toBe(false)
    expect(gone.error).toBeTruthy()
  })

  it('uploadFile / downloadFile keep their codes', async () => {
    await expectCode(sb.downloadFile('nope/missing.txt'), 'FILE_NOT_FOUND')
  })
})

describe('runCode and runTests (devtools image)', () => {
  let sb: any
  beforeAll(async () => {
    sb = await manager.createSandbox({ template: 'python' })
    await sb.start()
  })
  afterAll(async () => {
    await sb.destroy()
  })

  it('runCode: python by default (the template)', async () => {
    const r = await sb.runCode('print(6 * 7)')
    expect(r).toMatchObject({ success: true, output: '42\n', stdout: '42\n', stderr: '', exitCode: 0, status: 'completed', language: 'python' })
    const js = await sb.runCode('console.log([1,2,3].map(x => x * 2).join(","))', { language: 'javascript' })
    expect(js.stdout).toBe('2,4,6\n')
  })

  it('runTests: pytest detected, counts, failure name and message', async () => {
    const files: Record<string, string> = {
      'pyproj/calc.py': 'def add(a, b):\n    return a + b\n',
      'pyproj/test_calc.py':
        'import pytest\nfrom calc import add\n\n\ndef test_add_passes():\n    assert add(1, 2) == 3\n\n\ndef test_add_fails():\n    assert add(2, 2) == 5, "two plus two is not five"\n\n\n@pytest.mark.skip(reason="not today")\ndef test_add_skipped():\n    assert add(0, 0) == 0\n',
    }
    for (const [p, c] of Object.entries(files)) expect((await sb.writeFile(p, c)).success).toBe(true)
    const r = await sb.runTests({ workdir: 'pyproj' })
    expect(r.framework).toBe('pytest')
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }).toEqual({ total: 3, passed: 1, failed: 1, skipped: 1 })
    expect(r.success).toBe(false)
    expect(r.exitCode).toBe(1)
    expect(r.failures.map((f: any) => f.name)).toEqual(['test_calc.py::test_add_fails'])
    expect(r.failures[0].message).toContain('two plus two is not five')
  })
})

describe('sessions live in the server', () => {
  it('getOrCreateSession: the same sandbox per thread, listed by the server, closed through it', async () => {
    const s1 = await manager.getOrCreateSession({ userId: 'u1', threadId: 'thread-1', timeoutMinutes: 5 })
    await s1.writeFile('memo.txt', 'remember me')
    const s2 = await manager.getOrCreateSession({ userId: 'u1', threadId: 'thread-1' })
    expect(s2.id).toBe(s1.id)
    expect((await s2.readFile('memo.txt')).content.toString()).toBe('remember me')
    const listed = await v1('GET', '/v1/sessions')
    expect(listed.body.sessions.map((s: any) => [s.threadId, s.sandboxId])).toEqual([['thread-1', s1.id]])
    // another tenant has threads of its own
    expect((await v1('GET', '/v1/sessions', BOB)).body.sessions).toEqual([])
    // another user of the same thread is refused by the server
    await expectCode(manager.getOrCreateSession({ userId: 'u2', threadId: 'thread-1' }), 'PERMISSION_DENIED')
    serverIds.add(s1.id)
    expect(await manager.closeSession('thread-1')).toBe(true)
    expect((await v1('GET', '/v1/sessions')).body.sessions).toEqual([])
    expect(await aliceIds()).toEqual([])
  })
})

describe('pools of remote sandboxes', () => {
  it('acquire, release (reset on the server), acquire again: the same sandbox, clean', async () => {
    const pool = await manager.createPool({}, { min: 1, max: 1, idleTimeoutSeconds: 0 })
    const a = await pool.acquire()
    expect(a.provider).toBe('remote')
    await a.writeFile('left-over.txt', 'x')
    await pool.release(a)
    const b = await pool.acquire()
    expect(b.id).toBe(a.id)
    expect((await b.readFile('left-over.txt')).success).toBe(false)
    await pool.release(b)
    await pool.destroy()
    expect(await aliceIds()).toEqual([])
  })
})

describe('an agent run with interceptors', () => {
  it('drives the sandboxed tools on the remote sandbox; interceptors apply', async () => {
    const executor: any = new SandboxedAgentExecutor(manager)
    const seen: string[] = []
    const calls: any = {}
    const r = await executor.execute('my task', {
      agentName: 'remote-agent',
      interceptors: [{ toolName: 'Bash', handler: (p: any) => { seen.push(p.command); return p.command.includes('forbidden') ? null : undefined } }],
      agent: async (_task: string, tools: any, ctx: any) => {
        calls.write = await tools.call('Write', { file_path: '/workspace/js/hello.sh', content: 'echo from-remote-agent\n' })
        calls.bash = await tools.call('Bash', { command: 'sh js/hello.sh' })
        calls.blocked = await tools.call('Bash', { command: 'echo forbidden' })
        calls.exec = await ctx.sandbox.execute('cat', ['js/hello.sh'])
        return 'done'
      },
    })
    expect(r.error, JSON.stringify(r.error)).toBeUndefined()
    expect(r.exitCode).toBe(0)
    expect(r.output).toBe('done')
    expect(calls.write.isError).toBe(false)
    expect(calls.bash).toMatchObject({ isError: false, content: expect.stringContaining('from-remote-agent') })
    expect(calls.blocked.isError).toBe(true)
    expect(seen).toEqual(['sh js/hello.sh', 'echo forbidden'])
    expect(calls.exec).toMatchObject({ exitCode: 0, stdout: 'echo from-remote-agent\n' })
    expect(r.stats.commandsExecuted).toBe(1)
    await executor.cleanupAll()
  })
})

describe('failures keep their codes', () => {
  it('server down: PROVIDER_UNAVAILABLE naming the URL', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const down = new SandboxManager({ provider: 'remote', remote: { url: `http://127.0.0.1:${port}`, apiKey: ALICE }, image: BUSYBOX })
    const sb = await down.createSandbox()
    const e = await expectCode(sb.start(), 'PROVIDER_UNAVAILABLE')
    expect(e.message).toContain(`127.0.0.1:${port}`)
    await down.destroyAll()
  })

  it('a wrong key: UNAUTHORIZED', async () => {
    const wrong = new SandboxManager({ provider: 'remote', remote: { url, apiKey: 'x'.repeat(32) }, image: BUSYBOX })
    const sb = await wrong.createSandbox()
    await expectCode(sb.start(), 'UNAUTHORIZED')
    await wrong.destroyAll()
  })

  it("another tenant's sandbox is SANDBOX_NOT_FOUND; the server refuses what it decides", async () => {
    const sb = await manager.createSandbox()
    await sb.start()
    const [id] = await aliceIds()
    for (const [m, r] of [['GET', ''], ['DELETE', ''], ['GET', '/files?path=/etc/passwd'], ['GET', '/stats']] as const) {
      const res = await v1(m, `/v1/sandboxes/${id}${r}`, BOB)
      expect([res.status, res.body?.error?.code]).toEqual([404, 'SANDBOX_NOT_FOUND'])
    }
    expect((await v1('GET', `/v1/sandboxes/${id}`)).status).toBe(200)
    const evil = await v1('POST', '/v1/sandboxes', BOB, { config: { docker: { socketPath: '/var/run/docker.sock' } } })
    expect([evil.status, evil.body.error.code]).toEqual([403, 'PERMISSION_DENIED'])
    const img = await v1('POST', '/v1/sandboxes', BOB, { config: { image: 'someone/else:latest' } })
    expect([img.status, img.body.error.code]).toEqual([403, 'PERMISSION_DENIED'])
    await sb.destroy()
  })

  it('the OpenAPI document is served', async () => {
    const doc = await (await fetch(`${url}/v1/openapi.json`)).json()
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths)).toContain('/v1/sandboxes/{id}/processes')
  })
})

describe('hostile output through the remote stream', () => {
  it('a flooding program stays capped on the client (maxOutputBytes, and the server cap)', async () => {
    const sb = await manager.createSandbox()
    await sb.start()
    let streamed = 0
    const r = await sb.execute('sh', ['-c', 'yes flood-flood-flood | head -c 50000000; echo done >&2'], {
      maxOutputBytes: 100_000,
      onStdout: (c: string) => {
        streamed += c.length
      },
    })
    expect(r.stdout.length).toBeLessThanOrEqual(100_000)
    expect(r.truncated).toBe(true)
    expect(streamed).toBeLessThanOrEqual(100_000)
    // without a cap of its own, the server's applies
    const big = await sb.execute('sh', ['-c', 'yes flood | head -c 20000000'])
    expect(big.stdout.length).toBeLessThanOrEqual(SERVER_MAX_OUTPUT)
    expect(big.truncated).toBe(true)
    // the sandbox still works
    expect((await sb.execute('echo', ['ok'])).stdout).toBe('ok\n')
    await sb.destroy()
  })
})

describe('nothing left behind', () => {
  it('after destroyAll the server holds nothing; after close no container of ours exists', async () => {
    await manager.destroyAll()
    expect(await aliceIds()).toEqual([])
    await server.close()
    closed = true
    for (const id of serverIds) {
      await waitFor(() => {
        const left = dockerLabelled(sandboxLabel(id))
        return left.containers + left.volumes + left.networks === 0
      }, 15_000, 200)
      expect(dockerLabelled(sandboxLabel(id))).toEqual(NONE)
    }
    await sleep(10)
  })
})
