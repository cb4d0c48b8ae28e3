// Runs last (vitest.config.mts orders files by name): process-exit cleanup, the stale reaper, and a final
// check that no labelled container/volume/network is left anywhere on the machine.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, dockerLabelledIds, ownerPidLabel, sandboxLabel, sleep, waitFor } from './helpers.js'

const ADDON = fileURLToPath(new URL('../index.js', import.meta.url))
const childCwd = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-cleanup-'))
afterAll(() => fs.rmSync(childCwd, { recursive: true, force: true }))

const CHILD = `
const { SandboxManager } = require(${JSON.stringify(ADDON)});
(async () => {
  const mode = process.env.CHILD_MODE;
  const m = new SandboxManager({ image: ${JSON.stringify(BUSYBOX)} });
  const sb = await m.createSandbox();
  await sb.start();
  const r = await sb.execute('echo', ['child-ok']);
  if (r.stdout !== 'child-ok\\n') throw new Error('unexpected execute result ' + JSON.stringify(r));
  console.log('READY ' + sb.id + ' ' + process.pid);
  if (mode === 'exit') process.exit(0);
  if (mode === 'wait') setInterval(() => {}, 1000);
  if (mode === 'reaper') { await m.destroyAll(); console.log('DONE'); }
  // mode 'natural': nothing keeps the event loop alive; the process ends on its own
})().catch((e) => { console.error('CHILD_ERROR', (e && e.stack) || e); process.exit(2); });
`

