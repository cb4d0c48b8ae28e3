/**
 * What a cell costs in a warm code context against a fresh interpreter per call, side by side in
 * one run, on the guest engine (the default) and the exec engine:
 *
 *   - runCode('x + 1', { context }) in a warm Python context (the target: ≤ 2 ms p50 on
 *     the guest engine);
 *   - runCode('print(1+1)', { language: 'python' }) without a context (a fresh python3 per call);
 *   - execute('python3', ['-c', 'print(1+1)']) (the floor of a fresh interpreter);
 *   - runCode('x + 1', { context }) in a warm JavaScript and TypeScript context, and a bash cell.
 *
 *   npx tsx bench/code-contexts.ts [--n 200]   # uses the addon as built (a release build gives
 *                                                 numbers to compare: RELEASE=1 bash scripts/setup.sh)
 *
 * Prints p50 / p95 per row and the ratio of each row's p50 to the warm Python cell's. Exits 1
 * when a call returned wrong data or a sandbox was left behind.
 */
import { execFileSync } from 'node:child_process'
import { SandboxManager } from '../index.js'
import { time, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/devtools:2'
const n = Number(process.argv[process.argv.indexOf('--n') + 1]) || 200

function check(ok: boolean, what: string) {
  if (!ok) throw new Error(`wrong data: ${what}`)
}

type Row = { group: string; name: string; stats: Stats }
const WARM = "runCode('x + 1', { context }) (warm python context)"

async function engine(execEngine: 'guest' | 'exec', rows: Row[]) {
  const manager = new SandboxManager({ image: IMAGE, docker: { execEngine } } as any)
  const g = execEngine
  try {
    const sb = await manager.createSandbox({})
    await sb.start()
    const py = await sb.createCodeContext({ language: 'python' })
    await sb.runCode('x = 1', { context: py })
    const main = (r: any) => r.results.find((o: any) => o.isMainResult)?.json
    rows.push({ group: g, name: WARM, stats: await time(n, async () => check(main(await sb.runCode('x + 1', { context: py })) === 2, 'context cell')) })
    const fresh = Math.max(20, Math.round(n / 4))
    rows.push({
      group: g,
      name: "runCode('print(1+1)', { language: 'python' }) (no context)",
      stats: await time(fresh, async () => check((await sb.runCode('print(1+1)', { language: 'python' })).stdout === '2\n', 'runCode')),
    })
    rows.push({
      group: g,
      name: "execute('python3', ['-c', 'print(1+1)'])",
      stats: await time(fresh, async () => check((await sb.execute('python3', ['-c', 'print(1+1)'])).stdout === '2\n', 'execute')),
    })
    const js = await sb.createCodeContext({ language: 'javascript' })
    await sb.runCode('var x = 1', { context: js })
    rows.push({ group: g, name: "runCode('x + 1', { context }) (warm javascript context)", stats: await time(n, async () => check(main(await sb.runCode('x + 1', { context: js })) === 2, 'js cell')) })
    const ts = await sb.createCodeContext({ language: 'typescript' })
    await sb.runCode('var x: number = 1', { context: ts })
    rows.push({ group: g, name: "runCode('x + 1', { context }) (warm typescript context, esbuild)", stats: await time(n, async () => check(main(await sb.runCode('x + 1', { context: ts })) === 2, 'ts cell')) })
    const sh = await sb.createCodeContext({ language: 'bash' })
    await sb.runCode('x=1', { context: sh })
    rows.push({ group: g, name: "runCode('echo $((x + 1))', { context }) (warm bash context)", stats: await time(n, async () => check((await sb.runCode('echo $((x + 1))', { context: sh })).stdout === '2\n', 'bash cell')) })
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
console.log(`n = ${n} for context cells, ${Math.max(20, Math.round(n / 4))} for fresh interpreters; image ${IMAGE}`)
console.log('| engine | call | p50 ms | p95 ms | p50 ÷ warm python cell |')
console.log('|---|---|---|---|---|')
for (const r of rows) {
  const base = rows.find((b) => b.group === r.group && b.name === WARM)
  const ratio = base ? `${(r.stats.p50 / base.stats.p50).toFixed(1)}×` : ''
  console.log(`| ${r.group} | ${r.name} | ${fmt(r.stats.p50)} | ${fmt(r.stats.p95)} | ${ratio} |`)
}
const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=agentic-sandbox.managed=true', '--filter', `label=agentic-sandbox.owner-pid=${process.pid}`], { encoding: 'utf8' }).trim()
if (left) {
  failed = true
  console.error(`left behind: ${left}`)
}
process.exit(failed ? 1 : 0)
