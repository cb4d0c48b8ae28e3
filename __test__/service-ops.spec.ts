// Operations around a sandbox: its own log (getLogs / streamLogs), getStatus, manager.list, workspace
// quotas, the command policy, and uploadFile / downloadFile between the host and the workspace.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, DEBIAN, TEST_TEMPLATES, expectCode, expectCodeSync, sleep, waitFor, withSandbox } from './helpers.js'

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
const MB = 1024 * 1024

/** exit code of `test -e path` in the sandbox: 0 exists, 1 missing. */
const exists = async (sb: any, p: string) => (await sb.execute('test', ['-e', p])).exitCode === 0

// ------------------------------------------------------------------------------------------ logs

describe('getLogs / streamLogs', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  let sb: any
  let t0 = 0

  beforeAll(async () => {
    t0 = Date.now()
    sb = await manager.createSandbox()
    await sb.start()
    expect((await sb.execute('echo', ['hello-out'])).exitCode).toBe(0)
    expect((await sb.execute('sh', ['-c', 'echo err-line >&2; exit 3'])).exitCode).toBe(3)
    expect((await sb.execute('sh', ['-c', 'echo two; echo lines'])).stdout).toBe('two\nlines\n')
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('records lifecycle, commands, stdout (info) and stderr (error) lines with ISO timestamps', () => {
    const r = sb.getLogs()
    const logs = r.logs
    expect(logs.length).toBeGreaterThan(0)
    const has = (pred: (e: any) => boolean, what: string) => expect(logs.some(pred), `${what} in ${JSON.stringify(logs, null, 1)}`).toBe(true)
    has((e) => e.source === 'system' && e.level === 'info' && /started/i.test(e.message), 'system "started" entry')
    has((e) => e.source === 'execution' && e.level === 'info' && e.message.startsWith('Running:') && e.message.includes('echo hello-out'), 'Running: echo hello-out')
    has((e) => e.source === 'stdout' && e.level === 'info' && e.message === 'hello-out', 'stdout line')
    has((e) => e.source === 'stderr' && e.level === 'error' && e.message === 'err-line', 'stderr line')
    has((e) => e.source === 'execution' && e.level === 'error' && e.message.includes('3'), 'failed command entry')
    has((e) => e.source === 'stdout' && e.message === 'two', 'first of two lines')
    has((e) => e.source === 'stdout' && e.message === 'lines', 'second of two lines')
    for (const e of logs) {
      expect(['error', 'warn', 'info', 'debug']).toContain(e.level)
      expect(['system', 'execution', 'stdout', 'stderr']).toContain(e.source)
      expect(e.timestamp).toMatch(ISO)
      const t = Date.parse(e.timestamp)
      expect(t).toBeGreaterThanOrEqual(t0 - 1000)
      expect(t).toBeLessThanOrEqual(Date.now() + 1000)
    }
    // oldest first
    const times = logs.map((e: any) => Date.parse(e.timestamp))
    expect([...times].sort((a, b) => a - b)).toEqual(times)
    // the command's start comes before its output
    const running = logs.findIndex((e: any) => e.message.startsWith('Running:') && e.message.includes('hello-out'))
    const out = logs.findIndex((e: any) => e.source === 'stdout' && e.message === 'hello-out')
    expect(running).toBeLessThan(out)
    expect(r.totalLines).toBeGreaterThanOrEqual(logs.length)
    expect(r.dropped).toBe(0)
    expect(r.oldestEntry).toMatch(ISO)
    expect(Date.parse(r.oldestEntry)).toBeLessThanOrEqual(times[0])
  })

  it('lines keeps the newest entries', () => {
    const all = sb.getLogs({ lines: 1000 }).logs
    const two = sb.getLogs({ lines: 2 })
    expect(two.logs).toHaveLength(2)
    expect(two.logs).toEqual(all.slice(-2))
    expect(two.totalLines).toBe(all.length)
    expect(sb.getLogs({ lines: 0 }).logs).toEqual([])
  })

  it('level filters by minimum level', () => {
    const all = sb.getLogs({ lines: 1000 }).logs
    const errors = sb.getLogs({ lines: 1000, level: 'error' })
    expect(errors.logs.length).toBeGreaterThan(0)
    expect(errors.logs.every((e: any) => e.level === 'error')).toBe(true)
    expect(errors.logs.some((e: any) => e.message === 'err-line')).toBe(true)
    expect(errors.logs).toEqual(all.filter((e: any) => e.level === 'error'))
    expect(errors.totalLines).toBe(errors.logs.length)
    const warn = sb.getLogs({ lines: 1000, level: 'warn' }).logs
    expect(warn).toEqual(all.filter((e: any) => e.level === 'warn' || e.level === 'error'))
    const info = sb.getLogs({ lines: 1000, level: 'info' }).logs
    expect(info).toEqual(all.filter((e: any) => e.level !== 'debug'))
    expect(sb.getLogs({ lines: 1000, level: 'all' }).logs).toEqual(all)
    expect(sb.getLogs({ lines: 1000, level: 'debug' }).logs).toEqual(all)
  })

  it('includeTimestamps: false leaves the timestamp out', () => {
    const logs = sb.getLogs({ includeTimestamps: false }).logs
    expect(logs.length).toBeGreaterThan(0)
    for (const e of logs) expect(e.timestamp ?? undefined).toBeUndefined()
    expect(logs.map((e: any) => e.message)).toEqual(sb.getLogs().logs.map((e: any) => e.message))
  })

  it('invalid options throw', () => {
    expect(expectCodeSync(() => sb.getLogs({ level: 'verbose' } as any), 'INVALID_ARGUMENT').message).toMatch(/level/)
    expect(expectCodeSync(() => sb.getLogs({ lines: -1 }), 'INVALID_ARGUMENT').message).toMatch(/lines/)
    expect(expectCodeSync(() => sb.getLogs({ lines: 1.5 }), 'INVALID_ARGUMENT').message).toMatch(/lines/)
  })

  it('streamLogs delivers new entries live; stop() ends delivery', async () => {
    const received: any[] = []
    const stream = sb.streamLogs((e: any) => received.push(e))
    try {
      await sb.execute('echo', ['live-1'])
      await sb.execute('sh', ['-c', 'echo live-err >&2'])
      const got = await waitFor(
        () => received.some((e) => e.message === 'live-1') && received.some((e) => e.message === 'live-err'),
        10_000,
        50,
      )
      expect(got, JSON.stringify(received)).toBe(true)
      // only entries from now on
      expect(received.some((e) => e.message === 'hello-out')).toBe(false)
      expect(received.some((e) => e.source === 'execution' && e.message.startsWith('Running:') && e.message.includes('live-1'))).toBe(true)
      const out = received.find((e) => e.message === 'live-1')
      expect(out).toMatchObject({ level: 'info', source: 'stdout' })
      expect(out.timestamp).toMatch(ISO)
      expect(received.find((e) => e.message === 'live-err')).toMatchObject({ level: 'error', source: 'stderr' })
    } finally {
      stream.stop()
    }
    const n = received.length
    await sb.execute('echo', ['after-stop'])
    await sleep(500)
    expect(received.some((e) => e.message === 'after-stop')).toBe(false)
    expect(received.length).toBe(n)
    // the entry is in the log all the same; stop() is idempotent
    expect(sb.getLogs().logs.some((e: any) => e.message === 'after-stop')).toBe(true)
    expect(() => stream.stop()).not.toThrow()
  })

  it('is bounded: the newest 1000 entries, 4 KiB messages, long outputs summarised', async () => {
    const r = await sb.execute('sh', ['-c', 'i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done'])
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(5000)
    const logs = sb.getLogs({ lines: 100_000 }).logs
    expect(logs.length).toBeLessThanOrEqual(1000)
    const lineEntries = logs.filter((e: any) => e.source === 'stdout' && /^line-\d+$/.test(e.message))
    const notes = logs.filter((e: any) => /^… \d+ more stdout lines not logged$/.test(e.message))
    expect(notes, JSON.stringify(logs.slice(-5))).toHaveLength(1)
    const notLogged = Number(/(\d+)/.exec(notes[0].message)![1])
    expect(notLogged).toBeGreaterThan(0)
    expect(lineEntries.length + notLogged).toBe(5000)

    // a 10000-character line is cut
    await sb.execute('sh', ['-c', "printf '%10000s\\n' '' | tr ' ' x"])
    const long = sb.getLogs({ lines: 5 }).logs.find((e: any) => e.source === 'stdout' && e.message.startsWith('xxxx'))
    expect(long).toBeDefined()
    expect(Buffer.byteLength(long.message)).toBeLessThanOrEqual(4096 + 3)

    // enough entries to overflow: stdout and stderr of 5000 lines each, three times
    for (let i = 0; i < 3; i++) {
      const x = await sb.execute('sh', ['-c', 'seq 1 5000; seq 1 5000 >&2'])
      expect(x.exitCode).toBe(0)
    }
    const full = sb.getLogs({ lines: 100_000 })
    expect(full.dropped).toBeGreaterThan(0)
    expect(full.logs).toHaveLength(1000)
    expect(full.totalLines).toBe(1000)
    // the oldest ones went: the "started" entry is no longer there
    expect(full.logs.some((e: any) => e.source === 'system' && /started/i.test(e.message))).toBe(false)
    expect(Date.parse(full.oldestEntry)).toBe(Date.parse(full.logs[0].timestamp))
  })
})

// ------------------------------------------------------------------------------------------ getStatus

describe('getStatus', () => {
  it('state, uptime, resource usage against the limits, execution counts, name and metadata', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb = await manager.createSandbox({ name: 'status-box', metadata: { team: 'qa', n: 3 }, limits: { memoryMB: 256 } })
      const created = await sb.getStatus()
      expect(created).toMatchObject({ id: sb.id, name: 'status-box', state: 'created', provider: 'docker', image: BUSYBOX, uptime: 0 })
      expect(created.metadata).toMatchObject({ team: 'qa', n: 3 })
      expect(created.createdAt).toMatch(ISO)
      expect(created.executions).toEqual({ total: 0, successful: 0, failed: 0, averageDuration: 0 })

      await sb.start()
      expect((await sb.execute('sh', ['-c', 'sleep 0.2; echo ok'])).exitCode).toBe(0)
      expect((await sb.runCode('echo from-runCode')).exitCode).toBe(0)
      expect((await sb.execute('sh', ['-c', 'exit 4'])).exitCode).toBe(4)
      await sleep(300)

      const st = await sb.getStatus()
      expect(st.state).toBe('running')
      expect(st.id).toBe(sb.id)
      expect(st.name).toBe('status-box')
      expect(st.metadata).toMatchObject({ team: 'qa', n: 3 })
      expect(st.engine).toBe(sb.execEngine)
      expect(st.uptime).toBeGreaterThan(0)
      expect(st.startedAt).toMatch(ISO)
      expect(Date.parse(st.startedAt)).toBeGreaterThanOrEqual(Date.parse(st.createdAt))
      expect(st.resourceUsage.memoryLimitMB).toBe(256)
      expect(st.resourceUsage.diskLimitMB).toBe(sb.limits.diskMB)
      expect(st.resourceUsage.memoryUsedMB).toBeGreaterThanOrEqual(0)
      expect(st.resourceUsage.memoryUsedMB).toBeLessThanOrEqual(256)
      for (const k of ['cpuPercent', 'memoryPercent', 'diskUsedMB', 'networkRxMB', 'networkTxMB']) {
        expect(typeof st.resourceUsage[k], k).toBe('number')
        expect(st.resourceUsage[k], k).toBeGreaterThanOrEqual(0)
      }
      expect(st.executions.total).toBe(3)
      expect(st.executions.successful).toBe(2)
      expect(st.executions.failed).toBe(1)
      expect(st.executions.averageDuration).toBeGreaterThan(0)
      expect(st.session ?? undefined).toBeUndefined()
      expect(st.expiresAt ?? undefined).toBeUndefined()

      // lastActivity moves with use
      expect(st.lastActivity).toMatch(ISO)
      await sleep(50)
      await sb.execute('true')
      const later = await sb.getStatus()
      expect(Date.parse(later.lastActivity)).toBeGreaterThan(Date.parse(st.lastActivity))
      expect(later.executions.total).toBe(4)

      await sb.stop()
      const stopped = await sb.getStatus()
      expect(stopped.state).toBe('stopped')
      expect(stopped.uptime).toBe(0)
    } finally {
      await manager.destroyAll()
    }
  })

  it('a session sandbox reports its session and when it expires', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb = await manager.getOrCreateSession({ userId: 'user-7', threadId: 'thread-7', timeoutMinutes: 10 })
      const st = await sb.getStatus()
      expect(st.session).toEqual({ userId: 'user-7', threadId: 'thread-7', timeoutMinutes: 10, autoRetry: true, expired: false })
      expect(st.expiresAt).toMatch(ISO)
      expect(Math.abs(Date.parse(st.expiresAt) - Date.parse(st.lastActivity) - 10 * 60_000)).toBeLessThan(1000)
      expect(st.state).toBe('running')
    } finally {
      await manager.destroyAll()
    }
  })
})

