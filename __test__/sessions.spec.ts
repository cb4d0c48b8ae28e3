// Thread-scoped sessions (manager.getOrCreateSession / closeSession / listSessions): one sandbox per
// conversation thread, idle expiry, autoRetry, pools, and cleanup.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import {
  BUSYBOX,
  containerOf,
  dockerLabelled,
  expectCode,
  goneOf,
  sandboxLabel,
  sleep,
  waitFor,
  within,
} from './helpers.js'

const NONE = { containers: 0, volumes: 0, networks: 0 }
/** 0.02 min = 1.2 s of idleness before a session expires. */
const SHORT = 0.02

let savedTimeoutEnv: string | undefined
let managers: any[] = []

beforeEach(() => {
  savedTimeoutEnv = process.env.SESSION_TIMEOUT_MINUTES
  delete process.env.SESSION_TIMEOUT_MINUTES
})

afterEach(async () => {
  if (savedTimeoutEnv === undefined) delete process.env.SESSION_TIMEOUT_MINUTES
  else process.env.SESSION_TIMEOUT_MINUTES = savedTimeoutEnv
  const ms = managers
  managers = []
  for (const m of ms) await m.destroyAll()
})

/** A fresh manager (BusyBox, no network), destroyed after the test. */
function newManager(config: Record<string, any> = {}): any {
  const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', ...config })
  managers.push(m)
  return m
}

const sessionOf = (m: any, threadId: string) => m.listSessions().find((s: any) => s.threadId === threadId)

