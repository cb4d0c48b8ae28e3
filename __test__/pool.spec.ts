// SandboxPool: warm sandboxes, reset on release, limits, waiters, idle expiry and destruction.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, containerOf, docker, dockerLabelled, expectCode, sandboxLabel, waitFor, within } from './helpers.js'

const ADDON = fileURLToPath(new URL('../index.js', import.meta.url))
const NONE = { containers: 0, volumes: 0, networks: 0 }

/** Settles (never rejects) with { ok, value | error }; attaches its handlers at once. */
function settled(p: Promise<any>): Promise<{ ok: boolean; value?: any; error?: any }> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  )
}

const ids = (m: any): string[] => m.listSandboxes().map((s: any) => s.id)

/** Polls until no container/volume/network of sandbox `id` is left; returns what is left. */
async function goneOf(id: string) {
  let left = dockerLabelled(sandboxLabel(id))
  await waitFor(() => {
    left = dockerLabelled(sandboxLabel(id))
    return left.containers + left.volumes + left.networks === 0
  }, 10_000)
  return left
}

describe('SandboxPool', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  let pool: any
  let poolIds: string[] = []

  beforeAll(async () => {
    const before = ids(manager)
    pool = await manager.createPool({}, { min: 2, max: 3, idleTimeoutSeconds: 0 })
    poolIds = ids(manager).filter((id) => !before.includes(id))
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('createPool resolves with min sandboxes started and idle', async () => {
    expect(pool.stats).toEqual({ idle: 2, inUse: 0, creating: 0, waiting: 0, min: 2, max: 3 })
    // pool sandboxes are ordinary sandboxes of the manager
    expect(poolIds).toHaveLength(2)
    for (const id of poolIds) {
      const s = manager.getSandbox(id)
      expect(s).toBeDefined()
      expect(s.state).toBe('running')
      expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
      expect(docker(['inspect', '-f', '{{.State.Running}}', containerOf(id)])).toBe('true')
    }
  })

  it('acquire hands out a warm sandbox without creating one, then refills to min', async () => {
    const before = ids(manager)
    const t0 = Date.now()
    const sb = await pool.acquire()
    const elapsed = Date.now() - t0
    try {
      expect(before, 'acquire created a new sandbox instead of handing out an idle one').toContain(sb.id)
      expect(elapsed).toBeLessThan(5000)
      expect(sb.state).toBe('running')
      expect(['guest', 'exec']).toContain(sb.execEngine)
      expect((await sb.execute('echo', ['pooled'])).stdout).toBe('pooled\n')
      expect(pool.stats.inUse).toBe(1)
      // the pool refills to min idle in the background
      const refilled = await waitFor(() => pool.stats.idle === 2 && pool.stats.creating === 0, 15_000, 100)
      expect(refilled, JSON.stringify(pool.stats)).toBe(true)
      expect(pool.stats).toEqual({ idle: 2, inUse: 1, creating: 0, waiting: 0, min: 2, max: 3 })
      expect(manager.listSandboxes()).toHaveLength(before.length + 1)
    } finally {
      await pool.release(sb)
    }
    expect(pool.stats.inUse).toBe(0)
    expect(pool.stats.idle).toBe(3)
  })

  it('release resets the sandbox (files, /tmp, processes) and the same sandbox comes back', async () => {
    const sb = await pool.acquire()
    const id = sb.id
    expect((await sb.writeFile('work/file.txt', 'left behind')).success).toBe(true)
    expect((await sb.writeFile('.hidden', 'dotfile')).success).toBe(true)
    expect((await sb.writeFile('/tmp/tmpfile', 'tmp')).success).toBe(true)
    const bg = await sb.execute('sleep', ['361'], { background: true })
    const bgDone = settled(bg.wait())
    const child = await sb.execute('sh', ['-c', 'sleep 362 & echo started'], { background: true })
    await within(child.wait(), 15_000, 'background parent')
    const before = await sb.listProcesses()
    expect(before.map((p: any) => p.args[0]).sort()).toEqual(['361', '362'])

    await pool.release(sb)
    expect(bg.running).toBe(false)
    const d = await within(bgDone, 15_000, 'wait() of a background process across release()')
    if (d.ok) expect(d.value!.exitCode).not.toBe(0)
    expect(pool.stats.inUse).toBe(0)

    // most recently released first
    const again = await pool.acquire()
    try {
      expect(again.id).toBe(id)
      expect(again.state).toBe('running')
      expect(await again.listFiles('/workspace', { all: true })).toEqual([])
      expect(await again.listFiles('/tmp', { all: true })).toEqual([])
      expect((await again.readFile('work/file.txt')).success).toBe(false)
      expect(await again.listProcesses()).toEqual([])
      expect((await again.execute('pwd')).stdout).toBe('/workspace\n')
      expect((await again.writeFile('next.txt', 'next user')).success).toBe(true)
    } finally {
      await pool.release(again)
    }
  })

  it('stats add up with the sandboxes the manager lists', async () => {
    await waitFor(() => pool.stats.creating === 0, 15_000, 100)
    const s = pool.stats
    expect(s.inUse).toBe(0)
    expect(s.idle).toBeGreaterThanOrEqual(2)
    expect(s.idle).toBeLessThanOrEqual(s.max)
    // this manager holds nothing but the pool's sandboxes, all started
    const listed = manager.listSandboxes()
    expect(listed).toHaveLength(s.idle)
    for (const x of listed) expect(x.state).toBe('running')
    const a = await pool.acquire()
    expect(pool.stats.idle + pool.stats.inUse + pool.stats.creating).toBe(s.idle)
    await pool.release(a)
    expect(pool.stats).toMatchObject({ idle: s.idle, inUse: 0 })
  })

  it('releasing a foreign sandbox or one twice rejects with INVALID_ARGUMENT', async () => {
    const foreign = await manager.createSandbox()
    try {
      await foreign.start()
      const e1 = await expectCode(pool.release(foreign), 'INVALID_ARGUMENT')
      expect(e1.message).toContain(foreign.id)
      // the foreign sandbox was not touched
      expect(foreign.state).toBe('running')
      expect((await foreign.execute('echo', ['mine'])).stdout).toBe('mine\n')
    } finally {
      await foreign.destroy()
    }

    const sb = await pool.acquire()
    await pool.release(sb)
    const idle = pool.stats.idle
    await expectCode(pool.release(sb), 'INVALID_ARGUMENT')
    expect(pool.stats.idle).toBe(idle)
    expect(pool.stats.inUse).toBe(0)

    // a sandbox of another pool
    const other = await manager.createPool({}, { min: 0, max: 1, idleTimeoutSeconds: 0 })
    try {
      const o = await other.acquire()
      await expectCode(pool.release(o), 'INVALID_ARGUMENT')
      expect(o.state).toBe('running')
      await other.release(o)
    } finally {
      await other.destroy()
    }
  })

  it('a sandbox whose reset fails is destroyed and replaced; release still resolves', async () => {
    const sb = await pool.acquire()
    const dead = sb.id
    // the container disappears under the pool's feet
    docker(['kill', containerOf(dead)])
    await within(pool.release(sb), 30_000, 'release of a broken sandbox')
    expect(await goneOf(dead)).toEqual(NONE)
    expect(ids(manager)).not.toContain(dead)
    const ok = await waitFor(() => pool.stats.creating === 0 && pool.stats.idle >= 2, 15_000, 100)
    expect(ok, JSON.stringify(pool.stats)).toBe(true)
    const next = await pool.acquire()
    try {
      expect(next.id).not.toBe(dead)
      expect((await next.execute('echo', ['replacement'])).stdout).toBe('replacement\n')
    } finally {
      await pool.release(next)
    }
  })
})

describe('SandboxPool limits and waiters', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('max reached: POOL_EXHAUSTED after the acquire timeout; a waiter is served by a release', async () => {
    const pool = await manager.createPool({}, { min: 0, max: 2, idleTimeoutSeconds: 0, acquireTimeoutSeconds: 1 })
    expect(pool.stats).toEqual({ idle: 0, inUse: 0, creating: 0, waiting: 0, min: 0, max: 2 })
    const [a, b] = await Promise.all([pool.acquire(), pool.acquire()])
    expect(a.id).not.toBe(b.id)
    expect(pool.stats).toEqual({ idle: 0, inUse: 2, creating: 0, waiting: 0, min: 0, max: 2 })

    // the pool's acquireTimeoutSeconds
    let t0 = Date.now()
    const e1 = await within(expectCode(pool.acquire(), 'POOL_EXHAUSTED'), 15_000, 'acquire on a full pool')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(e1.message).toMatch(/max/)
    // the per-call override
    t0 = Date.now()
    await within(expectCode(pool.acquire({ timeoutSeconds: 0.5 }), 'POOL_EXHAUSTED'), 15_000, 'acquire({ timeoutSeconds: 0.5 })')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(pool.stats.waiting).toBe(0)
    expect(manager.listSandboxes()).toHaveLength(2)

    // a waiter gets the next released sandbox
    await a.writeFile('from-a.txt', 'a')
    const waiter = settled(pool.acquire({ timeoutSeconds: 20 }))
    expect(await waitFor(() => pool.stats.waiting === 1, 5000, 50)).toBe(true)
    await pool.release(a)
    const w = await within(waiter, 15_000, 'the waiting acquire')
    expect(w.ok, w.error?.message).toBe(true)
    const got = w.value as any
    expect(got.id).toBe(a.id)
    expect(got.state).toBe('running')
    expect((await got.readFile('from-a.txt')).success).toBe(false)
    expect(pool.stats).toEqual({ idle: 0, inUse: 2, creating: 0, waiting: 0, min: 0, max: 2 })
    expect(manager.listSandboxes()).toHaveLength(2)

    await pool.release(got)
    await pool.release(b)
    expect(pool.stats).toEqual({ idle: 2, inUse: 0, creating: 0, waiting: 0, min: 0, max: 2 })
    await pool.destroy()
  })

  it('concurrent acquires beyond the idle count create distinct sandboxes up to max', async () => {
    const pool = await manager.createPool({}, { min: 1, max: 3, idleTimeoutSeconds: 0 })
    const got = await within(Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]), 60_000, '3 acquires')
    expect(new Set(got.map((s: any) => s.id)).size).toBe(3)
    const rs = await Promise.all(got.map((s: any, i: number) => s.execute('echo', [`n${i}`])))
    rs.forEach((r: any, i: number) => expect(r.stdout).toBe(`n${i}\n`))
    expect(pool.stats.inUse).toBe(3)
    await expectCode(pool.acquire({ timeoutSeconds: 0.2 }), 'POOL_EXHAUSTED')
    await Promise.all(got.map((s: any) => pool.release(s)))
    expect(pool.stats.inUse).toBe(0)
    expect(pool.stats.idle).toBe(3)
    await pool.destroy()
  })

  it('idle sandboxes above min expire after idleTimeoutSeconds (min 0)', async () => {
    const pool = await manager.createPool({}, { min: 0, max: 2, idleTimeoutSeconds: 1 })
    const a = await pool.acquire()
    const b = await pool.acquire()
    const pair = [a.id, b.id]
    await pool.release(a)
    await pool.release(b)
    expect(pool.stats.idle).toBe(2)
    const shrunk = await waitFor(() => pool.stats.idle === 0, 10_000, 100)
    expect(shrunk, JSON.stringify(pool.stats)).toBe(true)
    for (const id of pair) expect(await goneOf(id)).toEqual(NONE)
    for (const id of pair) expect(ids(manager)).not.toContain(id)
    expect(a.state).toBe('destroyed')
    // the pool still works afterwards
    const c = await pool.acquire()
    expect((await c.execute('echo', ['after expiry'])).stdout).toBe('after expiry\n')
    await pool.release(c)
    await pool.destroy()
  })

  it('idle expiry never goes below min', async () => {
    const pool = await manager.createPool({}, { min: 1, max: 3, idleTimeoutSeconds: 1 })
    const got = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()])
    for (const s of got) await pool.release(s)
    expect(pool.stats.idle).toBe(3)
    const shrunk = await waitFor(() => pool.stats.idle === 1, 10_000, 100)
    expect(shrunk, JSON.stringify(pool.stats)).toBe(true)
    // stays at min
    await new Promise((r) => setTimeout(r, 2000))
    expect(pool.stats).toEqual({ idle: 1, inUse: 0, creating: 0, waiting: 0, min: 1, max: 3 })
    const left = got.filter((s: any) => s.state === 'running')
    expect(left).toHaveLength(1)
    for (const s of got.filter((x: any) => x.state !== 'running')) expect(await goneOf(s.id)).toEqual(NONE)
    await pool.destroy()
  })

  it('min > max is rejected', async () => {
    const err = await expectCode(manager.createPool({}, { min: 3, max: 2 }), 'INVALID_ARGUMENT')
    expect(err.message).toMatch(/min/)
  })

  it('invalid numeric pool options are rejected and never crash the process', () => {
    // Run in a child process: a panic in the addon aborts the whole process.
    const script = `
const { SandboxManager } = require(${JSON.stringify(ADDON)});
const m = new SandboxManager({ image: ${JSON.stringify(BUSYBOX)}, networkMode: 'none' });
const cases = [
  ['max -1', { min: 0, max: -1 }],
  ['min -1', { min: -1, max: 1 }],
  ['min 1.5', { min: 1.5, max: 2 }],
  ['max 1e9', { min: 0, max: 1e9 }],
  ['acquireTimeoutSeconds -1', { min: 0, max: 1, acquireTimeoutSeconds: -1 }],
  ['idleTimeoutSeconds NaN', { min: 0, max: 1, idleTimeoutSeconds: NaN }],
  ['idleTimeoutSeconds Infinity', { min: 0, max: 1, idleTimeoutSeconds: Infinity }],
  ['idleTimeoutSeconds 1e300', { min: 0, max: 1, idleTimeoutSeconds: 1e300 }],
];
(async () => {
  for (const [name, o] of cases) {
    let r;
    try { const p = await m.createPool({}, o); r = { ok: true, stats: p.stats }; await p.destroy(); }
    catch (e) { r = { ok: false, code: e.code, message: e.message }; }
    console.log('RESULT ' + JSON.stringify([name, r]));
  }
  await m.destroyAll();
})().catch((e) => { console.error('CHILD_ERROR', e); process.exit(2); });
`
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 })
    const results = Object.fromEntries(
      child.stdout
        .split('\n')
        .filter((l) => l.startsWith('RESULT '))
        .map((l) => JSON.parse(l.slice(7))),
    )
    const diag = `status ${child.status} signal ${child.signal}\nstdout:\n${child.stdout}\nstderr:\n${child.stderr.slice(0, 2000)}`
    expect(child.signal, diag).toBeNull()
    expect(child.status, diag).toBe(0)
    expect(Object.keys(results), diag).toHaveLength(8)
    // every one is rejected before any container starts, with a message naming the option
    for (const [k, r] of Object.entries<any>(results)) {
      expect(r.ok, `${k}: ${diag}`).toBe(false)
      expect(r.code, `${k}: ${diag}`).toBe('INVALID_ARGUMENT')
      expect(r.message, `${k}: ${diag}`).toContain(k.split(' ')[0])
    }
  })
})

