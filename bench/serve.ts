/**
 * What the sandbox service (`agentic-sandbox serve`) costs next to the in-process call, in one run
 * on the same image and engine (issue 15):
 *
 *   - round trip of `echo hi`, one call at a time (n calls after a warm-up): in-process
 *     `sandbox.execute`, seed 004's `POST /sandbox/{id}/execute` through `fetch`, and remote mode's
 *     `sandbox.execute` (`provider: 'remote'`, the `/v1` processes stream); p50/p95, the ratio of
 *     p50s and the added milliseconds;
 *   - throughput: `--clients` (50) concurrent clients, each an async loop of calls for `--seconds`
 *     after a warm-up, sharing `--sandboxes` (10) sandboxes (client c uses sandbox c % 10): execs/s,
 *     latency p50/p95 under load, errors by code;
 *   - `--workers 2`: the service's two rows again with two `serve` processes sharing the Redis at
 *     `REDIS_URL` (distributed mode), clients spread over both. Skipped with a note when REDIS_URL
 *     is unset or this build's `serve` has no distributed mode.
 *
 *   npx tsx bench/serve.ts [--n 200] [--seconds 10] [--clients 50] [--sandboxes 10] [--workers 2]
 *   node --import tsx bench/serve.ts ...   # the same; Ctrl-C then always reaches the cleanup
 *
 * The server is the command line (`node bin/agentic-sandbox.js serve --port 0`), a separate process
 * as a real client meets it, with one API key and its per-tenant limits raised (100 sandboxes, 1,000
 * executions at once) so that no call is throttled with QUOTA_EXCEEDED; errors are counted anyway.
 * Seed 004's command runs through `sh -c` on the server, so its baseline is the in-process
 * `execute('sh', ['-c', 'echo hi'])`; remote mode's is `execute('echo', ['hi'])`, the same call.
 *
 * Uses the addon as built (`npm run build` for release numbers). Prints a table, writes
 * bench/serve-results.json (git-ignored; `--json <file>` elsewhere). Exits 1 on wrong data, on an
 * error in a measured call, or when a sandbox was left behind; everything it started (sandboxes,
 * server processes) is removed in `finally`, also on Ctrl-C/SIGTERM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SandboxManager } from '../index.js'
import { sleep, summarize, WrongDataError, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/busybox:1'
const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.join(HERE, '..')
const BIN = path.join(ROOT, 'bin', 'agentic-sandbox.js')
const ADDON = path.join(ROOT, 'agentic-sandbox.linux-x64-gnu.node')

const USAGE = `usage: npx tsx bench/serve.ts [--n 200] [--warmup 20] [--seconds 10] [--warmup-seconds 2]
         [--clients 50] [--sandboxes 10] [--workers 1|2] [--json bench/serve-results.json]
--workers 2 also measures the service with two workers sharing REDIS_URL (distributed mode).`

function parseArgs(argv: string[]) {
  const o = { n: 200, warmup: 20, seconds: 10, warmupSeconds: 2, clients: 50, sandboxes: 10, workers: 1, json: path.join(HERE, 'serve-results.json') }
  const names: Record<string, keyof typeof o> = {
    '--n': 'n', '--warmup': 'warmup', '--seconds': 'seconds', '--warmup-seconds': 'warmupSeconds',
    '--clients': 'clients', '--sandboxes': 'sandboxes', '--workers': 'workers', '--json': 'json',
  }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(USAGE)
      process.exit(0)
    }
    const key = names[argv[i]]
    const value = argv[++i]
    if (!key || value === undefined) {
      console.error(`unknown or incomplete option '${argv[i - 1]}'\n${USAGE}`)
      process.exit(2)
    }
    if (key === 'json') o.json = path.resolve(value)
    else {
      const n = Number(value)
      if (!Number.isFinite(n) || n < 0 || (key !== 'seconds' && key !== 'warmupSeconds' && !Number.isInteger(n))) {
        console.error(`${argv[i - 1]} must be a number, got '${value}'`)
        process.exit(2)
      }
      ;(o as any)[key] = n
    }
  }
  if (o.workers !== 1 && o.workers !== 2) {
    console.error('--workers is 1 or 2')
    process.exit(2)
  }
  if (o.n < 1 || o.clients < 1 || o.sandboxes < 1 || o.seconds <= 0) {
    console.error('--n, --clients, --sandboxes and --seconds must be positive')
    process.exit(2)
  }
  return o
}
const opts = parseArgs(process.argv.slice(2))
const log = (msg: string) => process.stderr.write(`[serve-bench] ${msg}\n`)

// ------------------------------------------------------------------ the results

type Latency = { name: string; path: string; baseline?: string; stats: Stats }
type Throughput = {
  name: string
  path: string
  baseline?: string
  clients: number
  sandboxes: number
  seconds: number
  execs: number
  execsPerSecond: number
  latency: Stats | null
  errors: Record<string, number>
  wrongData: number
}
const latency: Latency[] = []
const throughput: Throughput[] = []
const notes: string[] = []
/** the execution engine each path's sandboxes ran on (the guest daemon, or one docker exec per call) */
const engines: Record<string, string> = {}
let failed = false

