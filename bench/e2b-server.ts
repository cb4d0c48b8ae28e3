/**
 * What the self-hosted E2B costs (issue 17, README "Use the E2B SDK with your own Docker host"),
 * in one run on the same image and engine: `commands.run('echo hi')` through the official `e2b`
 * SDK against `agentic-sandbox serve` (a `SandboxServer` in this process, on 127.0.0.1), next to
 * the library's in-process `execute` of the same command line (`/bin/bash -l -c 'echo hi'`, what
 * the SDK asks envd to run) and of `echo hi`, and next to the same SDK against the test fake
 * (`examples/lib/fake-e2b.ts`, one `docker exec` per command).
 *
 *   npx tsx bench/e2b-server.ts [--n 100]
 *
 * p50/p95 of n calls after a warm-up; ratios of p50s against the in-process bash row. Uses the
 * addon as built (`npm run build` for release numbers). Everything it starts is removed.
 */
import { Sandbox } from 'e2b'
import { SandboxManager, SandboxServer } from '../index.js'
import { startFakeE2b } from '../examples/lib/fake-e2b.js'
import { summarize, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/debian:12'
const KEY = `e2b_${'5a'.repeat(20)}`

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

async function measure(n: number, fn: () => Promise<string>): Promise<Stats> {
  for (let i = 0; i < Math.min(10, n); i++) if ((await fn()) !== 'hi\n') throw new Error('wrong output')
  const ms: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const out = await fn()
    ms.push(performance.now() - t)
    if (out !== 'hi\n') throw new Error(`wrong output ${JSON.stringify(out)}`)
  }
  return summarize(ms)
}

async function main() {
  const n = arg('n', 100)
  const manager = new SandboxManager({ image: IMAGE })
  const server: any = new SandboxServer({ port: 0, readEnv: false, apiKeys: [{ key: KEY, name: 'bench' }], config: { image: IMAGE } })
  const fake = await startFakeE2b({ image: IMAGE })
  const rows: Array<[string, Stats]> = []
  try {
    const url = (await server.listen()).url
    const local: any = await manager.createSandbox({ image: IMAGE })
    await local.start()
    rows.push(['in-process execute(/bin/bash -l -c "echo hi")', await measure(n, async () => (await local.execute('/bin/bash', ['-l', '-c', 'echo hi'])).stdout)])
    rows.push(['in-process execute(echo hi)', await measure(n, async () => (await local.execute('echo', ['hi'])).stdout)])
    const ours = await Sandbox.create({ apiKey: KEY, apiUrl: url, sandboxUrl: url, timeoutMs: 600_000 })
    rows.push(["e2b SDK -> agentic-sandbox serve: commands.run('echo hi')", await measure(n, async () => (await ours.commands.run('echo hi')).stdout)])
    const faked = await Sandbox.create({ apiKey: fake.apiKey, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl, timeoutMs: 600_000 })
    rows.push(["e2b SDK -> fake E2B (docker exec): commands.run('echo hi')", await measure(n, async () => (await faked.commands.run('echo hi')).stdout)])
    await Promise.all([ours.kill(), faked.kill()])
    const base = rows[0][1].p50
    console.log(`commands.run('echo hi') and its in-process equivalents (n=${n}, image ${IMAGE})\n`)
    console.log('| path | p50 | p95 | ratio (p50) |\n|---|---|---|---|')
    for (const [name, s] of rows) console.log(`| ${name} | ${s.p50.toFixed(2)} ms | ${s.p95.toFixed(2)} ms | ${(s.p50 / base).toFixed(2)}× |`)
  } finally {
    await manager.destroyAll()
    await server.close()
    await fake.close()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
