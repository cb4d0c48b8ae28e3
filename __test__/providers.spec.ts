// Providers written in JavaScript (`manager.registerProvider`, seed 000 FAQ Q25 and Q14): a real
// provider that runs commands with child_process in a temporary directory, and one that wraps
// another manager's Docker sandboxes to audit them; every library feature on top of them.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  SandboxManager,
  SandboxedAgentExecutor,
  type CustomExecuteOptions,
  type CustomExecuteResult,
  type CustomSandbox,
  type SandboxConfig,
} from '../index.js'
import { BUSYBOX, expectCode, goneOf } from './helpers.js'

const WORKSPACE = '/workspace'

/** Runs commands on this host, in a temporary directory that stands for /workspace. */
class LocalSandbox implements CustomSandbox {
  static instances: LocalSandbox[] = []
  dir = ''
  calls: string[] = []
  constructor(readonly config: SandboxConfig & { id: string }) {
    LocalSandbox.instances.push(this)
  }

  private map(p: string): string {
    if (p === WORKSPACE || p.startsWith(WORKSPACE + '/')) return path.join(this.dir, p.slice(WORKSPACE.length))
    throw Object.assign(new Error(`${p} is outside the workspace`), { code: 'PERMISSION_DENIED' })
  }

  async start() {
    this.calls.push('start')
    if (!this.dir) this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-sandbox-'))
  }

  execute(command: string, args: string[], options: CustomExecuteOptions): Promise<CustomExecuteResult> {
    this.calls.push(`execute ${command}`)
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { cwd: this.map(options.workdir), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir, ...options.env } })
      const out: Buffer[] = []
      const err: Buffer[] = []
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, options.timeout * 1000)
      child.stdout.on('data', (d) => out.push(d))
      child.stderr.on('data', (d) => err.push(d))
      child.stdin.on('error', () => {}) // a command that does not read its stdin
      child.stdin.end(options.stdin ?? '')
      child.on('error', (e: any) => {
        clearTimeout(timer)
        if (e.code === 'ENOENT') resolve({ exitCode: 127, stdout: '', stderr: `${command}: not found\n` })
        else reject(e)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        resolve({ exitCode: timedOut ? 124 : (code ?? 128), stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut, signal: signal ?? undefined })
      })
    })
  }

  async writeFile(p: string, content: Buffer) {
    const f = this.map(p)
    fs.mkdirSync(path.dirname(f), { recursive: true })
    fs.writeFileSync(f, content)
  }

  async readFile(p: string) {
    return fs.readFileSync(this.map(p))
  }

  async listFiles(p: string, options: { recursive: boolean; all: boolean }) {
    const names = fs.readdirSync(this.map(p), { recursive: options.recursive }) as string[]
    return names.filter((n) => options.all || !n.split('/').some((part) => part.startsWith('.')))
  }

  async deleteFile(p: string, options: { recursive: boolean }) {
    fs.rmSync(this.map(p), { recursive: options.recursive, force: true })
  }

  async listFilesDetailed(p: string, options: { recursive: boolean; all: boolean }) {
    const base = this.map(p)
    return (await this.listFiles(p, options)).map((rel) => {
      const st = fs.lstatSync(path.join(base, rel))
      const type = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other'
      return { path: rel, type, size: st.size, mtimeMs: st.mtimeMs, permissions: (st.mode & 0o777).toString(8) } as const
    })
  }

  async stop() {
    this.calls.push('stop')
  }

  async destroy() {
    this.calls.push('destroy')
    fs.rmSync(this.dir, { recursive: true, force: true })
  }

  async getStats() {
    return { memoryUsageMB: 12.5 }
  }

  async healthCheck() {
    return { healthy: fs.existsSync(this.dir), message: this.dir }
  }

  async reset() {
    this.calls.push('reset')
    for (const f of fs.readdirSync(this.dir)) fs.rmSync(path.join(this.dir, f), { recursive: true, force: true })
  }
}

const managers: SandboxManager[] = []
function localManager(config: SandboxConfig = {}) {
  const m = new SandboxManager({ provider: 'local', ...config })
  m.registerProvider('local', LocalSandbox)
  managers.push(m)
  return m
}

afterAll(async () => {
  for (const m of managers) await m.destroyAll()
})

