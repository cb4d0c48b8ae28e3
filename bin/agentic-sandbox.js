#!/usr/bin/env node
// The agentic-sandbox command line: `npx agentic-sandbox <command> [options]`.
'use strict'

const USAGE = `Usage: agentic-sandbox <command> [options]

Commands:
  mcp       Serve the sandbox tools to an MCP client (Claude Code, Claude
            Desktop, Cursor, VS Code, ...) over stdio or Streamable HTTP;
            'mcp config <client>' prints the client configuration.
  serve     Serve the sandbox service over HTTP (seed 004's API: create,
            execute, status, delete, list, health), with API keys as tenants.
  prune     Remove containers, volumes and networks that sandboxes of dead
            processes left on the Docker engine (the stale-resource reaper's
            rules; see README "Cleanup").

Run 'agentic-sandbox <command> --help' for a command's options.
`

const PRUNE_USAGE = `Usage: agentic-sandbox prune [--dry-run] [--all] [--socket <path>] [--json]

Removes what sandboxes of dead processes left on the Docker engine: stopped
(exited or dead) sandbox containers, containers never started for 10 s,
paused ones whose owner process on this host is gone, and workspace volumes and
networks whose sandbox has no container any more (older than 10 s).
Running sandboxes are never touched (they end by themselves with their owner).

Options:
  --dry-run        list what would be removed; remove nothing
  --all            remove EVERY resource labelled agentic-sandbox.managed=true,
                   including running sandboxes of live processes
  --socket <path>  the engine's socket (default: DOCKER_HOST, else
                   /var/run/docker.sock)
  --json           print the result as JSON
  -h, --help       show this help

Exit status: 0 done, 1 something could not be removed or the engine is
unreachable, 2 usage error.
`

const MCP_USAGE = `Usage: agentic-sandbox mcp [options]
       agentic-sandbox mcp config <claude-code|claude-desktop|cursor|vscode>

Serves the sandbox tools over MCP: on stdio (the default, for clients that start
the server), or as Streamable HTTP at http://<host>:<port>/mcp with --http.
Sandboxes belong to the server: they are destroyed after their timeout, when
idle too long, when the stdio client goes away or the HTTP session ends, and
on SIGINT/SIGTERM. The library's configuration applies (.sandboxrc.json,
SANDBOX_*, DOCKER_*, E2B_*; SANDBOX_PROVIDER=e2b gives E2B sandboxes).

Options:
  --http <port>            serve Streamable HTTP on this port (0: any free port)
                           instead of stdio
  --host <address>         HTTP address to listen on (default 127.0.0.1)
  --token <token>          bearer token HTTP clients must send (env
                           AGENTIC_SANDBOX_MCP_TOKEN); required when --host is
                           not a loopback address
  --max-sandboxes <n>      most sandboxes the server holds at once (default 10;
                           env AGENTIC_SANDBOX_MCP_MAX_SANDBOXES)
  --timeout <seconds>      lifetime of a sandbox whose sandbox_create gives no
                           timeout (default 3600)
  --idle-timeout <seconds> destroy a sandbox unused for this long (default 1800;
                           0: never)
  --shared                 HTTP sessions see each other's sandboxes, and a
                           session's end does not destroy them
  --config <file>          the configuration file (default ./.sandboxrc.json;
                           env SANDBOX_CONFIG_FILE)
  --verbose                log lifecycle events to stderr
  -h, --help               show this help

Logs go to stderr and to the client as MCP logging notifications, never to
stdout. Exit status: 0 after a clean shutdown, 1 on a startup failure, 2 on a
usage error.
`

