/**
 * Side-by-side benchmark: the same workload, on the same Docker engine, in one run, through
 * the addon (guest engine), the addon (docker-exec engine), dockerode, the docker CLI via
 * child_process (the proof of concept's way) and child_process.spawn on the host (the floor).
 *
 *   npm run bench                       # builds the addon in release mode first (scripts/bench.sh)
 *   npx tsx bench/bench.ts --help       # flags; uses whatever addon build is present
 *
 * Prints a table (p50/p95/mean per path, ratio of medians against a baseline path) and the
 * targets, and writes every number to bench/results.json. Exits 1 when any path returned wrong
 * data or something the benchmark created was left behind (and, with --strict, on any MISS).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SandboxManager } from '../index.js'
import { docker, guarded, leftovers, reapDeadRuns, RUN_ID, stopCreating, sweep } from './docker.js'
import { captureTemplate, createReplica, createViaCli, removeReplica, type Replica, type Template } from './replica.js'
import { evaluateTargets, type Measure, renderTable, renderTargets } from './report.js'
import { type Cell, elapsedMs, errorCell, okCell, single, sleep, summarize, withTimeout, WrongDataError } from './stats.js'
import {
  addonConfig,
  type AddonManager,
  ALL_PATHS,
  checkEngine,
  type Engine,
  FAST_PATHS,
  openPath,
  type PathName,
  type Target,
} from './targets.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MEASURES = ['exec', 'files', 'list', 'rss', 'create', 'pool', 'parallel'] as const
type MeasureGroup = (typeof MEASURES)[number]

interface Options {
  image: string
  scale: number
  paths: PathName[]
  only: Set<MeasureGroup>
  parallel: number
  out: string
  strict: boolean
  timeoutSeconds: number
  poolPauseMs: number
}

const HELP = `usage: npx tsx bench/bench.ts [flags]
  --image IMAGE        sandbox image (default agentic-sandbox/busybox:1)
  --scale X            multiply every iteration count by X (default 1; e.g. 3 for tighter numbers)
  --quick              same as --scale 0.25 (a smoke run)
  --paths a,b,...      subset of ${ALL_PATHS.join(',')}
  --only m,n,...       subset of measures: ${MEASURES.join(',')}
  --parallel N         sandboxes in the parallel measure (default 20)
  --pool-pause-ms MS   pause before each pool.acquire, letting the pool refill (default 100)
  --timeout S          give up on one path of one measure after S seconds (default 180)
  --out FILE           JSON results (default bench/results.json)
  --strict             exit 1 when a target is missed or could not be measured`

function parseArgs(argv: string[]): Options {
  const o: Options = {
    image: 'agentic-sandbox/busybox:1',
    scale: 1,
    paths: [...ALL_PATHS],
    only: new Set(MEASURES),
    parallel: 20,
    out: path.join(REPO, 'bench', 'results.json'),
    strict: false,
    timeoutSeconds: 180,
    poolPauseMs: 100,
  }
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number, got ${v}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const v = () => argv[++i]
    if (a === '--help' || a === '-h') {
      console.log(HELP)
      process.exit(0)
    } else if (a === '--image') o.image = v()
    else if (a === '--scale') o.scale = num(a, v())
    else if (a === '--quick') o.scale = 0.25
    else if (a === '--parallel') o.parallel = Math.round(num(a, v()))
    else if (a === '--pool-pause-ms') o.poolPauseMs = Number(v())
    else if (a === '--timeout') o.timeoutSeconds = num(a, v())
    else if (a === '--out') o.out = path.resolve(v())
    else if (a === '--strict') o.strict = true
    else if (a === '--paths') {
      const ps = v().split(',')
      for (const p of ps) if (!ALL_PATHS.includes(p as PathName)) throw new Error(`unknown path ${p}; known: ${ALL_PATHS.join(', ')}`)
      o.paths = ps as PathName[]
    } else if (a === '--only') {
      const ms = v().split(',')
      for (const m of ms) if (!MEASURES.includes(m as MeasureGroup)) throw new Error(`unknown measure ${m}; known: ${MEASURES.join(', ')}`)
      o.only = new Set(ms as MeasureGroup[])
    } else throw new Error(`unknown flag ${a}\n${HELP}`)
  }
  return o
}

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`)
const isFast = (p: string) => FAST_PATHS.includes(p as PathName)

/** Iteration counts at --scale 1: [fast paths, paths paying a docker exec per call]. */
const COUNTS = {
  exec: [200, 30],
  file1k: [100, 20],
  file1m: [30, 10],
  list: [50, 10],
  create: 10,
  pool: 30,
} as const
const WARMUP = [10, 3] as const

