/**
 * What the seeds 002–004 features cost on top of the core calls, side by side in one run, on the
 * guest engine (the default) and the exec engine:
 *
 *   - runCode(python) against the same program through execute('python3', ['-c', ...]);
 *   - writeFile of 1 KB into a workspace of 1,000 files, without quotas and with maxTotalFiles +
 *     maxWorkspaceSizeMB set (each write then lists the workspace first);
 *   - getOrCreateSession for a thread that has a session (a lookup) and for a new thread, created
 *     cold and taken from a warm pool.
 *
 *   npx tsx bench/service.ts [--n 50]     # uses the addon as built (build it in release mode for
 *                                           numbers to compare: RELEASE=1 bash scripts/setup.sh)
 *
 * Prints p50 / p95 per row and the ratio of each row to its baseline. Exits 1 when a call
 * returned wrong data or a sandbox was left behind.
 */
import { execFileSync } from 'node:child_process'
import { SandboxManager } from '../index.js'
import { time, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/devtools:2'
const n = Number(process.argv[process.argv.indexOf('--n') + 1]) || 50

function check(ok: boolean, what: string) {
  if (!ok) throw new Error(`wrong data: ${what}`)
}

type Row = { group: string; name: string; stats: Stats; baseline?: string }

async function engine(execEngine: 'guest' | 'exec', rows: Row[]) {
  const manager = new SandboxManager({ image: IMAGE, templates: { python: IMAGE }, docker: { execEngine } } as any)
  const g = execEngine
  try {
    const sb = await manager.createSandbox({ template: 'python' })
    await sb.start()
    const program = 'print(sum(range(10)))'
    rows.push({
      group: g,
      name: "execute('python3', ['-c', code])",
      stats: await time(n, async () => check((await sb.execute('python3', ['-c', program])).stdout === '45\n', 'execute')),
    })
    rows.push({
      group: g,
      name: 'runCode(code, { language: python })',
      baseline: "execute('python3', ['-c', code])",
      stats: await time(n, async () => check((await sb.runCode(program)).output === '45\n', 'runCode')),
    })

    const files = async (s: any) => {
      const r = await s.execute('sh', ['-c', 'mkdir -p many && cd many && i=0; while [ $i -lt 1000 ]; do : > f$i; i=$((i+1)); done'])
      check(r.exitCode === 0, 'creating 1,000 files')
    }
    const kb = Buffer.alloc(1024, 7)
    await files(sb)
    rows.push({
      group: g,
      name: 'writeFile 1 KB (1,000 files, no quotas)',
      stats: await time(n, async (i) => check((await sb.writeFile(`w${i}.bin`, kb)).success, 'writeFile')),
    })
    const q = await manager.createSandbox({ template: 'python', limits: { maxTotalFiles: 100_000, maxWorkspaceSizeMB: 512 } })
    await q.start()
    await files(q)
    rows.push({
      group: g,
      name: 'writeFile 1 KB (1,000 files, maxTotalFiles + maxWorkspaceSizeMB)',
      baseline: 'writeFile 1 KB (1,000 files, no quotas)',
      stats: await time(n, async (i) => check((await q.writeFile(`w${i}.bin`, kb)).success, 'writeFile with quotas')),
    })

    await manager.getOrCreateSession({ userId: 'u', threadId: 'kept' })
    rows.push({
      group: g,
      name: 'getOrCreateSession, existing thread',
      stats: await time(n, async () => void (await manager.getOrCreateSession({ userId: 'u', threadId: 'kept' }))),
    })
    const few = Math.max(5, Math.round(n / 5))
    rows.push({
      group: g,
      name: 'getOrCreateSession, new thread (cold start)',
      baseline: 'getOrCreateSession, existing thread',
      stats: await time(
        few,
        async (i) => void (await manager.getOrCreateSession({ userId: 'u', threadId: `cold-${i}` })),
        async (i) => void (await manager.closeSession(`cold-${i}`)),
      ),
    })
    const pool = await manager.createPool({ template: 'python' }, { min: 2, max: 4 })
    rows.push({
      group: g,
      name: 'getOrCreateSession, new thread (from a warm pool)',
      baseline: 'getOrCreateSession, existing thread',
      stats: await time(
        few,
        async (i) => void (await manager.getOrCreateSession({ userId: 'u', threadId: `pool-${i}`, pool })),
        // untimed: close the session and let the pool refill before the next sample
        async (i) => {
          await manager.closeSession(`pool-${i}`)
          const t = Date.now()
          while (pool.stats.idle < 2 && Date.now() - t < 10_000) await new Promise((r) => setTimeout(r, 20))
        },
      ),
    })
  } finally {
    await manager.destroyAll()
  }
}

const rows: Row[] = []
let failed = false
try {
  await engine('guest', rows)
  await engine('exec', rows)
} catch (e) {
  failed = true
  console.error(e)
}
const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
console.log(`n = ${n} (session creation: ${Math.max(5, Math.round(n / 5))}); image ${IMAGE}`)
console.log('| engine | call | p50 ms | p95 ms | ratio of p50 to |')
console.log('|---|---|---|---|---|')
for (const r of rows) {
  const base = r.baseline ? rows.find((b) => b.group === r.group && b.name === r.baseline) : undefined
  const ratio = base ? `${(r.stats.p50 / base.stats.p50).toFixed(2)}× ${r.baseline}` : ''
  console.log(`| ${r.group} | ${r.name} | ${fmt(r.stats.p50)} | ${fmt(r.stats.p95)} | ${ratio} |`)
}
const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=agentic-sandbox.managed=true', '--filter', `label=agentic-sandbox.owner-pid=${process.pid}`], { encoding: 'utf8' }).trim()
if (left) {
  failed = true
  console.error(`left behind: ${left}`)
}
process.exit(failed ? 1 : 0)
