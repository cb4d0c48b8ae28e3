/**
 * What the egress gateway costs (issue 16, README "Network"), in one run on the same engine:
 *
 *   - connection latency: n sequential HTTP GETs, a new TCP connection each (Python's urllib, as
 *     a sandboxed program makes them), from a sandbox with network rules (through the gateway's
 *     HTTP proxy) and from a `networkMode: 'bridge'` sandbox (straight to the host); p50/p95 per
 *     request, measured inside the sandbox, the ratio and the added milliseconds;
 *   - throughput: one download of `--mb` (100) MiB, read in 1 MiB chunks and discarded, both ways;
 *     MiB/s and the ratio;
 *   - create+start of a sandbox with rules (network, gateway container, sandbox container) next
 *     to `networkMode: 'isolated'` (network, sandbox container), `--starts` (5) each, alternating.
 *
 *   npx tsx bench/egress.ts [--n 200] [--mb 100] [--starts 5]
 *
 * The test host is a container this script starts (__test__/egress/server.py on the Debian test
 * image) on a network it creates (198.18.48.0/24) and on Docker's default bridge, so that both
 * sandboxes reach it; the gateway's way out is that network (docker.egressNetwork). Nothing else is
 * contacted. Uses the addon as built (`npm run build` for release numbers). Everything it starts
 * is removed in `finally`.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SandboxManager } from '../index.js'
import { summarize, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/debian:12'
const HERE = path.dirname(fileURLToPath(import.meta.url))
const NET = 'agentic-sandbox-egress-bench'
const HOST = 'agentic-sandbox-egress-bench-host'

function args() {
  const o = { n: 200, mb: 100, starts: 5 }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '') as keyof typeof o
    if (!(k in o)) {
      console.log('usage: npx tsx bench/egress.ts [--n 200] [--mb 100] [--starts 5]')
      process.exit(argv[i] === '--help' ? 0 : 2)
    }
    o[k] = Number(argv[i + 1])
  }
  return o
}

const docker = (a: string[]) => execFileSync('docker', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
const quiet = (a: string[]) => {
  try {
    docker(a)
  } catch {
    /* not there */
  }
}

// runs inside the sandbox: `lat URL N` prints per-request milliseconds; `get URL` prints MiB/s
const PROBE = `import json, sys, time, urllib.request
mode, url = sys.argv[1], sys.argv[2]
if mode == 'lat':
    out = []
    for i in range(int(sys.argv[3]) + 10):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.read().startswith(b'hello')
        if i >= 10: out.append((time.perf_counter() - t) * 1000)
    print(json.dumps(out))
else:
    t = time.perf_counter(); n = 0
    with urllib.request.urlopen(url, timeout=120) as r:
        while True:
            b = r.read(1 << 20)
            if not b: break
            n += len(b)
    print(json.dumps({'bytes': n, 'seconds': time.perf_counter() - t}))
`

async function run(sb: any, ...a: string[]): Promise<any> {
  const r = await sb.execute('python3', ['/workspace/probe.py', ...a], { timeout: 600 })
  if (r.exitCode !== 0) throw new Error(`probe ${a.join(' ')}: ${r.stderr || r.stdout}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}

const ms = (s: Stats) => `${s.p50.toFixed(2)} / ${s.p95.toFixed(2)} ms`

async function main() {
  const o = args()
  const manager = new SandboxManager()
  try {
    quiet(['rm', '-f', HOST])
    quiet(['network', 'rm', NET])
    docker(['network', 'create', '--subnet', '198.18.48.0/24', NET])
    docker(['run', '-d', '--name', HOST, '--network', NET, '-v', `${path.join(HERE, '..', '__test__', 'egress')}:/srv:ro`,
      '--entrypoint', 'python3', IMAGE, '/srv/server.py', 'bench'])
    docker(['network', 'connect', 'bridge', HOST])
    const ipNet = docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, HOST])
    const ipBridge = docker(['inspect', '-f', '{{.NetworkSettings.Networks.bridge.IPAddress}}', HOST])
    for (let i = 0; i < 100 && !docker(['logs', HOST]).includes('ready'); i++) await new Promise((r) => setTimeout(r, 200))

    const ruled = { image: IMAGE, network: { allowOut: ['bench.test'], denyOut: ['0.0.0.0/0'] }, docker: { egressNetwork: NET, extraHosts: { 'bench.test': ipNet } } }
    const viaGw = await manager.createSandbox(ruled)
    const direct = await manager.createSandbox({ image: IMAGE, networkMode: 'bridge', docker: { extraHosts: { 'bench.test': ipBridge } } })
    await Promise.all([viaGw.start(), direct.start()])
    for (const s of [viaGw, direct]) await s.writeFile('/workspace/probe.py', PROBE)

    const latGw = summarize(await run(viaGw, 'lat', 'http://bench.test:8080/', String(o.n)))
    const latDirect = summarize(await run(direct, 'lat', 'http://bench.test:8080/', String(o.n)))
    const big = `http://bench.test:8080/big?mb=${o.mb}`
    const dlGw = await run(viaGw, 'get', big)
    const dlDirect = await run(direct, 'get', big)
    for (const d of [dlGw, dlDirect]) if (d.bytes !== o.mb << 20) throw new Error(`download got ${d.bytes} bytes`)
    const mibs = (d: any) => o.mb / d.seconds
    await Promise.all([viaGw.destroy(), direct.destroy()])

    const startRuled: number[] = []
    const startIsolated: number[] = []
    for (let i = 0; i < o.starts; i++) {
      for (const [cfg, out] of [[ruled, startRuled], [{ image: IMAGE, networkMode: 'isolated' }, startIsolated]] as const) {
        const t = performance.now()
        const s = await manager.createSandbox(cfg)
        await s.start()
        out.push(performance.now() - t)
        await s.destroy()
      }
    }
    const sr = summarize(startRuled)
    const si = summarize(startIsolated)

    const rows = [
      ['HTTP request, new connection (p50 / p95)', `${ms(latGw)}`, `${ms(latDirect)}`, `${(latGw.p50 / latDirect.p50).toFixed(2)}× (+${(latGw.p50 - latDirect.p50).toFixed(2)} ms)`],
      [`download ${o.mb} MiB`, `${mibs(dlGw).toFixed(0)} MiB/s`, `${mibs(dlDirect).toFixed(0)} MiB/s`, `${(mibs(dlGw) / mibs(dlDirect)).toFixed(2)}×`],
      ['create+start (p50 / p95)', ms(sr), `${ms(si)} (isolated)`, `${(sr.p50 / si.p50).toFixed(2)}× (+${(sr.p50 - si.p50).toFixed(0)} ms)`],
    ]
    console.log(`egress gateway vs no gateway (n=${o.n} requests, ${o.starts} starts each, image ${IMAGE})\n`)
    console.log('| measure | with rules (gateway) | bridge / isolated | ratio |\n|---|---|---|---|')
    for (const r of rows) console.log(`| ${r.join(' | ')} |`)
    fs.writeFileSync(path.join(HERE, 'egress-results.json'), JSON.stringify({ latGw, latDirect, dlGw, dlDirect, startRuled: sr, startIsolated: si }, null, 2))
  } finally {
    await manager.destroyAll()
    quiet(['rm', '-f', HOST])
    quiet(['network', 'rm', NET])
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