// ------------------------------------------------------------------------------------------ manager.list

describe('manager.list', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', templates: TEST_TEMPLATES })
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    // created one after another (distinct createdAt): alpha running, bravo running (template base),
    // charlie stopped, delta created but never started
    const a = await manager.createSandbox({ name: 'alpha' })
    await a.start()
    ids.alpha = a.id
    await sleep(5)
    const b = await manager.createSandbox({ name: 'bravo', template: 'base' })
    await b.start()
    ids.bravo = b.id
    await sleep(5)
    const c = await manager.createSandbox({ name: 'charlie' })
    await c.start()
    await c.stop()
    ids.charlie = c.id
    await sleep(5)
    const d = await manager.createSandbox({ name: 'delta' })
    ids.delta = d.id
    await sleep(5)
    // alpha is the most recently used
    await a.execute('true')
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  const names = (list: any[]) => list.map((s) => s.name)

  it('lists every sandbox, newest first, with a summary of each', async () => {
    const list = await manager.list()
    expect(names(list)).toEqual(['delta', 'charlie', 'bravo', 'alpha'])
    const byName = Object.fromEntries(list.map((s: any) => [s.name, s]))
    expect(byName.alpha).toMatchObject({ id: ids.alpha, provider: 'docker', status: 'running' })
    expect(byName.bravo).toMatchObject({ id: ids.bravo, status: 'running', template: 'base' })
    expect(byName.charlie).toMatchObject({ id: ids.charlie, status: 'stopped', uptime: 0 })
    expect(byName.delta).toMatchObject({ id: ids.delta, status: 'created', uptime: 0 })
    expect(byName.alpha.template ?? undefined).toBeUndefined()
    for (const s of list) {
      expect(s.createdAt).toMatch(ISO)
      expect(s.lastActivity).toMatch(ISO)
      expect(typeof s.uptime).toBe('number')
      expect(typeof s.resourceUsage.cpuPercent).toBe('number')
      expect(typeof s.resourceUsage.memoryUsedMB).toBe('number')
    }
    expect(byName.alpha.uptime).toBeGreaterThanOrEqual(0)
  })

  it('filters by status and template', async () => {
    expect(names(await manager.list({ status: 'running' })).sort()).toEqual(['alpha', 'bravo'])
    expect(names(await manager.list({ status: 'stopped' }))).toEqual(['charlie'])
    expect(names(await manager.list({ status: 'created' }))).toEqual(['delta'])
    expect(await manager.list({ status: 'all' })).toHaveLength(4)
    expect(names(await manager.list({ template: 'base' }))).toEqual(['bravo'])
    expect(await manager.list({ template: 'python' })).toEqual([])
    expect(names(await manager.list({ status: 'running', template: 'base' }))).toEqual(['bravo'])
    expect(await manager.list({ status: 'stopped', template: 'base' })).toEqual([])
  })

  it('limit, sortBy and order', async () => {
    expect(names(await manager.list({ limit: 2 }))).toEqual(['delta', 'charlie'])
    expect(await manager.list({ limit: 0 })).toEqual([])
    expect(names(await manager.list({ sortBy: 'createdAt', order: 'asc' }))).toEqual(['alpha', 'bravo', 'charlie', 'delta'])
    expect(names(await manager.list({ sortBy: 'name', order: 'asc' }))).toEqual(['alpha', 'bravo', 'charlie', 'delta'])
    expect(names(await manager.list({ sortBy: 'name', order: 'desc' }))).toEqual(['delta', 'charlie', 'bravo', 'alpha'])
    expect(names(await manager.list({ sortBy: 'name' }))).toEqual(['delta', 'charlie', 'bravo', 'alpha'])
    const sortedIds = Object.values(ids).sort()
    expect((await manager.list({ sortBy: 'id', order: 'asc' })).map((s: any) => s.id)).toEqual(sortedIds)
    expect((await manager.list({ sortBy: 'lastActivity', order: 'desc', limit: 1 })).map((s: any) => s.name)).toEqual(['alpha'])
    expect(names(await manager.list({ status: 'running', sortBy: 'name', order: 'asc', limit: 1 }))).toEqual(['alpha'])
  })

  it('invalid options are INVALID_ARGUMENT', async () => {
    await expectCode(manager.list({ sortBy: 'size' }), 'INVALID_ARGUMENT')
    await expectCode(manager.list({ order: 'up' }), 'INVALID_ARGUMENT')
    await expectCode(manager.list({ status: 'zombie' }), 'INVALID_ARGUMENT')
    await expectCode(manager.list({ limit: -1 }), 'INVALID_ARGUMENT')
    await expectCode(manager.list({ limit: 1.5 }), 'INVALID_ARGUMENT')
  })
})

