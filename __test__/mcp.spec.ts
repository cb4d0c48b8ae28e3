// The MCP server (`agentic-sandbox mcp`), driven by the official MCP client SDK over stdio and
// Streamable HTTP, with every tool against the real Docker engine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { startFakeE2b, type FakeE2b } from '../examples/lib/fake-e2b.js'
import { BUSYBOX, TEST_TEMPLATES, docker, dockerLabelledIds, goneOf, sandboxLabel, startPipIndex, waitFor, type PipIndex } from './helpers.js'

const E2B_KEY = `e2b_${'c3'.repeat(20)}`

const BIN = path.join(__dirname, '..', 'bin', 'agentic-sandbox.js')
const SEED_TOOLS = [
  'sandbox_create',
  'sandbox_execute',
  'sandbox_list',
  'sandbox_status',
  'sandbox_configure',
  'sandbox_upload',
  'sandbox_logs',
  'sandbox_stop',
  'sandbox_delete',
]
const EXTRA_TOOLS = ['sandbox_run_command', 'sandbox_read_file', 'sandbox_list_files', 'sandbox_run_tests']

let dir = ''
let configFile = ''

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-spec-'))
  configFile = path.join(dir, 'sandboxrc.json')
  fs.writeFileSync(configFile, JSON.stringify({ image: BUSYBOX, templates: TEST_TEMPLATES }))
})

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

function env(extra: Record<string, string> = {}) {
  const e: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) e[k] = v
  delete e.AGENTIC_SANDBOX_MCP_TOKEN
  return { ...e, ...extra }
}

async function stdioClient(args: string[] = [], extraEnv: Record<string, string> = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--config', configFile, ...args],
    env: env(extraEnv),
    stderr: 'pipe',
  })
  const stderr: string[] = []
  transport.stderr?.on('data', (d) => stderr.push(String(d)))
  const client = new Client({ name: 'mcp-spec', version: '1.0.0' })
  await client.connect(transport)
  return { client, transport, stderr }
}

/** The structured result of a tool call that must succeed. */
async function call(client: Client, name: string, args: Record<string, unknown>, options?: any) {
  const r: any = await client.callTool({ name, arguments: args }, undefined, options)
  if (r.isError) throw new Error(`${name} failed: ${r.content?.[0]?.text}`)
  expect(r.structuredContent).toBeDefined()
  expect(r.content[0].type).toBe('text')
  return r.structuredContent
}

/** The error code of a tool call that must fail with a tool error. */
async function failure(client: Client, name: string, args: Record<string, unknown>) {
  const r: any = await client.callTool({ name, arguments: args })
  expect(r.isError).toBe(true)
  const text: string = r.content[0].text
  return { code: text.split(':')[0], text, meta: r._meta }
}

const containerName = (id: string) => dockerLabelledIds(sandboxLabel(id)).containers[0]

function containersOf(id: string) {
  return dockerLabelledIds(sandboxLabel(id)).containers.length
}

