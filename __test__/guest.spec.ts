// The guest engine: the in-sandbox daemon, its delivery, its death and restart, and what runs over it.
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import {
  BUSYBOX,
  DEBIAN,
  docker,
  dockerLabelled,
  expectCode,
  inspectContainer,
  processList,
  sandboxLabel,
  sleep,
  waitFor,
} from './helpers.js'

const GUEST = { docker: { execEngine: 'guest' } }
const KEEP_IMAGE = 'agentic-sandbox/test-keep:1'

/** Shell snippet: kill -9 every process whose /proc/<pid>/comm is 'agentic-sandbox' (the guest daemon). */
const KILL_GUEST = 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = agentic-sandbox ] && kill -9 ${d#/proc/}; done'

/** pids of the guest daemon(s) in the sandbox, found by /proc/<pid>/comm. */
async function guestPids(sb: any): Promise<number[]> {
  const r = await sb.execute('sh', [
    '-c',
    'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = agentic-sandbox ] && echo ${d#/proc/}; done; true',
  ])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

/** Settles (never rejects) with { ok, value | error }, or fails the test if p has not settled within ms. */
async function settle(p: Promise<any>, ms: number, what: string): Promise<{ ok: boolean; value?: any; error?: any }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const wrapped = p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  )
  const r = await Promise.race([
    wrapped,
    new Promise<null>((res) => {
      timer = setTimeout(() => res(null), ms)
    }),
  ])
  clearTimeout(timer)
  if (!r) throw new Error(`${what} did not settle within ${ms} ms`)
  return r
}

/** Runs fn with process.env[name] set to value (or deleted for undefined), restoring it afterwards. */
async function withEnv<T>(name: string, value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env[name]
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
  try {
    return await fn()
  } finally {
    if (saved === undefined) delete process.env[name]
    else process.env[name] = saved
  }
}