const SERVE_USAGE = `Usage: agentic-sandbox serve [options]

Serves the sandbox service over HTTP: POST /sandbox/create, POST /sandbox/{id}/execute,
GET /sandbox/{id}/status, DELETE /sandbox/{id}, GET /sandboxes, GET /health,
GET /metrics (Prometheus), and /v1/... (README "Sandbox service"). Each API
key is a tenant that sees only its own sandboxes. Without any key the server
listens on loopback only, as one anonymous tenant. On SIGINT/SIGTERM it stops accepting, lets running requests
finish (--shutdown-timeout), and destroys its sandboxes.

Options:
  --port <port>              port (env PORT; default 8003; 0: any free port)
  --host <address>           address (env HOST; default 127.0.0.1); beyond
                             loopback only with API keys
  --api-keys-file <file>     API keys, one per line or '<name> <key>' ('#'
                             comments); SANDBOX_API_KEYS (comma-separated) adds more
  --config <file>            the configuration file (default ./.sandboxrc.json;
                             env SANDBOX_CONFIG_FILE)
  --max-sandboxes <n>        sandboxes per API key at once (default 10)
  --max-executions <n>       execute requests per API key at once (default 4)
  --max-background <n>       background processes per API key at once (default 16)
  --max-body-bytes <n>       largest request body (default 10485760)
  --timeout <seconds>        lifetime of a sandbox whose create gives none
                             (default 3600)
  --shutdown-timeout <s>     how long running requests may finish on shutdown
                             (default 10)
  --access-log               log every request to stderr (method, route, path,
                             status, time, tenant; never keys)
  --audit-log <file>         append a JSON line per command run (tenant,
                             sandbox, argv with secrets redacted, exit code,
                             duration) to <file> (env SANDBOX_AUDIT_LOG)
  --metrics-token-file <f>   the bearer token of GET /metrics on a server with
                             API keys (env SANDBOX_METRICS_TOKEN)
  --metrics-public           serve GET /metrics without any credential

Distributed mode (README "Distributed mode"): workers that share a Redis and
forward each request to the worker holding its sandbox; give every worker the
same API keys.
  --redis <url>              the Redis (redis://host:port/; env REDIS_URL, or
                             REDIS_HOST and REDIS_PORT)
  --worker-id <id>           this worker's id, also the worker label of
                             metrics and audit lines (env WORKER_ID; default
                             <hostname>-<pid> in a cluster, else the host name)
  --advertise-url <url>      where the other workers reach this one (env
                             WORKER_URL; default http://<host>:<port>)
  --heartbeat <seconds>      between heartbeats (env HEARTBEAT_INTERVAL;
                             default 2); dead after three missed ones
                             (env SANDBOX_CLUSTER_SECRET: the secret of forwarded
                             requests; default: a random one kept in Redis)
  -h, --help                 show this help

Exit status: 0 after a clean shutdown, 1 on a startup failure, 2 on a usage
error.
`

const MCP_CONFIG_USAGE = `Usage: agentic-sandbox mcp config <client>

Prints the configuration that makes <client> start this MCP server:
  claude-code     the 'claude mcp add' command, and the .mcp.json entry
  claude-desktop  the entry for claude_desktop_config.json
  cursor          the entry for .cursor/mcp.json (or ~/.cursor/mcp.json)
  vscode          the entry for .vscode/mcp.json
`

class UsageError extends Error {
  constructor(message, usage = USAGE) {
    super(message)
    this.usage = usage
  }
}

/** Parse `args` against `flags` (name → takes a value); unknown options are usage errors. */
function parseOptions(args, flags, usage) {
  const out = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '-h' || arg === '--help') {
      out.help = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.startsWith('--') ? (eq > 0 ? arg.slice(2, eq) : arg.slice(2)) : null
    if (name === null || !(name in flags)) throw new UsageError(`unknown ${arg.startsWith('-') ? 'option' : 'argument'} '${arg}'`, usage)
    if (flags[name]) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i]
      if (value === undefined || value === '') throw new UsageError(`option '--${name}' needs a value`, usage)
      out[name] = value
    } else {
      if (eq > 0) throw new UsageError(`option '--${name}' takes no value`, usage)
      out[name] = true
    }
  }
  return out
}