describe('command line', () => {
  it('explains every option, refuses unknown ones, and prints client configurations', () => {
    const help = spawnSync(process.execPath, [BIN, 'mcp', '--help'], { encoding: 'utf8' })
    expect(help.status).toBe(0)
    for (const o of ['--http', '--host', '--token', '--max-sandboxes', '--timeout', '--idle-timeout', '--shared', '--config']) expect(help.stdout).toContain(o)
    const top = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' })
    expect(top.status).toBe(0)
    expect(top.stdout).toContain('mcp')
    const bad = spawnSync(process.execPath, [BIN, 'mcp', '--nope'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("unknown option '--nope'")
    const open = spawnSync(process.execPath, [BIN, 'mcp', '--http', '0', '--host', '0.0.0.0'], { encoding: 'utf8', env: env() })
    expect(open.status).toBe(2)
    expect(open.stderr).toContain('needs a bearer token')
    // an invalid configuration stops it before any client talks to it
    const badConfig = spawnSync(process.execPath, [BIN, 'mcp'], { encoding: 'utf8', env: env({ SANDBOX_NETWORK_MODE: 'bogus' }), input: '' })
    expect(badConfig.status).toBe(1)
    expect(badConfig.stderr).toContain('INVALID_CONFIG: environment variable SANDBOX_NETWORK_MODE')
    expect(badConfig.stdout).toBe('')
    const code = spawnSync(process.execPath, [BIN, 'mcp', 'config', 'claude-code'], { encoding: 'utf8' })
    expect(code.status).toBe(0)
    expect(code.stdout).toContain('claude mcp add')
    for (const c of ['claude-desktop', 'cursor', 'vscode']) {
      const out = spawnSync(process.execPath, [BIN, 'mcp', 'config', c], { encoding: 'utf8' })
      expect(out.status).toBe(0)
      const json = JSON.parse(out.stdout.replace(/^#.*$/gm, ''))
      const entry = (json.mcpServers ?? json.servers)['agentic-sandbox']
      expect(entry.args).toEqual(['-y', 'agentic-sandbox', 'mcp'])
    }
    expect(spawnSync(process.execPath, [BIN, 'mcp', 'config', 'emacs'], { encoding: 'utf8' }).status).toBe(2)
  })
})

describe('over stdio', () => {
  let client: Client
  let transport: StdioClientTransport
  let stderr: string[]
  let id = ''

  beforeAll(async () => {
    ;({ client, transport, stderr } = await stdioClient())
  })

  afterAll(async () => {
    await client?.close()
  })

  it('lists the seed tools and ours, each with an input and an output schema', async () => {
    const { tools } = await client.listTools()
    const names = tools.map((t) => t.name).sort()
    expect(names).toEqual([...SEED_TOOLS, ...EXTRA_TOOLS].sort())
    for (const t of tools) {
      expect(t.inputSchema.type).toBe('object')
      expect(t.outputSchema?.type).toBe('object')
      expect(t.description?.length).toBeGreaterThan(20)
    }
    const create = tools.find((t) => t.name === 'sandbox_create')!
    expect(Object.keys(create.inputSchema.properties!).sort()).toEqual(
      ['env_vars', 'install_packages', 'metadata', 'name', 'startup_script', 'template', 'timeout'].sort(),
    )
    const exec = tools.find((t) => t.name === 'sandbox_execute')!
    expect(Object.keys(exec.inputSchema.properties!).sort()).toEqual(
      ['capture_output', 'code', 'env_vars', 'language', 'persist', 'sandbox_id', 'timeout', 'working_dir'].sort(),
    )
    expect(exec.inputSchema.required).toEqual(expect.arrayContaining(['sandbox_id', 'code']))
    const logs = tools.find((t) => t.name === 'sandbox_logs')!
    expect(Object.keys(logs.inputSchema.properties!)).toEqual(expect.arrayContaining(['lines', 'log_level', 'include_timestamps']))
    const list = tools.find((t) => t.name === 'sandbox_list')!
    expect(Object.keys(list.inputSchema.properties!).sort()).toEqual(['limit', 'status', 'template'])
    const configure = tools.find((t) => t.name === 'sandbox_configure')!
    expect(Object.keys(configure.inputSchema.properties!)).toEqual(expect.arrayContaining(['env_vars', 'install_packages', 'run_commands']))
    const upload = tools.find((t) => t.name === 'sandbox_upload')!
    expect(Object.keys(upload.inputSchema.properties!)).toEqual(expect.arrayContaining(['file_path', 'content', 'encoding']))
    // stdout carries only the protocol: nothing else was printed there (the client would have failed)
    expect(client.getServerVersion()?.name).toBe('agentic-sandbox')
  })

  it('creates a python sandbox with env vars and metadata, and runs code in it', async () => {
    const c = await call(client, 'sandbox_create', {
      template: 'python',
      name: 'analysis',
      env_vars: { API_MODE: 'test', DEBUG: 'true' },
      metadata: { project: 'mcp-spec' },
      timeout: 600,
    })
    id = c.sandbox_id
    expect(id).toMatch(/^docker-[0-9a-f]{16}$/)
    expect(c).toMatchObject({
      name: 'analysis',
      template: 'python',
      status: 'running',
      env_vars_configured: 2,
      packages_to_install: [],
      startup_script_configured: false,
      timeout: 600,
      metadata: { project: 'mcp-spec' },
    })
    expect(Date.parse(c.expires_at) - Date.parse(c.created_at)).toBe(600_000)
    expect(containersOf(id)).toBe(1)

    const r = await call(client, 'sandbox_execute', {
      sandbox_id: id,
      code: "import os, sys\nprint('mode', os.environ['API_MODE'])\nprint('oops', file=sys.stderr)\nsys.exit(3)",
      language: 'python',
    })
    expect(r).toMatchObject({ sandbox_id: id, language: 'python', exit_code: 3, status: 'failed', success: false, timed_out: false })
    expect(r.stdout).toBe('mode test\n')
    expect(r.stderr).toBe('oops\n')
    expect(r.duration_ms).toBeGreaterThan(0)
    // the template's language is the default; capture_output false leaves the output out
    const quiet = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'print(6 * 7)', capture_output: false, env_vars: { X: '1' } })
    expect(quiet).toMatchObject({ exit_code: 0, status: 'completed', stdout: '', language: 'python' })
    const js = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'console.log(process.cwd())', language: 'javascript', working_dir: 'sub' })
    expect(js.exit_code).not.toBe(0) // no such directory yet: a result, not a crash
    const t = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'sleep 5', language: 'bash', timeout: 1 })
    expect(t).toMatchObject({ status: 'timeout', timed_out: true, exit_code: 124 })
  })

  it('sandbox_execute with persist: true keeps variables and imports between calls, like a notebook', async () => {
    const a = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'import math\nx = 20', persist: true })
    expect(a).toMatchObject({ exit_code: 0, status: 'completed', language: 'python', results: [] })
    const b = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'x + math.floor(2.5)', persist: true, language: 'python' })
    expect(b.results).toEqual([{ text: '22', json: 22, isMainResult: true }])
    // without persist: a fresh interpreter, which has no x
    const fresh = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'print(x)' })
    expect(fresh.exit_code).not.toBe(0)
    expect(fresh.stderr).toContain('NameError')
    const err = await call(client, 'sandbox_execute', { sandbox_id: id, code: '1 / 0', persist: true })
    expect(err).toMatchObject({ exit_code: 1, exception: { name: 'ZeroDivisionError' } })
    const still = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'x', persist: true })
    expect(still.results[0]).toMatchObject({ json: 20 })
    expect((await failure(client, 'sandbox_execute', { sandbox_id: id, code: 'x', persist: true, env_vars: { A: '1' } })).code).toBe('INVALID_ARGUMENT')
  })

  it('uploads text and binary files and reads them back; lists files', async () => {
    const up = await call(client, 'sandbox_upload', { sandbox_id: id, file_path: 'data/config.json', content: '{"a": 1}' })
    expect(up).toMatchObject({ sandbox_id: id, file_path: '/workspace/data/config.json', size_bytes: 8 })
    expect(up.checksum).toBe('sha256:' + require('node:crypto').createHash('sha256').update('{"a": 1}').digest('hex'))
    const bytes = Buffer.from([0, 255, 1, 254, 10, 13])
    await call(client, 'sandbox_upload', { sandbox_id: id, file_path: '/workspace/bin.dat', content: bytes.toString('base64'), encoding: 'base64' })
    const text = await call(client, 'sandbox_read_file', { sandbox_id: id, file_path: 'data/config.json' })
    expect(text).toMatchObject({ content: '{"a": 1}', encoding: 'utf8', size_bytes: 8 })
    const bin = await call(client, 'sandbox_read_file', { sandbox_id: id, file_path: 'bin.dat', encoding: 'base64' })
    expect(Buffer.from(bin.content, 'base64').equals(bytes)).toBe(true)
    const code = await call(client, 'sandbox_execute', { sandbox_id: id, code: "import json; print(json.load(open('data/config.json'))['a'])" })
    expect(code.stdout).toBe('1\n')
    const ls = await call(client, 'sandbox_list_files', { sandbox_id: id, recursive: true })
    const paths = ls.entries.map((e: any) => e.path)
    expect(paths).toEqual(expect.arrayContaining(['bin.dat', 'data', 'data/config.json']))
    expect(ls.entries.find((e: any) => e.path === 'data').type).toBe('directory')
    const one = await call(client, 'sandbox_list_files', { sandbox_id: id, recursive: true, limit: 1 })
    expect(one).toMatchObject({ truncated: true, total_count: ls.total_count })
    expect((await failure(client, 'sandbox_read_file', { sandbox_id: id, file_path: 'missing.txt' })).text).toContain('missing.txt')
    expect((await failure(client, 'sandbox_upload', { sandbox_id: id, file_path: 'x', content: '%%%', encoding: 'base64' })).code).toBe('INVALID_ARGUMENT')
  })

  it('configures env vars for later executions and runs commands in order, stopping at a failure', async () => {
    const c = await call(client, 'sandbox_configure', {
      sandbox_id: id,
      env_vars: { LOG_LEVEL: 'info', CACHE_TTL: '3600' },
      run_commands: ['mkdir -p logs', 'echo ready > logs/state'],
    })
    expect(c).toMatchObject({ success: true, status: 'configured', env_vars_updated: 2, packages_installed: 0, commands_executed: 2 })
    expect(c.steps.map((s: any) => [s.kind, s.command, s.exit_code])).toEqual([
      ['command', 'mkdir -p logs', 0],
      ['command', 'echo ready > logs/state', 0],
    ])
    const r = await call(client, 'sandbox_execute', { sandbox_id: id, code: 'echo "$LOG_LEVEL/$CACHE_TTL/$API_MODE"; cat logs/state', language: 'bash' })
    expect(r.stdout).toBe('info/3600/test\nready\n')
    // a command's own env wins over the configured one
    const own = await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'echo $LOG_LEVEL', env_vars: { LOG_LEVEL: 'debug' } })
    expect(own.stdout).toBe('debug\n')
    const bad = await call(client, 'sandbox_configure', { sandbox_id: id, run_commands: ['true', 'echo nope >&2; exit 4', 'touch never'] })
    expect(bad).toMatchObject({ success: false, status: 'failed', commands_executed: 2 })
    expect(bad.steps[1]).toMatchObject({ exit_code: 4, stderr: 'nope\n' })
    expect((await call(client, 'sandbox_run_command', { sandbox_id: id, command: 'ls', args: ['never'] })).exit_code).not.toBe(0)
    // installing with pip needs network access, which this sandbox (networkMode 'isolated') has not
    const pip = await failure(client, 'sandbox_configure', { sandbox_id: id, install_packages: ['requests'] })
    expect(pip.code).toBe('INVALID_ARGUMENT')
    expect(pip.text).toContain("networkMode: 'bridge'")
  })

  it('runs commands in argv and shell form with stdin, and a project\'s tests', async () => {
    const argv = await call(client, 'sandbox_run_command', { sandbox_id: id, command: 'printf', args: ['%s|', 'a b', '$HOME'] })
    expect(argv).toMatchObject({ exit_code: 0, stdout: 'a b|$HOME|', status: 'completed' })
    const sh = await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'wc -c | tr -d " "', stdin: 'hello' })
    expect(sh.stdout.trim()).toBe('5')
    const missing = await call(client, 'sandbox_run_command', { sandbox_id: id, command: 'no-such-program' })
    expect(missing.exit_code).toBe(127)
    expect((await failure(client, 'sandbox_run_command', { sandbox_id: id })).code).toBe('INVALID_ARGUMENT')
    expect((await failure(client, 'sandbox_run_command', { sandbox_id: id, command: 'ls', shell: 'ls' })).code).toBe('INVALID_ARGUMENT')
    await call(client, 'sandbox_upload', {
      sandbox_id: id,
      file_path: 'proj/test_math.py',
      content: 'def test_add():\n    assert 1 + 1 == 2\n\ndef test_sub():\n    assert 1 - 1 == 1\n',
    })
    const t = await call(client, 'sandbox_run_tests', { sandbox_id: id, framework: 'pytest', working_dir: 'proj' })
    expect(t).toMatchObject({ framework: 'pytest', parsed: true, total: 2, passed: 1, failed: 1, success: false })
    expect(t.failures[0].name).toContain('test_sub')
  })

  it('reports status, logs, and lists with filters', async () => {
    const s = await call(client, 'sandbox_status', { sandbox_id: id })
    expect(s).toMatchObject({ sandbox_id: id, name: 'analysis', status: 'running', template: 'python', provider: 'docker', metadata: { project: 'mcp-spec' } })
    expect(s.executions.total).toBeGreaterThanOrEqual(10)
    expect(s.executions.failed).toBeGreaterThanOrEqual(3)
    expect(s.resource_usage.memory_limit_mb).toBeGreaterThan(0)
    const logs = await call(client, 'sandbox_logs', { sandbox_id: id, lines: 500 })
    expect(logs.logs.some((l: any) => l.source === 'stdout' && l.message.includes('mode test'))).toBe(true)
    expect(logs.logs.every((l: any) => typeof l.timestamp === 'string')).toBe(true)
    const errors = await call(client, 'sandbox_logs', { sandbox_id: id, log_level: 'error', include_timestamps: false, lines: 3 })
    expect(errors.logs.length).toBeLessThanOrEqual(3)
    expect(errors.logs.length).toBeGreaterThan(0)
    expect(errors.logs.every((l: any) => l.level === 'error' && l.timestamp === undefined)).toBe(true)

    const other = await call(client, 'sandbox_create', { template: 'base' })
    try {
      const all = await call(client, 'sandbox_list', {})
      expect(all.sandboxes.map((x: any) => x.sandbox_id).sort()).toEqual([id, other.sandbox_id].sort())
      expect(all).toMatchObject({ total_count: 2, running_count: 2, stopped_count: 0 })
      const py = await call(client, 'sandbox_list', { template: 'python' })
      expect(py.sandboxes.map((x: any) => x.sandbox_id)).toEqual([id])
      expect((await call(client, 'sandbox_list', { template: 'go' })).sandboxes).toEqual([])
      expect((await call(client, 'sandbox_list', { limit: 1 })).sandboxes).toHaveLength(1)
      const stop = await call(client, 'sandbox_stop', { sandbox_id: other.sandbox_id })
      expect(stop).toMatchObject({ previous_status: 'running', current_status: 'stopped', data_preserved: true })
      const stopped = await call(client, 'sandbox_list', { status: 'stopped' })
      expect(stopped.sandboxes.map((x: any) => x.sandbox_id)).toEqual([other.sandbox_id])
      expect((await call(client, 'sandbox_list', { status: 'running' })).sandboxes.map((x: any) => x.sandbox_id)).toEqual([id])
      // the next tool that runs something resumes it, with its files
      const r = await call(client, 'sandbox_run_command', { sandbox_id: other.sandbox_id, shell: 'echo back' })
      expect(r.stdout).toBe('back\n')
    } finally {
      const d = await call(client, 'sandbox_delete', { sandbox_id: other.sandbox_id })
      expect(d.deleted).toBe(true)
    }
    expect(await goneOf(other.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    expect((await failure(client, 'sandbox_status', { sandbox_id: other.sandbox_id })).code).toBe('SANDBOX_NOT_FOUND')
  })

  it('answers bad arguments and unknown sandboxes with coded tool errors, and keeps serving', async () => {
    const missing = await failure(client, 'sandbox_execute', { code: 'print(1)' })
    expect(missing.code).toBe('INVALID_ARGUMENT')
    expect(missing.text).toContain('sandbox_id')
    const wrongType = await failure(client, 'sandbox_create', { timeout: 'soon' })
    expect(wrongType.code).toBe('INVALID_ARGUMENT')
    expect((await failure(client, 'sandbox_execute', { sandbox_id: id, code: '1', language: 'cobol' })).code).toBe('INVALID_ARGUMENT')
    const unknown = await failure(client, 'sandbox_execute', { sandbox_id: 'docker-0000000000000000', code: 'print(1)' })
    expect(unknown.code).toBe('SANDBOX_NOT_FOUND')
    expect(unknown.meta['agentic-sandbox/code']).toBe('SANDBOX_NOT_FOUND')
    expect(unknown.text).toContain('sandbox_list')
    const tpl = await failure(client, 'sandbox_create', { template: 'cobol-85' })
    expect(tpl.code).toBe('INVALID_CONFIG')
    // an unknown tool: the SDK answers with an error naming it (as a tool error since SDK 1.2x)
    const teleport: any = await client.callTool({ name: 'sandbox_teleport', arguments: {} }).catch((e) => ({ isError: true, content: [{ text: e.message }] }))
    expect(teleport.isError).toBe(true)
    expect(teleport.content[0].text).toContain('sandbox_teleport')
    expect((await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'echo alive' })).stdout).toBe('alive\n')
  })

  it('sends output lines as progress notifications when asked', async () => {
    const seen: string[] = []
    const r = await call(
      client,
      'sandbox_execute',
      { sandbox_id: id, code: 'for i in 1 2 3; do echo line$i; sleep 0.1; done; echo warn >&2; sleep 0.2', language: 'bash' },
      { onprogress: (p: any) => seen.push(p.message) },
    )
    expect(r.stdout).toBe('line1\nline2\nline3\n')
    expect(seen).toEqual(expect.arrayContaining(['stdout: line1', 'stdout: line2', 'stdout: line3', 'stderr: warn']))
    const cmd: string[] = []
    await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'echo a; echo b; sleep 0.2' }, { onprogress: (p: any) => cmd.push(p.message) })
    expect(cmd).toEqual(['stdout: a', 'stdout: b'])
  })

  it('kills the running command when the client cancels the request', async () => {
    for (const [tool, args] of [
      ['sandbox_run_command', { shell: 'sleep 300 & echo $! > /tmp/sleeper; wait' }],
      ['sandbox_execute', { code: 'import os, time\nopen("/tmp/sleeper", "w").write(str(os.getpid()))\ntime.sleep(300)', language: 'python' }],
    ] as const) {
      await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'rm -f /tmp/sleeper' })
      const ac = new AbortController()
      const pending = client.callTool({ name: tool, arguments: { sandbox_id: id, ...args } }, undefined, { signal: ac.signal })
      let pid = ''
      for (let i = 0; i < 100 && !pid; i++) {
        await new Promise((r) => setTimeout(r, 100))
        pid = (await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'cat /tmp/sleeper 2>/dev/null || true' })).stdout.trim()
      }
      expect(pid).toMatch(/^\d+$/)
      ac.abort('test cancels')
      await expect(pending).rejects.toThrow()
      let alive = true
      for (let i = 0; i < 50 && alive; i++) {
        await new Promise((r) => setTimeout(r, 100))
        alive = (await call(client, 'sandbox_run_command', { sandbox_id: id, shell: `kill -0 ${pid} 2>/dev/null && echo yes || echo no` })).stdout.trim() === 'yes'
      }
      expect(alive, `${tool}: the process ${pid} survived the cancellation`).toBe(false)
    }
  })

  it('output a sandboxed program crafts cannot break the protocol, flood the client or grow a result without bound', async () => {
    const seen: string[] = []
    const code = [
      'import sys',
      // a forged JSON-RPC response and framing on the program's stdout: it is data in a result
      `sys.stdout.write('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"forged"}]}}\\n')`,
      `sys.stdout.write('Content-Length: 52\\r\\n\\r\\n\\x1b[2J\\x00\\x07\\n')`,
      'for i in range(5000): print(i)',
      `sys.stdout.write('y' * (3 * 1024 * 1024))`,
    ].join('\n')
    const r = await call(client, 'sandbox_execute', { sandbox_id: id, code, language: 'python' }, { onprogress: (p: any) => seen.push(p.message) })
    expect(r.exit_code).toBe(0)
    expect(r.stdout.startsWith('{"jsonrpc":"2.0","id":1,')).toBe(true)
    expect(r.stdout).toContain('\x1b[2J\x00\x07')
    expect(r.truncated).toBe(true)
    expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(1024 * 1024)
    expect(seen[0]).toBe('stdout: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"forged"}]}}')
    expect(seen.length).toBeLessThanOrEqual(2001)
    expect(seen[seen.length - 1]).toBe('(more output: see the result)')
    // a file larger than a result may carry comes back cut, and says so
    await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'head -c 3000000 /dev/zero > big.bin' })
    const big = await call(client, 'sandbox_read_file', { sandbox_id: id, file_path: 'big.bin', encoding: 'base64' })
    expect(big).toMatchObject({ size_bytes: 3_000_000, truncated: true })
    expect(Buffer.from(big.content, 'base64').length).toBe(1024 * 1024)
    expect((await call(client, 'sandbox_run_command', { sandbox_id: id, shell: 'echo still serving' })).stdout).toBe('still serving\n')
  })

  it('logs only to stderr, and destroys every sandbox when the client goes away', async () => {
    const second = await call(client, 'sandbox_create', { template: 'base', timeout: 600 })
    const ids = [id, second.sandbox_id]
    expect(ids.map(containersOf)).toEqual([1, 1])
    await client.close()
    for (const x of ids) expect(await goneOf(x)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    expect(stderr.join('')).not.toMatch(/Error|panic/)
    void transport
  })
})