// ------------------------------------------------------------------ processes and cleanup

/** A `serve` process this run started. */
type Server = { child: ChildProcess; url: string; label: string; stderr: () => string }
const servers: Server[] = []
const managers: any[] = []
/** pids whose sandboxes are checked (and swept) at the end: this process and every server */
const owners = new Set<number>([process.pid])

const API_KEY = crypto.randomBytes(24).toString('hex')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'))
const CONFIG = path.join(tmp, 'sandboxrc.json')
fs.writeFileSync(CONFIG, JSON.stringify({ image: IMAGE, networkMode: 'none', templates: { base: IMAGE } }))

function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    // the server's configuration is the file above and the flags, nothing inherited
    if (v !== undefined && !/^(SANDBOX_|REDIS_|WORKER_ID$|PORT$|HOST$)/.test(k)) env[k] = v
  }
  return { ...env, SANDBOX_API_KEYS: API_KEY, ...extra }
}

async function startServer(label: string, extraEnv: Record<string, string> = {}): Promise<Server> {
  const args = [BIN, 'serve', '--port', '0', '--config', CONFIG, '--max-sandboxes', '100', '--max-executions', '1000', '--shutdown-timeout', '5']
  const child = spawn(process.execPath, args, { env: childEnv(extraEnv), stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => (err += String(d)))
  const server: Server = { child, url: '', label, stderr: () => err }
  servers.push(server)
  if (child.pid) owners.add(child.pid)
  server.url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not listening after 30 s: ${err}`)), 30_000)
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stderr!.on('data', check)
    child.on('exit', (code, sig) => {
      clearTimeout(timer)
      reject(new Error(`${label} exited with ${code ?? sig}: ${err.trim()}`))
    })
  })
  log(`${label}: ${server.url} (pid ${child.pid})`)
  return server
}

/** SIGTERM (unless it is already shutting down: Ctrl-C reaches the whole process group), then SIGKILL. */
async function stopServer(s: Server) {
  const { child } = s
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  if (!/shutting down/.test(s.stderr())) child.kill('SIGTERM')
  const done = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)])
  if (!done) {
    log(`${s.label} did not stop within 30 s: SIGKILL`)
    child.kill('SIGKILL')
    await exited
  }
}

function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

function labelled(pid: number): { containers: string[]; volumes: string[]; networks: string[] } {
  const label = `label=agentic-sandbox.owner-pid=${pid}`
  const lines = (s: string) => s.split('\n').filter(Boolean)
  return {
    containers: lines(docker(['ps', '-aq', '--filter', label])),
    volumes: lines(docker(['volume', 'ls', '-q', '--filter', label])),
    networks: lines(docker(['network', 'ls', '-q', '--filter', label])),
  }
}

/** What this run's processes left on the engine (waits a little for removals still running), then removes it. */
async function sweep(): Promise<string[]> {
  const left: string[] = []
  for (const pid of owners) {
    let r = labelled(pid)
    for (let i = 0; i < 30 && r.containers.length + r.volumes.length + r.networks.length > 0; i++) {
      await sleep(500)
      r = labelled(pid)
    }
    if (r.containers.length) {
      left.push(...r.containers.map((c) => `container ${c.slice(0, 12)} (owner pid ${pid})`))
      docker(['rm', '-f', '-v', ...r.containers])
    }
    if (r.volumes.length) {
      left.push(...r.volumes.map((v) => `volume ${v} (owner pid ${pid})`))
      docker(['volume', 'rm', '-f', ...r.volumes])
    }
    if (r.networks.length) {
      left.push(...r.networks.map((n) => `network ${n} (owner pid ${pid})`))
      docker(['network', 'rm', ...r.networks])
    }
  }
  return left
}

let cleaning: Promise<void> | undefined
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const m of managers) await m.destroyAll().catch((e: any) => log(`destroyAll: ${e.message}`))
    await Promise.all(servers.map(stopServer))
    try {
      const left = await sweep()
      if (left.length) {
        failed = true
        console.error(`left behind (now removed): ${left.join(', ')}`)
      }
    } catch (e: any) {
      failed = true
      console.error(`checking what was left behind failed: ${e.message}`)
    }
    fs.rmSync(tmp, { recursive: true, force: true })
  })()
  return cleaning
}

let interrupted = false
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    log(`${sig}: cleaning up (again to exit at once)`)
    cleanup().finally(() => process.exit(130))
  })
}
// last resort (an uncaught error): no server outlives this process
process.on('exit', () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL')
})

// ------------------------------------------------------------------ the three clients

type Exec = () => Promise<void>

function checkEcho(stdout: string, exitCode: number | null, what: string) {
  if (stdout !== 'hi\n' || exitCode !== 0) throw new WrongDataError(`${what}: stdout ${JSON.stringify(stdout)}, exit ${exitCode}`)
}

class HttpError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message)
  }
}

async function seedCall(url: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  let json: any = null
  try {
    json = JSON.parse(text)
  } catch {}
  if (!res.ok) throw new HttpError(res.status, json?.error?.code ?? `HTTP_${res.status}`, `${method} ${route}: ${res.status} ${json?.error?.message ?? text.slice(0, 200)}`)
  return json
}

async function seedCreate(url: string): Promise<string> {
  const r = await seedCall(url, 'POST', '/sandbox/create', { environment: 'base', timeout: 3600 })
  return r.sandbox_id
}

function seedExec(url: string, id: string): Exec {
  return async () => {
    const r = await seedCall(url, 'POST', `/sandbox/${id}/execute`, { commands: ['echo hi'] })
    const c = r.results?.[0]
    checkEcho(c?.stdout, c?.exit_code, 'seed execute')
  }
}

function sandboxExec(sb: any, shell: boolean): Exec {
  const [cmd, args] = shell ? ['sh', ['-c', 'echo hi']] : ['echo', ['hi']]
  return async () => {
    const r = await sb.execute(cmd, args)
    checkEcho(r.stdout, r.exitCode, `${cmd} ${args.join(' ')}`)
  }
}

async function sandboxes(manager: any, count: number): Promise<any[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const sb = await manager.createSandbox({ image: IMAGE, networkMode: 'none' })
      await sb.start()
      return sb
    }),
  )
}

// ------------------------------------------------------------------ the two measures

async function roundTrip(name: string, pathName: string, exec: Exec, baseline?: string) {
  for (let i = 0; i < opts.warmup; i++) await exec()
  const samples: number[] = []
  for (let i = 0; i < opts.n; i++) {
    const t0 = performance.now()
    await exec()
    samples.push(performance.now() - t0)
  }
  const stats = summarize(samples)
  latency.push({ name, path: pathName, baseline, stats })
  log(`${name}: p50 ${stats.p50.toFixed(2)} ms, p95 ${stats.p95.toFixed(2)} ms`)
}

function codeOf(e: any): string {
  if (e instanceof WrongDataError) return 'WRONG_DATA'
  return e?.code ?? e?.name ?? 'Error'
}

/** `clients` async loops, client c calling `execs[c % execs.length]`, for `seconds`. */
async function drive(execs: ((client: number) => Promise<void>)[], seconds: number) {
  const deadline = performance.now() + seconds * 1000
  const samples: number[] = []
  const errors: Record<string, number> = {}
  let wrongData = 0
  const firstErrors: string[] = []
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, c) => {
      const exec = execs[c % execs.length]
      while (performance.now() < deadline) {
        const s = performance.now()
        try {
          await exec(c)
          samples.push(performance.now() - s)
        } catch (e: any) {
          const code = codeOf(e)
          errors[code] = (errors[code] ?? 0) + 1
          if (code === 'WRONG_DATA') wrongData++
          if (firstErrors.length < 3) firstErrors.push(`${code}: ${String(e?.message ?? e).split('\n')[0].slice(0, 200)}`)
          await sleep(10) // no hot loop on a failing call
        }
      }
    }),
  )
  const elapsed = (performance.now() - t0) / 1000
  return { samples, errors, wrongData, elapsed, firstErrors }
}

async function load(name: string, pathName: string, execs: ((client: number) => Promise<void>)[], baseline?: string) {
  if (opts.warmupSeconds > 0) await drive(execs, opts.warmupSeconds)
  const r = await drive(execs, opts.seconds)
  const row: Throughput = {
    name,
    path: pathName,
    baseline,
    clients: opts.clients,
    sandboxes: execs.length,
    seconds: r.elapsed,
    execs: r.samples.length,
    execsPerSecond: r.samples.length / r.elapsed,
    latency: r.samples.length ? summarize(r.samples) : null,
    errors: r.errors,
    wrongData: r.wrongData,
  }
  throughput.push(row)
  const errs = Object.entries(r.errors).map(([k, v]) => `${k} ×${v}`).join(', ')
  log(`${name}: ${row.execs} execs in ${r.elapsed.toFixed(1)} s = ${row.execsPerSecond.toFixed(0)}/s${errs ? `; errors: ${errs}` : ''}`)
  for (const e of r.firstErrors) log(`  e.g. ${e}`)
  if (errs) failed = true
}

// ------------------------------------------------------------------ distributed mode

function serveHelp(): string {
  try {
    return execFileSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', env: childEnv({}) })
  } catch (e: any) {
    return String(e.stdout ?? '')
  }
}

/** Why the two-worker case cannot run here, or null when it can. */
function twoWorkersUnavailable(): string | null {
  const redis = process.env.REDIS_URL
  if (!redis) return '--workers 2 needs REDIS_URL (a Redis on loopback, e.g. redis://127.0.0.1:6379)'
  let host = ''
  try {
    host = new URL(redis).hostname
  } catch {
    return `REDIS_URL is not a URL: ${redis}`
  }
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) return `REDIS_URL must be on loopback for this benchmark, got host ${host}`
  if (!/redis/i.test(serveHelp())) return "this build's `agentic-sandbox serve` has no distributed mode (its --help names no Redis option); two workers not measured"
  return null
}

async function twoWorkers() {
  const why = twoWorkersUnavailable()
  if (why) {
    notes.push(`two workers: skipped: ${why}`)
    log(`two workers: skipped: ${why}`)
    return
  }
  const redis = process.env.REDIS_URL!
  const w = [await startServer('worker 1', { REDIS_URL: redis, WORKER_ID: `bench-${process.pid}-1` }), await startServer('worker 2', { REDIS_URL: redis, WORKER_ID: `bench-${process.pid}-2` })]
  // round trip of one sandbox through each worker: one of the two forwards to the other
  const one = await seedCreate(w[0].url)
  try {
    for (const [i, s] of w.entries()) await roundTrip(`seed execute, 2 workers, via worker ${i + 1}`, `seed-2w-${i + 1}`, seedExec(s.url, one), 'inprocess-sh')
  } finally {
    await seedCall(w[0].url, 'DELETE', `/sandbox/${one}`).catch(() => {})
  }
  // seed: sandboxes created alternately through both workers; each sandbox is called through both
  const ids: string[] = []
  try {
    for (let i = 0; i < opts.sandboxes; i++) ids.push(await seedCreate(w[i % 2].url))
    const execs = Array.from({ length: opts.clients }, (_, c) => seedExec(w[Math.floor(c / opts.sandboxes) % 2].url, ids[c % opts.sandboxes]))
    await load('seed execute, 2 workers', 'seed-2w', execs, 'inprocess-sh')
  } finally {
    await Promise.all(ids.map((id) => seedCall(w[0].url, 'DELETE', `/sandbox/${id}`).catch(() => {})))
  }
  // remote mode: one manager per worker, sandboxes alternately on each
  const ms = w.map((s) => new SandboxManager({ provider: 'remote', remote: { url: s.url, apiKey: API_KEY } } as any))
  managers.push(...ms)
  try {
    const sbs = await Promise.all(Array.from({ length: opts.sandboxes }, (_, i) => sandboxes(ms[i % 2], 1).then((l) => l[0])))
    await load('remote execute, 2 workers', 'remote-2w', sbs.map((sb) => sandboxExec(sb, false)), 'inprocess')
  } finally {
    for (const m of ms) await m.destroyAll()
  }
}

// ------------------------------------------------------------------ the run

function addonBuild(): string {
  if (process.env.BENCH_ADDON_BUILD) return process.env.BENCH_ADDON_BUILD
  try {
    // the release profile strips symbols (~12 MB); a debug build carries debug info (~240 MB)
    return fs.statSync(ADDON).size < 64 * 1024 * 1024 ? 'release' : 'debug'
  } catch {
    return 'unknown'
  }
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

const machine = {
  date: new Date().toISOString(),
  cpus: os.cpus().length,
  memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
  kernel: os.release(),
  node: process.version,
  /** 1/5/15-minute load averages before the run; another build or test run on the machine skews every row */
  loadBefore: os.loadavg().map((x) => +x.toFixed(2)),
  loadAfter: [] as number[],
  docker: (() => {
    try {
      return docker(['version', '--format', '{{.Server.Version}}'])
    } catch {
      return null
    }
  })(),
  addon: { commit: git(['rev-parse', '--short', 'HEAD']), dirty: (git(['status', '--porcelain', '--', 'src', 'guest']) ?? '') !== '', build: addonBuild() },
}
log(`${machine.cpus} CPUs, Node ${machine.node}, Docker ${machine.docker}, addon ${machine.addon.commit} (${machine.addon.build} build), image ${IMAGE}, load ${machine.loadBefore.join(' ')}`)
if (machine.loadBefore[0] > machine.cpus) log(`the machine is busy (load ${machine.loadBefore[0]} on ${machine.cpus} CPUs): expect skewed numbers`)

try {
  // in-process: the library in this process
  const local = new SandboxManager({ image: IMAGE, networkMode: 'none' } as any)
  managers.push(local)
  const [one] = await sandboxes(local, 1)
  engines.inProcess = one.execEngine
  await roundTrip("execute('echo', ['hi']), in-process", 'inprocess', sandboxExec(one, false))
  await roundTrip("execute('sh', ['-c', 'echo hi']), in-process", 'inprocess-sh', sandboxExec(one, true))
  await local.destroyAll()
  let sbs = await sandboxes(local, opts.sandboxes)
  await load("execute('echo', ['hi']), in-process", 'inprocess', sbs.map((sb) => sandboxExec(sb, false)))
  await load("execute('sh', ['-c', 'echo hi']), in-process", 'inprocess-sh', sbs.map((sb) => sandboxExec(sb, true)))
  await local.destroyAll()

  // the service, one worker (a separate process)
  const server = await startServer('server')
  const id = await seedCreate(server.url)
  try {
    await roundTrip("seed POST /sandbox/{id}/execute ['echo hi'], fetch", 'seed', seedExec(server.url, id), 'inprocess-sh')
  } finally {
    await seedCall(server.url, 'DELETE', `/sandbox/${id}`)
  }
  const ids: string[] = []
  try {
    for (let i = 0; i < opts.sandboxes; i++) ids.push(await seedCreate(server.url))
    await load("seed POST /sandbox/{id}/execute ['echo hi'], fetch", 'seed', ids.map((id) => seedExec(server.url, id)), 'inprocess-sh')
  } finally {
    await Promise.all(ids.map((id) => seedCall(server.url, 'DELETE', `/sandbox/${id}`)))
  }

  // remote mode against the same server
  const remote = new SandboxManager({ provider: 'remote', remote: { url: server.url, apiKey: API_KEY } } as any)
  managers.push(remote)
  const [r1] = await sandboxes(remote, 1)
  if (r1.provider !== 'remote') throw new Error(`expected a remote sandbox, got provider ${r1.provider}`)
  engines.server = r1.execEngine
  await roundTrip("remote mode execute('echo', ['hi'])", 'remote', sandboxExec(r1, false), 'inprocess')
  await remote.destroyAll()
  sbs = await sandboxes(remote, opts.sandboxes)
  await load("remote mode execute('echo', ['hi'])", 'remote', sbs.map((sb) => sandboxExec(sb, false)), 'inprocess')
  await remote.destroyAll()
  await stopServer(server)

  if (opts.workers === 2) await twoWorkers()
  else notes.push('two workers: not measured in this run (--workers 2 with REDIS_URL measures them)')
} catch (e: any) {
  failed = true
  // after Ctrl-C the calls in flight fail because the cleanup stopped the server: not news
  if (!interrupted) console.error(e?.code ? `${e.code}: ${e.message}` : e)
} finally {
  await cleanup()
}

// ------------------------------------------------------------------ the report

machine.loadAfter = os.loadavg().map((x) => +x.toFixed(2))

const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
console.log(`\nround trip, one call at a time: n = ${opts.n} after ${opts.warmup} warm-up calls; image ${IMAGE}; ${machine.cpus} CPUs; ${machine.addon.build} build; engines: ${JSON.stringify(engines)}; load before ${machine.loadBefore[0]}, after ${machine.loadAfter[0]}`)
console.log('| call | p50 ms | p95 ms | ratio of p50 to in-process | added p50 ms |')
console.log('|---|---|---|---|---|')
for (const r of latency) {
  const base = r.baseline ? latency.find((b) => b.path === r.baseline) : undefined
  const ratio = base ? `${(r.stats.p50 / base.stats.p50).toFixed(2)}×` : ''
  const added = base ? `+${fmt(r.stats.p50 - base.stats.p50)}` : ''
  console.log(`| ${r.name} | ${fmt(r.stats.p50)} | ${fmt(r.stats.p95)} | ${ratio} | ${added} |`)
}
console.log(`\nthroughput: ${opts.clients} concurrent clients sharing ${opts.sandboxes} sandboxes, ${opts.seconds} s after ${opts.warmupSeconds} s of warm-up`)
console.log('| path | execs | execs/s | ratio to in-process | p50 ms | p95 ms | errors |')
console.log('|---|---|---|---|---|---|---|')
for (const r of throughput) {
  const base = r.baseline ? throughput.find((b) => b.path === r.baseline) : undefined
  const ratio = base ? `${(r.execsPerSecond / base.execsPerSecond).toFixed(2)}×` : ''
  const errs = Object.entries(r.errors).map(([k, v]) => `${k} ×${v}`).join(', ') || '0'
  console.log(`| ${r.name} | ${r.execs} | ${r.execsPerSecond.toFixed(0)} | ${ratio} | ${r.latency ? fmt(r.latency.p50) : ''} | ${r.latency ? fmt(r.latency.p95) : ''} | ${errs} |`)
}
for (const n of notes) console.log(`note: ${n}`)

fs.writeFileSync(
  opts.json,
  JSON.stringify({ machine, options: { ...opts, image: IMAGE, json: undefined }, engines, latency, throughput, notes, failed }, null, 2) + '\n',
)
log(`wrote ${path.relative(process.cwd(), opts.json) || opts.json}`)
process.exit(failed ? 1 : 0)