function describe(r) {
  const what = r.kind === 'volume' ? r.name : `${r.name || r.id.slice(0, 12)} (${r.id.slice(0, 12)})`
  return `${r.kind} ${what}: ${r.reason}`
}

async function prune(args) {
  const o = parseOptions(args, { 'dry-run': false, all: false, socket: true, json: false }, PRUNE_USAGE)
  if (o.help) {
    process.stdout.write(PRUNE_USAGE)
    return 0
  }
  const { pruneResources } = require('../index.js')
  if (o.all && !o['dry-run']) {
    process.stderr.write('warning: --all removes every agentic-sandbox resource on this engine, including running sandboxes of live processes\n')
  }
  let result
  try {
    result = await pruneResources({ dryRun: !!o['dry-run'], all: !!o.all, socketPath: o.socket })
  } catch (e) {
    process.stderr.write(`agentic-sandbox prune: ${e.message}\n`)
    return 1
  }
  const all = [...result.containers, ...result.volumes, ...result.networks]
  const failed = all.filter((r) => r.error)
  if (o.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    return failed.length ? 1 : 0
  }
  const verb = result.dryRun ? 'would remove' : 'removed'
  for (const r of all) {
    if (r.error) process.stdout.write(`could not remove ${describe(r)} (${r.error})\n`)
    else process.stdout.write(`${verb} ${describe(r)}\n`)
  }
  const n = (list) => list.filter((r) => !r.error).length
  const plural = (k, w) => `${k} ${w}${k === 1 ? '' : 's'}`
  const summary = `${plural(n(result.containers), 'container')}, ${plural(n(result.volumes), 'volume')}, ${plural(n(result.networks), 'network')}`
  process.stdout.write(all.length === 0 ? 'Nothing to prune.\n' : `${result.dryRun ? 'Would remove' : 'Removed'} ${summary}.\n`)
  if (failed.length) process.stdout.write(`${plural(failed.length, 'resource')} could not be removed.\n`)
  return failed.length ? 1 : 0
}

/** A whole number option within [min, max]. */
function wholeNumber(name, value, min, max) {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`option '--${name}' must be a whole number from ${min} to ${max}, got '${value}'`, MCP_USAGE)
  return n
}

function mcpConfig(args) {
  const [client, ...rest] = args
  if (client === undefined || client === '-h' || client === '--help') {
    process.stdout.write(MCP_CONFIG_USAGE)
    return client === undefined ? 2 : 0
  }
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, MCP_CONFIG_USAGE)
  const entry = { command: 'npx', args: ['-y', 'agentic-sandbox', 'mcp'] }
  const json = (o) => JSON.stringify(o, null, 2) + '\n'
  switch (client) {
    case 'claude-code':
      process.stdout.write(
        '# Add it to Claude Code (user scope: all projects):\n' +
          'claude mcp add --scope user agentic-sandbox -- npx -y agentic-sandbox mcp\n\n' +
          '# or commit this as .mcp.json in a project:\n' +
          json({ mcpServers: { 'agentic-sandbox': entry } }),
      )
      return 0
    case 'claude-desktop':
      process.stdout.write(
        '# Merge into claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/,\n' +
          '# Windows: %APPDATA%\\Claude\\), then restart Claude Desktop:\n' +
          json({ mcpServers: { 'agentic-sandbox': entry } }),
      )
      return 0
    case 'cursor':
      process.stdout.write('# Merge into .cursor/mcp.json (this project) or ~/.cursor/mcp.json (all projects):\n' + json({ mcpServers: { 'agentic-sandbox': entry } }))
      return 0
    case 'vscode':
      process.stdout.write('# Merge into .vscode/mcp.json:\n' + json({ servers: { 'agentic-sandbox': { type: 'stdio', ...entry } } }))
      return 0
    default:
      throw new UsageError(`unknown client '${client}'; use claude-code, claude-desktop, cursor or vscode`, MCP_CONFIG_USAGE)
  }
}

