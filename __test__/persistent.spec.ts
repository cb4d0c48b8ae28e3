// Persistent sandboxes and manager.connect (README "Persistent sandboxes"): a sandbox made by a
// child process that exits (or is killed) stays, another process re-attaches it, and it ends at
// its lifetime whatever runs inside it.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, expectCode, goneOf, sandboxLabel, waitFor } from './helpers.js'

const ADDON = path.resolve(__dirname, '..', 'index.js')
const made: string[] = []

/** Runs `body` (CommonJS, `m` a SandboxManager on BusyBox) in a child Node process; returns its last stdout line as JSON. */
function child(body: string, env: Record<string, string> = {}, killed = false): any {
  const script = `
const { SandboxManager } = require(${JSON.stringify(ADDON)});
(async () => {
  const m = new SandboxManager({ image: ${JSON.stringify(BUSYBOX)} });
  ${body}
})().catch((e) => { console.error(e); process.exit(1) });`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 90_000 })
  if (killed) expect(r.signal, `child: ${r.stderr}`).toBe('SIGKILL')
  else expect(r.status, `child failed: ${r.stderr}`).toBe(0)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}

/** The engine's state of sandbox `id`'s container ('gone' when it has none). */
function containerState(id: string): string {
  const ids = docker(['ps', '-a', '-q', '--filter', `label=${sandboxLabel(id)}`]).split('\n').filter(Boolean)
  if (ids.length === 0) return 'gone'
  return docker(['inspect', '-f', '{{.State.Status}}', ids[0]])
}

/** One sweep of the stale-resource reaper, from a fresh process (its first engine connect sweeps). */
function sweep() {
  child(`await m.list({ includeDetached: true }); console.log('{}')`, { SANDBOX_REAPER_GRACE_SECONDS: '1' })
}

afterAll(() => {
  for (const id of made) {
    for (const c of docker(['ps', '-a', '-q', '--filter', `label=${sandboxLabel(id)}`]).split('\n').filter(Boolean)) docker(['rm', '-f', c])
  }
  if (made.length) sweep()
})

