// Distributed mode (README "Distributed mode"): one redis-server and two `agentic-sandbox serve`
// workers, all started by this file on free 127.0.0.1 ports, with real sandboxes on the engine:
// sandboxes spread over both workers; a sandbox made through one worker is used through the other
// (seed 004's execute with files, /v1 files); a session opened through one is used through the
// other by the remote mode; Redis killed and started again on the same port: the service comes
// back; `kill -9` of a worker: its sandboxes are SANDBOX_NOT_FOUND once its heartbeats stop, and
// the session with autoRetry comes back on the other worker; at the end nothing is left.
// Heartbeats every second (a worker is dead after 3 s without one).
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, TEST_TEMPLATES, docker, dockerLabelled, dockerLabelledIds, goneOf, ownerPidLabel, sandboxLabel, waitFor } from './helpers.js'

const BIN = path.join(__dirname, '..', 'bin', 'agentic-sandbox.js')
const NONE = { containers: 0, volumes: 0, networks: 0 }
const KEY = `dist-${Math.random().toString(16).slice(2)}-0123456789abcdef`
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distributed-spec-'))
let redisPort = 0
let redis: ChildProcess | undefined

interface Worker {
  id: string
  proc: ChildProcess
  url: string
  stderr: () => string
  exited: Promise<number | null>
}
const workers: Worker[] = []

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    c.once('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.once('error', () => resolve(false))
  })
}

async function startRedis() {
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    cwd: dir,
    stdio: 'ignore',
  })
  const up = await waitFor(() => portOpen(redisPort), 10_000, 50)
  expect(up, `redis-server did not listen on ${redisPort} (install it with scripts/ensure-redis.sh)`).toBe(true)
}

async function killRedis() {
  const r = redis
  redis = undefined
  if (!r || r.exitCode !== null) return
  const gone = new Promise((resolve) => r.once('exit', resolve))
  r.kill('SIGKILL')
  await gone
}