describe('a JavaScript provider (child_process in a temporary directory)', () => {
  it('runs commands, files, status and the lifecycle through the Sandbox API', async () => {
    const m = localManager()
    const sb = await m.createSandbox({ env: { GREETING: 'hi from env' }, name: 'local-one' })
    expect(sb.id).toMatch(/^local-[0-9a-f]{16}$/)
    expect(sb.provider).toBe('local')
    expect(sb.state).toBe('created')
    await expectCode(sb.execute('echo', ['early']), 'SANDBOX_NOT_RUNNING')
    await sb.start()
    expect(sb.state).toBe('running')
    expect(sb.execEngine).toBe('local')
    const inst = LocalSandbox.instances.at(-1)!
    expect(inst.config).toMatchObject({ provider: 'local', id: sb.id, workdir: '/workspace', name: 'local-one' })
    expect(inst.config.limits?.timeoutSeconds).toBeGreaterThan(0)

    const r = await sb.execute('sh', ['-c', 'echo "$GREETING"; echo err >&2; exit 3'])
    expect(r).toMatchObject({ exitCode: 3, stdout: 'hi from env\n', stderr: 'err\n', timedOut: false })
    const chunks: string[] = []
    const cat = await sb.execute('cat', [], { stdin: 'piped in', onStdout: (c) => chunks.push(c) })
    expect(cat.stdout).toBe('piped in')
    expect(chunks.join('')).toBe('piped in')
    expect((await sb.execute('no-such-program-xyz')).exitCode).toBe(127)
    const slow = await sb.execute('sleep', ['5'], { timeout: 0.5 })
    expect(slow).toMatchObject({ timedOut: true, exitCode: 124 })
    const capped = await sb.execute('sh', ['-c', 'head -c 100000 /dev/zero'], { maxOutputBytes: 1000 })
    expect(capped.truncated).toBe(true)
    expect(capped.stdout.length).toBe(1000)

    expect((await sb.writeFile('notes/a.txt', 'alpha')).path).toBe('/workspace/notes/a.txt')
    expect((await sb.readFile('/workspace/notes/a.txt')).content).toBe('alpha')
    expect(fs.readFileSync(path.join(inst.dir, 'notes/a.txt'), 'utf8')).toBe('alpha')
    expect(await sb.listFiles()).toEqual(['notes'])
    expect((await sb.listFiles('.', { recursive: true })).sort()).toEqual(['notes', 'notes/a.txt'])
    const missing = await sb.readFile('nope.txt')
    expect(missing.success).toBe(false)
    expect(missing.error).toContain('ENOENT')
    // the provider's own PERMISSION_DENIED keeps its code
    const outside = await sb.writeFile('/etc/x', 'no')
    expect(outside).toMatchObject({ success: false, code: 'PERMISSION_DENIED' })
    expect((await sb.deleteFile('notes', { recursive: true })).success).toBe(true)
    expect(await sb.listFiles()).toEqual([])

    expect((await sb.getStats()).memoryUsageMB).toBe(12.5)
    expect(await sb.healthCheck()).toMatchObject({ healthy: true })
    const status = await sb.getStatus()
    expect(status).toMatchObject({ provider: 'local', engine: 'local', state: 'running', name: 'local-one' })
    expect(status.executions.total).toBeGreaterThanOrEqual(5)

    await expectCode(sb.execute('sleep', ['1'], { background: true }), 'NOT_SUPPORTED')
    await sb.stop()
    expect(sb.state).toBe('stopped')
    await sb.start()
    expect((await sb.execute('true')).exitCode).toBe(0)
    await sb.destroy()
    expect(sb.state).toBe('destroyed')
    expect(inst.calls).toEqual(expect.arrayContaining(['start', 'stop', 'destroy']))
    expect(fs.existsSync(inst.dir)).toBe(false)
    expect(m.listSandboxes()).toEqual([])
  })

  it('runCode, runTests, configure, logs and quotas work on it', async () => {
    const m = localManager()
    const sb = await m.createSandbox({ limits: { maxFileSizeMB: 1 } })
    await sb.start()
    const code = await sb.runCode('echo $((6 * 7))', { language: 'bash' })
    expect(code).toMatchObject({ success: true, output: '42\n', language: 'bash' })
    const tests = await sb.runTests({ framework: 'vitest', command: "printf ' Test Files  1 passed (1)\\n      Tests  2 passed (2)\\n'" })
    expect(tests).toMatchObject({ framework: 'vitest', parsed: true, passed: 2, total: 2, success: true })
    const c = await sb.configure({ env: { CONFIGURED: 'yes' }, runCommands: ['mkdir -p made'] })
    expect(c.success).toBe(true)
    expect((await sb.execute('sh', ['-c', 'echo $CONFIGURED; ls'])).stdout).toBe('yes\nmade\n')
    expect(sb.getLogs({ lines: 100 }).logs.some((l) => l.message.includes('runCode (bash'))).toBe(true)
    const big = await sb.writeFile('big.bin', Buffer.alloc(2 * 1024 * 1024))
    expect(big).toMatchObject({ success: false, code: 'QUOTA_EXCEEDED' })
  })

  it('sessions and pools of the manager use it (a pool resets through the provider\'s reset())', async () => {
    const m = localManager()
    const a = await m.getOrCreateSession({ userId: 'u', threadId: 't1' })
    await a.writeFile('kept.txt', 'kept')
    const again = await m.getOrCreateSession({ userId: 'u', threadId: 't1' })
    expect(again.id).toBe(a.id)
    expect((await again.readFile('kept.txt')).content).toBe('kept')
    expect(a.provider).toBe('local')

    const pool = await m.createPool({}, { min: 1, max: 2 })
    const p1 = await pool.acquire()
    expect(p1.provider).toBe('local')
    await p1.writeFile('leftover.txt', 'x')
    const before = LocalSandbox.instances.length
    await pool.release(p1)
    const p2 = await pool.acquire()
    expect(p2.id).toBe(p1.id)
    expect(await p2.listFiles()).toEqual([])
    expect(LocalSandbox.instances.find((i) => i.config.id === p1.id)!.calls).toContain('reset')
    expect(LocalSandbox.instances.length).toBe(before)
    await pool.release(p2)
  })

  it('an agent run with interceptors works on it', async () => {
    const m = localManager()
    const executor = new SandboxedAgentExecutor(m)
    const seen: string[] = []
    const r = await executor.execute('use the tools', {
      sandboxConfig: { provider: 'local' },
      interceptors: [{ toolName: 'Bash', handler: (p: any) => void seen.push(p.command) }],
      captureFiles: true,
      agent: async (_task: string, tools: any) => {
        await tools.call('Write', { file_path: '/workspace/hello.txt', content: 'hello agent\n' })
        const out = await tools.call('Bash', { command: 'cat hello.txt' })
        return out.content
      },
    })
    expect(r.exitCode).toBe(0)
    expect(r.output).toContain('hello agent')
    expect(seen).toEqual(['cat hello.txt'])
    expect(r.files.map((f) => f.path)).toContain('hello.txt')
  })

  it('a factory function works as well as a class', async () => {
    const m = new SandboxManager()
    managers.push(m)
    m.registerProvider('factory-made', (config) => new LocalSandbox(config))
    const sb = await m.createSandbox({ provider: 'factory-made' })
    await sb.start()
    expect((await sb.execute('echo', ['made'])).stdout).toBe('made\n')
    await sb.destroy()
  })
})