function iterations(opts: Options, counts: readonly [number, number] | number, p: string): number {
  const base = typeof counts === 'number' ? counts : counts[isFast(p) ? 0 : 1]
  return Math.max(2, Math.round(base * opts.scale))
}
const warmup = (p: string) => WARMUP[isFast(p) ? 0 : 1]

function describe(c: Cell, unit = 'ms'): string {
  if (!c.ok) return `${c.wrongData ? 'WRONG DATA' : 'n/a'} (${c.error})`
  const s = c.stats
  return s.n > 1 ? `p50 ${s.p50.toFixed(2)} ${unit}, p95 ${s.p95.toFixed(2)}, mean ${s.mean.toFixed(2)} (n=${s.n})` : `${s.p50.toFixed(2)} ${unit}`
}

function verifyBytes(what: string, expected: Buffer, actual: Buffer): void {
  if (!Buffer.isBuffer(actual) || !expected.equals(actual)) {
    const len = Buffer.isBuffer(actual) ? actual.length : typeof actual
    throw new WrongDataError(`${what}: read back ${len} bytes that differ from the ${expected.length} bytes written`)
  }
}

function verifyEcho(r: { exitCode: number; stdout: string }): void {
  if (r.exitCode !== 0 || r.stdout !== 'hi\n') {
    throw new WrongDataError(`echo hi gave exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.slice(0, 80))}`)
  }
}

class Bench {
  readonly measures: Measure[] = []
  readonly targets: Partial<Record<PathName, Target>> = {}
  readonly openErrors: Partial<Record<PathName, Cell>> = {}

  constructor(
    readonly opts: Options,
    readonly manager: AddonManager,
  ) {}

  private add(m: Measure): void {
    this.measures.push(m)
  }

  /** Runs fn for every selected path with an open target; errors become n/a cells. */
  private async perPath(label: string, fn: (t: Target) => Promise<Cell>, paths: PathName[] = this.opts.paths, unit = 'ms'): Promise<Record<string, Cell>> {
    const cells: Record<string, Cell> = {}
    for (const p of paths) {
      const t = this.targets[p]
      if (!t) {
        cells[p] = this.openErrors[p] ?? { ok: false, error: 'not opened' }
      } else {
        try {
          cells[p] = await withTimeout(fn(t), this.opts.timeoutSeconds, `${label} on ${p}`)
        } catch (e) {
          cells[p] = errorCell(e)
        }
      }
      log(`${label} ${p}: ${describe(cells[p], unit)}`)
    }
    return cells
  }

  async openTargets(): Promise<void> {
    for (const p of this.opts.paths) {
      try {
        this.targets[p] = await withTimeout(openPath(p, this.manager, this.opts.image), this.opts.timeoutSeconds, `opening ${p}`)
        log(`opened ${p}${this.targets[p]!.id ? ` (${this.targets[p]!.id})` : ''}`)
      } catch (e) {
        this.openErrors[p] = errorCell(e)
        log(`could not open ${p}: ${describe(this.openErrors[p]!)}`)
      }
    }
  }