async function mcp(args) {
  if (args[0] === 'config') return mcpConfig(args.slice(1))
  const o = parseOptions(
    args,
    { http: true, host: true, token: true, 'max-sandboxes': true, timeout: true, 'idle-timeout': true, shared: false, config: true, verbose: false },
    MCP_USAGE,
  )
  if (o.help) {
    process.stdout.write(MCP_USAGE)
    return 0
  }
  const env = process.env
  const options = {
    maxSandboxes: wholeNumber('max-sandboxes', o['max-sandboxes'] ?? env.AGENTIC_SANDBOX_MCP_MAX_SANDBOXES ?? 10, 1, 10000),
    defaultTimeoutSeconds: wholeNumber('timeout', o.timeout ?? 3600, 1, 7 * 24 * 3600),
    idleTimeoutSeconds: wholeNumber('idle-timeout', o['idle-timeout'] ?? 1800, 0, 7 * 24 * 3600),
    shared: !!o.shared,
    verbose: !!o.verbose,
    maxBodyBytes: 64 * 1024 * 1024,
  }
  if (o.config) env.SANDBOX_CONFIG_FILE = require('node:path').resolve(o.config)
  const server = require('../mcp/server.js')
  if (o.http === undefined) {
    for (const k of ['host', 'token', 'shared']) if (o[k] !== undefined) throw new UsageError(`option '--${k}' needs --http`, MCP_USAGE)
    // the configuration must be valid before the client starts talking
    require('../index.js')
    await server.serveStdio(options)
    return 0
  }
  options.port = wholeNumber('http', o.http, 0, 65535)
  options.host = o.host ?? '127.0.0.1'
  options.token = o.token ?? (env.AGENTIC_SANDBOX_MCP_TOKEN || undefined)
  if (!server.isLoopback(options.host) && !options.token) {
    throw new UsageError(`listening on ${options.host} (beyond loopback) needs a bearer token: pass --token <token> or set AGENTIC_SANDBOX_MCP_TOKEN`, MCP_USAGE)
  }
  const s = await server.serveHttp(options)
  process.stderr.write(`agentic-sandbox mcp: listening on http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${s.port}/mcp\n`)
  await new Promise((resolve) => {
    server.installShutdown(async () => {
      await s.close()
      resolve()
    })
  })
  return 0
}