describe('errors and a provider that misbehaves', () => {
  it('bad names, unregistered providers and incomplete implementations are clear errors', async () => {
    const m = new SandboxManager()
    managers.push(m)
    for (const bad of ['', 'Docker', 'docker', 'has space', 'x'.repeat(41)]) {
      expect(() => m.registerProvider(bad, LocalSandbox)).toThrow(/provider name|lowercase/)
    }
    expect(() => m.registerProvider('ok-name', 42 as any)).toThrow(/class or a function/)
    const e = await expectCode(m.createSandbox({ provider: 'never-registered' }), 'INVALID_CONFIG')
    expect(e.message).toContain('registerProvider')
    m.registerProvider('half', class {
      async start() {}
    } as any)
    const half = await m.createSandbox({ provider: 'half' })
    const err = await expectCode(half.start(), 'INVALID_CONFIG')
    expect(err.message).toMatch(/lacks execute\(\), writeFile\(\)/)
  })

  it('errors thrown in JS keep their message and code', async () => {
    class Failing extends LocalSandbox {
      override async execute(command: string): Promise<CustomExecuteResult> {
        if (command === 'denied') throw Object.assign(new Error('not allowed here'), { code: 'PERMISSION_DENIED' })
        if (command === 'null') return null as any
        throw Object.assign(new Error('the backend broke'), { code: 'EBACKEND' })
      }
    }
    const m = new SandboxManager()
    managers.push(m)
    m.registerProvider('failing', Failing)
    const sb = await m.createSandbox({ provider: 'failing' })
    await sb.start()
    const a = await expectCode(sb.execute('boom'), 'EBACKEND')
    expect(a.message).toContain('the backend broke')
    const b = await expectCode(sb.execute('denied'), 'PERMISSION_DENIED')
    expect(b.message).toContain('not allowed here')
    const c = await expectCode(sb.execute('null'), 'PROVIDER_ERROR')
    expect(c.message).toContain('exitCode')
  })

  it('a provider that never answers hits the deadlines: timeoutSeconds for calls, the command timeout for execute', async () => {
    class Silent extends LocalSandbox {
      override execute(): Promise<CustomExecuteResult> {
        return new Promise(() => {})
      }
      override async writeFile(): Promise<void> {
        return new Promise(() => {})
      }
    }
    const m = new SandboxManager()
    managers.push(m)
    m.registerProvider('silent', Silent, { timeoutSeconds: 1 })
    const sb = await m.createSandbox({ provider: 'silent' })
    await sb.start()
    const t0 = Date.now()
    const r = await sb.execute('anything', [], { timeout: 0.5 })
    expect(r).toMatchObject({ timedOut: true, exitCode: 124 })
    const w = await sb.writeFile('x.txt', 'x')
    expect(w).toMatchObject({ success: false, code: 'PROVIDER_ERROR' })
    expect(w.error).toContain('did not answer within 1 s')
    expect(Date.now() - t0).toBeLessThan(30_000)
    expect(() => m.registerProvider('slow', Silent, { timeoutSeconds: -1 })).toThrow(/timeoutSeconds/)
  })
})