describe('SandboxPool destruction', () => {
  it('destroy() removes idle and in-use sandboxes; later acquires fail with POOL_CLOSED', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const before = ids(manager)
      const pool = await manager.createPool({}, { min: 2, max: 2, idleTimeoutSeconds: 0 })
      const inUse = await pool.acquire()
      expect(pool.stats).toMatchObject({ idle: 1, inUse: 1 })
      const second = await pool.acquire()
      expect(pool.stats).toMatchObject({ idle: 0, inUse: 2 })
      // the pool is full: this acquire waits until destroy() fails it
      const waiter = settled(pool.acquire({ timeoutSeconds: 30 }))
      expect(await waitFor(() => pool.stats.waiting === 1, 5000, 50)).toBe(true)
      const poolIds = ids(manager).filter((id) => !before.includes(id))
      expect(poolIds).toHaveLength(2)

      await within(pool.destroy(), 30_000, 'pool.destroy()')
      const w2 = await within(waiter, 15_000, 'the waiter of a destroyed pool')
      expect(w2.ok).toBe(false)
      expect(w2.error.code).toBe('POOL_CLOSED')
      for (const id of poolIds) expect(await goneOf(id)).toEqual(NONE)
      expect(inUse.state).toBe('destroyed')
      expect(second.state).toBe('destroyed')
      expect(ids(manager).filter((id) => poolIds.includes(id))).toEqual([])
      expect(pool.stats).toMatchObject({ idle: 0, inUse: 0, creating: 0, waiting: 0 })

      await expectCode(pool.acquire(), 'POOL_CLOSED')
      await expectCode(pool.acquire({ timeoutSeconds: 0 }), 'POOL_CLOSED')
      // releasing into a destroyed pool resolves; destroy is idempotent
      await pool.release(inUse)
      await pool.destroy()
    } finally {
      await manager.destroyAll()
    }
  })

  it('manager.destroyAll() destroys pools too', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    const pool = await manager.createPool({}, { min: 1, max: 2, idleTimeoutSeconds: 0 })
    const a = await pool.acquire()
    await waitFor(() => pool.stats.idle === 1 && pool.stats.creating === 0, 15_000, 100)
    const all = ids(manager)
    expect(all.length).toBeGreaterThanOrEqual(1)
    expect(all).toContain(a.id)

    await manager.destroyAll()
    for (const id of all) expect(await goneOf(id)).toEqual(NONE)
    expect(manager.listSandboxes()).toEqual([])
    expect(a.state).toBe('destroyed')
    await expectCode(pool.acquire(), 'POOL_CLOSED')
    expect(pool.stats).toMatchObject({ idle: 0, inUse: 0, creating: 0, waiting: 0 })
    // nothing refills a destroyed pool later
    await new Promise((r) => setTimeout(r, 1000))
    expect(manager.listSandboxes()).toEqual([])
    expect(pool.stats.idle).toBe(0)
  })
})