describe('persistent sandboxes', () => {
  // each vitest pass (guest engine, then SANDBOX_EXEC_ENGINE=exec) tests its own engine
  for (const engine of [process.env.SANDBOX_EXEC_ENGINE === 'exec' ? 'exec' : 'guest'] as const) {
    it(`${engine} engine: outlives a child that exits, is re-attached by another process, and ends at its lifetime`, async () => {
      const LIFETIME = 15
      const born = Date.now()
      // the child: a persistent and an ordinary sandbox; files, a background process, env; then
      // it exits (the exit hook runs). Its code also tries to outlive the lifetime.
      const { id, plain } = child(`
  const sb = await m.createSandbox({ persistent: true, lifetimeSeconds: ${LIFETIME}, env: { GREETING: 'hello' }, name: 'keeper'});
  await sb.start();
  const other = await m.createSandbox({});
  await other.start();
  await sb.writeFile('note.txt', 'written by the child');
  // hostile: try to stop or kill PID 1 (the guest, or the lifetime's sleep under Docker's init)
  await sb.execute('sh', ['-c', 'kill -STOP 1; kill -9 1; kill -9 -1; true']);
  await sb.execute('sh', ['-c', 'sleep 1000'], { background: true });
  console.log(JSON.stringify({ id: sb.id, plain: other.id }));
  process.exit(0);`)
      made.push(id, plain)
      // the ordinary sandbox went with its owner; the persistent one runs on
      await goneOf(plain)
      expect(containerState(id)).toBe('running')

      const m = new SandboxManager({ image: BUSYBOX })
      const listed = (await m.list({ includeDetached: true })).find((s) => s.id === id)
      expect(listed).toMatchObject({ id, detached: true, persistent: true, status: 'running', name: 'keeper' })
      expect(Date.parse(listed!.expiresAt!)).toBeGreaterThanOrEqual(born + LIFETIME * 1000 - 1000)
      expect(Date.parse(listed!.expiresAt!)).toBeLessThanOrEqual(Date.now() + LIFETIME * 1000)

      const sb = await m.connect(id)
      expect(sb.state).toBe('running')
      expect(sb.execEngine).toBe(engine)
      // connecting again gives the sandbox the manager holds
      expect((await m.connect(id)).id).toBe(id)
      expect(m.listSandboxes().map((s) => s.id)).toEqual([id])
      expect((await m.list()).find((s) => s.id === id)).toMatchObject({ detached: false, persistent: true })
      const r = await sb.execute('sh', ['-c', 'cat note.txt; echo " $GREETING"; ps -o args | grep -c "^sleep 1000" || true'])
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe('written by the child hello\n1\n')
      expect(await sb.getStatus()).toMatchObject({ expiresAt: listed!.expiresAt, persistent: true })
      // the child's background process is listed (its handle went with the child); none of the
      // guest's own machinery is
      const procs = await sb.listProcesses()
      expect(procs.some((p) => p.command === 'sleep' && p.args[0] === '1000'), JSON.stringify(procs)).toBe(true)
      expect(procs.some((p) => p.command.includes('agentic-sandbox')), JSON.stringify(procs)).toBe(false)

      // nobody destroys it: it ends at its lifetime, and the reaper removes what is left
      await waitFor(() => containerState(id) !== 'running', (LIFETIME + 30) * 1000 - (Date.now() - born), 500)
      expect(Date.now() - born).toBeGreaterThanOrEqual(LIFETIME * 1000 - 2000)
      await expectCode(sb.execute('true'), 'SANDBOX_NOT_RUNNING').catch(async () => {
        // the guest engine notices the end of its connection; the exec engine the container's
        await expectCode(sb.execute('true'), 'EXECUTION_ERROR')
      })
      sweep()
      expect(await goneOf(id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      await expectCode(m.connect(id), 'SANDBOX_NOT_FOUND')
      await m.destroyAll()
    }, 150_000)
  }

  it('survives kill -9 of its owner; destroy() by the re-attaching process removes everything', async () => {
    const { id } = child(`
  const sb = await m.createSandbox({ persistent: true, lifetimeSeconds: 600 });
  await sb.start();
  await sb.writeFile('a.txt', 'A');
  console.log(JSON.stringify({ id: sb.id }));
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);`, {}, true)
    made.push(id)
    expect(containerState(id)).toBe('running')
    const m = new SandboxManager({ image: BUSYBOX })
    const sb = await m.connect(id)
    expect((await sb.readFile('a.txt')).content).toBe('A')
    // a second process attached at the same time works too
    const again = child(`const s = await m.connect(${JSON.stringify(id)}); const r = await s.execute('cat', ['a.txt']); console.log(JSON.stringify({ out: r.stdout }))`)
    expect(again.out).toBe('A')
    await sb.destroy()
    expect(await goneOf(id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    await expectCode(m.connect(id), 'SANDBOX_NOT_FOUND')
  }, 120_000)

  it('refuses what it cannot do, with codes that say how', async () => {
    const m = new SandboxManager({ image: BUSYBOX })
    await expectCode(m.connect('docker-00000000deadbeef'), 'SANDBOX_NOT_FOUND')
    await expectCode(m.connect('../etc'), 'INVALID_ARGUMENT')
    // an ordinary sandbox cannot be re-attached
    const plain = await m.createSandbox({})
    await plain.start()
    const e = await expectCode(new SandboxManager({ image: BUSYBOX }).connect(plain.id), 'SANDBOX_NOT_FOUND')
    expect(e.message).toContain('persistent: true')
    await plain.destroy()
    await expectCode(m.createSandbox({ lifetimeSeconds: 60 }), 'INVALID_CONFIG')
    await expectCode(m.createSandbox({ persistent: true, lifetimeSeconds: 0 }), 'INVALID_CONFIG')
    await expectCode(m.createSandbox({ persistent: true, lifetimeSeconds: 31 * 86400 }), 'INVALID_CONFIG')
    await expectCode(m.createSandbox({ persistent: true, provider: 'e2b' }), 'INVALID_CONFIG')
    await expectCode(m.createSandbox({ persistent: true, network: { allowOut: ['example.test'] } }), 'INVALID_CONFIG')
    await m.destroyAll()
    expect(dockerLabelled(sandboxLabel(plain.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })
})