// ------------------------------------------------------------------------------------------ quotas

describe('workspace quotas', () => {
  it('maxFileSizeMB: exactly the limit is allowed, one byte more is QUOTA_EXCEEDED and writes nothing', async () => {
    await withSandbox({ limits: { maxFileSizeMB: 1 } }, async (sb) => {
      expect(sb.limits.maxFileSizeMB).toBe(1)
      const ok = await sb.writeFile('exact.bin', Buffer.alloc(MB, 1))
      expect(ok.success, ok.error).toBe(true)
      expect((await sb.execute('wc', ['-c', '/workspace/exact.bin'])).stdout).toMatch(/^\s*1048576\s/)

      const over = await sb.writeFile('over.bin', Buffer.alloc(MB + 1, 2))
      expect(over.success).toBe(false)
      expect(over.code).toBe('QUOTA_EXCEEDED')
      expect(over.error).toContain('maxFileSizeMB')
      expect(await exists(sb, '/workspace/over.bin')).toBe(false)

      // an existing file keeps its old content
      expect((await sb.writeFile('keep.txt', 'old content')).success).toBe(true)
      const big = await sb.writeFile('keep.txt', 'x'.repeat(MB + 1))
      expect(big.code).toBe('QUOTA_EXCEEDED')
      expect((await sb.readFile('keep.txt')).content).toBe('old content')
      // no temp file was left behind either
      expect((await sb.listFiles('/workspace', { all: true })).sort()).toEqual(['exact.bin', 'keep.txt'])
    })
  })

  it('maxTotalFiles: the limit counts files; overwriting is not a new file', async () => {
    await withSandbox({ limits: { maxTotalFiles: 3 } }, async (sb) => {
      for (const n of ['a.txt', 'b.txt', 'dir/c.txt']) {
        const w = await sb.writeFile(n, n)
        expect(w.success, `${n}: ${w.error}`).toBe(true)
      }
      const fourth = await sb.writeFile('d.txt', 'd')
      expect(fourth.success).toBe(false)
      expect(fourth.code).toBe('QUOTA_EXCEEDED')
      expect(fourth.error).toContain('maxTotalFiles')
      expect(await exists(sb, '/workspace/d.txt')).toBe(false)
      const nested = await sb.writeFile('dir/deeper/e.txt', 'e')
      expect(nested.code).toBe('QUOTA_EXCEEDED')
      expect(await exists(sb, '/workspace/dir/deeper/e.txt')).toBe(false)

      // overwriting an existing file is fine
      const over = await sb.writeFile('a.txt', 'new a')
      expect(over.success, over.error).toBe(true)
      expect((await sb.readFile('a.txt')).content).toBe('new a')
      // deleting one makes room again
      expect((await sb.deleteFile('b.txt')).success).toBe(true)
      expect((await sb.writeFile('d.txt', 'd')).success).toBe(true)
      expect((await sb.writeFile('e.txt', 'e')).code).toBe('QUOTA_EXCEEDED')
    })
  })

  it('maxWorkspaceSizeMB: a total exactly at the limit is allowed, one byte over is not', async () => {
    await withSandbox({ limits: { maxWorkspaceSizeMB: 1 } }, async (sb) => {
      expect((await sb.writeFile('a.bin', Buffer.alloc(MB / 2))).success).toBe(true)
      const b = await sb.writeFile('b.bin', Buffer.alloc(MB / 2))
      expect(b.success, b.error).toBe(true) // exactly 1 MiB in total
      const c = await sb.writeFile('c.txt', 'x')
      expect(c.success).toBe(false)
      expect(c.code).toBe('QUOTA_EXCEEDED')
      expect(c.error).toContain('maxWorkspaceSizeMB')
      expect(await exists(sb, '/workspace/c.txt')).toBe(false)

      // overwriting counts the difference: shrink a.bin by one byte, then the 1-byte file fits
      expect((await sb.writeFile('a.bin', Buffer.alloc(MB / 2 - 1))).success).toBe(true)
      const c2 = await sb.writeFile('c.txt', 'x')
      expect(c2.success, c2.error).toBe(true)
      // growing c.txt by one byte goes over again, and c.txt keeps its content
      const c3 = await sb.writeFile('c.txt', 'xy')
      expect(c3.code).toBe('QUOTA_EXCEEDED')
      expect((await sb.readFile('c.txt')).content).toBe('x')
    })
  })

  describe('environment variables', () => {
    const KEYS = ['MAX_FILE_SIZE_MB', 'MAX_TOTAL_FILES', 'MAX_WORKSPACE_SIZE_MB']
    let saved: Record<string, string | undefined> = {}
    beforeEach(() => {
      saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]))
      for (const k of KEYS) delete process.env[k]
    })
    afterEach(() => {
      for (const k of KEYS) {
        if (saved[k] === undefined) delete process.env[k]
        else process.env[k] = saved[k]
      }
    })

    it('MAX_FILE_SIZE_MB (and the other two) are honoured by a new SandboxManager', async () => {
      const plain: any = new SandboxManager({ image: BUSYBOX })
      try {
        const sb = await plain.createSandbox()
        expect(sb.limits.maxFileSizeMB).toBe(100)
        expect(sb.limits.maxTotalFiles ?? undefined).toBeUndefined()
        expect(sb.limits.maxWorkspaceSizeMB ?? undefined).toBeUndefined()
      } finally {
        await plain.destroyAll()
      }

      process.env.MAX_FILE_SIZE_MB = '1'
      process.env.MAX_TOTAL_FILES = '5'
      process.env.MAX_WORKSPACE_SIZE_MB = '3'
      const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
      try {
        const sb = await m.createSandbox()
        expect(sb.limits.maxFileSizeMB).toBe(1)
        expect(sb.limits.maxTotalFiles).toBe(5)
        expect(sb.limits.maxWorkspaceSizeMB).toBe(3)
        await sb.start()
        expect((await sb.writeFile('one-mb.bin', Buffer.alloc(MB))).success).toBe(true)
        const w = await sb.writeFile('too-big.bin', Buffer.alloc(MB + 1))
        expect(w.code).toBe('QUOTA_EXCEEDED')
      } finally {
        await m.destroyAll()
      }
    })
  })

  it('uploadFile respects the quotas (rejects QUOTA_EXCEEDED, writes nothing)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-quota-'))
    try {
      fs.writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(MB + 1))
      fs.writeFileSync(path.join(dir, 'small1.txt'), 'one')
      fs.writeFileSync(path.join(dir, 'small2.txt'), 'two')
      await withSandbox({ limits: { maxFileSizeMB: 1, maxTotalFiles: 1 } }, async (sb) => {
        const e = await expectCode(sb.uploadFile(path.join(dir, 'big.bin')), 'QUOTA_EXCEEDED')
        expect(e.message).toContain('maxFileSizeMB')
        expect(await exists(sb, '/workspace/big.bin')).toBe(false)
        expect((await sb.uploadFile(path.join(dir, 'small1.txt'))).status).toBe('uploaded')
        await expectCode(sb.uploadFile(path.join(dir, 'small2.txt')), 'QUOTA_EXCEEDED')
        expect(await exists(sb, '/workspace/small2.txt')).toBe(false)
        // replacing the one file is allowed
        expect((await sb.uploadFile(path.join(dir, 'small2.txt'), 'small1.txt')).status).toBe('uploaded')
        expect((await sb.readFile('small1.txt')).content).toBe('two')
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('invalid quota limits are INVALID_CONFIG', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      for (const limits of [
        { maxTotalFiles: 0 },
        { maxTotalFiles: 1.5 },
        { maxTotalFiles: -3 },
        { maxFileSizeMB: 0 },
        { maxFileSizeMB: -1 },
        { maxWorkspaceSizeMB: -2 },
      ]) {
        const e = await expectCode(m.createSandbox({ limits }), 'INVALID_CONFIG')
        expect(e.message).toContain(Object.keys(limits)[0])
      }
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })
})

