// What a hostile or stuck sandbox must not do to its owner: hang a teardown, stay listed after it was
// destroyed, push a huge file into host memory through the agent's Read tool; and what the owner's
// configuration must not show: its secrets.
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxedAgentExecutor } from '../index.js'
import { BUSYBOX, containerOf, docker, dockerLabelled, goneOf, sandboxLabel, sleep, waitFor, within } from './helpers.js'

const NONE = { containers: 0, volumes: 0, networks: 0 }
/** The frozen-guest cases need the guest engine, also when SANDBOX_EXEC_ENGINE=exec runs the suites. */
const GUEST: any = { docker: { execEngine: 'guest' } }

// every teardown of this file is bounded by 2 s (+ at most 5 s of forced removal)
const savedTimeout = process.env.SANDBOX_DESTROY_TIMEOUT_SECONDS
process.env.SANDBOX_DESTROY_TIMEOUT_SECONDS = '2'
afterAll(() => {
  if (savedTimeout === undefined) delete process.env.SANDBOX_DESTROY_TIMEOUT_SECONDS
  else process.env.SANDBOX_DESTROY_TIMEOUT_SECONDS = savedTimeout
})

/**
 * Freeze the sandbox's guest daemon: every later call through it hangs. The guest is the container's
 * PID 1, which nothing inside the sandbox can signal, so the freeze comes from the host (SIGSTOP to
 * the container's PID 1), as a hang of the guest itself would look.
 */
async function freezeGuest(sb: any) {
  expect(sb.execEngine).toBe('guest')
  docker(['kill', '-s', 'STOP', containerOf(sb.id)])
  await sleep(300)
  const probe = await Promise.race([sb.execute('true').then(() => 'answered'), sleep(1000).then(() => 'hung')])
  expect(probe, 'the guest should be frozen').toBe('hung')
}

describe('secrets in configuration', () => {
  it('defaultConfig redacts API keys, passwords and tokens, at any depth', () => {
    const m: any = new SandboxManager({
      image: BUSYBOX,
      e2b: { apiKey: 'e2b_00112233445566778899', templateId: 'base' },
      docker: { registryAuth: { username: 'bob', password: 'hunter2-registry' } },
      env: { GITHUB_TOKEN: 'ghp_secret', PLAIN: 'visible' },
      metadata: { team: 'a', db: { password: 'pg-secret' } },
    })
    const c = m.defaultConfig
    expect(c.e2b).toEqual({ apiKey: '***', templateId: 'base' })
    expect(c.docker.registryAuth).toEqual({ username: 'bob', password: '***' })
    expect(c.env).toEqual({ GITHUB_TOKEN: '***', PLAIN: 'visible' })
    expect(c.metadata).toEqual({ team: 'a', db: { password: '***' } })
    expect(JSON.stringify(c)).not.toMatch(/e2b_0011|hunter2|ghp_secret|pg-secret/)
    expect(c.image).toBe(BUSYBOX)
  })
})

describe('a destroyed sandbox disappears from its manager', () => {
  it('sandbox.destroy() called directly unlists it (sandboxes, sessions, pools)', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb: any = await m.createSandbox()
      await sb.start()
      expect(m.listSandboxes().map((s: any) => s.id)).toContain(sb.id)
      await sb.destroy()
      expect(m.listSandboxes().map((s: any) => s.id)).not.toContain(sb.id)
      expect(m.getSandbox(sb.id)).toBeUndefined()

      const session: any = await m.getOrCreateSession({ userId: 'u1', threadId: 't-destroyed' })
      expect(m.listSessions().length).toBe(1)
      await session.destroy()
      expect(m.listSessions()).toEqual([])
      expect(m.getSandbox(session.id)).toBeUndefined()
      // the thread gets a new sandbox
      const again: any = await m.getOrCreateSession({ userId: 'u1', threadId: 't-destroyed' })
      expect(again.id).not.toBe(session.id)
      expect(again.state).toBe('running')

      const pool: any = await m.createPool({}, { min: 1, max: 1 })
      const lent: any = await pool.acquire()
      expect(pool.stats.inUse).toBe(1)
      await lent.destroy()
      expect(pool.stats.inUse).toBe(0)
      expect(m.getSandbox(lent.id)).toBeUndefined()
      await pool.release(lent) // a no-op now, not an error
      const fresh: any = await pool.acquire({ timeoutSeconds: 30 })
      expect(fresh.id).not.toBe(lent.id)
      expect((await fresh.execute('echo', ['ok'])).stdout).toBe('ok\n')
      await pool.release(fresh)
    } finally {
      await m.destroyAll()
    }
  })
})

