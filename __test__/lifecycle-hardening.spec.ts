// The Docker lifecycle against a hostile sandbox: no engine logs, deadlines with a frozen guest,
// containers that die with their owner, pool resets that leave nothing behind, isolated subnets,
// the OCI runtime and the default non-root user. Only containers and networks this file creates
// are ever contacted.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import {
  BUSYBOX,
  DEBIAN,
  containerOf,
  docker,
  dockerLabelled,
  dockerLabelledIds,
  expectCode,
  goneOf,
  inspectContainer,
  ownerPidLabel,
  sandboxLabel,
  sleep,
  waitFor,
  within,
} from './helpers.js'

const ADDON = fileURLToPath(new URL('../index.js', import.meta.url))
/** BusyBox with an EXPOSEd port: the image keeps its own command (`sleep infinity`). */
const KEEP_IMAGE = 'agentic-sandbox/test-keep-life:1'
/** BusyBox whose configured user is 4242. */
const USER_IMAGE = 'agentic-sandbox/test-user-life:1'
const NONE = { containers: 0, volumes: 0, networks: 0 }
const ENGINES = ['guest', 'exec'] as const
/** Budget of stop()/destroy()/reset() (LIFECYCLE_BUDGET) plus the test's own slack. */
const BOUNDED_MS = 15_000 + 3_000

beforeAll(() => {
  for (const [tag, dockerfile] of [
    [KEEP_IMAGE, `FROM ${BUSYBOX}\nEXPOSE 8080\nCMD ["sleep","infinity"]\n`],
    [USER_IMAGE, `FROM ${BUSYBOX}\nUSER 4242\n`],
  ]) {
    execFileSync('docker', ['build', '-q', '-t', tag, '-'], { input: dockerfile, stdio: ['pipe', 'pipe', 'pipe'] })
  }
})
afterAll(() => {
  for (const tag of [KEEP_IMAGE, USER_IMAGE]) {
    try {
      docker(['rmi', tag])
    } catch {
      /* in use by a container of another session, or gone */
    }
  }
})

/** pids of the guest daemon(s) in the sandbox, found by /proc/<pid>/comm (run through any engine). */
async function guestPids(sb: any): Promise<number[]> {
  const r = await sb.execute('sh', [
    '-c',
    'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = agentic-sandbox ] && echo ${d#/proc/}; done; true',
  ])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

/** Runs `p` and returns how long it took in ms, failing when it did not settle within `ms`. */
async function timed(p: Promise<any>, ms: number, what: string): Promise<number> {
  const t0 = Date.now()
  await within(p, ms, what)
  return Date.now() - t0
}

describe('logs never reach the host disk', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  afterAll(async () => {
    await manager.destroyAll()
  })

  for (const [what, config] of [
    ['guest engine', { docker: { execEngine: 'guest' } }],
    ['exec engine', { docker: { execEngine: 'exec' } }],
    ['an image that keeps its command', { image: KEEP_IMAGE }],
  ] as const) {
    it(`${what}: log driver none`, async () => {
      const sb = await manager.createSandbox(config)
      try {
        await sb.start()
        const info = inspectContainer(sb.id)
        expect(info.HostConfig.LogConfig.Type).toBe('none')
        expect(info.LogPath).toBe('')
      } finally {
        await sb.destroy()
      }
    })
  }

  it('50 MB written to the container\'s stdout (/proc/1/fd/1, as root) reach no file on the host', async () => {
    const sb = await manager.createSandbox({ docker: { execEngine: 'exec', user: 'root' } })
    try {
      await sb.start()
      const info = inspectContainer(sb.id)
      const r = await sb.execute('sh', ['-c', 'head -c 50000000 /dev/zero > /proc/1/fd/1 && echo written'], { timeout: 60 })
      expect(r.stdout, r.stderr).toBe('written\n')
      expect(inspectContainer(sb.id).LogPath).toBe('')
      const dir = `/var/lib/docker/containers/${info.Id}`
      if (fs.existsSync(dir)) {
        const big = fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).size > 1_000_000)
        expect(big, `large files in ${dir}`).toEqual([])
      }
      expect((await sb.execute('echo', ['alive'])).stdout).toBe('alive\n')
    } finally {
      await sb.destroy()
    }
  })
})

