// Chaos: the owning Node process killed with SIGKILL, the Docker engine restarted under an in-flight
// call, the guest daemon killed from outside. Nothing hangs, errors are clear, nothing is left behind.
// The reaper interval is shortened for this file (each vitest file runs in its own process, and the
// reaper starts at the first engine connect, which happens below).
process.env.SANDBOX_REAPER_INTERVAL_SECONDS = '2'
process.env.SANDBOX_REAPER_GRACE_SECONDS = '3'

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, inspectContainer, sandboxLabel, settle, sleep, waitFor } from './helpers.js'

const ADDON = fileURLToPath(new URL('../index.js', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EXEC_ENGINE = process.env.SANDBOX_EXEC_ENGINE === 'exec'
const childCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-chaos-'))
afterAll(() => fs.rmSync(childCwd, { recursive: true, force: true }))

// A child that creates sandboxes on both engines (one isolated, so a network exists too), says READY
// and waits to be killed.
const CHILD = `
const { SandboxManager } = require(${JSON.stringify(ADDON)});
(async () => {
  const m = new SandboxManager({ image: ${JSON.stringify(BUSYBOX)} });
  const ids = [];
  for (const cfg of [{ networkMode: 'isolated' }, { networkMode: 'none', docker: { execEngine: 'exec' } }]) {
    const sb = await m.createSandbox(cfg);
    await sb.start();
    const r = await sb.execute('echo', ['child-ok']);
    if (r.stdout !== 'child-ok\\n') throw new Error('unexpected ' + JSON.stringify(r));
    ids.push(sb.id);
  }
  console.log('READY ' + ids.join(' '));
  setInterval(() => {}, 1000);
})().catch((e) => { console.error('CHILD_ERROR', (e && e.stack) || e); process.exit(2); });
`

function runningOf(id: string): boolean {
  try {
    return docker(['ps', '-q', '--filter', `label=${sandboxLabel(id)}`]) !== ''
  } catch {
    return false
  }
}

describe('chaos: the owner is killed with SIGKILL', () => {
  it('its containers stop by themselves, and a reaper in another process removes everything', async () => {
    // this process's first engine call starts its reaper (2 s interval, 3 s grace)
    const own: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    await (await own.createSandbox()).start()
    await own.destroyAll()
    const proc = spawn(process.execPath, ['-e', CHILD], { cwd: childCwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    proc.stdout!.on('data', (d) => (out += d))
    proc.stderr!.on('data', (d) => (out += d))
    const exited = new Promise((r) => proc.on('exit', r))
    const ready = await waitFor(() => /READY (\S+) (\S+)/.exec(out), 90_000, 100)
    expect(ready, out).toBeTruthy()
    const ids = [ready![1], ready![2]]
    for (const id of ids) expect(runningOf(id)).toBe(true)
    proc.kill('SIGKILL')
    await exited
    // containers die with their owner (the guest and the exec engine's watchdog see their stdin close)
    const stopped = await waitFor(() => ids.every((id) => !runningOf(id)), 20_000, 200)
    expect(stopped, 'containers still running after their owner died').toBe(true)
    // this process's reaper removes the rest, whoever the owner was
    const reaped = await waitFor(
      () => ids.every((id) => { const l = dockerLabelled(sandboxLabel(id)); return l.containers + l.volumes + l.networks === 0 }),
      60_000,
      500,
    )
    expect(reaped, JSON.stringify(ids.map((id) => dockerLabelled(sandboxLabel(id))))).toBe(true)
  })
})

describe('chaos: the guest is killed from outside', () => {
  it.skipIf(EXEC_ENGINE)('kill from inside the container (docker exec) cannot touch the guest as PID 1', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb = await manager.createSandbox()
      await sb.start()
      const c = inspectContainer(sb.id).Id
      execFileSync('docker', ['exec', c, 'kill', '-9', '1'])
      execFileSync('docker', ['exec', c, 'kill', '-STOP', '1'])
      const r = await settle(sb.execute('echo', ['alive'], { timeout: 5 }), 15_000, 'execute after kill from inside')
      expect(r.ok && r.value.stdout).toBe('alive\n')
    } finally {
      await manager.destroyAll()
    }
  })

  it('a guest killed from the host: calls fail clearly and fast, destroy cleans up', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb = await manager.createSandbox()
      await sb.start()
      const inflight = settle(sb.execute('sleep', ['30']), 15_000, 'in-flight execute')
      await sleep(300)
      const hostPid = inspectContainer(sb.id).State.Pid
      process.kill(hostPid, 'SIGKILL') // PID 1 of the container, seen from the host
      const r = await inflight
      if (!r.ok) expect(['SANDBOX_NOT_RUNNING', 'PROVIDER_ERROR', 'EXECUTION_ERROR']).toContain(r.error.code)
      else expect(r.value.exitCode).not.toBe(0)
      const next = await settle(sb.execute('echo', ['x'], { timeout: 5 }), 15_000, 'execute after the kill')
      if (!next.ok) expect(typeof next.error.code).toBe('string')
      await settle(sb.destroy(), 15_000, 'destroy()')
      expect(dockerLabelled(sandboxLabel(sb.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await manager.destroyAll()
    }
  })
})

/**
 * Restart the engine as `systemctl restart docker` would: SIGTERM to dockerd (it stops the
 * containers and exits), then start it again the way scripts/ensure-docker.sh does. Async, so the
 * in-flight call's timers keep running meanwhile.
 */
async function restartEngine() {
  const pids = execFileSync('pidof', ['dockerd'], { encoding: 'utf8' }).trim().split(/\s+/).map(Number)
  for (const pid of pids) process.kill(pid, 'SIGTERM')
  await waitFor(() => pids.every((pid) => !fs.existsSync(`/proc/${pid}`)), 60_000, 200)
  await new Promise<void>((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'scripts', 'ensure-docker.sh')], { stdio: 'ignore' })
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ensure-docker.sh exited with ${code}`))))
  })
}

describe('chaos: the engine restarts under an in-flight call', () => {
  // only where this suite started the engine itself (CI and the README's commands do); never a shared engine
  const ownEngine = fs.existsSync('/var/log/agentic-sandbox-dockerd.log') && process.env.SANDBOX_CHAOS_ENGINE !== '0'
  it.skipIf(!ownEngine)('execute fails clearly within bounded time; the manager works again once the engine is back', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const sb = await manager.createSandbox()
      await sb.start()
      const inflight = settle(sb.execute('sleep', ['60'], { timeout: 90 }), 30_000, 'in-flight execute')
      await sleep(300)
      const t0 = Date.now()
      const restarted = restartEngine()
      const r = await inflight
      await restarted
      expect(r.ok, `resolved: ${JSON.stringify(r.value)}`).toBe(false)
      expect(['PROVIDER_UNAVAILABLE', 'SANDBOX_NOT_RUNNING', 'PROVIDER_ERROR']).toContain(r.error.code)
      console.log(`in-flight execute failed ${Date.now() - t0} ms after the engine was told to stop: ${r.error.code}: ${r.error.message}`)
      await settle(sb.destroy(), 30_000, 'destroy() after the restart')
      const fresh = await manager.createSandbox()
      await fresh.start()
      expect((await fresh.execute('echo', ['back'])).stdout).toBe('back\n')
    } finally {
      await settle(manager.destroyAll(), 30_000, 'destroyAll()')
    }
  })
})
