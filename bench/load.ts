/**
 * Load: many sandboxes, many concurrent calls, random payloads, one process.
 *
 *   1. `--sandboxes` (50) sandboxes, each running `--execs` (200) execs with random payloads, all
 *      sandboxes at once and `--inflight` (4) calls in flight per sandbox. Every output must equal
 *      its input (zero lost or mixed-up results). Reports execs/s and Node's RSS over time. The same
 *      workload runs on the guest engine and, side by side, on the docker-exec engine (with
 *      `--exec-execs` (20) execs per sandbox, since each costs a `docker exec`).
 *   2. `--isolated` (100) sandboxes with `networkMode: 'isolated'` created at once, each runs `echo`,
 *      then all are destroyed. Reports the time and checks nothing is left.
 *
 *   npx tsx bench/load.ts [--sandboxes 50] [--execs 200] [--exec-execs 20] [--inflight 4] [--isolated 100] [--quick]
 *
 * Use a release build for numbers to compare (RELEASE=1 bash scripts/setup.sh). Exits 1 when a
 * result was lost or mixed up, a call failed, or a resource was left behind.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { SandboxManager } from '../index.js'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const quick = process.argv.includes('--quick')
const SANDBOXES = arg('sandboxes', quick ? 10 : 50)
const EXECS = arg('execs', quick ? 40 : 200)
const EXEC_EXECS = arg('exec-execs', quick ? 5 : 20)
const INFLIGHT = arg('inflight', 4)
const ISOLATED = arg('isolated', quick ? 20 : 100)
const IMAGE = 'agentic-sandbox/busybox:1'
const LIMITS = { memoryMB: 64, cpuCores: 0.25, pidsLimit: 64, diskMB: 16 }

const mb = (b: number) => Math.round(b / (1024 * 1024))
const rss = () => process.memoryUsage().rss

/** Run `fn` over `items` with at most `limit` at once. */
async function pool<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i], i)
      }
    }),
  )
  return out
}

function leftovers(): number {
  const ids = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).split('\n').filter(Boolean).length
  const f = ['--filter', 'label=agentic-sandbox.managed=true']
  return ids(['ps', '-aq', ...f]) + ids(['volume', 'ls', '-q', ...f]) + ids(['network', 'ls', '-q', ...f])
}

type Load = { engine: string; sandboxes: number; execs: number; seconds: number; perSecond: number; wrong: number; failed: number; rssStartMB: number; rssPeakMB: number; rssEndMB: number; samples: number[] }

async function load(engine: 'guest' | 'exec', execsEach: number): Promise<Load> {
  const manager = new SandboxManager({ image: IMAGE, networkMode: 'none', limits: LIMITS, docker: { execEngine: engine } } as any)
  const samples: number[] = []
  const rssStart = rss()
  let peak = rssStart
  const sampler = setInterval(() => {
    const r = rss()
    peak = Math.max(peak, r)
    samples.push(mb(r))
  }, 500)
  let wrong = 0
  let failed = 0
  try {
    const boxes = await pool(Array.from({ length: SANDBOXES }), 8, async () => {
      const sb = await manager.createSandbox()
      await sb.start()
      return sb
    })
    const t0 = performance.now()
    await Promise.all(
      boxes.map((sb) =>
        pool(Array.from({ length: execsEach }), INFLIGHT, async () => {
          // a random payload (printable, 1 B to 8 KiB) goes in as an argument and must come back as is
          const payload = randomBytes(1 + Math.floor(Math.random() * 6144)).toString('base64')
          try {
            const r = await sb.execute('printf', ['%s', payload])
            if (r.stdout !== payload || r.exitCode !== 0) wrong++
          } catch (e) {
            failed++
            if (failed < 5) console.error(`[${engine}] execute failed:`, (e as Error).message)
          }
        }),
      ),
    )
    const seconds = (performance.now() - t0) / 1000
    return {
      engine,
      sandboxes: SANDBOXES,
      execs: SANDBOXES * execsEach,
      seconds,
      perSecond: (SANDBOXES * execsEach) / seconds,
      wrong,
      failed,
      rssStartMB: mb(rssStart),
      rssPeakMB: mb(peak),
      rssEndMB: mb(rss()),
      samples,
    }
  } finally {
    clearInterval(sampler)
    await manager.destroyAll()
  }
}

async function isolated() {
  const manager = new SandboxManager({ image: IMAGE, networkMode: 'isolated', limits: LIMITS } as any)
  const t0 = performance.now()
  let ok = 0
  try {
    const boxes = await pool(Array.from({ length: ISOLATED }), 8, async () => {
      const sb = await manager.createSandbox()
      await sb.start()
      return sb
    })
    const created = (performance.now() - t0) / 1000
    const outs = await Promise.all(boxes.map((sb) => sb.execute('echo', [sb.id])))
    ok = outs.filter((r, i) => r.stdout === `${boxes[i].id}\n`).length
    const t1 = performance.now()
    await manager.destroyAll()
    return { count: ISOLATED, ok, createSeconds: created, destroySeconds: (performance.now() - t1) / 1000 }
  } finally {
    await manager.destroyAll()
  }
}

const results: Load[] = []
results.push(await load('guest', EXECS))
results.push(await load('exec', EXEC_EXECS))
const iso = await isolated()
// destroy() resolves within its budget and may let the engine finish removing in the background
const t0 = performance.now()
let left = leftovers()
while (left > 0 && performance.now() - t0 < 120_000) {
  await new Promise((r) => setTimeout(r, 1000))
  left = leftovers()
}
const goneSeconds = (performance.now() - t0) / 1000

console.log(`\n## Load (${SANDBOXES} sandboxes at once, ${INFLIGHT} calls in flight per sandbox, random payloads 1 B–8 KiB)\n`)
console.log('| engine | execs | time | execs/s | lost or mixed up | failed | Node RSS start → peak → end |')
console.log('|---|---|---|---|---|---|---|')
for (const r of results) {
  console.log(`| ${r.engine} | ${r.execs} | ${r.seconds.toFixed(1)} s | ${r.perSecond.toFixed(0)} | ${r.wrong} | ${r.failed} | ${r.rssStartMB} → ${r.rssPeakMB} → ${r.rssEndMB} MB |`)
}
console.log(`\nguest engine / exec engine throughput: ${(results[0].perSecond / results[1].perSecond).toFixed(1)}×`)
console.log(`RSS samples (guest, MB, every 0.5 s): ${results[0].samples.join(' ')}`)
console.log(`\n## ${iso.count} isolated sandboxes at once\n`)
console.log(`created and started in ${iso.createSeconds.toFixed(1)} s (8 at a time), ${iso.ok}/${iso.count} answered echo, destroyed in ${iso.destroySeconds.toFixed(1)} s`)
console.log(`labelled resources left: ${left} (all gone ${goneSeconds.toFixed(1)} s after destroyAll resolved)`)
console.log(JSON.stringify({ load: results.map(({ samples, ...r }) => r), isolated: { ...iso, goneSeconds }, left }))
const bad = results.some((r) => r.wrong > 0 || r.failed > 0) || iso.ok !== iso.count || left > 0
process.exit(bad ? 1 : 0)