async function startWorker(id: string): Promise<Worker> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  for (const k of ['PORT', 'HOST', 'RUST_LOG', 'REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'WORKER_ID', 'WORKER_URL', 'HEARTBEAT_INTERVAL', 'SANDBOX_CLUSTER_SECRET']) delete env[k]
  const args = [BIN, 'serve', '--port', '0', '--config', path.join(dir, 'sandboxrc.json'), '--redis', `redis://127.0.0.1:${redisPort}/`, '--worker-id', id, '--heartbeat', '1']
  const proc = spawn(process.execPath, args, { env: { ...env, SANDBOX_API_KEYS: KEY }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  let m = null as RegExpExecArray | null
  await waitFor(() => (m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)) !== null || proc.exitCode !== null, 60_000, 50)
  expect(m, stderr).not.toBeNull()
  expect(stderr).toContain(`worker ${id} of the cluster`)
  const w = { id, proc, url: m![1], stderr: () => stderr, exited }
  workers.push(w)
  return w
}

async function call(method: string, url: string, body?: unknown) {
  const r = await fetch(url, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: r.status, worker: r.headers.get('x-agentic-sandbox-worker'), body: json }
}

/** Every container, volume and network a worker process owns is removed (a kill -9'd worker cannot). */
function removeOwnedBy(pid: number) {
  const ids = dockerLabelledIds(ownerPidLabel(pid))
  if (ids.containers.length) docker(['rm', '-f', '-v', ...ids.containers])
  for (const v of ids.volumes) docker(['volume', 'rm', '-f', v])
  for (const n of ids.networks) docker(['network', 'rm', n])
}

let a: Worker
let b: Worker
/** sandbox id → the worker that holds it */
const owner = new Map<string, string>()
let manager: SandboxManager | undefined

beforeAll(async () => {
  fs.writeFileSync(path.join(dir, 'sandboxrc.json'), JSON.stringify({ image: BUSYBOX, templates: { ...TEST_TEMPLATES, base: BUSYBOX } }))
  redisPort = await freePort()
  await startRedis()
  a = await startWorker('wa')
  b = await startWorker('wb')
})

afterAll(async () => {
  await manager?.destroyAll().catch(() => {})
  for (const w of workers) {
    if (w.proc.exitCode === null && w.proc.signalCode === null) {
      w.proc.kill('SIGTERM')
      const done = await Promise.race([w.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 30_000))])
      if (!done) w.proc.kill('SIGKILL')
    }
    if (w.proc.pid) removeOwnedBy(w.proc.pid)
  }
  await killRedis()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('two workers on one Redis', () => {
  it('places new sandboxes on the least-loaded worker: creations through one worker spread over both', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await call('POST', `${a.url}/sandbox/create`, { environment: 'base' })
      expect(r.status, JSON.stringify(r.body)).toBe(201)
      owner.set(r.body.sandbox_id, r.worker!)
    }
    const on = (w: string) => [...owner].filter(([, o]) => o === w).map(([id]) => id)
    expect(on('wa')).toHaveLength(2)
    expect(on('wb')).toHaveLength(2)
    // the containers belong to the worker processes that answered
    for (const [id, w] of owner) {
      const pid = (w === 'wa' ? a : b).proc.pid!
      const container = dockerLabelledIds(sandboxLabel(id)).containers
      expect(container, id).toHaveLength(1)
      expect(dockerLabelledIds(ownerPidLabel(pid)).containers, `${id} is a container of worker ${w}`).toContain(container[0])
    }
    // either worker lists all of them
    for (const w of [a, b]) {
      const l = await call('GET', `${w.url}/sandboxes`)
      expect(l.body.total).toBe(4)
      expect(l.body.sandboxes.map((s: any) => s.sandbox_id).sort()).toEqual([...owner.keys()].sort())
    }
  })

  it('uses a sandbox of worker A through worker B: execute with files, raw files, status, delete', async () => {
    const onA = [...owner].find(([, o]) => o === 'wa')![0]
    const ex = await call('POST', `${b.url}/sandbox/${onA}/execute`, {
      files: { 'hello.sh': 'echo "hello from $(cat /workspace/name.txt)"' },
      commands: ['echo wa > /workspace/name.txt', 'sh hello.sh', 'exit 3'],
    })
    expect(ex.status, JSON.stringify(ex.body)).toBe(200)
    expect(ex.worker).toBe('wa')
    expect(ex.body.results.map((r: any) => [r.exit_code, r.stdout])).toEqual([
      [0, ''],
      [0, 'hello from wa\n'],
      [3, ''],
    ])
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255])
    const put = await fetch(`${b.url}/v1/sandboxes/${onA}/files?path=/workspace/bin.dat`, { method: 'PUT', headers: { authorization: auth.authorization }, body: bytes })
    expect(put.status).toBe(200)
    const got = await fetch(`${b.url}/v1/sandboxes/${onA}/files?path=/workspace/bin.dat`, { headers: { authorization: auth.authorization } })
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(bytes)
    const st = await call('GET', `${b.url}/sandbox/${onA}/status`)
    expect(st.body).toMatchObject({ sandbox_id: onA, status: 'ready', executions: 1 })
    const del = await call('DELETE', `${b.url}/sandbox/${onA}`)
    expect(del.body.deleted).toBe(true)
    owner.delete(onA)
    expect(await goneOf(onA)).toEqual(NONE)
    expect((await call('GET', `${a.url}/sandbox/${onA}/status`)).body.error.code).toBe('SANDBOX_NOT_FOUND')
    // without a valid key, through either worker
    expect((await fetch(`${b.url}/sandboxes`)).status).toBe(401)
  })

  let session = { id: '', worker: '' }
  const open = { userId: 'u-1', threadId: 'thread-1', autoRetry: true }

  it('opens a session through one worker and uses it through the other, also in remote mode', async () => {
    const s1 = await call('POST', `${a.url}/v1/sessions`, open)
    expect(s1.status, JSON.stringify(s1.body)).toBe(200)
    session = { id: s1.body.sandboxId, worker: s1.worker! }
    const holder = session.worker === 'wa' ? a : b
    const other = session.worker === 'wa' ? b : a
    const s2 = await call('POST', `${other.url}/v1/sessions`, open)
    expect(s2.body.sandboxId).toBe(session.id)
    expect(s2.worker).toBe(session.worker)
    // the remote mode, unchanged, against the worker that does not hold the session's sandbox
    manager = new SandboxManager({ provider: 'remote', remote: { url: other.url, apiKey: KEY }, image: BUSYBOX })
    const sb = await manager.getOrCreateSession({ ...open })
    const r = await sb.execute('sh', ['-c', 'echo remote > /workspace/r.txt; hostname'])
    expect(r.exitCode).toBe(0)
    const viaHolder = await call('POST', `${holder.url}/sandbox/${session.id}/execute`, { commands: ['cat /workspace/r.txt; hostname'] })
    expect(viaHolder.body.results[0].stdout).toBe(`remote\n${r.stdout}`)
  })

  it('recovers when Redis is killed and started again on the same port', async () => {
    await killRedis()
    const down = await call('POST', `${b.url}/sandbox/create`, { environment: 'base' })
    expect(down.status).toBe(503)
    expect(down.body.error.code).toBe('PROVIDER_UNAVAILABLE')
    expect(down.body.error.message).toContain('Redis')
    await startRedis()
    // the restarted Redis is empty: the next heartbeat of each worker registers it again with its
    // sandboxes (until then, what a worker holds is not found through the others: README)
    const back = await waitFor(async () => {
      for (const id of [...owner.keys(), session.id]) {
        for (const w of [a, b]) if ((await call('GET', `${w.url}/sandbox/${id}/status`)).status !== 200) return false
      }
      return true
    }, 30_000, 250)
    expect(back).toBe(true)
    const s = await call('POST', `${b.url}/v1/sessions`, open)
    expect(s.body.sandboxId).toBe(session.id)
    const l = await call('GET', `${b.url}/sandboxes`)
    expect(l.body.total).toBe(owner.size + 1) // and the session's
  })

  it('kill -9 of a worker: its sandboxes are SANDBOX_NOT_FOUND, the autoRetry session comes back on the other', async () => {
    const dead = session.worker === 'wa' ? a : b
    const live = session.worker === 'wa' ? b : a
    const deadIds = [...owner].filter(([, o]) => o === dead.id).map(([id]) => id)
    dead.proc.kill('SIGKILL')
    await dead.exited
    const reported = await waitFor(async () => {
      for (const id of [...deadIds, session.id]) if ((await call('GET', `${live.url}/sandbox/${id}/status`)).status !== 404) return false
      return true
    }, 30_000, 250)
    expect(reported).toBe(true)
    expect((await call('GET', `${live.url}/v1/sandboxes/${session.id}`)).body.error.code).toBe('SANDBOX_NOT_FOUND')
    const listed = await call('GET', `${live.url}/sandboxes`)
    expect(listed.body.sandboxes.map((s: any) => s.sandbox_id).sort()).toEqual([...owner].filter(([, o]) => o === live.id).map(([id]) => id).sort())
    // without autoRetry, the thread's sandbox is reported gone
    const noRetry = await call('POST', `${live.url}/v1/sessions`, { userId: 'u-1', threadId: 'thread-1' })
    expect([noRetry.status, noRetry.body.error?.code]).toEqual([404, 'SANDBOX_NOT_FOUND'])
    // with it (the remote mode's session), a new sandbox on the live worker
    const sb = await manager!.getOrCreateSession({ ...open })
    const r = await sb.execute('sh', ['-c', 'test -e /workspace/r.txt && echo old || echo new'])
    expect(r.stdout).toBe('new\n')
    const again = await call('POST', `${live.url}/v1/sessions`, open)
    expect(again.worker).toBe(live.id)
    expect(again.body.sandboxId).not.toBe(session.id)
    // a kill -9'd worker cannot remove its containers: the owner watchdog stops them; the test removes them
    removeOwnedBy(dead.proc.pid!)
    for (const id of [...deadIds, session.id]) expect(await goneOf(id)).toEqual(NONE)
  })

  it('a worker stopped with SIGTERM leaves the cluster and destroys its sandboxes: nothing is left', async () => {
    const live = workers.find((w) => w.proc.exitCode === null && w.proc.signalCode === null)!
    await manager!.destroyAll()
    manager = undefined
    live.proc.kill('SIGTERM')
    const code = await Promise.race([live.exited, new Promise((r) => setTimeout(() => r('hung'), 60_000))])
    expect(code, live.stderr()).toBe(0)
    for (const w of workers) {
      const pid = w.proc.pid!
      const ok = await waitFor(() => {
        const left = dockerLabelled(ownerPidLabel(pid))
        return left.containers + left.volumes + left.networks === 0
      }, 15_000, 200)
      expect(ok, `resources of worker ${w.id} (pid ${pid})`).toBe(true)
    }
  })
})
