// The attack suite: programs inside the sandbox attack our own machinery there (the guest daemon and
// its channel, PID 1, the engine's logs, pool reset, cleanup). Each test asserts that the host stayed
// bounded (memory, time to settle) and that the sandbox, or its cleanup, still works.
// Runs on both engines (scripts/test.sh runs every suite again with SANDBOX_EXEC_ENGINE=exec); the
// attacks on the guest's channel only exist on the guest engine.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, inspectContainer, sandboxLabel, settle, sleep } from './helpers.js'

const EXEC_ENGINE = process.env.SANDBOX_EXEC_ENGINE === 'exec'
const onGuest = EXEC_ENGINE ? it.skip : it
const KEEP_IMAGE = 'agentic-sandbox/test-keep-hostile:1'
/** What every teardown call must settle within, whatever runs inside (the bound is 15 s). */
const TEARDOWN_MS = 16_000

/** pids of our daemon's processes in the sandbox (the guest and its per-command shims), by comm. */
const GUEST_PIDS = 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = agentic-sandbox ] && echo ${d#/proc/}; done'

/** One frame of the guest protocol: len u32 LE, kind u8, id u32 LE, payload. */
function frame(kind: number, id: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUInt32LE(5 + payload.length, 0)
  head.writeUInt8(kind, 4)
  head.writeUInt32LE(id, 5)
  return Buffer.concat([head, payload])
}

const rssMB = () => process.memoryUsage().rss / (1024 * 1024)

describe.each([
  ['root without capabilities', '0:0'],
  ['uid 1000', '1000:1000'],
])('hostile: the channel is out of reach (%s)', (_what, user) => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', docker: { user } })
  let sb: any
  beforeAll(async () => {
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(() => manager.destroyAll())

  onGuest("the guest's descriptors cannot be opened: /proc/1/fd/*, /proc/$PPID/fd/*, every guest process", async () => {
    const probe = `
      ps="1 $PPID $(${GUEST_PIDS})"
      for p in $ps; do for f in /proc/$p/fd/0 /proc/$p/fd/1 /proc/$p/fd/2; do
        ( : < "$f" ) 2>/dev/null && echo "OPENED-R $f"
        ( : >> "$f" ) 2>/dev/null && echo "OPENED-W $f"
      done; readlink /proc/$p/fd/1 >/dev/null 2>&1 && echo "LINKED /proc/$p/fd/1"; done
      echo "pids: $ps"; id -u`
    const r = await sb.execute('sh', ['-c', probe])
    expect(r.stdout).toMatch(/pids: 1 \d+/)
    expect(r.stdout.trim().split('\n').pop()).toBe(user.split(':')[0])
    // (root may list the fd numbers of the root-owned guest; it can neither open nor follow them)
    expect(r.stdout).not.toMatch(/OPENED|LINKED/)
  })

  it('forged frames and an output flood do not grow the host: output capped on the host', async () => {
    // a 64 KiB forged Stdout frame for each of the first 64 request ids, written wherever it can be
    const forged = Buffer.concat(Array.from({ length: 64 }, (_, i) => frame(3, i + 1, Buffer.alloc(64 * 1024, 0x41))))
    expect((await sb.writeFile('forged.bin', forged)).success).toBe(true)
    const before = rssMB()
    const attack = `end=$(($(date +%s) + 4))
      while [ $(date +%s) -lt $end ]; do
        for f in /proc/1/fd/1 /proc/$PPID/fd/1 /proc/self/fd/1; do cat forged.bin > $f 2>/dev/null; done
      done; head -c 50000000 /dev/zero`
    const r = await sb.execute('sh', ['-c', attack], { maxOutputBytes: 1024, timeout: 30 })
    const grown = rssMB() - before
    expect(r.stdout.length).toBeLessThanOrEqual(1024)
    expect(r.truncated).toBe(true)
    expect(grown, `host RSS grew by ${grown.toFixed(0)} MB`).toBeLessThan(150)
    // nothing forged leaked into later results, and the sandbox still answers
    const e = await sb.execute('echo', ['still-here'])
    expect(e.stdout).toBe('still-here\n')
    expect(e.stderr).toBe('')
  })

  onGuest("a background reader of the guest's stdin steals nothing: every write lands intact", async () => {
    const thief = `for p in 1 $PPID $(${GUEST_PIDS}); do (dd if=/proc/$p/fd/0 of=/tmp/stolen.$p bs=65536 2>/dev/null &); done; sleep 30`
    const bg = await sb.execute('sh', ['-c', thief], { background: true })
    await sleep(300)
    for (let i = 0; i < 5; i++) {
      const content = Buffer.alloc(200_000, 0x30 + i)
      const w = await settle(sb.writeFile(`intact-${i}.bin`, content), 10_000, `writeFile ${i}`)
      expect(w.ok && w.value.success, JSON.stringify(w.error ?? w.value)).toBe(true)
      const back = await sb.readFile(`intact-${i}.bin`, { encoding: 'buffer' })
      expect(Buffer.compare(back.buffer, content)).toBe(0)
    }
    const stolen = await sb.execute('sh', ['-c', 'cat /tmp/stolen.* 2>/dev/null | wc -c'])
    expect(stolen.stdout.trim()).toBe('0')
    await bg.kill()
  })
})

describe('hostile: a frozen guest hangs nothing', () => {
  beforeAll(() => {
    execFileSync('docker', ['build', '-q', '-t', KEEP_IMAGE, '-'], {
      input: `FROM ${BUSYBOX}\nEXPOSE 8080\nCMD ["sleep","infinity"]\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
  })
  afterAll(() => {
    try {
      docker(['rmi', KEEP_IMAGE])
    } catch {
      /* in use by another suite's container, or gone */
    }
  })

  // STOP every process of ours it can reach: PID 1, the parent, the guest (when attached by exec)
  const FREEZE = `kill -STOP 1 $PPID $(${GUEST_PIDS}) 2>/dev/null; sleep 60`

  it.each([
    ['the default image (guest as PID 1)', BUSYBOX],
    ['an image that keeps its own command (guest attached by exec)', KEEP_IMAGE],
  ])('%s: timeouts, stop and destroy settle in bounded time', async (_what, image) => {
    const manager: any = new SandboxManager({ image, networkMode: 'none' })
    const sb = await manager.createSandbox()
    await sb.start()
    try {
      const t0 = Date.now()
      const r = await settle(sb.execute('sh', ['-c', FREEZE], { timeout: 3 }), TEARDOWN_MS, 'execute after freezing')
      if (r.ok) expect(r.value.timedOut).toBe(true)
      else expect(typeof r.error.code).toBe('string')
      expect(Date.now() - t0).toBeLessThan(TEARDOWN_MS)
      // later calls answer (through a fallback) or fail clearly; they never hang
      const w = await settle(sb.writeFile('after.txt', 'x'), TEARDOWN_MS, 'writeFile after freezing')
      expect(w.ok).toBe(true)
      const e = await settle(sb.execute('echo', ['after'], { timeout: 5 }), TEARDOWN_MS, 'execute after freezing')
      if (!e.ok) expect(typeof e.error.code).toBe('string')
      await settle(sb.stop(), TEARDOWN_MS, 'stop()')
      await settle(sb.destroy(), TEARDOWN_MS, 'destroy()')
      expect(dockerLabelled(sandboxLabel(sb.id)).containers).toBe(0)
    } finally {
      await settle(manager.destroyAll(), TEARDOWN_MS, 'destroyAll()')
    }
  })

  it('a pool: release, pool.destroy and manager.destroyAll settle in bounded time', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    const pool = await manager.createPool({}, { min: 1, max: 2 })
    const sb = await pool.acquire()
    await settle(sb.execute('sh', ['-c', FREEZE], { timeout: 2 }), TEARDOWN_MS, 'execute after freezing')
    await settle(pool.release(sb), TEARDOWN_MS, 'pool.release()')
    await settle(pool.destroy(), TEARDOWN_MS, 'pool.destroy()')
    await settle(manager.destroyAll(), TEARDOWN_MS, 'manager.destroyAll()')
    expect(dockerLabelled(sandboxLabel(sb.id)).containers).toBe(0)
  })
})

describe('hostile: leftovers, logs, listings', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', limits: { pidsLimit: 128 } })
  let sb: any
  beforeAll(async () => {
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(() => manager.destroyAll())

  const leftovers = async () =>
    (await sb.listProcesses()).filter((p: any) => !p.background).map((p: any) => [p.command, ...p.args].join(' '))

  it('a fork bomb whose leader exits at once is gone when execute returns', async () => {
    const r = await sb.execute('sh', ['-c', 'b() { b | b & }; b & exit 0'])
    expect(r.exitCode).toBe(0)
    const e = await settle(sb.execute('echo', ['alive'], { timeout: 10 }), 15_000, 'echo after the fork bomb')
    expect(e.ok && e.value.stdout).toBe('alive\n')
    expect(await leftovers()).toEqual([])
  })

  it('processes that call setsid or double-fork do not outlive a foreground execute', async () => {
    const r = await sb.execute('sh', ['-c', "setsid sleep 1001 & (sh -c 'sleep 1002 &' &); sleep 0.3; exit 0"])
    expect(r.exitCode).toBe(0)
    expect((await leftovers()).filter((c: string) => c.includes('sleep 100'))).toEqual([])
  })

  it('nor a foreground execute that times out', async () => {
    const r = await sb.execute('sh', ['-c', 'setsid sleep 1003 & sleep 100'], { timeout: 1 })
    expect(r.timedOut).toBe(true)
    await sleep(500)
    expect((await leftovers()).filter((c: string) => c.includes('sleep 100'))).toEqual([])
  })

  it('background: true keeps what it starts', async () => {
    const bg = await sb.execute('sh', ['-c', 'setsid sleep 1004 & sleep 60'], { background: true })
    await sleep(300)
    const all = (await sb.listProcesses()).map((p: any) => [p.command, ...p.args].join(' '))
    expect(all.some((c: string) => c.includes('sleep 1004'))).toBe(true)
    await bg.kill()
    await sb.execute('sh', ['-c', 'pkill -f "sleep 1004" || kill $(pidof sleep) 2>/dev/null; true'])
  })

  it('writing 50 MB to PID 1 and the container output never reaches an engine log', async () => {
    const r = await sb.execute('sh', ['-c', 'head -c 50000000 /dev/zero > /proc/1/fd/1; head -c 5000000 /dev/zero > /proc/1/fd/2; true'])
    expect(r.exitCode).toBe(0)
    const info = inspectContainer(sb.id)
    expect(info.HostConfig.LogConfig.Type).toBe('none')
    expect(info.LogPath ?? '').toBe('')
  })

  it('a node_modules-sized tree (100,000 files) lists, and the sandbox keeps working', async () => {
    const mk = await sb.execute('sh', ['-c', 'mkdir -p big/a big/b && cd big && seq 1 50000 | sed s,^,a/f, | xargs touch && seq 1 50000 | sed s,^,b/f, | xargs touch'], { timeout: 120 })
    expect(mk.exitCode, mk.stderr).toBe(0)
    const t0 = Date.now()
    const before = rssMB()
    const list = await sb.listFilesDetailed('big', { recursive: true })
    console.log(`listFilesDetailed of 100,002 entries: ${Date.now() - t0} ms, host RSS +${(rssMB() - before).toFixed(0)} MB`)
    expect(list.length).toBe(100_002)
    expect(sb.state).toBe('running')
    expect((await sb.execute('echo', ['ok'])).stdout).toBe('ok\n')
    await sb.execute('rm', ['-rf', 'big'], { timeout: 120 })
  })
})

describe('hostile: pool reset leaves nothing for the next tenant', () => {
  it('workspace, /tmp, /dev/shm, docker.tmpfs mounts and processes are cleared', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const pool = await manager.createPool({ docker: { tmpfs: ['/tmp:rw,noexec,nosuid', '/scratch:rw'] } }, { min: 1, max: 1 })
      const a = await pool.acquire()
      const plant = 'echo s > /dev/shm/leak; echo t > /tmp/.leak; echo w > .leak; echo x > /scratch/leak; true'
      expect((await a.execute('sh', ['-c', plant])).exitCode).toBe(0)
      await a.execute('sleep', ['1005'], { background: true })
      await pool.release(a)
      const b = await pool.acquire()
      expect(b.id).toBe(a.id) // the same sandbox, reused
      const look = await b.execute('sh', ['-c', 'cat /dev/shm/leak /tmp/.leak .leak /scratch/leak 2>/dev/null; true'])
      expect(look.stdout).toBe('')
      const procs = (await b.listProcesses()).map((p: any) => [p.command, ...p.args].join(' '))
      expect(procs.filter((c: string) => c.includes('1005'))).toEqual([])
      await pool.release(b)
      await pool.destroy()
    } finally {
      await manager.destroyAll()
    }
  })

  it('a sandbox with a writable root is replaced, not reused', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    try {
      const pool = await manager.createPool({ docker: { readOnlyRoot: false } }, { min: 1, max: 1 })
      const a = await pool.acquire()
      await a.execute('sh', ['-c', 'echo r > /etc/leak'])
      await pool.release(a)
      const b = await pool.acquire()
      expect(b.id).not.toBe(a.id)
      expect((await b.execute('sh', ['-c', 'cat /etc/leak 2>/dev/null; true'])).stdout).toBe('')
      await pool.release(b)
      await pool.destroy()
    } finally {
      await manager.destroyAll()
    }
  })
})