describe('PID 1 and the exec engine watchdog', () => {
  it('exec engine: Docker init is PID 1 and its stdin loop runs as root, out of the sandbox user\'s reach', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', docker: { execEngine: 'exec' } } as any)
    try {
      const sb = await m.createSandbox()
      await sb.start()
      const info = inspectContainer(sb.id)
      expect(info.HostConfig.Init).toBe(true)
      expect((await sb.execute('id', ['-u'])).stdout).toBe('1000\n')
      const r = await sb.execute('sh', ['-c', 'kill -9 1; for d in /proc/[0-9]*; do [ "$(cat $d/comm)" = sh ] && [ "$(stat -c %u $d)" = 0 ] && kill -9 ${d#/proc/}; done; cat /proc/1/fd/0 < /dev/null; echo tried'])
      expect(r.stdout).toContain('tried')
      expect(r.stderr).toMatch(/ermission denied|not permitted/)
      expect(inspectContainer(sb.id).State.Running).toBe(true)
      expect((await sb.execute('echo', ['still up'])).stdout).toBe('still up\n')
    } finally {
      await m.destroyAll()
    }
  })
})

describe('deadlines: a frozen guest never hangs the lifecycle', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('guest as PID 1 frozen from the host: health says so, calls fall back to docker exec, stop/start/destroy stay bounded', async () => {
    const sb = await manager.createSandbox({ docker: { execEngine: 'guest' } })
    try {
      await sb.start()
      expect((await sb.writeFile('keep.txt', 'kept')).success).toBe(true)
      docker(['kill', '-s', 'STOP', containerOf(sb.id)])

      const h = await within(sb.healthCheck(), 12_000, 'healthCheck with a frozen guest')
      expect(h.healthy).toBe(false)
      expect(h.message).toMatch(/guest daemon did not answer/)

      // the next calls run through docker exec; the container is still running
      const r = await within(sb.execute('cat', ['keep.txt']), 15_000, 'execute after the guest froze')
      expect(r.stdout).toBe('kept')
      expect(sb.execEngine).toBe('exec')
      expect((await sb.readFile('keep.txt')).content).toBe('kept')

      const bg = await sb.execute('sleep', ['300'], { background: true })
      const tStop = await timed(sb.stop(), BOUNDED_MS, 'stop() with a frozen guest')
      expect(sb.state).toBe('stopped')
      await waitFor(() => !bg.running, 5000)
      await sb.start()
      expect((await sb.execute('cat', ['keep.txt'])).stdout).toBe('kept')
      const tDestroy = await timed(sb.destroy(), BOUNDED_MS, 'destroy() with a frozen guest')
      expect(await goneOf(sb.id)).toEqual(NONE)
      console.log(`frozen PID-1 guest: stop ${tStop} ms, destroy ${tDestroy} ms`)
    } finally {
      await sb.destroy()
    }
  })

  it('stop() right after the guest froze ends within the budget and the sandbox works after start()', async () => {
    const sb = await manager.createSandbox({ docker: { execEngine: 'guest' } })
    try {
      await sb.start()
      docker(['kill', '-s', 'STOP', containerOf(sb.id)])
      const t = await timed(sb.stop(), BOUNDED_MS, 'stop() with a frozen guest')
      expect(t).toBeLessThan(15_000)
      expect(sb.state).toBe('stopped')
      await sb.start()
      expect((await sb.execute('echo', ['after'])).stdout).toBe('after\n')
    } finally {
      await within(sb.destroy(), BOUNDED_MS, 'destroy()')
    }
  })

  it('guest attached by exec frozen from inside (kill -STOP): stop is bounded and the guest is restarted', async () => {
    const sb = await manager.createSandbox({ image: KEEP_IMAGE, docker: { execEngine: 'guest' } })
    try {
      await sb.start()
      expect(sb.execEngine).toBe('guest')
      const [old] = await guestPids(sb)
      // background: the guest answers "started" before it is frozen
      await sb.execute('sh', ['-c', `sleep 0.3; kill -STOP ${old}`], { background: true })
      await sleep(1000)
      const t = await timed(sb.stop(), BOUNDED_MS, 'stop() with a frozen exec-attached guest')
      expect(sb.state).toBe('stopped')
      expect(inspectContainer(sb.id).State.Paused).toBe(true)
      await sb.start()
      const r = await within(sb.execute('echo', ['restarted']), 30_000, 'execute after the guest was restarted')
      expect(r.stdout).toBe('restarted\n')
      expect(sb.execEngine).toBe('guest')
      const now = await guestPids(sb)
      expect(now).toHaveLength(1)
      expect(now[0]).not.toBe(old)
      console.log(`frozen exec-attached guest: stop ${t} ms`)
    } finally {
      await within(sb.destroy(), BOUNDED_MS, 'destroy()')
    }
  })

  it('pool release of a sandbox with a frozen guest is bounded; the next user gets a working sandbox', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const pool = await m.createPool({ docker: { execEngine: 'guest' } }, { min: 1, max: 1, idleTimeoutSeconds: 0 })
      const sb = await pool.acquire()
      const frozen = sb.id
      docker(['kill', '-s', 'STOP', containerOf(sb.id)])
      const t = await timed(pool.release(sb), BOUNDED_MS + 5_000, 'release() of a sandbox with a frozen guest')
      const next = await within(pool.acquire({ timeoutSeconds: 60 }), 60_000, 'acquire after a frozen release')
      expect((await next.execute('echo', ['next user'])).stdout).toBe('next user\n')
      // a frozen guest cannot be trusted as PID 1 (reaper, owner watchdog): it is replaced, not reused
      expect(next.id).not.toBe(frozen)
      expect(next.execEngine).toBe('guest')
      await pool.release(next)
      console.log(`release with a frozen guest: ${t} ms`)
    } finally {
      await within(m.destroyAll(), BOUNDED_MS, 'destroyAll()')
    }
  })

  it('manager.destroyAll() with frozen guests is bounded', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    const a = await m.createSandbox({ docker: { execEngine: 'guest' } })
    const b = await m.createSandbox({ image: KEEP_IMAGE, docker: { execEngine: 'guest' } })
    await a.start()
    await b.start()
    docker(['kill', '-s', 'STOP', containerOf(a.id)])
    const [g] = await guestPids(b)
    await b.execute('sh', ['-c', `sleep 0.3; kill -STOP ${g}`], { background: true })
    await sleep(1000)
    const t = await timed(m.destroyAll(), BOUNDED_MS, 'destroyAll() with frozen guests')
    expect(await goneOf(a.id)).toEqual(NONE)
    expect(await goneOf(b.id)).toEqual(NONE)
    console.log(`destroyAll with two frozen guests: ${t} ms`)
  })

  it('stop() of an exec-engine sandbox held at its pids limit ends within the budget', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', limits: { pidsLimit: 24 } })
    try {
      const sb = await m.createSandbox({ docker: { execEngine: 'exec' } })
      await sb.start()
      await sb.execute('sh', ['-c', 'while :; do sleep 300 & done'], { background: true })
      await sleep(1500)
      const r = await within(
        sb.stop().then(
          () => 'stopped',
          (e: any) => e,
        ),
        BOUNDED_MS,
        'stop() at the pids limit',
      )
      // either the processes were killed, or the container was (then start() begins afresh)
      if (r === 'stopped') expect(sb.state).toBe('stopped')
      else expect(sb.state, r.message).toBe('error')
      await sb.start()
      expect((await sb.execute('echo', ['ok'])).stdout).toBe('ok\n')
    } finally {
      await within(m.destroyAll(), BOUNDED_MS, 'destroyAll()')
    }
  })
})