  async closeTargets(): Promise<void> {
    await Promise.allSettled(
      Object.values(this.targets).map((t) => t.close().catch((e) => log(`closing ${t.name} failed: ${e.message}`))),
    )
    for (const p of Object.keys(this.targets)) delete this.targets[p as PathName]
  }

  async exec(): Promise<void> {
    const cells = await this.perPath('exec echo hi', async (t) => {
      const n = iterations(this.opts, COUNTS.exec, t.name)
      const samples: number[] = []
      for (let i = 0; i < warmup(t.name) + n; i++) {
        const t0 = performance.now()
        const r = await t.exec('echo', ['hi'])
        const dt = elapsedMs(t0)
        verifyEcho(r)
        if (i >= warmup(t.name)) samples.push(dt)
      }
      return okCell(summarize(samples))
    })
    this.add({ key: 'exec', title: 'exec `echo hi` round trip', unit: 'ms', cells })
  }

  async files(size: number, label: string, counts: readonly [number, number]): Promise<void> {
    const writes: Record<string, Cell> = {}
    const reads = await this.perPath(`writeFile+readFile ${label}`, async (t) => {
      const n = iterations(this.opts, counts, t.name)
      const file = path.posix.join(t.root, `bench-${label.replace(' ', '')}.bin`)
      const w: number[] = []
      const r: number[] = []
      try {
        for (let i = 0; i < warmup(t.name) + n; i++) {
          const data = randomBytes(size)
          const t0 = performance.now()
          await t.writeFile(file, data)
          const t1 = performance.now()
          const back = await t.readFile(file)
          const t2 = performance.now()
          verifyBytes(`${label} file`, data, back)
          if (i >= warmup(t.name)) {
            w.push(t1 - t0)
            r.push(t2 - t1)
          }
        }
      } catch (e) {
        writes[t.name] = errorCell(e)
        throw e
      }
      writes[t.name] = okCell(summarize(w))
      return okCell(summarize(r))
    })
    const writesInOrder: Record<string, Cell> = {}
    for (const p of Object.keys(reads)) writesInOrder[p] = writes[p] ?? reads[p]
    const key = label === '1 KB' ? '1k' : '1m'
    this.add({ key: `write-${key}`, title: `writeFile ${label} (random bytes)`, unit: 'ms', cells: writesInOrder })
    this.add({ key: `read-${key}`, title: `readFile ${label} (verified against what was written)`, unit: 'ms', cells: reads })
  }

  async list(): Promise<void> {
    const script = 'mkdir -p "$1" && cd "$1" && i=0; while [ $i -lt 1000 ]; do : > "f$i"; i=$((i+1)); done'
    const cells = await this.perPath('listFiles 1000', async (t) => {
      const dir = path.posix.join(t.root, 'list1000')
      const made = await t.exec('sh', ['-c', script, 'sh', dir])
      if (made.exitCode !== 0) throw new Error(`creating 1000 files exited ${made.exitCode}`)
      const n = iterations(this.opts, COUNTS.list, t.name)
      const samples: number[] = []
      for (let i = 0; i < warmup(t.name) + n; i++) {
        const t0 = performance.now()
        const names = await t.listFiles(dir)
        const dt = elapsedMs(t0)
        if (names.length !== 1000 || !names.includes('f0') || !names.includes('f999')) {
          throw new WrongDataError(`listFiles returned ${names.length} names (expected f0..f999)`)
        }
        if (i >= warmup(t.name)) samples.push(dt)
      }
      return okCell(summarize(samples))
    })
    this.add({ key: 'list', title: 'listFiles of a directory with 1,000 files', unit: 'ms', cells })
  }

