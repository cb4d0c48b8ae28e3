// Snapshots (README "Snapshots"): sandbox.snapshot() saves the container's writable layer and the
// workspace as an image; createSandbox({ fromSnapshot }) starts new sandboxes from it;
// manager.listSnapshots() / deleteSnapshot(). Runs on both engines (scripts/test.sh).
//
// Persistent sandboxes and manager.connect (README "Persistent sandboxes"): a sandbox made by a
// child process that exits (or is killed) stays, another process re-attaches it, and it ends at
// its lifetime whatever runs inside it.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, DEBIAN, docker, dockerLabelled, dockerLabelledIds, expectCode, goneOf, sandboxLabel, waitFor } from './helpers.js'

const run = `${process.pid}-${Date.now().toString(36)}`
const snapName = (s: string) => `t-${run}-${s}`
const SECRET = `sekret-${run}-value`
const BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
const DEEP = Array.from({ length: 120 }, (_, i) => `d${i}`).join('/')

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean)
/** Every image (intermediate ones too) carrying `label`. */
const imagesLabelled = (label: string) => lines(docker(['images', '-a', '-q', '--no-trunc', '--filter', `label=${label}`]))

async function sh(sb: any, script: string) {
  const r = await sb.execute('sh', ['-c', script])
  expect(r.exitCode, `${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0)
  return r.stdout
}

describe('snapshots', () => {
  const manager: any = new SandboxManager({ image: DEBIAN })
  let src: any
  let snap: any
  const sourceIds: string[] = []

  beforeAll(async () => {
    // a writable root (files outside the workspace are captured) and a workdir of its own
    // (sandboxes from the snapshot default to it)
    src = await manager.createSandbox({
      workdir: '/srv/work',
      docker: { readOnlyRoot: false },
      env: { API_TOKEN: SECRET, PLAIN_SETTING: 'plain' },
      limits: { diskMB: 256 },
    })
    sourceIds.push(src.id)
    await src.start()
    await sh(
      src,
      [
        'set -e',
        'cd /srv/work',
        'mkdir -p nested/deep',
        'printf hello > nested/deep/a.txt',
        'chmod 640 nested/deep/a.txt',
        'chmod 750 nested',
        'ln -s nested/deep/a.txt link',
        // hostile: links out of the sandbox, a FIFO, odd names, a very deep tree
        'ln -s /etc/shadow shadow-link',
        'ln -s /var/lib/docker host-link',
        'ln -s / root-link',
        'mkfifo fifo',
        "touch '..%2f..%2fx' '...' 'line\nbreak' ' lead'",
        `mkdir -p ${DEEP} && echo bottom > ${DEEP}/f`,
        // outside the workspace: the writable layer (and /tmp, a tmpfs mount, is not captured)
        'echo outside > /var/tmp/outside.txt',
        'echo in-tmpfs > /tmp/in-tmpfs.txt',
      ].join('\n'),
    )
    expect((await src.writeFile('/srv/work/bin/all.bin', BYTES)).success).toBe(true)
    // a process runs while the snapshot is taken
    await src.execute('sleep', ['600'], { background: true })
    snap = await src.snapshot({ name: snapName('a') })
  })

  afterAll(async () => {
    await manager.destroyAll()
    for (const s of await manager.listSnapshots()) {
      if (s.name.startsWith(`t-${run}-`)) await manager.deleteSnapshot(s.name).catch(() => {})
    }
  })

  it('returns what it saved', async () => {
    expect(snap).toMatchObject({ name: snapName('a'), sandboxId: src.id, workdir: '/srv/work', baseImage: DEBIAN })
    expect(snap.image).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(snap.sizeBytes).toBeGreaterThan(0)
    expect(Math.abs(snap.createdAt - Date.now())).toBeLessThan(10 * 60_000)
    expect(docker(['image', 'inspect', '-f', '{{.Id}}', `agentic-sandbox-snapshot/${snapName('a')}:latest`])).toBe(snap.image)
    const listed = (await manager.listSnapshots()).find((s: any) => s.name === snap.name)
    expect(listed).toEqual(snap)
    // the source runs on, its process too
    expect(src.state).toBe('running')
    expect(await sh(src, 'cat nested/deep/a.txt')).toBe('hello')
  })

  it('a sandbox from the snapshot has its files, modes, links, and its workdir', async () => {
    const sb = await manager.createSandbox({ fromSnapshot: snap.name })
    sourceIds.push(sb.id)
    await sb.start()
    expect(sb.id).not.toBe(src.id)
    expect((await sh(sb, 'pwd')).trim()).toBe('/srv/work')
    expect(await sh(sb, 'cat nested/deep/a.txt')).toBe('hello')
    expect(await sh(sb, 'stat -c "%a %u" nested nested/deep/a.txt')).toBe('750 1000\n640 1000\n')
    expect(await sh(sb, 'readlink link; readlink shadow-link; readlink host-link; readlink root-link')).toBe(
      'nested/deep/a.txt\n/etc/shadow\n/var/lib/docker\n/\n',
    )
    expect(await sh(sb, 'cat link')).toBe('hello')
    expect(await sh(sb, 'test -p fifo && test -e "..%2f..%2fx" && test -e ... && test -e " lead" && ls | grep -c break')).toBe('1\n')
    expect(await sh(sb, `cat ${DEEP}/f`)).toBe('bottom\n')
    const bin = await sb.readFile('/srv/work/bin/all.bin', { encoding: 'buffer' })
    expect(Buffer.compare(bin.buffer, BYTES)).toBe(0)
    // the workspace is the sandbox's size-capped volume, writable by its user
    expect(await sh(sb, 'echo more > new.txt && cat new.txt')).toBe('more\n')
    expect(await sh(sb, "df -k . | tail -1 | awk '{print $2}'")).toMatch(/^\d+\n$/)
    // outside the workspace: the writable layer came along; /tmp (tmpfs) did not; no process did
    expect(await sh(sb, 'cat /var/tmp/outside.txt')).toBe('outside\n')
    expect(await sh(sb, 'test -e /tmp/in-tmpfs.txt && echo there || echo absent')).toBe('absent\n')
    expect(await sh(sb, 'for p in /proc/[0-9]*/cmdline; do tr "\\000" " " < $p; echo; done | grep -c "^sleep 600" || true')).toBe('0\n')
    // the source's secret is not in the new sandbox's environment, its plain setting neither
    expect(await sh(sb, 'echo "[${API_TOKEN-unset}] [${PLAIN_SETTING-unset}]"')).toBe('[unset] [unset]\n')
    await sb.destroy()
  })

  it('keeps no secret, entrypoint or ownership of the source in the image config', () => {
    const chain = [snap.image]
    const parent = docker(['image', 'inspect', '-f', '{{.Parent}}', snap.image])
    if (parent) chain.push(parent)
    for (const id of chain) {
      const raw = docker(['image', 'inspect', id])
      expect(raw).not.toContain(SECRET)
      expect(raw).not.toContain('agentic-sandbox-guest')
      const cfg = JSON.parse(raw)[0].Config
      expect(cfg.Entrypoint ?? []).toEqual([])
      expect(cfg.Labels['agentic-sandbox.managed']).not.toBe('true')
    }
    // the snapshot's config is the base image's own
    const cfg = JSON.parse(docker(['image', 'inspect', snap.image]))[0].Config
    const base = JSON.parse(docker(['image', 'inspect', DEBIAN]))[0].Config
    expect(cfg.Cmd).toEqual(base.Cmd)
    expect(cfg.Env).toEqual(base.Env)
    expect(cfg.User || '0').toBe('0')
    expect(cfg.Labels['agentic-sandbox.owner-pid']).toBe('')
    expect(docker(['history', '--no-trunc', snap.image])).not.toContain(SECRET)
  })

  it('snapshots of snapshots: deletions and additions carry over', async () => {
    const b = await manager.createSandbox({ fromSnapshot: snap.name, docker: { readOnlyRoot: false } })
    sourceIds.push(b.id)
    await b.start()
    await sh(b, 'rm -r nested && echo second > second.txt && echo more >> /var/tmp/outside.txt')
    const s2 = await b.snapshot({ name: snapName('b') })
    expect(s2).toMatchObject({ sandboxId: b.id, workdir: '/srv/work', baseImage: DEBIAN })
    const c = await manager.createSandbox({ fromSnapshot: s2.name, workdir: '/elsewhere' })
    sourceIds.push(c.id)
    await c.start()
    expect((await sh(c, 'pwd')).trim()).toBe('/elsewhere')
    expect(await sh(c, 'cat second.txt; test -e nested && echo back || echo gone; cat /var/tmp/outside.txt')).toBe(
      'second\ngone\noutside\nmore\n',
    )
    // in use: refused until its sandboxes are gone
    const inUse = await expectCode(manager.deleteSnapshot(s2.name), 'INVALID_ARGUMENT')
    expect(inUse.message).toMatch(/destroy the sandboxes/)
    await c.destroy()
    await b.destroy()
    await manager.deleteSnapshot(s2.name)
    expect(imagesLabelled(`agentic-sandbox.snapshot-source=${b.id}`)).toEqual([])
    expect((await manager.listSnapshots()).map((s: any) => s.name)).not.toContain(s2.name)
  })

  it('generates a name when none is given', async () => {
    const s = await src.snapshot()
    expect(s.name).toMatch(new RegExp(`^${src.id}-\\d+$`))
    await manager.deleteSnapshot(s.name)
    expect((await manager.listSnapshots()).map((x: any) => x.name)).not.toContain(s.name)
  })

  it('refuses bad and taken names, unknown snapshots and conflicting configs with their codes', async () => {
    for (const name of ['Bad', '-x', 'a/b', 'a b', '', 'x'.repeat(65)]) {
      const e = await expectCode(src.snapshot({ name }), 'INVALID_ARGUMENT')
      expect(e.message).toMatch(/lowercase letters, digits/)
    }
    const taken = await expectCode(src.snapshot({ name: snap.name }), 'INVALID_ARGUMENT')
    expect(taken.message).toMatch(/deleteSnapshot|another name/)
    await expectCode(manager.deleteSnapshot(snapName('missing')), 'SNAPSHOT_NOT_FOUND')
    await expectCode(manager.deleteSnapshot('Bad Name'), 'INVALID_ARGUMENT')
    await expectCode(manager.createSandbox({ fromSnapshot: snapName('missing') }), 'SNAPSHOT_NOT_FOUND')
    await expectCode(manager.createSandbox({ fromSnapshot: 'Bad Name' }), 'INVALID_CONFIG')
    const conflict = await expectCode(manager.createSandbox({ fromSnapshot: snap.name, image: BUSYBOX }), 'INVALID_CONFIG')
    expect(conflict.message).toMatch(/drop image/)
    await expectCode(manager.createSandbox({ fromSnapshot: snap.name, template: 'python' }), 'INVALID_CONFIG')
    await expectCode(manager.createSandbox({ fromSnapshot: snap.name, provider: 'e2b' }), 'INVALID_CONFIG')
    // a snapshot deleted after its sandbox was created: the start says so, and leaves nothing
    const s = await src.snapshot({ name: snapName('gone') })
    const sb = await manager.createSandbox({ fromSnapshot: s.name })
    await manager.deleteSnapshot(s.name)
    await expectCode(sb.start(), 'SNAPSHOT_NOT_FOUND')
    await sb.destroy()
    expect(dockerLabelledIds(sandboxLabel(sb.id))).toEqual({ containers: [], volumes: [], networks: [] })
  })

  it('a read-only-root sandbox: its image plus the workspace, sharing the image layers', async () => {
    const sb = await manager.createSandbox({ image: BUSYBOX })
    sourceIds.push(sb.id)
    await sb.start()
    await sh(sb, 'mkdir -p w/x && echo ro > w/x/f && chmod 600 w/x/f')
    const s = await sb.snapshot({ name: snapName('ro') })
    expect(s).toMatchObject({ workdir: '/workspace', baseImage: BUSYBOX })
    expect(docker(['image', 'inspect', '-f', '{{.Parent}}', s.image])).toBe(docker(['image', 'inspect', '-f', '{{.Id}}', BUSYBOX]))
    const copy = await manager.createSandbox({ fromSnapshot: s.name })
    await copy.start()
    expect(await sh(copy, 'cat w/x/f; stat -c "%a %u" w/x/f')).toBe('ro\n600 1000\n')
    await copy.destroy()
    await sb.destroy()
    await manager.deleteSnapshot(s.name)
    expect(imagesLabelled(`agentic-sandbox.snapshot-source=${sb.id}`)).toEqual([])
  })

  it('pools and sessions start from a snapshot; a released pool sandbox gets the snapshot workspace back', async () => {
    const pool = await manager.createPool({ fromSnapshot: snap.name, workdir: '/srv/work' }, { min: 1, max: 1 })
    const a = await pool.acquire()
    sourceIds.push(a.id)
    expect(await sh(a, 'cat nested/deep/a.txt; rm -r nested; echo mine > mine.txt')).toBe('hello')
    await pool.release(a)
    const b = await pool.acquire()
    sourceIds.push(b.id)
    expect(await sh(b, 'cat nested/deep/a.txt; test -e mine.txt && echo leaked || echo clean')).toBe('helloclean\n')
    await pool.release(b)
    await pool.destroy()
    const session = await manager.getOrCreateSession({ threadId: `snap-${run}`, userId: 'u', config: { fromSnapshot: snap.name } })
    sourceIds.push(session.id)
    // a session's config gets no workdir lookup: /workspace, filled with the snapshot's files
    expect(await sh(session, 'pwd; cat nested/deep/a.txt')).toBe('/workspace\nhello')
    await manager.closeSession(`snap-${run}`)
  })

  it('a provider without snapshots (a JavaScript provider) says NOT_SUPPORTED', async () => {
    const m: any = new SandboxManager()
    class Mem {
      files = new Map<string, Buffer>()
      async start() {}
      async execute() {
        return { exitCode: 0, stdout: '', stderr: '' }
      }
      async writeFile(p: string, c: Buffer) {
        this.files.set(p, c)
      }
      async readFile(p: string) {
        return this.files.get(p) ?? Buffer.alloc(0)
      }
      async listFiles() {
        return [...this.files.keys()]
      }
      async deleteFile(p: string) {
        this.files.delete(p)
      }
      async stop() {}
      async destroy() {}
    }
    m.registerProvider('mem', Mem)
    const sb = await m.createSandbox({ provider: 'mem' })
    await sb.start()
    const e = await expectCode(sb.snapshot(), 'NOT_SUPPORTED')
    expect(e.message).toMatch(/only the docker provider/)
    await expectCode(m.createSandbox({ provider: 'mem', fromSnapshot: snap.name }), 'INVALID_CONFIG')
    await m.destroyAll()
  })

  it('a stopped sandbox is not snapshotted', async () => {
    const sb = await manager.createSandbox({ image: BUSYBOX })
    await expectCode(sb.snapshot(), 'SANDBOX_NOT_RUNNING')
    await sb.destroy()
  })

  it('cuts a workspace archive over diskMB plus slack, and leaves nothing behind', async () => {
    const sb = await manager.createSandbox({ image: DEBIAN, limits: { diskMB: 1 } })
    sourceIds.push(sb.id)
    await sb.start()
    // 50k empty files with long names: no tmpfs blocks, but ~1.5 KB each in a tar (> 1 MB + 64 MB)
    await sh(sb, 'seq -f "%0150g" 1 50000 | xargs touch && ls | wc -l >/dev/null')
    const e = await expectCode(sb.snapshot({ name: snapName('huge') }), 'INSUFFICIENT_RESOURCES')
    expect(e.message).toMatch(/diskMB/)
    expect(sb.state).toBe('running')
    expect(docker(['images', '-q', `agentic-sandbox-snapshot/${snapName('huge')}`])).toBe('')
    expect(imagesLabelled(`agentic-sandbox.snapshot-source=${sb.id}`)).toEqual([])
    expect(dockerLabelledIds(sandboxLabel(`${sb.id}-snapshot`)).containers).toEqual([])
    await sb.destroy()
  })

  it('leaves no temporary container, partial image or volume behind', async () => {
    for (const id of sourceIds) {
      expect(dockerLabelledIds(sandboxLabel(`${id}-snapshot`)), id).toEqual({ containers: [], volumes: [], networks: [] })
    }
    // the partial image of a finished snapshot is the snapshot's parent, not a dangling image
    const dangling = lines(docker(['images', '-q', '--no-trunc', '--filter', 'label=agentic-sandbox.snapshot=partial']))
    for (const id of dangling) {
      const source = docker(['image', 'inspect', '-f', '{{index .Config.Labels "agentic-sandbox.snapshot-source"}}', id])
      expect(sourceIds, `dangling partial image ${id}`).not.toContain(source)
    }
    await manager.deleteSnapshot(snap.name)
    expect(imagesLabelled(`agentic-sandbox.snapshot-source=${src.id}`)).toEqual([])
    await expectCode(manager.deleteSnapshot(snap.name), 'SNAPSHOT_NOT_FOUND')
  })
})

// ---------------------------------------------------------------- persistent sandboxes

const ADDON = path.resolve(__dirname, '..', 'index.js')
const madePersistent: string[] = []

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
  for (const id of madePersistent) {
    for (const c of docker(['ps', '-a', '-q', '--filter', `label=${sandboxLabel(id)}`]).split('\n').filter(Boolean)) docker(['rm', '-f', c])
  }
  if (madePersistent.length) sweep()
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
      madePersistent.push(id, plain)
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
    madePersistent.push(id)
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