describe('containers die with their owner (kill -9 of the Node process)', () => {
  const childCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-owner-'))
  afterAll(() => fs.rmSync(childCwd, { recursive: true, force: true }))

  it('guest, exec engine, and images keeping their command: every container exits within seconds', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
const { SandboxManager } = require(${JSON.stringify(ADDON)});
(async () => {
  const m = new SandboxManager({ image: ${JSON.stringify(BUSYBOX)}, networkMode: 'none' });
  const ids = [];
  for (const c of [
    { docker: { execEngine: 'guest' } },
    { docker: { execEngine: 'exec' } },
    { image: ${JSON.stringify(KEEP_IMAGE)}, docker: { execEngine: 'guest' } },
    { image: ${JSON.stringify(KEEP_IMAGE)}, docker: { execEngine: 'exec' } },
  ]) {
    const sb = await m.createSandbox(c);
    await sb.start();
    const r = await sb.execute('echo', ['ok']);
    if (r.stdout !== 'ok\\n') throw new Error('execute failed ' + JSON.stringify(r));
    ids.push(sb.id + ':' + sb.execEngine);
  }
  console.log('READY ' + ids.join(' '));
  setInterval(() => {}, 1000);
})().catch((e) => { console.error('CHILD_ERROR', (e && e.stack) || e); process.exit(2); });
`,
      ],
      { cwd: childCwd, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (out += d))
    const exited = new Promise((r) => child.on('exit', r))
    try {
      const ready = await waitFor(() => /READY (.*)\n/.exec(out), 90_000, 200)
      expect(ready, out).toBeTruthy()
      const sandboxes = ready![1].split(' ').map((s) => s.split(':'))
      expect(sandboxes.map((s) => s[1])).toEqual(['guest', 'exec', 'guest', 'exec'])
      const containers = sandboxes.map(([id]) => containerOf(id))
      for (const c of containers) expect(docker(['inspect', '-f', '{{.State.Running}}', c])).toBe('true')

      const t0 = Date.now()
      child.kill('SIGKILL')
      await exited
      // an exited container may already be gone: the stale-resource reaper removes exited ones
      const isRunning = (c: string) => {
        try {
          return docker(['inspect', '-f', '{{.State.Running}}', c]) === 'true'
        } catch {
          return false
        }
      }
      const running = () => containers.filter(isRunning)
      const allStopped = await waitFor(() => running().length === 0, 20_000, 100)
      const took = Date.now() - t0
      expect(allStopped, `still running ${took} ms after kill -9: ${running().join(' ')}`).toBe(true)
      expect(took).toBeLessThan(15_000)
      console.log(`kill -9 of the owner: all 4 containers exited after ${took} ms`)
    } finally {
      child.kill('SIGKILL')
      // the stale-resource reaper of a later process would remove them; do it now (this process's
      // reaper may be removing some at the same time: "already in progress" and "no such" are fine)
      const quietly = (args: string[]) => {
        try {
          docker(args)
        } catch (e: any) {
          if (!/already in progress|No such|not found|in use|has active endpoints/i.test(String(e.message))) throw e
        }
      }
      await waitFor(() => {
        const left = dockerLabelledIds(ownerPidLabel(child.pid!))
        for (const c of left.containers) quietly(['rm', '-f', c])
        for (const v of left.volumes) quietly(['volume', 'rm', '-f', v])
        for (const n of left.networks) quietly(['network', 'rm', n])
        const l = dockerLabelled(ownerPidLabel(child.pid!))
        return l.containers + l.volumes + l.networks === 0
      }, 15_000, 200)
    }
    expect(dockerLabelled(ownerPidLabel(child.pid!))).toEqual(NONE)
  })
})

describe('the watchdog exec of an image that keeps its command', () => {
  it('is hidden from listProcesses, and restarted when the sandbox user kills it', async () => {
    const m: any = new SandboxManager({ image: KEEP_IMAGE, networkMode: 'none' })
    try {
      // same user as the image's command: the sandbox user may kill the watchdog
      const sb = await m.createSandbox({ docker: { user: '1000:1000' } })
      await sb.start()
      const watchdogs = async () =>
        // processes whose parent is outside the sandbox (ppid 0: docker exec) and named the watchdog
        // (the [d] keeps this probe, itself a docker exec on the exec engine, from matching itself)
        (await sb.execute('sh', ['-c', 'for d in /proc/[0-9]*; do read -r l < $d/stat || continue; r=${l##*") "}; set -- $r; [ "$2" = 0 ] || continue; tr "\\000" " " < $d/cmdline | grep -q "agentic-sandbox-watch[d]og" && echo ${d#/proc/}; done; true'])).stdout
          .split('\n')
          .filter(Boolean)
          .map(Number)
      const [first] = await watchdogs()
      expect(first).toBeGreaterThan(0)
      expect((await sb.listProcesses()).map((p: any) => p.pid)).not.toContain(first)
      await sb.execute('kill', ['-9', String(first)])
      await sleep(300)
      // the next call notices and starts a new one; the image's command runs on
      expect((await sb.execute('echo', ['x'])).stdout).toBe('x\n')
      const now = await waitFor(async () => {
        const w = await watchdogs()
        return w.length === 1 && w[0] !== first ? w : undefined
      }, 5000)
      expect(now, 'a new watchdog').toBeTruthy()
      expect((await sb.execute('ps')).stdout).toMatch(/sleep infinity/)
    } finally {
      await m.destroyAll()
    }
  })
})

describe('pool reset restores a clean sandbox', () => {
  for (const engine of ENGINES) {
    it(`${engine} engine: files in /dev/shm, /tmp, the workspace and a docker.tmpfs mount, and processes, do not reach the next user`, async () => {
      const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
      try {
        const pool = await m.createPool(
          { docker: { execEngine: engine, tmpfs: ['/tmp:rw,noexec,nosuid', '/scratch:rw,size=4m'] } },
          { min: 1, max: 1, idleTimeoutSeconds: 0 },
        )
        const a = await pool.acquire()
        const first = a.id
        const w = await a.execute('sh', [
          '-c',
          'echo secret > /dev/shm/leak && echo secret > /tmp/.x && echo secret > /workspace/.dot && mkdir -p /workspace/d/.e && echo s > /workspace/d/.e/f && echo secret > /scratch/.s && echo secret > /scratch/plain && echo ok',
        ])
        expect(w.stdout, w.stderr).toBe('ok\n')
        const bg = await a.execute('sh', ['-c', 'sleep 321'], { background: true })
        expect(bg.running).toBe(true)
        await pool.release(a)

        const b = await pool.acquire()
        try {
          expect(b.id).toBe(first) // the same sandbox, reset
          const r = await b.execute('sh', ['-c', 'ls -A /dev/shm /tmp /workspace /scratch; ps -o pid,args 2>/dev/null || true'])
          expect(r.stdout).not.toMatch(/leak|\.x|\.dot|\.s\b|plain|\bd\b/)
          expect(r.stdout).not.toContain('sleep 321')
          expect(await b.listProcesses()).toEqual([])
          for (const f of ['/dev/shm/leak', '/tmp/.x', '/workspace/.dot', '/scratch/.s']) {
            expect((await b.readFile(f)).success, f).toBe(false)
          }
        } finally {
          await pool.release(b)
        }
      } finally {
        await m.destroyAll()
      }
    })
  }

  it('a sandbox with a writable root is not reused: release destroys it and the pool replaces it', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const pool = await m.createPool({ docker: { readOnlyRoot: false, user: 'root' } }, { min: 1, max: 1, idleTimeoutSeconds: 0 })
      const a = await pool.acquire()
      const first = a.id
      expect((await a.execute('sh', ['-c', 'echo secret > /leak-in-root && echo ok'])).stdout).toBe('ok\n')
      await pool.release(a)
      expect(await goneOf(first)).toEqual(NONE)
      const b = await pool.acquire({ timeoutSeconds: 60 })
      try {
        expect(b.id).not.toBe(first)
        expect((await b.execute('cat', ['/leak-in-root'])).exitCode).not.toBe(0)
      } finally {
        await pool.release(b)
      }
    } finally {
      await m.destroyAll()
    }
  })
})

describe('isolated networks take small subnets from a dedicated pool', () => {
  it('each isolated sandbox gets a /28 of docker.isolatedSubnetPool; a full pool is INSUFFICIENT_RESOURCES', async () => {
    // a private range only this test uses: two /28s
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'isolated', docker: { isolatedSubnetPool: '10.215.77.0/27' } })
    try {
      const a = await m.createSandbox()
      const b = await m.createSandbox()
      await a.start()
      await b.start()
      const subnets = [a, b].map((s) => {
        const net = dockerLabelledIds(sandboxLabel(s.id)).networks[0]
        const info = JSON.parse(docker(['network', 'inspect', net]))[0]
        expect(info.Internal).toBe(true)
        expect(info.Options['com.docker.network.bridge.inhibit_ipv4']).toBe('true')
        return info.IPAM.Config[0].Subnet
      })
      expect(subnets.sort()).toEqual(['10.215.77.0/28', '10.215.77.16/28'])
      const c = await m.createSandbox()
      const err = await expectCode(c.start(), 'INSUFFICIENT_RESOURCES')
      expect(err.message).toContain('docker.isolatedSubnetPool')
      expect(await goneOf(c.id)).toEqual(NONE)
    } finally {
      await m.destroyAll()
    }
  })

  it('an invalid pool is INVALID_CONFIG naming the key', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    await expectCode(m.createSandbox({ docker: { isolatedSubnetPool: '10.215.77.5/24' } }), 'INVALID_CONFIG')
  })

  it.runIf(process.env.SANDBOX_SCALE_TEST === '1')(
    '100 isolated sandboxes exist at once (SANDBOX_SCALE_TEST=1)',
    async () => {
      const N = 100
      const m: any = new SandboxManager({
        image: BUSYBOX,
        networkMode: 'isolated',
        limits: { memoryMB: 32, cpuCores: 0.1, diskMB: 4, pidsLimit: 16 },
      })
      const t0 = Date.now()
      try {
        const all: any[] = []
        // a few at a time: the engine serialises network creation anyway
        for (let i = 0; i < N; i += 5) {
          const batch = await Promise.all([...Array(Math.min(5, N - i))].map(() => m.createSandbox()))
          await Promise.all(batch.map((s: any) => s.start()))
          all.push(...batch)
        }
        const tCreated = Date.now() - t0
        const outs = await Promise.all(all.map((s) => s.execute('echo', [s.id])))
        outs.forEach((o, i) => expect(o.stdout).toBe(`${all[i].id}\n`))
        const subnets = new Set(all.map((s) => docker(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', `agentic-sandbox-${s.id}-net`])))
        expect(subnets.size).toBe(N)
        const t1 = Date.now()
        await within(m.destroyAll(), BOUNDED_MS, 'destroyAll() of 100 sandboxes')
        const tDestroyed = Date.now() - t1
        // what the engine had not removed within the budget is removed in the background
        const left = () => all.filter((s) => dockerLabelledIds(sandboxLabel(s.id)).networks.length + dockerLabelledIds(sandboxLabel(s.id)).containers.length > 0)
        const gone = await waitFor(() => left().length === 0, 300_000, 1000)
        const tGone = Date.now() - t1
        expect(gone, `${left().length} sandboxes still have resources`).toBe(true)
        for (const s of all) expect(dockerLabelled(sandboxLabel(s.id))).toEqual(NONE)
        console.log(
          `${N} isolated sandboxes: created+started in ${tCreated} ms, echo in all, destroyAll() resolved in ${tDestroyed} ms, all resources gone after ${tGone} ms (total ${Date.now() - t0} ms)`,
        )
      } finally {
        await m.destroyAll()
      }
    },
    1_200_000,
  )
})

describe('docker.runtime', () => {
  it('is passed to the engine; an unknown runtime is INVALID_CONFIG with the engine\'s message', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const ok = await m.createSandbox({ docker: { runtime: 'runc' } })
      await ok.start()
      expect(inspectContainer(ok.id).HostConfig.Runtime).toBe('runc')
      const bad = await m.createSandbox({ docker: { runtime: 'no-such-runtime' } })
      const err = await expectCode(bad.start(), 'INVALID_CONFIG')
      expect(err.message).toMatch(/Unknown runtime specified no-such-runtime/)
      expect(await goneOf(bad.id)).toEqual(NONE)
    } finally {
      await m.destroyAll()
    }
  })
})

describe('default user', () => {
  for (const engine of ENGINES) {
    it(`${engine} engine: 1000:1000 with HOME=/tmp unless docker.user, the image or env say otherwise`, async () => {
      const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', docker: { execEngine: engine } } as any)
      try {
        const idOf = async (sb: any) => (await sb.execute('sh', ['-c', 'echo $(id -u):$(id -g) $HOME'])).stdout.trim()
        const plain = await m.createSandbox()
        await plain.start()
        expect(await idOf(plain)).toBe('1000:1000 /tmp')
        expect((await plain.writeFile('f.txt', 'x')).success).toBe(true)
        expect((await plain.execute('stat', ['-c', '%u', '/workspace/f.txt'])).stdout).toBe('1000\n')

        const root = await m.createSandbox({ docker: { user: 'root' } })
        await root.start()
        expect((await idOf(root)).split(' ')[0]).toBe('0:0')

        const home = await m.createSandbox({ env: { HOME: '/workspace' } })
        await home.start()
        expect(await idOf(home)).toBe('1000:1000 /workspace')

        const own = await m.createSandbox({ image: USER_IMAGE })
        await own.start()
        expect((await idOf(own)).split(' ')[0]).toBe('4242:0')
      } finally {
        await m.destroyAll()
      }
    })
  }

  it('an image that keeps its command: the command runs as the image says, executes as 1000', async () => {
    const m: any = new SandboxManager({ image: KEEP_IMAGE, networkMode: 'none' })
    try {
      const sb = await m.createSandbox()
      await sb.start()
      expect((await sb.execute('id', ['-u'])).stdout).toBe('1000\n')
      expect((await sb.execute('sh', ['-c', 'echo $HOME'])).stdout).toBe('/tmp\n')
      const r = await sb.execute('sh', ['-c', 'for d in /proc/[0-9]*; do [ "$(cat $d/cmdline | tr "\\000" " ")" = "sleep infinity " ] && stat -c %u $d; done'])
      expect(r.stdout).toBe('0\n')
    } finally {
      await m.destroyAll()
    }
  })

  it('works on Debian too (python3 as uid 1000)', async () => {
    const m: any = new SandboxManager({ image: DEBIAN, networkMode: 'none' })
    try {
      const sb = await m.createSandbox()
      await sb.start()
      const r = await sb.execute('python3', ['-c', 'import os, pathlib; pathlib.Path("/workspace/p.txt").write_text("x"); print(os.getuid(), os.path.expanduser("~"))'])
      expect(r.stdout, r.stderr).toBe('1000 /tmp\n')
    } finally {
      await m.destroyAll()
    }
  })
})
