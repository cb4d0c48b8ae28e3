/**
 * What snapshots cost (README "Snapshots"), in one run on the same engine:
 *
 *   - snapshot: `sandbox.snapshot()` of a sandbox whose workspace holds `--mb` (100) MiB: one
 *     random file of that size and `--files` (1000) small files of 1 KiB; with the default
 *     read-only root and with `docker.readOnlyRoot: false` (its filesystem exported too);
 *   - restore: `createSandbox({ fromSnapshot })` + `start()` + a first `execute` (which checks
 *     that the big file is there with its size), next to a plain create + start + first execute
 *     of the same image, alternating, `--runs` (5) each; medians and ratios.
 *
 *   npx tsx bench/snapshots.ts [--mb 100] [--files 1000] [--runs 5]
 *
 * Uses the addon as built (`npm run build` for release numbers) and the Debian test image.
 * Every sandbox and snapshot it makes is removed in `finally`.
 */
import { SandboxManager } from '../index.js'
import { summarize } from './stats.js'

const IMAGE = 'agentic-sandbox/debian:12'

function args() {
  const o = { mb: 100, files: 1000, runs: 5 }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '') as keyof typeof o
    if (!(k in o)) {
      console.log('usage: npx tsx bench/snapshots.ts [--mb 100] [--files 1000] [--runs 5]')
      process.exit(argv[i] === '--help' ? 0 : 2)
    }
    o[k] = Number(argv[i + 1])
  }
  return o
}

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now()
  const v = await f()
  return [performance.now() - t0, v]
}

async function main() {
  const o = args()
  const manager: any = new SandboxManager({ image: IMAGE, limits: { diskMB: o.mb + 256 } })
  const names: string[] = []
  const run = `bench-${process.pid}`
  try {
    const fillScript = `set -e; head -c ${o.mb}M /dev/urandom > big.bin; mkdir -p small; i=0; while [ $i -lt ${o.files} ]; do head -c 1024 /dev/urandom > small/f$i; i=$((i+1)); done; du -sk . | cut -f1`
    // the default read-only root (snapshot = image + workspace layer) and a writable root (the
    // filesystem is exported and imported too)
    const sources: any[] = []
    for (const readOnlyRoot of [true, false]) {
      const src = await manager.createSandbox({ docker: { readOnlyRoot } })
      await src.start()
      const fill = await src.execute('sh', ['-c', fillScript])
      if (fill.exitCode !== 0) throw new Error(`filling the workspace failed: ${fill.stderr}`)
      sources.push(src)
      if (readOnlyRoot) console.log(`workspace: ${(Number(fill.stdout.trim()) / 1024).toFixed(1)} MiB (${o.mb} MiB file + ${o.files} files of 1 KiB)`)
    }

    const snapMs: number[] = []
    const snapRwMs: number[] = []
    for (let i = 0; i < o.runs; i++) {
      const [ms, s] = await timed(() => sources[0].snapshot({ name: `${run}-${i}` }))
      names.push(s.name)
      snapMs.push(ms)
      const [rw, s2] = await timed(() => sources[1].snapshot({ name: `${run}-rw-${i}` }))
      names.push(s2.name)
      snapRwMs.push(rw)
    }
    const restoreMs: number[] = []
    const plainMs: number[] = []
    const want = String(o.mb * 1024 * 1024)
    for (let i = 0; i < o.runs; i++) {
      const [rms] = await timed(async () => {
        const sb = await manager.createSandbox({ fromSnapshot: `${run}-${i}` })
        await sb.start()
        const r = await sb.execute('stat', ['-c', '%s', 'big.bin'])
        if (r.stdout.trim() !== want) throw new Error(`restored big.bin has size ${r.stdout.trim()}, want ${want}`)
        return sb
      }).then(async ([ms, sb]) => {
        await sb.destroy()
        return [ms]
      })
      restoreMs.push(rms)
      const [pms, sb] = await timed(async () => {
        const sb = await manager.createSandbox()
        await sb.start()
        await sb.execute('true')
        return sb
      })
      await sb.destroy()
      plainMs.push(pms)
    }
    const s = summarize(snapMs)
    const w = summarize(snapRwMs)
    const r = summarize(restoreMs)
    const p = summarize(plainMs)
    const row = (label: string, x: { p50: number; min: number; max: number }) =>
      console.log(`${label.padEnd(52)} ${x.p50.toFixed(0).padStart(7)} ms   (min ${x.min.toFixed(0)}, max ${x.max.toFixed(0)})`)
    console.log(`medians over ${o.runs} runs`)
    row('snapshot() (read-only root, the default)', s)
    row('snapshot() (docker.readOnlyRoot: false)', w)
    row('createSandbox({ fromSnapshot }) + start + first execute', r)
    row('createSandbox() + start + first execute (plain)', p)
    console.log(
      `restore / plain: ${(r.p50 / p.p50).toFixed(2)}x   snapshot / plain: ${(s.p50 / p.p50).toFixed(2)}x (read-only root), ${(w.p50 / p.p50).toFixed(2)}x (writable root)`,
    )
    const all = await manager.listSnapshots()
    const size = (n: string) => (all.find((x: any) => x.name === n).sizeBytes / 1024 / 1024).toFixed(0)
    console.log(`image sizes (base image included): ${size(`${run}-0`)} MiB (read-only root), ${size(`${run}-rw-0`)} MiB (writable root)`)
  } finally {
    await manager.destroyAll()
    for (const n of names) await manager.deleteSnapshot(n).catch((e: any) => console.error(`could not delete ${n}: ${e.message}`))
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