  /** VmRSS of the guest daemon (comm `agentic-sandbox`), read inside the sandbox. */
  async rss(): Promise<void> {
    const script =
      'for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = agentic-sandbox ] || continue; ' +
      'echo "${d#/proc/} $(grep VmRSS "$d/status")"; done'
    const cells = await this.perPath(
      'guest RSS',
      async (t) => {
        const r = await t.exec('sh', ['-c', script])
        const found = [...r.stdout.matchAll(/^(\d+) VmRSS:\s+(\d+) kB/gm)].map((m) => ({ pid: +m[1], kb: +m[2] }))
        if (found.length === 0) {
          const comms = await t.exec('sh', ['-c', 'cat /proc/[0-9]*/comm 2>/dev/null | sort -u | tr "\\n" " "'])
          throw new Error(`no process named agentic-sandbox in the sandbox (processes: ${comms.stdout.trim()})`)
        }
        // The daemon started first; a higher pid with the same name would be a child between fork and exec.
        found.sort((a, b) => a.pid - b.pid)
        return okCell(single(found[0].kb), `pid ${found[0].pid}${found.length > 1 ? `; also ${found.slice(1).map((f) => `pid ${f.pid} ${f.kb} KB`).join(', ')}` : ''}`)
      },
      this.opts.paths.filter((p) => p === 'addon-guest'),
      'KB',
    )
    this.add({ key: 'rss', title: 'guest daemon memory (VmRSS)', unit: 'KB', baseline: 'none', cells })
  }