describe('bounded teardown of a stuck sandbox', () => {
  it('pool.release() of a sandbox whose guest is frozen resolves, and the sandbox is replaced', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const pool: any = await m.createPool(GUEST, { min: 0, max: 1 })
      const sb: any = await pool.acquire()
      await freezeGuest(sb)
      const t0 = Date.now()
      await within(pool.release(sb), 15_000, 'pool.release of a frozen sandbox')
      // the reset gave up after 2 s; the destroy took its container away
      expect(Date.now() - t0).toBeLessThan(12_000)
      expect(await goneOf(sb.id)).toEqual(NONE)
      const next: any = await pool.acquire({ timeoutSeconds: 30 })
      expect(next.id).not.toBe(sb.id)
      expect((await next.execute('echo', ['fresh'])).stdout).toBe('fresh\n')
      await pool.release(next)
      await within(pool.destroy(), 15_000, 'pool.destroy')
    } finally {
      await m.destroyAll()
    }
  })

  it('destroyAll() and pool.destroy() finish although a destroy is stuck behind a hung stop()', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    const stuck: any = await m.createSandbox(GUEST)
    await stuck.start()
    const pool: any = await m.createPool(GUEST, { min: 1, max: 1 })
    const pooled: any = await pool.acquire()
    await freezeGuest(stuck)
    await freezeGuest(pooled)
    // stop() holds the sandbox's lifecycle lock while it waits for the frozen guest
    const hungStops = [stuck.stop().catch((e: any) => e), pooled.stop().catch((e: any) => e)]
    await sleep(300)

    const t0 = Date.now()
    await within(m.destroyAll(), 20_000, 'destroyAll with stuck sandboxes')
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(m.listSandboxes()).toEqual([])
    for (const sb of [stuck, pooled]) expect(await goneOf(sb.id), sb.id).toEqual(NONE)
    // with their containers gone, the hung calls end too
    const ended = await within(Promise.all(hungStops), 20_000, 'the hung stop() calls')
    for (const e of ended) if (e) expect(e.code).toBeDefined()
  })
})

describe("the agent's Read tool reads what it shows, not the whole file", () => {
  const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  const executor: any = new SandboxedAgentExecutor(m)
  afterAll(async () => {
    await executor.cleanupAll()
    await m.destroyAll()
  })

  for (const engine of ['guest', 'exec']) {
    it(`a large file and an endless one come back cut (${engine} engine)`, async () => {
      const seen: any = {}
      const r = await executor.execute('read big files', {
        sandboxConfig: { docker: { execEngine: engine } },
        agent: async (_task: string, tools: any) => {
          await tools.call('Bash', { command: 'head -c 1048576 /dev/zero | tr "\\0" a > big.txt; printf "l1\\nl2\\nl3\\n" > small.txt' })
          seen.big = await tools.call('Read', { file: 'big.txt' })
          seen.lines = await tools.call('Read', { file: 'big.txt', offset: 1, limit: 1 })
          seen.small = await tools.call('Read', { file: 'small.txt', offset: 2, limit: 1 })
          const t0 = Date.now()
          seen.zero = await tools.call('Read', { file: '/dev/zero' })
          seen.zeroMs = Date.now() - t0
          return 'done'
        },
      })
      expect(r.error, JSON.stringify(r.error)).toBeUndefined()
      expect(seen.big.isError).toBe(false)
      // the first 256 KiB were read, of which the model sees 30,000 characters (every tool result's cap)
      expect(seen.big.content.startsWith('aaaa')).toBe(true)
      expect(seen.big.content).toMatch(/\[\.\.\. 232\d{3} more bytes not shown\]$/)
      expect(seen.lines.isError).toBe(false)
      expect(seen.lines.content.startsWith('aaaa')).toBe(true)
      expect(seen.small.content).toBe('l2')
      // an endless file: one bounded read, not 256 MiB
      expect(seen.zero.content).toBe('(binary file, more than 262144 bytes; not shown)')
      expect(seen.zeroMs).toBeLessThan(10_000)
    })
  }
})