describe('an auditing provider around another manager\'s Docker sandboxes (seed 000 Q14)', () => {
  it('records every call and runs it in a real container', async () => {
    const inner = new SandboxManager({ image: BUSYBOX })
    managers.push(inner)
    const audit: string[] = []
    class Audited implements CustomSandbox {
      private sb: Awaited<ReturnType<SandboxManager['createSandbox']>> | undefined
      constructor(readonly config: SandboxConfig & { id: string }) {}
      private get s() {
        if (!this.sb) throw new Error('not started')
        return this.sb
      }
      async start() {
        audit.push('start')
        this.sb = await inner.createSandbox({ image: BUSYBOX })
        await this.sb.start()
      }
      async execute(command: string, args: string[], o: CustomExecuteOptions) {
        audit.push(`execute ${[command, ...args].join(' ')}`)
        return this.s.execute(command, args, { timeout: o.timeout, env: o.env, workdir: o.workdir, stdin: o.stdin })
      }
      async writeFile(p: string, content: Buffer) {
        audit.push(`write ${p}`)
        return this.s.writeFile(p, content)
      }
      async readFile(p: string) {
        audit.push(`read ${p}`)
        return this.s.readFile(p, { encoding: 'buffer' })
      }
      async listFiles(p: string, o: { recursive: boolean; all: boolean }) {
        return this.s.listFiles(p, o)
      }
      async deleteFile(p: string, o: { recursive: boolean }) {
        return this.s.deleteFile(p, o)
      }
      async stop() {
        await this.s.stop()
      }
      async destroy() {
        audit.push('destroy')
        await this.sb?.destroy()
      }
    }
    const m = new SandboxManager()
    managers.push(m)
    m.registerProvider('audited', Audited)
    const sb = await m.createSandbox({ provider: 'audited' })
    await sb.start()
    expect((await sb.execute('sh', ['-c', 'cat /etc/hostname | wc -c'])).exitCode).toBe(0)
    await sb.writeFile('data.bin', Buffer.from([0, 1, 2, 255]))
    expect([...(await sb.readFile('data.bin', { encoding: 'buffer' })).buffer!]).toEqual([0, 1, 2, 255])
    const innerId = inner.listSandboxes()[0].id
    await sb.destroy()
    expect(audit).toEqual(['start', 'execute sh -c cat /etc/hostname | wc -c', 'write /workspace/data.bin', 'read /workspace/data.bin', 'destroy'])
    expect(await goneOf(innerId)).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })
})

describe('code contexts on a JavaScript provider', () => {
  it('are refused with NOT_SUPPORTED (no stream-only long-lived process), naming the alternative', async () => {
    const m = localManager()
    const sb = await m.createSandbox({})
    await sb.start()
    const e = await expectCode(sb.createCodeContext({ language: 'bash' }), 'NOT_SUPPORTED')
    expect(e.message).toContain('runCode without `context`')
    expect(await sb.listCodeContexts()).toEqual([])
  })
})