async function serve(args) {
  const o = parseOptions(
    args,
    {
      port: true,
      host: true,
      'api-keys-file': true,
      config: true,
      'max-sandboxes': true,
      'max-executions': true,
      'max-background': true,
      'max-body-bytes': true,
      timeout: true,
      'shutdown-timeout': true,
      'access-log': false,
      redis: true,
      'worker-id': true,
      'advertise-url': true,
      heartbeat: true,
      'audit-log': true,
      'metrics-token-file': true,
      'metrics-public': false,
    },
    SERVE_USAGE,
  )
  if (o.help) {
    process.stdout.write(SERVE_USAGE)
    return 0
  }
  const env = process.env
  const number = (name, value, min, max) => {
    const n = Number(value)
    if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`option '--${name}' must be a number from ${min} to ${max}, got '${value}'`, SERVE_USAGE)
    return n
  }
  const whole = (name, value, min, max) => {
    const n = number(name, value, min, max)
    if (!Number.isInteger(n)) throw new UsageError(`option '--${name}' must be a whole number from ${min} to ${max}, got '${value}'`, SERVE_USAGE)
    return n
  }
  const path = require('node:path')
  const options = {
    port: whole('port', o.port ?? (env.PORT || 8003), 0, 65535),
    host: o.host ?? (env.HOST || '127.0.0.1'),
    accessLog: !!o['access-log'],
  }
  if (o['api-keys-file']) options.apiKeysFile = path.resolve(o['api-keys-file'])
  if (o.config) options.configFile = path.resolve(o.config)
  if (o['max-sandboxes'] !== undefined) options.maxSandboxes = whole('max-sandboxes', o['max-sandboxes'], 1, 100000)
  if (o['max-executions'] !== undefined) options.maxConcurrentExecutions = whole('max-executions', o['max-executions'], 1, 100000)
  if (o['max-background'] !== undefined) options.maxBackgroundProcesses = whole('max-background', o['max-background'], 0, 100000)
  if (o['max-body-bytes'] !== undefined) options.maxBodyBytes = whole('max-body-bytes', o['max-body-bytes'], 1024, 2 ** 30)
  if (o.timeout !== undefined) options.defaultTimeout = number('timeout', o.timeout, 1, 7 * 24 * 3600)
  if (o['shutdown-timeout'] !== undefined) options.shutdownTimeout = number('shutdown-timeout', o['shutdown-timeout'], 0.001, 3600)
  if (o.redis !== undefined) options.redisUrl = o.redis
  if (o['worker-id'] !== undefined) options.workerId = o['worker-id']
  if (o['advertise-url'] !== undefined) options.advertiseUrl = o['advertise-url']
  if (o.heartbeat !== undefined) options.heartbeatInterval = number('heartbeat', o.heartbeat, 0.05, 3600)
  const auditLog = o['audit-log'] ?? env.SANDBOX_AUDIT_LOG
  if (auditLog) options.auditLog = path.resolve(auditLog)
  if (o['metrics-public']) options.metricsPublic = true
  if (o['metrics-token-file']) {
    // SANDBOX_METRICS_TOKEN is read by the server itself, like SANDBOX_API_KEYS
    let token
    try {
      token = require('node:fs').readFileSync(o['metrics-token-file'], 'utf8').trim()
    } catch (e) {
      throw new UsageError(`option '--metrics-token-file': cannot read ${o['metrics-token-file']} (${e.code || e.message})`, SERVE_USAGE)
    }
    options.metricsToken = token
  }

  const { SandboxServer } = require('../index.js')
  const server = new SandboxServer(options)
  const address = await server.listen()
  const open = !(env.SANDBOX_API_KEYS || '').trim() && !options.apiKeysFile
  process.stderr.write(
    `agentic-sandbox serve: listening on ${address.url} (${open ? 'no API keys: loopback only, one anonymous tenant' : 'API keys required'})${server.workerId ? `, worker ${server.workerId} of the cluster on Redis` : ''}\n`,
  )
  // a graceful shutdown on the first signal; a second one exits at once
  await new Promise((resolve) => {
    let stopping = false
    const onSignal = (sig) => {
      if (stopping) process.exit(130)
      stopping = true
      process.stderr.write(`agentic-sandbox serve: ${sig}: shutting down\n`)
      server.close().then(resolve, (e) => {
        process.stderr.write(`agentic-sandbox serve: shutdown: ${e.code ? `${e.code}: ` : ''}${e.message}\n`)
        process.exitCode = 1
        resolve()
      })
    }
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, onSignal)
  })
  process.stderr.write('agentic-sandbox serve: stopped\n')
  return process.exitCode ?? 0
}

const COMMANDS = { mcp, prune, serve }

async function main(argv) {
  const [command, ...rest] = argv
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE)
    return command === undefined ? 2 : 0
  }
  const run = COMMANDS[command]
  if (!run) throw new UsageError(`unknown command '${command}'`)
  return run(rest)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (e) => {
    if (e instanceof UsageError) {
      process.stderr.write(`agentic-sandbox: ${e.message}\n\n${e.usage}`)
      process.exitCode = 2
    } else if (e && typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code)) {
      // the library's errors say what to do; no stack trace
      process.stderr.write(`agentic-sandbox: ${e.code}: ${e.message}\n`)
      process.exitCode = 1
    } else {
      process.stderr.write(`agentic-sandbox: ${(e && e.stack) || e}\n`)
      process.exitCode = 1
    }
  },
)