describe('guest engine', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  let sb: any

  beforeAll(async () => {
    sb = await manager.createSandbox(GUEST)
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('is the default engine for the BusyBox image; SANDBOX_EXEC_ENGINE and the config choose', async () => {
    const m: any = await withEnv('SANDBOX_EXEC_ENGINE', undefined, async () => new SandboxManager({ image: BUSYBOX, networkMode: 'none' }))
    const viaEnv: any = await withEnv('SANDBOX_EXEC_ENGINE', 'exec', async () => new SandboxManager({ image: BUSYBOX, networkMode: 'none' }))
    try {
      const d = await m.createSandbox()
      await d.start()
      expect(d.execEngine).toBe('guest')
      expect((await d.execute('echo', ['default'])).stdout).toBe('default\n')
      expect(inspectContainer(d.id).Config.Labels['agentic-sandbox.managed']).toBe('true')

      const e = await viaEnv.createSandbox()
      await e.start()
      expect(e.execEngine).toBe('exec')
      expect((await e.execute('echo', ['via env'])).stdout).toBe('via env\n')

      // the config beats the environment
      const g = await viaEnv.createSandbox(GUEST)
      await g.start()
      expect(g.execEngine).toBe('guest')
    } finally {
      await m.destroyAll()
      await viaEnv.destroyAll()
    }
  })

  it('the guest daemon runs in the sandbox but is not listed by listProcesses', async () => {
    expect(sb.execEngine).toBe('guest')
    const pids = await guestPids(sb)
    expect(pids).toHaveLength(1)
    const listed = await sb.listProcesses()
    expect(listed).toEqual([])

    const bg = await sb.execute('sleep', ['351'], { background: true })
    try {
      const procs = await sb.listProcesses()
      expect(procs.map((p: any) => p.pid)).toEqual([bg.pid])
      expect(procs.some((p: any) => pids.includes(p.pid))).toBe(false)
      // the probe itself sees the guest, PID 1 and the sleep
      const all = await processList(sb)
      expect(all.some((l) => l.startsWith(`${pids[0]}:`))).toBe(true)
      expect(all.some((l) => l.endsWith('sleep 351'))).toBe(true)
    } finally {
      await bg.kill()
      await bg.wait()
    }
  })

  it('the guest daemon uses less than 5 MB of memory (VmRSS)', async () => {
    const [pid] = await guestPids(sb)
    expect(pid).toBeGreaterThan(0)
    const r = await sb.execute('cat', [`/proc/${pid}/status`])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^Name:\s+agentic-sandbox$/m)
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(r.stdout)
    expect(m, r.stdout).not.toBeNull()
    const rssKB = Number(m![1])
    expect(rssKB).toBeGreaterThan(0)
    expect(rssKB).toBeLessThan(5 * 1024)
  })

  it('1 MB of binary data round-trips through writeFile/readFile', async () => {
    const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(1024 * 1024 - 256)])
    const w = await sb.writeFile('/workspace/bin/blob.bin', data)
    expect(w.success, w.error).toBe(true)
    expect(w.path).toBe('/workspace/bin/blob.bin')

    const asBuffer = await sb.readFile('bin/blob.bin', { encoding: 'buffer' })
    expect(asBuffer.success, asBuffer.error).toBe(true)
    expect(Buffer.isBuffer(asBuffer.buffer)).toBe(true)
    expect(asBuffer.buffer.length).toBe(data.length)
    expect(asBuffer.buffer.equals(data)).toBe(true)

    const asB64 = await sb.readFile('bin/blob.bin', { encoding: 'base64' })
    expect(asB64.success).toBe(true)
    expect(Buffer.from(asB64.content, 'base64').equals(data)).toBe(true)

    // the bytes on disk inside the sandbox are the same
    const sum = await sb.execute('sha256sum', ['/workspace/bin/blob.bin'])
    expect(sum.stdout.split(/\s+/)[0]).toBe(createHash('sha256').update(data).digest('hex'))
    const size = await sb.execute('stat', ['-c', '%s', '/workspace/bin/blob.bin'])
    expect(size.stdout.trim()).toBe(String(1024 * 1024))

    // Uint8Array input and an empty file
    expect((await sb.writeFile('bin/u8.bin', new Uint8Array([1, 2, 3, 0, 255]))).success).toBe(true)
    expect([...(await sb.readFile('bin/u8.bin', { encoding: 'buffer' })).buffer]).toEqual([1, 2, 3, 0, 255])
    expect((await sb.writeFile('bin/empty', '')).success).toBe(true)
    const empty = await sb.readFile('bin/empty')
    expect(empty.success).toBe(true)
    expect(empty.content).toBe('')
    expect((await sb.deleteFile('bin', { recursive: true })).success).toBe(true)
  })

  it('readFile reads /proc files (size 0 in stat) completely', async () => {
    const r = await sb.readFile('/proc/self/status')
    expect(r.success, r.error).toBe(true)
    expect(r.content).toMatch(/^Name:/)
    expect(r.content).toMatch(/^VmRSS:/m)
  })

  it('listFilesDetailed recursive lists a tree of 200 files with correct metadata', async () => {
    const mk = await sb.execute('sh', [
      '-c',
      'cd /workspace && mkdir tree && for d in 0 1 2 3 4 5 6 7 8 9; do mkdir tree/d$d; for f in $(seq 0 19); do head -c $f /dev/zero > tree/d$d/f$f.txt; done; done; printf x > tree/d0/f0.txt; chmod 600 tree/d3/f7.txt',
    ])
    expect(mk.exitCode, mk.stderr).toBe(0)
    try {
      const entries = await sb.listFilesDetailed('tree', { recursive: true })
      const files = entries.filter((e: any) => e.type === 'file')
      const dirs = entries.filter((e: any) => e.type === 'directory')
      expect(files).toHaveLength(200)
      expect(dirs.map((e: any) => e.path).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`))
      expect(entries).toHaveLength(210)

      const byPath = new Map(entries.map((e: any) => [e.path, e]))
      const f = byPath.get('d4/f13.txt') as any
      expect(f).toBeDefined()
      expect(f.name).toBe('f13.txt')
      expect(f.size).toBe(13)
      expect(f.permissions).toBe('644')
      expect(typeof f.mtimeMs).toBe('number')
      expect(Math.abs(f.mtimeMs - Date.now())).toBeLessThan(10 * 60 * 1000)
      expect((byPath.get('d0/f0.txt') as any).size).toBe(1)
      expect((byPath.get('d3/f7.txt') as any).permissions).toBe('600')
      for (const e of files) {
        expect(e.path).toMatch(/^d\d\/f\d+\.txt$/)
        expect(e.size).toBe(e.path === 'd0/f0.txt' ? 1 : Number(/f(\d+)\.txt$/.exec(e.path)![1]))
      }

      const plain = await sb.listFiles('tree', { recursive: true })
      expect(plain).toHaveLength(210)
      expect(plain).toContain('d9/f19.txt')
    } finally {
      await sb.deleteFile('tree', { recursive: true })
    }
  })

  it('getStats returns numbers, with memory in use', async () => {
    expect((await sb.writeFile('stats.bin', randomBytes(2 * 1024 * 1024))).success).toBe(true)
    try {
      const s = await sb.getStats()
      for (const k of ['memoryUsageMB', 'cpuPercent', 'diskUsageMB', 'networkRxMB', 'networkTxMB']) {
        expect(typeof s[k], k).toBe('number')
        expect(Number.isFinite(s[k]), k).toBe(true)
        expect(s[k], k).toBeGreaterThanOrEqual(0)
      }
      expect(s.memoryUsageMB).toBeGreaterThan(0)
      expect(s.memoryUsageMB).toBeLessThan(512)
      // the 2 MB file is in the workspace
      expect(s.diskUsageMB).toBeGreaterThanOrEqual(1.5)
      expect(s.diskUsageMB).toBeLessThan(100)
    } finally {
      await sb.deleteFile('stats.bin')
    }
  })

  it('stop() kills a running background process and keeps the workspace; start() resumes', async () => {
    expect((await sb.writeFile('keep.txt', 'kept across stop')).success).toBe(true)
    const bg = await sb.execute('sleep', ['352'], { background: true })
    expect(bg.running).toBe(true)
    const [guestBefore] = await guestPids(sb)

    await sb.stop()
    expect(sb.state).toBe('stopped')
    const r = await settle(bg.wait(), 15_000, 'wait() of a background process across stop()')
    if (r.ok) expect(r.value!.exitCode, JSON.stringify(r.value)).not.toBe(0)
    expect(bg.running).toBe(false)
    await expectCode(sb.execute('echo', ['stopped']), 'SANDBOX_NOT_RUNNING')

    await sb.start()
    expect(sb.state).toBe('running')
    expect(sb.execEngine).toBe('guest')
    expect((await sb.readFile('keep.txt')).content).toBe('kept across stop')
    expect(await sb.listProcesses()).toEqual([])
    expect((await processList(sb)).some((l) => l.endsWith('sleep 352'))).toBe(false)
    // the same guest daemon serves on (stop() never kills it)
    expect(await guestPids(sb)).toEqual([guestBefore])
    expect((await sb.execute('echo', ['resumed'])).stdout).toBe('resumed\n')
  })

  it('works with the Debian image too (glibc, python3)', async () => {
    const d = await manager.createSandbox({ ...GUEST, image: DEBIAN })
    try {
      await d.start()
      expect(d.execEngine).toBe('guest')
      const r = await d.execute('python3', ['-c', 'import sys; print(sys.stdin.read().upper())'], { stdin: 'from stdin' })
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stdout).toBe('FROM STDIN\n')
      expect(await d.listProcesses()).toEqual([])
    } finally {
      await d.destroy()
    }
  })
})

describe('guest daemon death (guest is the container command)', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('the guest is PID 1: kill -9 and kill -STOP from inside do not touch it', async () => {
    const s = await manager.createSandbox(GUEST)
    try {
      await s.start()
      expect((await s.execute('cat', ['/proc/1/comm'])).stdout).toBe('agentic-sandbox\n')
      expect(inspectContainer(s.id).HostConfig.Init).toBe(false)
      const r = await settle(s.execute('sh', ['-c', `kill -STOP 1; kill -9 1; ${KILL_GUEST}; echo tried`]), 15_000, 'the execute that tries to kill the guest')
      expect(r.ok, r.error?.message).toBe(true)
      expect((await s.execute('echo', ['still here'])).stdout).toBe('still here\n')
      expect(s.execEngine).toBe('guest')
      expect(await guestPids(s)).toEqual([1])
    } finally {
      await s.destroy()
    }
  })

  it('when the container dies, pending and later calls reject quickly with SANDBOX_NOT_RUNNING; nothing hangs', async () => {
    const s = await manager.createSandbox(GUEST)
    await s.start()
    expect(s.execEngine).toBe('guest')
    expect((await s.writeFile('before.txt', 'x')).success).toBe(true)
    const containerId = inspectContainer(s.id).Id

    // settle() attaches its handlers at once: these reject while the test awaits something else
    const pending = settle(s.execute('sleep', ['30']), 20_000, 'an execute pending when the guest died')
    const bg = await s.execute('sleep', ['31'], { background: true })
    const bgWait = settle(bg.wait(), 20_000, 'wait() of a background process when the guest died')
    await sleep(300)
    // the guest cannot be killed from inside (it is PID 1): end it from the host
    docker(['kill', containerId])

    const p = await pending
    expect(p.ok, 'a pending execute resolved although its guest died').toBe(false)
    expect(p.error.code).toBe('SANDBOX_NOT_RUNNING')
    await bgWait
    expect(bg.running).toBe(false)

    const t0 = Date.now()
    const err = await expectCode(s.execute('echo', ['after']), 'SANDBOX_NOT_RUNNING')
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(err.message).toMatch(/guest daemon/)
    expect(s.state).toBe('error')

    const rf = await settle(s.readFile('before.txt'), 10_000, 'readFile after guest death')
    expect(rf.ok).toBe(true)
    expect(rf.value!.success).toBe(false)
    expect(rf.value!.error).toBeTruthy()
    const wf = await settle(s.writeFile('after.txt', 'y'), 10_000, 'writeFile after guest death')
    expect(wf.value!.success).toBe(false)
    await settle(s.listProcesses(), 10_000, 'listProcesses after guest death')
    const h = await settle(s.healthCheck(), 10_000, 'healthCheck after guest death')
    expect(h.value!.healthy).toBe(false)

    // the container stopped with its command
    const running = await waitFor(() => docker(['inspect', '-f', '{{.State.Running}}', containerId]) === 'false', 5000)
    expect(running).toBe(true)

    // start() begins afresh (empty workspace)
    await s.start()
    expect(s.state).toBe('running')
    expect(s.execEngine).toBe('guest')
    expect((await s.execute('echo', ['fresh'])).stdout).toBe('fresh\n')
    expect((await s.readFile('before.txt')).success).toBe(false)
    expect(dockerLabelled(sandboxLabel(s.id)).containers).toBe(1)

    await s.destroy()
    expect(dockerLabelled(sandboxLabel(s.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })
})

describe('guest attached by docker exec (image keeps its own command)', () => {
  const manager: any = new SandboxManager({ networkMode: 'none' })
  let sb: any

  beforeAll(async () => {
    execFileSync('docker', ['build', '-q', '-t', KEEP_IMAGE, '-'], {
      input: 'FROM agentic-sandbox/busybox:1\nEXPOSE 8080\nCMD ["sleep","infinity"]\n',
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    sb = await manager.createSandbox({ ...GUEST, image: KEEP_IMAGE })
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
    try {
      docker(['rmi', KEEP_IMAGE])
    } catch {
      /* still used by a container of another session, or already gone */
    }
  })

  /** pid of the image's own `sleep infinity`, from /proc. */
  async function imageCommandPid(): Promise<number | undefined> {
    const line = (await processList(sb)).find((l) => l.endsWith(':sleep infinity'))
    return line ? Number(line.split(':')[0]) : undefined
  }

  it("keeps the image's command, runs the guest next to it and hides both from listProcesses", async () => {
    expect(sb.execEngine).toBe('guest')
    const info = inspectContainer(sb.id)
    expect([info.Path, ...info.Args].join(' ')).toContain('sleep infinity')
    const pid = await imageCommandPid()
    expect(pid, 'the image command sleep infinity is running').toBeGreaterThan(0)
    expect(await guestPids(sb)).toHaveLength(1)
    const listed = await sb.listProcesses()
    expect(listed.some((p: any) => p.pid === pid || (p.command === 'sleep' && p.args[0] === 'infinity'))).toBe(false)
    expect(listed).toEqual([])
    expect((await sb.execute('echo', ['keep'])).stdout).toBe('keep\n')
  })

  it("stop()/start() keeps the image's command alive", async () => {
    const before = await imageCommandPid()
    const bg = await sb.execute('sleep', ['353'], { background: true })
    await sb.stop()
    expect(sb.state).toBe('stopped')
    await sb.start()
    expect(sb.execEngine).toBe('guest')
    expect(await imageCommandPid()).toBe(before)
    expect(bg.running).toBe(false)
    expect((await processList(sb)).some((l) => l.endsWith('sleep 353'))).toBe(false)
    const ps = await sb.execute('ps')
    expect(ps.exitCode).toBe(0)
    expect(ps.stdout).toMatch(/sleep infinity/)
  })

  it('a guest killed from inside is restarted transparently on the next call', async () => {
    const [oldGuest] = await guestPids(sb)
    const imagePid = await imageCommandPid()
    await settle(sb.execute('sh', ['-c', `${KILL_GUEST}; sleep 1`]), 15_000, 'the execute that kills the guest')

    const r = await settle(sb.execute('echo', ['restarted']), 15_000, 'the first execute after the guest died')
    expect(r.ok, r.error?.message).toBe(true)
    expect(r.value!.stdout).toBe('restarted\n')
    expect(sb.state).toBe('running')
    expect(sb.execEngine).toBe('guest')
    const now = await guestPids(sb)
    expect(now).toHaveLength(1)
    expect(now[0]).not.toBe(oldGuest)
    expect(await imageCommandPid()).toBe(imagePid)
    expect((await sb.writeFile('after-restart.txt', 'ok')).success).toBe(true)
    expect((await sb.readFile('after-restart.txt')).content).toBe('ok')
    let procs: any[] = []
    await waitFor(async () => (procs = await sb.listProcesses()).length === 0, 5000)
    expect(procs).toEqual([])
  })

  it('processes started through a guest that died do not outlive it as unreachable orphans', async () => {
    // their execute rejected / their handle says running: false, so nothing could ever end them
    const bg = await sb.execute('sleep', ['357'], { background: true })
    const fg = settle(sb.execute('sh', ['-c', 'sleep 358 & sleep 359']), 20_000, 'a foreground execute when the guest died')
    await waitFor(async () => (await sb.listProcesses()).some((p: any) => p.args[0] === '358'), 5000)
    await settle(sb.execute('sh', ['-c', `${KILL_GUEST}; sleep 0.5`]), 15_000, 'the execute that kills the guest')
    expect((await fg).ok).toBe(false)
    await settle(bg.wait(), 15_000, 'wait() of a background process when the guest died')
    expect(bg.running).toBe(false)

    expect((await sb.execute('echo', ['restarted again'])).stdout).toBe('restarted again\n')
    let left: string[] = []
    await waitFor(async () => {
      left = (await sb.listProcesses()).map((p: any) => [p.command, ...p.args].join(' '))
      return left.length === 0
    }, 5000)
    expect(left).toEqual([])
  })
})

describe('guest delivery and restricted sandboxes', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it("AGENTIC_SANDBOX_GUEST_DELIVERY=upload puts the guest into the sandbox's own volume", async () => {
    const s = await withEnv('AGENTIC_SANDBOX_GUEST_DELIVERY', 'upload', async () => {
      const s = await manager.createSandbox(GUEST)
      await s.start()
      return s
    })
    expect(process.env.AGENTIC_SANDBOX_GUEST_DELIVERY).not.toBe('upload')
    const volume = `agentic-sandbox-${s.id}-guest`
    try {
      expect(s.execEngine).toBe('guest')
      const mounts: any[] = inspectContainer(s.id).Mounts
      const guestMount = mounts.find((m) => m.Destination === '/.agentic-sandbox')
      expect(guestMount, JSON.stringify(mounts)).toBeDefined()
      expect(guestMount.Type).toBe('volume')
      expect(guestMount.Name).toBe(volume)
      // filled through a loader container, then mounted read-only: the sandbox cannot replace the guest
      expect(guestMount.RW).toBe(false)
      expect((await s.execute('sh', ['-c', 'echo x > /.agentic-sandbox/agentic-sandbox-guest'])).exitCode).not.toBe(0)
      expect(docker(['ps', '-a', '-q', '--filter', `name=${s.id}-guest-loader`])).toBe('')
      expect(mounts.some((m) => m.Type === 'bind')).toBe(false)
      expect(docker(['volume', 'ls', '-q', '--filter', `name=${volume}`]).split('\n')).toContain(volume)
      expect((await s.execute('echo', ['uploaded'])).stdout).toBe('uploaded\n')
      expect(await guestPids(s)).toHaveLength(1)
    } finally {
      await s.destroy()
    }
    expect(docker(['volume', 'ls', '-q', '--filter', `name=${volume}`])).toBe('')
    expect(dockerLabelled(sandboxLabel(s.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })

  it('the default delivery bind-mounts the guest read-only', async () => {
    const s = await withEnv('AGENTIC_SANDBOX_GUEST_DELIVERY', undefined, async () => {
      const s = await manager.createSandbox(GUEST)
      await s.start()
      return s
    })
    try {
      expect(s.execEngine).toBe('guest')
      const mounts: any[] = inspectContainer(s.id).Mounts
      const m = mounts.find((x) => x.Destination.startsWith('/.agentic-sandbox'))
      expect(m, JSON.stringify(mounts)).toBeDefined()
      expect(m.Type).toBe('bind')
      expect(m.RW).toBe(false)
      expect(dockerLabelled(sandboxLabel(s.id)).volumes).toBe(1) // the workspace only
    } finally {
      await s.destroy()
    }
  })

  it('runs as a non-root user with no network and a read-only root', async () => {
    const s = await manager.createSandbox({ ...GUEST, networkMode: 'none', docker: { execEngine: 'guest', user: '1000:1000', readOnlyRoot: true } })
    try {
      await s.start()
      expect(s.execEngine).toBe('guest')
      expect((await s.execute('id', ['-u'])).stdout).toBe('1000\n')
      expect((await s.execute('id', ['-g'])).stdout).toBe('1000\n')
      // the guest itself runs as the sandbox user
      const [gpid] = await guestPids(s)
      const status = (await s.execute('cat', [`/proc/${gpid}/status`])).stdout
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('1000')

      const w = await s.writeFile('sub/dir/file.txt', 'written by uid 1000')
      expect(w.success, w.error).toBe(true)
      const r = await s.readFile('sub/dir/file.txt')
      expect(r.success, r.error).toBe(true)
      expect(r.content).toBe('written by uid 1000')
      expect((await s.execute('stat', ['-c', '%u', '/workspace/sub/dir/file.txt'])).stdout).toBe('1000\n')

      // read-only root: writes outside the workspace and /tmp fail
      const ro = await s.writeFile('/etc/agentic-test', 'nope')
      expect(ro.success).toBe(false)
      expect(ro.error).toBeTruthy()
      expect((await s.execute('touch', ['/agentic-test'])).exitCode).not.toBe(0)
      expect((await s.writeFile('/tmp/t.txt', 'tmp ok')).success).toBe(true)

      // no network: only the loopback interface
      const dev = (await s.execute('cat', ['/proc/net/dev'])).stdout
      const ifaces = dev.split('\n').slice(2).map((l: string) => l.split(':')[0].trim()).filter(Boolean)
      expect(ifaces).toEqual(['lo'])

      const bg = await s.execute('sleep', ['354'], { background: true })
      const procs = await s.listProcesses()
      expect(procs.find((p: any) => p.pid === bg.pid)?.background).toBe(true)
      await bg.kill()
      await bg.wait()
      expect((await s.getStats()).memoryUsageMB).toBeGreaterThan(0)
    } finally {
      await s.destroy()
    }
  })
})