// ------------------------------------------------------------------------------------------ command policy

describe('commandPolicy', () => {
  it('deny: the program and every command of a sh -c script are checked before anything runs', async () => {
    await withSandbox({ commandPolicy: { deny: ['rm', 'curl'] } }, async (sb) => {
      expect((await sb.writeFile('victim.txt', 'still here')).success).toBe(true)
      const refused: Array<[string, string[], string]> = [
        ['rm', ['victim.txt'], 'rm'],
        ['/bin/rm', ['-f', '/workspace/victim.txt'], 'rm'],
        ['sh', ['-c', 'ls | rm victim.txt'], 'rm'],
        ['sh', ['-c', 'echo $(curl x)'], 'curl'],
        ['sh', ['-c', 'true && rm victim.txt'], 'rm'],
        ['sh', ['-c', 'echo `rm victim.txt`'], 'rm'],
        ['sh', ['-c', '(cd /workspace; rm victim.txt)'], 'rm'],
      ]
      for (const [cmd, args, named] of refused) {
        const e = await expectCode(sb.execute(cmd, args), 'PERMISSION_DENIED')
        expect(e.message, `${cmd} ${args.join(' ')}`).toContain(named)
      }
      // background processes and runTests' custom commands are checked too
      await expectCode(sb.execute('rm', ['victim.txt'], { background: true }), 'PERMISSION_DENIED')
      await expectCode(sb.runTests({ command: 'rm -f victim.txt' }), 'PERMISSION_DENIED')
      expect((await sb.readFile('victim.txt')).content).toBe('still here')

      // everything else runs
      const ok = await sb.execute('sh', ['-c', 'ls | wc -l'])
      expect(ok.exitCode).toBe(0)
      expect(ok.stdout.trim()).toBe('1')

      // refusals are logged as warnings of the execution source
      const warns = sb.getLogs({ level: 'warn', lines: 1000 }).logs
      expect(warns.some((e: any) => e.level === 'warn' && e.source === 'execution' && e.message.includes('rm'))).toBe(true)
      expect(warns.some((e: any) => e.level === 'warn' && e.message.includes('curl'))).toBe(true)
    })
  })

  it('allow: only listed programs run', async () => {
    await withSandbox({ commandPolicy: { allow: ['echo', 'cat', 'ls', 'sh'] } }, async (sb) => {
      await sb.writeFile('x', 'one\ntwo\n')
      expect((await sb.execute('sh', ['-c', 'echo hi | cat'])).stdout).toBe('hi\n')
      expect((await sb.execute('sh', ['-c', 'ls /workspace | cat'])).stdout).toBe('x\n')
      expect((await sb.execute('cat', ['/workspace/x'])).stdout).toBe('one\ntwo\n')
      const e = await expectCode(sb.execute('sh', ['-c', 'wc -l x']), 'PERMISSION_DENIED')
      expect(e.message).toContain('wc')
      await expectCode(sb.execute('wc', ['-l', 'x']), 'PERMISSION_DENIED')
      await expectCode(sb.execute('sh', ['-c', 'cat x | grep one']), 'PERMISSION_DENIED')
    })
  })

  it('globs match program names', async () => {
    await withSandbox({ commandPolicy: { deny: ['py*', 'n?'] } }, async (sb) => {
      await expectCode(sb.execute('python3', ['-c', 'print(1)']), 'PERMISSION_DENIED')
      await expectCode(sb.execute('nc', ['-h']), 'PERMISSION_DENIED')
      expect((await sb.execute('echo', ['fine'])).stdout).toBe('fine\n')
    })
  })

  it('invalid patterns and unknown keys are INVALID_CONFIG', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      for (const commandPolicy of [
        { block: ['rm'] },
        { deny: 'rm' },
        { deny: [''] },
        { deny: ['a['] },
        { allow: ['/bin/rm'] },
        { deny: ['rm -rf'] },
        'rm',
      ]) {
        const e = await expectCode(m.createSandbox({ commandPolicy }), 'INVALID_CONFIG')
        expect(e.message, JSON.stringify(commandPolicy)).toContain('commandPolicy')
      }
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })

  it('runCode is checked too: python3 must be allowed', async () => {
    await withSandbox({ image: DEBIAN, commandPolicy: { allow: ['echo', 'cat', 'sh'] } }, async (sb) => {
      const e = await expectCode(sb.runCode('print(1)', { language: 'python' }), 'PERMISSION_DENIED')
      expect(e.message).toContain('python3')
    })
    await withSandbox({ image: DEBIAN, commandPolicy: { allow: ['python3'] } }, async (sb) => {
      const r = await sb.runCode('print(6 * 7)', { language: 'python' })
      expect(r.stderr).toBe('')
      expect(r.output).toBe('42\n')
    })
  })
})