describe('packages and the startup script (a pip index on this machine, networkMode bridge)', () => {
  let index: PipIndex
  let bridgeConfig = ''

  beforeAll(async () => {
    index = await startPipIndex()
    bridgeConfig = path.join(dir, 'bridge.json')
    fs.writeFileSync(bridgeConfig, JSON.stringify({ image: BUSYBOX, templates: TEST_TEMPLATES, networkMode: 'bridge' }))
  })

  afterAll(async () => {
    await index?.close()
  })

  it('installs packages and runs the startup script at creation, reporting progress; a failing script leaves nothing', async () => {
    const { client } = await stdioClient(['--config', bridgeConfig])
    try {
      const seen: string[] = []
      const c = await call(
        client,
        'sandbox_create',
        { template: 'python', env_vars: index.env, install_packages: ['agentic_demo'], startup_script: 'echo setup-done | tee ready.txt' },
        { onprogress: (p: any) => seen.push(p.message) },
      )
      expect(c).toMatchObject({ packages_to_install: ['agentic_demo'], startup_script_configured: true, env_vars_configured: 3 })
      expect(seen).toEqual(expect.arrayContaining(['starting the sandbox', 'installing agentic_demo', 'stdout: setup-done']))
      const r = await call(client, 'sandbox_execute', { sandbox_id: c.sandbox_id, code: 'import agentic_demo; print(agentic_demo.VALUE, open("ready.txt").read().strip())' })
      expect(r.stdout).toBe('agentic-demo-42 setup-done\n')
      // sandbox_configure installs into a running sandbox too
      const other = await call(client, 'sandbox_create', { template: 'python', env_vars: index.env })
      const cf = await call(client, 'sandbox_configure', { sandbox_id: other.sandbox_id, install_packages: ['agentic_demo'] })
      expect(cf).toMatchObject({ success: true, packages_installed: 1 })
      expect((await call(client, 'sandbox_execute', { sandbox_id: other.sandbox_id, code: 'import agentic_demo' })).exit_code).toBe(0)

      const before = dockerLabelledIds().containers.length
      const bad = await failure(client, 'sandbox_create', { template: 'python', startup_script: 'echo broken-setup >&2; exit 9' })
      expect(bad.code).toBe('EXECUTION_ERROR')
      expect(bad.text).toContain('exit code 9')
      expect(bad.text).toContain('broken-setup')
      expect(dockerLabelledIds().containers.length).toBe(before)
      const missing = await failure(client, 'sandbox_create', { template: 'python', env_vars: index.env, install_packages: ['agentic_missing_pkg'] })
      expect(missing.code).toBe('EXECUTION_ERROR')
      expect(missing.text).toContain('agentic_missing_pkg')
      expect((await call(client, 'sandbox_list', {})).total_count).toBe(2)
    } finally {
      await client.close()
    }
  })
})