  /** create+start, interleaved round-robin: addon (both engines), the same container through the raw API, `docker run -d`. */
  async create(): Promise<void> {
    const templates: Partial<Record<Engine, Template>> = {}
    const template = () => templates.guest ?? templates.exec
    const addon = (engine: Engine) => async () => {
      const t0 = performance.now()
      const sb = await guarded(() => this.manager.createSandbox(addonConfig(this.opts.image, engine)))
      try {
        await guarded(() => sb.start())
        const dt = elapsedMs(t0)
        checkEngine(sb, engine)
        templates[engine] ??= await captureTemplate(sb.id)
        const r = await sb.execute('echo', ['hi'])
        verifyEcho(r)
        return dt
      } finally {
        await sb.destroy()
      }
    }
    const replica = (how: typeof createReplica) => async () => {
      const t = template()
      if (!t) throw new Error('no addon sandbox could be created to copy its container from')
      const created: Replica[] = []
      try {
        const t0 = performance.now()
        await how(t, created)
        return elapsedMs(t0)
      } finally {
        for (const r of created) await removeReplica(r)
      }
    }
    const runners: Record<string, () => Promise<number>> = {}
    if (this.opts.paths.includes('addon-guest')) runners['addon-guest'] = addon('guest')
    if (this.opts.paths.includes('addon-exec')) runners['addon-exec'] = addon('exec')
    runners['raw-api'] = replica(createReplica)
    runners['docker-run'] = replica(createViaCli)

    const n = iterations(this.opts, COUNTS.create, 'addon-exec')
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(runners).map((k) => [k, []]))
    const failed: Record<string, Cell> = {}
    const names = Object.keys(runners)
    for (let i = 0; i < n + 1; i++) {
      // Rotate the order so no path always runs right after another path's removal.
      const order = i === 0 ? names : names.map((_, j) => names[(i + j) % names.length])
      for (const name of order) {
        if (failed[name]) continue
        try {
          const dt = await withTimeout(runners[name](), this.opts.timeoutSeconds, `create+start ${name}`)
          if (i > 0) samples[name].push(dt)
        } catch (e) {
          failed[name] = errorCell(e)
        }
      }
    }
    const cells: Record<string, Cell> = {}
    const from = templates.guest ? 'addon-guest' : 'addon-exec'
    for (const name of names) {
      cells[name] = failed[name] ?? okCell(summarize(samples[name]), name === 'raw-api' || name === 'docker-run' ? `same container as ${from}` : undefined)
      log(`create+start ${name}: ${describe(cells[name])}`)
    }
    this.add({ key: 'create', title: 'create+start a sandbox (teardown not timed)', unit: 'ms', baseline: 'raw-api', cells })
  }

  async pool(): Promise<void> {
    const cells: Record<string, Cell> = {}
    let note: string | undefined
    try {
      await withTimeout(
        (async () => {
          if (typeof this.manager.createPool !== 'function') throw new Error('manager.createPool is not in this build')
          const t0 = performance.now()
          const pool = await guarded(() => this.manager.createPool!({ image: this.opts.image, networkMode: 'none' }, { min: 2, max: 4 }))
          cells['createPool (min 2)'] = okCell(single(elapsedMs(t0)))
          try {
            const n = iterations(this.opts, COUNTS.pool, 'spawn')
            const acq: number[] = []
            const rel: number[] = []
            const engines = new Set<string>()
            for (let i = 0; i < 3 + n; i++) {
              await sleep(this.opts.poolPauseMs)
              const t1 = performance.now()
              const sb = await pool.acquire()
              const a = elapsedMs(t1)
              engines.add(String(sb.execEngine))
              verifyEcho(await sb.execute('echo', ['hi']))
              const t2 = performance.now()
              await pool.release(sb)
              const r = elapsedMs(t2)
              if (i >= 3) {
                acq.push(a)
                rel.push(r)
              }
            }
            note = `engine ${[...engines].join('/')}, ${this.opts.poolPauseMs} ms pause before each acquire`
            cells['pool.acquire'] = okCell(summarize(acq))
            cells['pool.release'] = okCell(summarize(rel))
          } finally {
            await pool.destroy()
          }
        })(),
        this.opts.timeoutSeconds,
        'pool',
      )
    } catch (e) {
      const c = errorCell(e)
      for (const k of ['pool.acquire', 'pool.release']) cells[k] ??= c
    }
    for (const [k, c] of Object.entries(cells)) log(`pool ${k}: ${describe(c)}`)
    this.add({ key: 'pool', title: 'pooled sandboxes (min 2, max 4)', unit: 'ms', baseline: 'none', note, cells })
  }

  /** N sandboxes created, used (echo + 1 KB write/read) and destroyed concurrently: wall time. */
  async parallel(): Promise<void> {
    const count = this.opts.parallel
    const cells: Record<string, Cell> = {}
    for (const p of this.opts.paths.filter((x) => x !== 'spawn')) {
      try {
        const t0 = performance.now()
        const results = await withTimeout(
          Promise.allSettled(
            Array.from({ length: count }, async () => {
              const t = await openPath(p, this.manager, this.opts.image)
              try {
                verifyEcho(await t.exec('echo', ['hi']))
                const data = randomBytes(1024)
                const file = path.posix.join(t.root, 'parallel.bin')
                await t.writeFile(file, data)
                verifyBytes('parallel 1 KB file', data, await t.readFile(file))
              } finally {
                await t.close()
              }
            }),
          ),
          this.opts.timeoutSeconds,
          `${count} parallel on ${p}`,
        )
        const wall = elapsedMs(t0)
        const bad = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
        if (bad.length > 0) {
          const first = bad.find((b) => b.reason instanceof WrongDataError) ?? bad[0]
          const c = errorCell(first.reason)
          if (!c.ok) c.error = `${bad.length}/${count} failed: ${c.error}`
          cells[p] = c
        } else {
          cells[p] = okCell(single(wall))
        }
      } catch (e) {
        cells[p] = errorCell(e)
      }
      log(`parallel ${p}: ${describe(cells[p])}`)
    }
    this.add({ key: 'parallel', title: `${count} sandboxes created, used and destroyed in parallel (wall time)`, unit: 'ms', cells })
  }
}