interface Child {
  proc: ChildProcess
  id: string
  pid: number
  out: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

async function startChild(mode: string, env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, ['-e', CHILD], {
    cwd: childCwd,
    env: { ...process.env, ...env, CHILD_MODE: mode },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  proc.stdout!.on('data', (d) => (stdout += d))
  proc.stderr!.on('data', (d) => (stderr += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  )
  const out = () => `stdout:\n${stdout}\nstderr:\n${stderr}`
  const ready = await Promise.race([
    new Promise<RegExpExecArray>((resolve) => {
      const check = () => {
        const m = /READY (docker-[0-9a-f]{16}) (\d+)/.exec(stdout)
        if (m) resolve(m)
      }
      proc.stdout!.on('data', check)
      check()
    }),
    exited.then(() => null),
    new Promise<null>((r) => setTimeout(() => r(null), 90_000)),
  ])
  if (!ready) {
    proc.kill('SIGKILL')
    throw new Error(`child (${mode}) did not become ready\n${out()}`)
  }
  return { proc, id: ready[1], pid: Number(ready[2]), out, exited }
}

async function waitExit(c: Child, ms = 60_000) {
  const r = await Promise.race([c.exited, new Promise<null>((res) => setTimeout(() => res(null), ms))])
  if (!r) {
    c.proc.kill('SIGKILL')
    await c.exited
    throw new Error(`child did not exit within ${ms} ms\n${c.out()}`)
  }
  return r
}

const none = { containers: 0, volumes: 0, networks: 0 }

/** Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a live process, else undefined. */
function procStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** Every labelled container/volume/network, split into leaks and resources of other live owners. */
function classifyLabelled() {
  const ids = dockerLabelledIds()
  const leaks: string[] = []
  const foreign: string[] = []
  const items: Array<[string, string[]]> = [
    ['container', ['inspect', '-f', '{{json .Config.Labels}}']],
    ['volume', ['volume', 'inspect', '-f', '{{json .Labels}}']],
    ['network', ['network', 'inspect', '-f', '{{json .Labels}}']],
  ]
  const lists = [ids.containers, ids.volumes, ids.networks]
  items.forEach(([kind, cmd], i) => {
    for (const id of lists[i]) {
      let labels: Record<string, string>
      try {
        labels = JSON.parse(docker([...cmd, id])) ?? {}
      } catch {
        continue // removed meanwhile
      }
      const desc = `${kind} ${id} ${JSON.stringify(labels)}`
      const pid = Number(labels['agentic-sandbox.owner-pid'])
      const host = labels['agentic-sandbox.owner-host']
      const start = labels['agentic-sandbox.owner-start']
      if (!pid || !host || pid === process.pid) {
        leaks.push(desc)
        continue
      }
      if (host !== os.hostname()) {
        foreign.push(desc)
        continue
      }
      const liveStart = procStart(pid)
      const alive = liveStart !== undefined && (!start || start === liveStart)
      ;(alive ? foreign : leaks).push(desc)
    }
  })
  return { leaks, foreign }
}

/** Resources labelled with the child's pid / sandbox id, polled for up to 5 s to become empty. */
async function leftoversOf(c: Child) {
  let res = { byPid: dockerLabelled(ownerPidLabel(c.pid)), byId: dockerLabelled(sandboxLabel(c.id)) }
  await waitFor(() => {
    res = { byPid: dockerLabelled(ownerPidLabel(c.pid)), byId: dockerLabelled(sandboxLabel(c.id)) }
    return res.byPid.containers + res.byPid.volumes + res.byPid.networks + res.byId.containers === 0
  }, 5000)
  return res
}

function expectRunningSandboxOf(c: Child) {
  expect(c.pid).toBe(c.proc.pid)
  const ids = dockerLabelledIds(ownerPidLabel(c.pid)).containers
  expect(ids, `container of child ${c.pid}`).toHaveLength(1)
  expect(dockerLabelledIds(sandboxLabel(c.id)).containers).toEqual(ids)
}

describe('cleanup when the owning process ends', () => {
  it('(a) process exits naturally without destroying', async () => {
    const c = await startChild('natural')
    try {
      const r = await waitExit(c)
      expect(r.code, c.out()).toBe(0)
      expect(await leftoversOf(c), c.out()).toEqual({ byPid: none, byId: none })
    } finally {
      c.proc.kill('SIGKILL')
    }
  })

  it('(b) process.exit(0)', async () => {
    const c = await startChild('exit')
    try {
      const r = await waitExit(c)
      expect(r.code, c.out()).toBe(0)
      expect(await leftoversOf(c), c.out()).toEqual({ byPid: none, byId: none })
    } finally {
      c.proc.kill('SIGKILL')
    }
  })

  it('(c) SIGTERM', async () => {
    const c = await startChild('wait')
    try {
      expectRunningSandboxOf(c)
      c.proc.kill('SIGTERM')
      await waitExit(c)
      expect(await leftoversOf(c), c.out()).toEqual({ byPid: none, byId: none })
    } finally {
      c.proc.kill('SIGKILL')
    }
  })

  it('(d) SIGKILL leaves the sandbox until the stale reaper of a new manager removes it', async () => {
    // The reaper removes a stopped container at once, its volume and network once they are older
    // than the grace period (60 s; 5 s for the reaper child below, whose first sweep does it).
    const mine: any = new SandboxManager({ image: BUSYBOX })
    const c = await startChild('wait')
    try {
      expectRunningSandboxOf(c)
      c.proc.kill('SIGKILL')
      const r = await waitExit(c)
      expect(r.signal).toBe('SIGKILL')
      // nothing could clean up: the sandbox is still there
      expect(dockerLabelled(sandboxLabel(c.id)).containers).toBe(1)

      // a sandbox owned by a live process (this one) must survive the reaper
      const own: any = await mine.createSandbox()
      await own.start()

      await sleep(5500) // the dead child's volume and network get older than the grace
      const reaper = await startChild('reaper', { SANDBOX_REAPER_GRACE_SECONDS: '5' })
      const rr = await waitExit(reaper)
      expect(rr.code, reaper.out()).toBe(0)
      expect(reaper.out()).toContain('DONE')

      let left = dockerLabelled(sandboxLabel(c.id))
      await waitFor(() => {
        left = dockerLabelled(sandboxLabel(c.id))
        return left.containers + left.volumes + left.networks === 0
      }, 10_000)
      expect(left).toEqual(none)
      expect(dockerLabelled(ownerPidLabel(c.pid))).toEqual(none)
      expect(dockerLabelled(ownerPidLabel(reaper.pid))).toEqual(none)

      // ours is untouched
      expect(own.state).toBe('running')
      expect((await own.execute('echo', ['still mine'])).stdout).toBe('still mine\n')
      expect(dockerLabelled(sandboxLabel(own.id)).containers).toBe(1)
    } finally {
      c.proc.kill('SIGKILL')
      await mine.destroyAll()
    }
  })

  it('nothing labelled agentic-sandbox.managed=true is left on the machine', async () => {
    // Other sessions may legitimately be running sandboxes on this engine right now (their owner process is
    // alive); those are reported but tolerated. Anything owned by this test process, by a dead process
    // (one of our children, an earlier suite's worker, ...) or without owner labels is a leak.
    let leaks: string[] = []
    let foreign: string[] = []
    await waitFor(() => {
      ;({ leaks, foreign } = classifyLabelled())
      return leaks.length === 0
    }, 10_000, 500)
    if (foreign.length) console.warn(`resources of other live processes (ignored):\n${foreign.join('\n')}`)
    expect(leaks, `test pid ${process.pid}`).toEqual([])
  })

  it('no snapshot image is left (snapshots.spec.ts deletes every one it makes)', () => {
    // finished snapshots (label agentic-sandbox.snapshot=true) and partial images of unfinished
    // ones; the partial image below a finished snapshot is hidden from `docker images` (it has a child)
    const left = ['true', 'partial'].flatMap((v) =>
      docker(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}', '--filter', `label=agentic-sandbox.snapshot=${v}`])
        .split('\n')
        .filter(Boolean),
    )
    expect(left).toEqual([])
  })
})