// ------------------------------------------------------------------------------------------ upload / download

describe('uploadFile / downloadFile', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  let sb: any
  let dir = ''
  const bytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256))
  const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex')

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-transfer-'))
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('round-trips a binary file with all 256 byte values', async () => {
    const src = path.join(dir, 'all.bin')
    fs.writeFileSync(src, bytes)
    const up = await sb.uploadFile(src, 'data/all.bin')
    expect(up).toEqual({ status: 'uploaded', filename: 'all.bin', path: '/workspace/data/all.bin', sizeBytes: bytes.length })
    expect((await sb.execute('md5sum', ['/workspace/data/all.bin'])).stdout.split(/\s+/)[0]).toBe(md5(bytes))

    const dst = path.join(dir, 'back.bin')
    const written = await sb.downloadFile('data/all.bin', dst)
    expect(written).toBe(dst)
    expect(Buffer.compare(fs.readFileSync(dst), bytes)).toBe(0)
  })

  it('remoteName defaults to the file name, relative to the workdir', async () => {
    const src = path.join(dir, 'note.txt')
    fs.writeFileSync(src, 'a note\n')
    const up = await sb.uploadFile(src)
    expect(up).toMatchObject({ status: 'uploaded', filename: 'note.txt', path: '/workspace/note.txt', sizeBytes: 7 })
    expect((await sb.readFile('/workspace/note.txt')).content).toBe('a note\n')
  })

  it('uploading a directory, a missing path or a device is INVALID_ARGUMENT', async () => {
    await expectCode(sb.uploadFile(dir), 'INVALID_ARGUMENT')
    await expectCode(sb.uploadFile(path.join(dir, 'does-not-exist.txt')), 'INVALID_ARGUMENT')
    await expectCode(sb.uploadFile('/dev/null'), 'INVALID_ARGUMENT')
    await expectCode(sb.uploadFile(''), 'INVALID_ARGUMENT')
    expect(await exists(sb, '/workspace/null')).toBe(false)
    expect(await exists(sb, '/workspace/does-not-exist.txt')).toBe(false)
  })

  it('download: default path is <cwd>/<basename>; an existing directory gets the file inside', async () => {
    await sb.writeFile('out/report.csv', 'a,b\n1,2\n')
    const cwdDir = fs.mkdtempSync(path.join(dir, 'cwd-'))
    const saved = process.cwd()
    process.chdir(cwdDir)
    try {
      const p = await sb.downloadFile('out/report.csv')
      expect(fs.realpathSync(p)).toBe(fs.realpathSync(path.join(cwdDir, 'report.csv')))
      expect(path.isAbsolute(p)).toBe(true)
      expect(fs.readFileSync(path.join(cwdDir, 'report.csv'), 'utf8')).toBe('a,b\n1,2\n')
    } finally {
      process.chdir(saved)
    }
    const into = fs.mkdtempSync(path.join(dir, 'into-'))
    const p2 = await sb.downloadFile('/workspace/out/report.csv', into)
    expect(p2).toBe(path.join(into, 'report.csv'))
    expect(fs.readFileSync(p2, 'utf8')).toBe('a,b\n1,2\n')
  })

  it('an existing host file is only replaced with { overwrite: true }', async () => {
    await sb.writeFile('fresh.txt', 'new content')
    const dst = path.join(dir, 'existing.txt')
    fs.writeFileSync(dst, 'old content')
    const e = await expectCode(sb.downloadFile('fresh.txt', dst), 'INVALID_ARGUMENT')
    expect(e.message).toContain('overwrite')
    expect(fs.readFileSync(dst, 'utf8')).toBe('old content')
    expect(await sb.downloadFile('fresh.txt', dst, { overwrite: true })).toBe(dst)
    expect(fs.readFileSync(dst, 'utf8')).toBe('new content')
  })

  it('a missing remote file is FILE_NOT_FOUND; a missing local directory is INVALID_ARGUMENT; nothing is left behind', async () => {
    const target = fs.mkdtempSync(path.join(dir, 'target-'))
    await expectCode(sb.downloadFile('no-such-file.txt', path.join(target, 'x.txt')), 'FILE_NOT_FOUND')
    await sb.writeFile('exists.txt', 'e')
    await expectCode(sb.downloadFile('exists.txt', path.join(target, 'missing-dir', 'x.txt')), 'INVALID_ARGUMENT')
    expect(fs.readdirSync(target)).toEqual([])
  })
})