/** Waits until the session of `threadId` shows expired (idle timeout + reaper tick). */
async function expiredSession(m: any, threadId: string) {
  const expired = await waitFor(() => sessionOf(m, threadId)?.expired === true, 15_000, 100)
  expect(expired, `session ${threadId} did not expire: ${JSON.stringify(m.listSessions())}`).toBe(true)
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

describe('getOrCreateSession', () => {
  it('the same thread gets the same running sandbox; files persist across calls', async () => {
    const m = newManager()
    const s1 = await m.getOrCreateSession({ userId: 'alice', threadId: 'thread-1', config: { env: { SESSION_VAR: 'from-config' } } })
    expect(s1.state).toBe('running')
    expect(s1.id).toMatch(/^docker-[0-9a-f]{16}$/)
    expect((await s1.writeFile('notes/todo.txt', 'remember me')).success).toBe(true)
    // the session's config is applied over the manager's defaults
    expect((await s1.execute('sh', ['-c', 'echo $SESSION_VAR'])).stdout).toBe('from-config\n')

    const s2 = await m.getOrCreateSession({ userId: 'alice', threadId: 'thread-1' })
    expect(s2.id).toBe(s1.id)
    expect(s2.state).toBe('running')
    expect((await s2.readFile('notes/todo.txt')).content).toBe('remember me')
    expect((await s2.execute('cat', ['/workspace/notes/todo.txt'])).stdout).toBe('remember me')
    // one sandbox, one container
    expect(m.listSandboxes().map((s: any) => s.id)).toEqual([s1.id])
    expect(dockerLabelled(sandboxLabel(s1.id)).containers).toBe(1)

    const sessions = m.listSessions()
    expect(sessions).toHaveLength(1)
    const e = sessions[0]
    expect(e).toMatchObject({ userId: 'alice', threadId: 'thread-1', sandboxId: s1.id, expired: false, autoRetry: true })
    expect(e.timeoutMinutes).toBe(30)
    expect(e.lastActivity).toMatch(ISO)
    expect(e.expiresAt).toMatch(ISO)
    expect(Date.parse(e.expiresAt) - Date.parse(e.lastActivity)).toBe(30 * 60_000)
  })

  it('a new thread gets a different sandbox', async () => {
    const m = newManager()
    const a = await m.getOrCreateSession({ userId: 'alice', threadId: 'thread-a' })
    const b = await m.getOrCreateSession({ userId: 'alice', threadId: 'thread-b' })
    expect(b.id).not.toBe(a.id)
    expect(containerOf(a.id)).not.toBe(containerOf(b.id))
    await a.writeFile('only-in-a.txt', 'a')
    expect((await b.readFile('only-in-a.txt')).success).toBe(false)
    expect(m.listSessions().map((s: any) => s.threadId).sort()).toEqual(['thread-a', 'thread-b'])
    expect(m.listSessions().map((s: any) => s.sandboxId).sort()).toEqual([a.id, b.id].sort())
  })

  it("another user's live thread is refused with PERMISSION_DENIED", async () => {
    const m = newManager()
    const mine = await m.getOrCreateSession({ userId: 'alice', threadId: 'shared-thread' })
    await mine.writeFile('secret.txt', 'alice only')
    const e = await expectCode(m.getOrCreateSession({ userId: 'mallory', threadId: 'shared-thread' }), 'PERMISSION_DENIED')
    expect(e.message).toContain('shared-thread')
    // nothing was created or changed
    expect(m.listSandboxes()).toHaveLength(1)
    expect(m.listSessions()).toHaveLength(1)
    expect(m.listSessions()[0].userId).toBe('alice')
    const again = await m.getOrCreateSession({ userId: 'alice', threadId: 'shared-thread' })
    expect(again.id).toBe(mine.id)
    expect((await again.readFile('secret.txt')).content).toBe('alice only')
  })

  it('empty or oversized ids are INVALID_ARGUMENT and create nothing', async () => {
    const m = newManager()
    const huge = 'x'.repeat(5000)
    for (const [userId, threadId] of [
      ['', 't'],
      ['u', ''],
      ['   ', 't'],
      ['u', '  '],
      [huge, 't'],
      ['u', huge],
    ]) {
      const e = await expectCode(m.getOrCreateSession({ userId, threadId }), 'INVALID_ARGUMENT')
      expect(e.message).toMatch(/userId|threadId/)
    }
    expect(m.listSandboxes()).toEqual([])
    expect(m.listSessions()).toEqual([])
  })

  it('timeoutMinutes <= 0 or NaN is INVALID_ARGUMENT', async () => {
    const m = newManager()
    for (const timeoutMinutes of [0, -1, -0.5, NaN]) {
      const e = await expectCode(m.getOrCreateSession({ userId: 'u', threadId: 't', timeoutMinutes }), 'INVALID_ARGUMENT')
      expect(e.message).toContain('timeoutMinutes')
    }
    expect(m.listSandboxes()).toEqual([])
    expect(m.listSessions()).toEqual([])
  })

  it('an idle session expires: its container is removed and (autoRetry) the same Sandbox recreates itself', async () => {
    const m = newManager()
    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'expiring', timeoutMinutes: SHORT })
    const id = s.id
    const oldContainer = containerOf(id)
    expect((await s.writeFile('data.txt', 'before expiry')).success).toBe(true)

    await expiredSession(m, 'expiring')
    expect(await goneOf(id)).toEqual(NONE)
    expect(s.state).toBe('destroyed')
    const st = await s.getStatus()
    expect(st.state).toBe('destroyed')
    expect(st.session).toMatchObject({ userId: 'u', threadId: 'expiring', expired: true, autoRetry: true })
    // the expiry is in the sandbox's own log
    expect(s.getLogs({ lines: 1000 }).logs.some((e: any) => e.source === 'system' && /expired/i.test(e.message))).toBe(true)

    // using the same Sandbox object recreates it: same id, running, empty workspace
    const probe = await s.execute('sh', ['-c', 'test -e /workspace/data.txt && echo present || echo absent'])
    expect(probe.stdout).toBe('absent\n')
    expect(s.id).toBe(id)
    expect(s.state).toBe('running')
    const read = await s.readFile('data.txt')
    expect(read.success).toBe(false)
    expect(read.code).not.toBe('SANDBOX_NOT_FOUND')
    expect(sessionOf(m, 'expiring')).toMatchObject({ sandboxId: id, expired: false })
    // a new container, found by the sandbox's id like any other (label agentic-sandbox.sandbox-id)
    const newContainer = containerOf(id)
    expect(newContainer).not.toBe(oldContainer)
  })

  it('autoRetry: false — an expired session fails with SANDBOX_NOT_FOUND until getOrCreateSession recreates it', async () => {
    const m = newManager()
    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'strict', timeoutMinutes: SHORT, autoRetry: false })
    const id = s.id
    await s.writeFile('data.txt', 'x')
    await expiredSession(m, 'strict')
    expect(await goneOf(id)).toEqual(NONE)

    const r = await s.readFile('data.txt')
    expect(r.success).toBe(false)
    expect(r.code).toBe('SANDBOX_NOT_FOUND')
    const w = await s.writeFile('new.txt', 'y')
    expect(w.success).toBe(false)
    expect(w.code).toBe('SANDBOX_NOT_FOUND')
    const e = await expectCode(s.execute('echo', ['hi']), 'SANDBOX_NOT_FOUND')
    expect(e.message).toContain('strict')
    await expectCode(s.listFilesDetailed('/workspace'), 'SANDBOX_NOT_FOUND')
    // none of these brought the container back
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(0)
    expect(sessionOf(m, 'strict').expired).toBe(true)

    // getOrCreateSession always recreates an expired thread (a longer timeout keeps it alive for the checks)
    const again = await m.getOrCreateSession({ userId: 'u', threadId: 'strict', timeoutMinutes: 5, autoRetry: false })
    expect(again.id).toBe(id)
    expect(again.state).toBe('running')
    expect((await again.readFile('data.txt')).success).toBe(false)
    // the old object is the same sandbox and works again
    expect((await s.execute('echo', ['back'])).stdout).toBe('back\n')
    expect(sessionOf(m, 'strict')).toMatchObject({ expired: false, autoRetry: false, timeoutMinutes: 5 })
    // its new container carries the sandbox's id like any other
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
  })

  it('activity keeps a session alive', async () => {
    const m = newManager()
    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'busy', timeoutMinutes: SHORT })
    const container = containerOf(s.id)
    await s.writeFile('keep.txt', 'kept')
    // 3 s of use every 0.5 s with a 1.2 s idle timeout
    for (let i = 0; i < 6; i++) {
      await sleep(500)
      if (i % 2) expect((await s.readFile('keep.txt')).content).toBe('kept')
      else expect((await s.execute('echo', [`tick-${i}`])).stdout).toBe(`tick-${i}\n`)
    }
    expect(sessionOf(m, 'busy').expired).toBe(false)
    expect(containerOf(s.id)).toBe(container)
    expect((await s.readFile('keep.txt')).content).toBe('kept')
  })

  it('a long-running execute is not expired under it', async () => {
    const m = newManager()
    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'long', timeoutMinutes: SHORT })
    const container = containerOf(s.id)
    await s.writeFile('keep.txt', 'kept')
    const r = await s.execute('sleep', ['3'])
    expect(r.exitCode).toBe(0)
    expect(r.timedOut).toBe(false)
    expect(sessionOf(m, 'long').expired).toBe(false)
    expect(containerOf(s.id)).toBe(container)
    expect((await s.readFile('keep.txt')).content).toBe('kept')
  })

  it('closeSession destroys the sandbox; a second close resolves false', async () => {
    const m = newManager()
    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'closing' })
    const id = s.id
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
    expect(await m.closeSession('closing')).toBe(true)
    expect(await goneOf(id)).toEqual(NONE)
    expect(m.listSessions()).toEqual([])
    expect(m.listSandboxes().map((x: any) => x.id)).not.toContain(id)
    expect(await m.closeSession('closing')).toBe(false)
    expect(await m.closeSession('never-existed')).toBe(false)
    // the thread starts over with a new sandbox
    const fresh = await m.getOrCreateSession({ userId: 'u', threadId: 'closing' })
    expect(fresh.id).not.toBe(id)
    expect(fresh.state).toBe('running')
  })

  it('SESSION_TIMEOUT_MINUTES sets the default timeout; the option wins over it', async () => {
    const m = newManager()
    process.env.SESSION_TIMEOUT_MINUTES = '7.5'
    const a = await m.getOrCreateSession({ userId: 'u', threadId: 'env-default' })
    const b = await m.getOrCreateSession({ userId: 'u', threadId: 'env-option', timeoutMinutes: 2 })
    delete process.env.SESSION_TIMEOUT_MINUTES
    const c = await m.getOrCreateSession({ userId: 'u', threadId: 'no-env' })
    expect(sessionOf(m, 'env-default').timeoutMinutes).toBe(7.5)
    expect(sessionOf(m, 'env-option').timeoutMinutes).toBe(2)
    expect(sessionOf(m, 'no-env').timeoutMinutes).toBe(30)
    expect((await a.getStatus()).session.timeoutMinutes).toBe(7.5)
    expect((await b.getStatus()).session.timeoutMinutes).toBe(2)
    expect((await c.getStatus()).session.timeoutMinutes).toBe(30)
  })

  it('concurrent calls for one new thread share one sandbox', async () => {
    const m = newManager()
    const all = await Promise.all(
      Array.from({ length: 4 }, () => m.getOrCreateSession({ userId: 'u', threadId: 'racing' })),
    )
    const ids = new Set(all.map((s: any) => s.id))
    expect(ids.size).toBe(1)
    const [id] = [...ids]
    expect(m.listSandboxes().map((s: any) => s.id)).toEqual([id])
    expect(m.listSessions()).toHaveLength(1)
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
  })

  it('pool-backed: a new session takes a sandbox out of the pool, which refills and never hands it out', async () => {
    const m = newManager()
    const pool = await m.createPool({}, { min: 1, max: 2 })
    const pooled = m.listSandboxes().map((s: any) => s.id)
    expect(pooled).toHaveLength(1)

    const s = await m.getOrCreateSession({ userId: 'u', threadId: 'from-pool', pool })
    expect(pooled, 'the session sandbox did not come from the pool').toContain(s.id)
    expect(s.state).toBe('running')
    const refilled = await waitFor(() => pool.stats.idle === 1 && pool.stats.creating === 0, 30_000, 100)
    expect(refilled, JSON.stringify(pool.stats)).toBe(true)
    expect(pool.stats).toMatchObject({ idle: 1, inUse: 0, min: 1, max: 2 })
    await s.writeFile('mine.txt', 'session data')

    // the same thread again: no new acquire
    const again = await m.getOrCreateSession({ userId: 'u', threadId: 'from-pool', pool })
    expect(again.id).toBe(s.id)
    expect(pool.stats).toMatchObject({ idle: 1, inUse: 0 })

    // both pool slots are free for others, and neither is the session's sandbox
    const a = await within(pool.acquire(), 60_000, 'first acquire')
    const b = await within(pool.acquire(), 60_000, 'second acquire')
    try {
      expect(a.id).not.toBe(s.id)
      expect(b.id).not.toBe(s.id)
      expect(b.id).not.toBe(a.id)
      expect(pool.stats.inUse).toBe(2)
    } finally {
      await pool.release(a)
      await pool.release(b)
    }
    // the session sandbox was not reset by anything the pool did
    expect((await s.readFile('mine.txt')).content).toBe('session data')
    expect(sessionOf(m, 'from-pool').sandboxId).toBe(s.id)
  })

  it('destroyAll removes sessions too', async () => {
    const m = newManager()
    const a = await m.getOrCreateSession({ userId: 'u', threadId: 'one' })
    const b = await m.getOrCreateSession({ userId: 'u', threadId: 'two', timeoutMinutes: SHORT })
    await m.destroyAll()
    expect(m.listSessions()).toEqual([])
    expect(m.listSandboxes()).toEqual([])
    expect(await goneOf(a.id)).toEqual(NONE)
    expect(await goneOf(b.id)).toEqual(NONE)
    expect(await m.closeSession('one')).toBe(false)
    // a new call starts a new sandbox for the thread
    const c = await m.getOrCreateSession({ userId: 'u', threadId: 'one' })
    expect(c.id).not.toBe(a.id)
    expect(c.state).toBe('running')
  })
})