async function machineInfo(opts: Options) {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return undefined
    }
  }
  const [version, info] = await Promise.all([docker.version(), docker.info()])
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    docker: {
      version: version.Version,
      apiVersion: version.ApiVersion,
      storageDriver: info.Driver,
      cgroupVersion: info.CgroupVersion,
      runtime: info.DefaultRuntime,
    },
    addon: { commit: git(['rev-parse', '--short', 'HEAD']), dirty: (git(['status', '--porcelain', '--', 'src', 'guest']) ?? '') !== '', build: process.env.BENCH_ADDON_BUILD ?? 'as found' },
    image: opts.image,
    runId: RUN_ID,
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  const manager = new SandboxManager() as unknown as AddonManager
  let cleaning: Promise<void> | undefined
  const cleanup = () =>
    (cleaning ??= (async () => {
      await stopCreating()
      await manager.destroyAll().catch((e: Error) => log(`destroyAll failed: ${e.message}`))
      await sweep().catch((e: Error) => log(`sweep failed: ${e.message}`))
    })())
  // `on`, not `once`: a Ctrl-C often arrives twice (from the terminal and relayed by npm), and a
  // second one must not fall through to Node's default and kill the process mid-cleanup.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (cleaning) return
      log(`${sig}: removing what the benchmark created ...`)
      void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
    })
  }
  const reaped = await reapDeadRuns()
  if (reaped > 0) log(`removed ${reaped} containers/volumes left by earlier runs that were killed`)

  const machine = await machineInfo(opts)
  log(`${machine.cpus} CPUs, Docker ${machine.docker.version}, Node ${machine.node}, image ${opts.image}, scale ${opts.scale}, addon build: ${machine.addon.build}`)
  const bench = new Bench(opts, manager)
  const want = (m: MeasureGroup) => opts.only.has(m)
  try {
    if (want('exec') || want('files') || want('list') || want('rss')) {
      try {
        await bench.openTargets()
        if (want('exec')) await bench.exec()
        if (want('files')) {
          await bench.files(1024, '1 KB', COUNTS.file1k)
          await bench.files(1024 * 1024, '1 MB', COUNTS.file1m)
        }
        if (want('list')) await bench.list()
        if (want('rss') && opts.paths.includes('addon-guest')) await bench.rss()
      } finally {
        await bench.closeTargets()
      }
    }
    if (want('create')) await bench.create()
    if (want('pool')) await bench.pool()
    if (want('parallel')) await bench.parallel()
  } finally {
    await cleanup()
  }

  const left = await leftovers()
  const byKey = Object.fromEntries(bench.measures.map((m) => [m.key, m]))
  const targets = evaluateTargets(byKey)
  console.log(`\nagentic-sandbox benchmark — ${machine.date}`)
  console.log(`${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGB} GB, kernel ${machine.kernel}, Docker ${machine.docker.version} (${machine.docker.storageDriver}), Node ${machine.node}`)
  console.log(`image ${opts.image}; addon ${machine.addon.commit}${machine.addon.dirty ? ' (modified)' : ''}, build: ${machine.addon.build}`)
  console.log(renderTable(bench.measures))
  console.log(renderTargets(targets))
  const wrong = bench.measures.flatMap((m) => Object.entries(m.cells).filter(([, c]) => !c.ok && c.wrongData).map(([p]) => `${m.title} / ${p}`))
  const leaked = [...left.containers, ...left.volumes]
  console.log(`\nLeft behind: ${leaked.length === 0 ? 'nothing (no container or volume of this run remains)' : leaked.join(', ')}`)
  if (wrong.length > 0) console.log(`WRONG DATA in: ${wrong.join('; ')}`)

  await writeFile(opts.out, JSON.stringify({ machine, options: { ...opts, only: [...opts.only] }, measures: bench.measures, targets, leftovers: left, wrongData: wrong }, null, 2) + '\n')
  console.log(`Results: ${path.relative(process.cwd(), opts.out) || opts.out}`)

  if (wrong.length > 0 || leaked.length > 0) return 1
  if (opts.strict && targets.some((t) => t.status !== 'PASS')) return 1
  return 0
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('benchmark failed:', err)
    process.exit(1)
  },
)
