/**
 * What a call through the MCP server (`agentic-sandbox mcp`) costs next to the library call it
 * wraps, side by side in one run, on the same image and engine:
 *
 *   - sandbox_execute (python) over stdio and over Streamable HTTP, against runCode in-process;
 *   - sandbox_run_command (echo) over stdio and HTTP, against execute('echo') in-process — the
 *     fastest call, so the MCP overhead is the largest share of it.
 *
 *   npx tsx bench/mcp.ts [--n 200]       # uses the addon as built (RELEASE=1 bash scripts/setup.sh
 *                                           for numbers to compare)
 *
 * Each path has its own sandbox (the servers are separate processes, as a client would run them).
 * Prints p50 / p95 per row and the ratio of each MCP row to its library row. Exits 1 when a call
 * returned wrong data or a sandbox was left behind.
 */
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { SandboxManager } from '../index.js'
import { time, type Stats } from './stats.js'

const IMAGE = 'agentic-sandbox/devtools:2'
const n = Number(process.argv[process.argv.indexOf('--n') + 1]) || 200
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'agentic-sandbox.js')
const PROGRAM = 'print(sum(range(10)))'

function check(ok: boolean, what: string) {
  if (!ok) throw new Error(`wrong data: ${what}`)
}

type Row = { name: string; stats: Stats; baseline?: string }
const rows: Row[] = []

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-mcp-'))
const config = path.join(dir, 'sandboxrc.json')
fs.writeFileSync(config, JSON.stringify({ image: IMAGE, templates: { python: IMAGE } }))
const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined))

/** Both MCP rows for one connected client. */
async function viaMcp(label: string, client: Client) {
  const call = async (name: string, args: Record<string, unknown>) => {
    const r: any = await client.callTool({ name, arguments: args })
    if (r.isError) throw new Error(`${name}: ${r.content[0].text}`)
    return r.structuredContent
  }
  const { sandbox_id } = await call('sandbox_create', { template: 'python' })
  try {
    rows.push({
      name: `sandbox_run_command echo (${label})`,
      baseline: "execute('echo', ['hi']) (library)",
      stats: await time(n, async () => check((await call('sandbox_run_command', { sandbox_id, command: 'echo', args: ['hi'] })).stdout === 'hi\n', 'echo')),
    })
    rows.push({
      name: `sandbox_execute python (${label})`,
      baseline: 'runCode python (library)',
      stats: await time(n, async () => check((await call('sandbox_execute', { sandbox_id, code: PROGRAM, language: 'python' })).stdout === '45\n', 'execute')),
    })
  } finally {
    await call('sandbox_delete', { sandbox_id })
  }
}

let failed = false
const manager = new SandboxManager({ image: IMAGE, templates: { python: IMAGE } })
let server: ReturnType<typeof spawn> | undefined
try {
  const sb = await manager.createSandbox({ template: 'python' })
  await sb.start()
  rows.push({ name: "execute('echo', ['hi']) (library)", stats: await time(n, async () => check((await sb.execute('echo', ['hi'])).stdout === 'hi\n', 'echo')) })
  rows.push({ name: 'runCode python (library)', stats: await time(n, async () => check((await sb.runCode(PROGRAM, { language: 'python' })).stdout === '45\n', 'runCode')) })
  await manager.destroyAll()

  const stdio = new Client({ name: 'bench', version: '1' })
  await stdio.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--config', config], env, stderr: 'inherit' }))
  try {
    await viaMcp('MCP stdio', stdio)
  } finally {
    await stdio.close()
  }

  server = spawn(process.execPath, [BIN, 'mcp', '--config', config, '--http', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  const url = await new Promise<string>((resolve, reject) => {
    let err = ''
    server!.stderr!.on('data', (d) => {
      err += String(d)
      const m = /listening on (http:\/\/\S+\/mcp)/.exec(err)
      if (m) resolve(m[1])
    })
    server!.on('exit', (code) => reject(new Error(`the HTTP server exited with ${code}: ${err}`)))
  })
  const http = new Client({ name: 'bench', version: '1' })
  const transport = new StreamableHTTPClientTransport(new URL(url))
  await http.connect(transport)
  try {
    await viaMcp('MCP Streamable HTTP', http)
  } finally {
    await transport.terminateSession()
    await http.close()
  }
} catch (e) {
  failed = true
  console.error(e)
} finally {
  await manager.destroyAll()
  if (server && server.exitCode === null) {
    server.kill('SIGTERM')
    await new Promise((r) => server!.on('exit', r))
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
console.log(`n = ${n}; image ${IMAGE}; ${os.cpus().length} CPUs`)
console.log('| call | p50 ms | p95 ms | ratio of p50 to the library call | overhead p50 ms |')
console.log('|---|---|---|---|---|')
for (const r of rows) {
  const base = r.baseline ? rows.find((b) => b.name === r.baseline) : undefined
  const ratio = base ? `${(r.stats.p50 / base.stats.p50).toFixed(2)}×` : ''
  const over = base ? fmt(r.stats.p50 - base.stats.p50) : ''
  console.log(`| ${r.name} | ${fmt(r.stats.p50)} | ${fmt(r.stats.p95)} | ${ratio} | ${over} |`)
}
const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=agentic-sandbox.managed=true'], { encoding: 'utf8' }).trim()
if (left) {
  failed = true
  console.error(`left behind: ${left}`)
}
process.exit(failed ? 1 : 0)