describe('limits and lifetimes', () => {
  it('refuses sandboxes past --max-sandboxes and destroys one when its timeout ends', async () => {
    const { client } = await stdioClient(['--max-sandboxes', '1'])
    try {
      const a = await call(client, 'sandbox_create', { timeout: 3 })
      const over = await failure(client, 'sandbox_create', {})
      expect(over.code).toBe('QUOTA_EXCEEDED')
      expect(over.text).toContain('--max-sandboxes')
      expect(await goneOf(a.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      expect((await failure(client, 'sandbox_status', { sandbox_id: a.sandbox_id })).code).toBe('SANDBOX_NOT_FOUND')
      // the slot is free again
      const b = await call(client, 'sandbox_create', {})
      await call(client, 'sandbox_delete', { sandbox_id: b.sandbox_id })
    } finally {
      await client.close()
    }
  })

  it('destroys a sandbox left idle past --idle-timeout, and says so in an MCP log message', async () => {
    const { client } = await stdioClient(['--idle-timeout', '2'])
    const logged: string[] = []
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logged.push(String(n.params.data))
    })
    try {
      const a = await call(client, 'sandbox_create', {})
      expect(await goneOf(a.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      expect((await failure(client, 'sandbox_execute', { sandbox_id: a.sandbox_id, code: 'true' })).code).toBe('SANDBOX_NOT_FOUND')
      expect(logged.some((m) => m.includes(a.sandbox_id) && m.includes('idle'))).toBe(true)
    } finally {
      await client.close()
    }
  })

  it('a server killed with SIGKILL leaves no sandbox behind (the owner watchdog ends them)', async () => {
    const { client, transport } = await stdioClient()
    const a = await call(client, 'sandbox_create', { template: 'base' })
    expect(containersOf(a.sandbox_id)).toBe(1)
    process.kill(transport.pid!, 'SIGKILL')
    // its watchdog stops the container; the stale-resource reaper of the next server removes it
    await waitFor(() => docker(['inspect', '-f', '{{.State.Running}}', containerName(a.sandbox_id)]) === 'false', 10_000, 100)
    const { client: next } = await stdioClient([], { SANDBOX_REAPER_INTERVAL_SECONDS: '1', SANDBOX_REAPER_GRACE_SECONDS: '1' })
    try {
      // (its first sandbox connects it to the engine, which starts the reaper)
      await call(next, 'sandbox_create', { template: 'base' })
      expect(await goneOf(a.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await next.close()
      await client.close().catch(() => {})
    }
  })
})

describe('with SANDBOX_PROVIDER=e2b', () => {
  let fake: FakeE2b

  beforeAll(async () => {
    fake = await startFakeE2b({ requireKey: E2B_KEY })
  })

  afterAll(async () => {
    await fake?.close()
  })

  it('the tools run on E2B sandboxes (a local fake speaking E2B\'s protocol)', async () => {
    const { client } = await stdioClient([], { SANDBOX_PROVIDER: 'e2b', E2B_API_KEY: E2B_KEY, E2B_API_URL: fake.apiUrl, E2B_SANDBOX_URL: fake.sandboxUrl })
    try {
      const c = await call(client, 'sandbox_create', { env_vars: { WHO: 'e2b' }, timeout: 300 })
      expect(c.sandbox_id).toMatch(/^e2b-/)
      expect(c.provider).toBe('e2b')
      expect(fake.sandboxes()).toHaveLength(1)
      const r = await call(client, 'sandbox_execute', { sandbox_id: c.sandbox_id, code: 'echo "hello from $WHO"', language: 'bash' })
      expect(r.stdout).toBe('hello from e2b\n')
      await call(client, 'sandbox_upload', { sandbox_id: c.sandbox_id, file_path: 'note.txt', content: 'remote' })
      expect((await call(client, 'sandbox_read_file', { sandbox_id: c.sandbox_id, file_path: 'note.txt' })).content).toBe('remote')
      expect((await call(client, 'sandbox_status', { sandbox_id: c.sandbox_id })).provider).toBe('e2b')
      await call(client, 'sandbox_delete', { sandbox_id: c.sandbox_id })
      await waitFor(() => fake.sandboxes().length === 0, 10_000, 100)
      expect(fake.sandboxes()).toHaveLength(0)
    } finally {
      await client.close()
    }
  })
})

/** `agentic-sandbox mcp --http 0 ...`, resolved once it listens. */
async function httpServer(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, 'mcp', '--config', configFile, '--http', '0', ...args], { env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += String(d)
      const m = /listening on (http:\/\/\S+\/mcp)/.exec(err)
      if (m) resolve(m[1])
    })
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${err}`)))
  })
  return { child, url: new URL(url), stderr: () => err }
}

async function httpClient(url: URL, token?: string) {
  const transport = new StreamableHTTPClientTransport(url, token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : undefined)
  const client = new Client({ name: 'mcp-spec-http', version: '1.0.0' })
  await client.connect(transport)
  return { client, transport }
}

function exited(child: ChildProcess) {
  return new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))))
}

describe('over Streamable HTTP', () => {
  it('requires the bearer token, keeps sessions apart, and cleans up on session end and SIGTERM', async () => {
    const token = 'spec-token-' + Math.random().toString(16).slice(2)
    const server = await httpServer([], { AGENTIC_SANDBOX_MCP_TOKEN: token })
    try {
      await expect(httpClient(server.url)).rejects.toThrow()
      await expect(httpClient(server.url, 'wrong')).rejects.toThrow()
      const raw = await fetch(server.url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
      expect(raw.status).toBe(401)

      const a = await httpClient(server.url, token)
      const b = await httpClient(server.url, token)
      expect((await a.client.listTools()).tools).toHaveLength(SEED_TOOLS.length + EXTRA_TOOLS.length)
      const sa = await call(a.client, 'sandbox_create', { template: 'python' })
      const sb = await call(b.client, 'sandbox_create', {})
      const seen: string[] = []
      const r = await call(a.client, 'sandbox_execute', { sandbox_id: sa.sandbox_id, code: 'print("over http")' }, { onprogress: (p: any) => seen.push(p.message) })
      expect(r.stdout).toBe('over http\n')
      expect(seen).toContain('stdout: over http')
      // each session sees only its own sandboxes
      expect((await call(b.client, 'sandbox_list', {})).sandboxes.map((x: any) => x.sandbox_id)).toEqual([sb.sandbox_id])
      expect((await failure(b.client, 'sandbox_execute', { sandbox_id: sa.sandbox_id, code: '1' })).code).toBe('SANDBOX_NOT_FOUND')
      expect((await failure(b.client, 'sandbox_delete', { sandbox_id: sa.sandbox_id })).code).toBe('SANDBOX_NOT_FOUND')
      // ending session a destroys its sandboxes, not b's
      await a.transport.terminateSession()
      await a.client.close()
      expect(await goneOf(sa.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      expect(containersOf(sb.sandbox_id)).toBe(1)
      // SIGTERM: the server destroys what is left and exits
      server.child.kill('SIGTERM')
      expect(await exited(server.child)).toBe(0)
      expect(await goneOf(sb.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      await b.client.close().catch(() => {})
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL')
    }
  })

  it('ends a session (and its sandboxes) whose client vanished without ending it, after the idle limit', async () => {
    const server = await httpServer(['--idle-timeout', '2', '--verbose'])
    try {
      const a = await httpClient(server.url)
      const s = await call(a.client, 'sandbox_create', {})
      expect(await goneOf(s.sandbox_id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
      await waitFor(() => server.stderr().includes('ending MCP session') || server.child.exitCode !== null, 10_000, 100)
      // the session is gone: the server answers 404 and the client has to start a new one
      await expect(a.client.listTools()).rejects.toThrow(/404|Session not found/)
      const b = await httpClient(server.url)
      expect((await b.client.listTools()).tools.length).toBe(SEED_TOOLS.length + EXTRA_TOOLS.length)
      await b.client.close()
    } finally {
      server.child.kill('SIGTERM')
      await exited(server.child)
    }
  })
})
