// `agentic-sandbox mcp`: the MCP server over stdio or Streamable HTTP, on the official MCP
// TypeScript SDK (`@modelcontextprotocol/sdk`), with the addon's SandboxManager behind the tools.
'use strict'

const crypto = require('node:crypto')
const http = require('node:http')
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js')
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js')
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js')
const { isInitializeRequest } = require('@modelcontextprotocol/sdk/types.js')
const { SandboxRegistry } = require('./registry.js')
const { registerTools } = require('./tools.js')

const VERSION = require('../package.json').version

const INSTRUCTIONS = `Isolated sandboxes for running code and commands (agentic-sandbox).
Create one with sandbox_create (template 'python', 'node', 'go' or 'base'), then run code with sandbox_execute,
commands with sandbox_run_command, and move files with sandbox_upload / sandbox_read_file / sandbox_list_files.
Files persist in a sandbox between calls. Delete sandboxes with sandbox_delete when done; they also end after their
timeout, when idle too long, and when this server stops.`

/** One McpServer (one MCP session) over the shared registry. */
function createSessionServer(registry, options) {
  const server = new McpServer(
    { name: 'agentic-sandbox', title: 'agentic-sandbox', version: VERSION },
    { capabilities: { logging: {} }, instructions: INSTRUCTIONS },
  )
  // A bad argument is a tool error the model can act on, with the library's code for it.
  const validate = server.validateToolInput
  if (typeof validate === 'function') {
    server.validateToolInput = async function (tool, args, name) {
      try {
        return await validate.call(this, tool, args, name)
      } catch (e) {
        const err = new Error(`INVALID_ARGUMENT: ${e.message.replace(/^MCP error -?\d+: /, '')}. Fix the arguments (see the tool's inputSchema) and call it again.`)
        throw err
      }
    }
  }
  registerTools(server, { registry, defaultTimeoutSeconds: options.defaultTimeoutSeconds })
  return server
}

/** Log to stderr (never stdout: on stdio it carries the protocol) when verbose. */
function stderrLogger(verbose) {
  return (level, message) => {
    if (verbose || level === 'error') process.stderr.write(`agentic-sandbox mcp: ${level}: ${message}\n`)
  }
}

function newRegistry(options, log) {
  const { SandboxManager } = require('../index.js')
  const manager = new SandboxManager()
  return new SandboxRegistry(manager, {
    maxSandboxes: options.maxSandboxes,
    idleTimeoutSeconds: options.idleTimeoutSeconds,
    defaultTimeoutSeconds: options.defaultTimeoutSeconds,
    shared: options.shared,
    log,
  })
}

/** Destroy everything once, then exit; a second signal exits at once. */
function installShutdown(shutdown) {
  let stopping = false
  const onSignal = (sig) => {
    if (stopping) process.exit(130)
    stopping = true
    shutdown(sig).finally(() => process.exit(0))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  return () => stopping
}

async function serveStdio(options) {
  const log = stderrLogger(options.verbose)
  const registry = newRegistry(options, log)
  const server = createSessionServer(registry, options)
  const forward = registry.options.log
  registry.options.log = (level, message) => {
    forward(level, message)
    server.sendLoggingMessage({ level: level === 'warn' ? 'warning' : level, logger: 'agentic-sandbox', data: message }).catch(() => {})
  }
  let done
  const finished = new Promise((resolve) => (done = resolve))
  const shutdown = async (why) => {
    log('info', `shutting down (${why}): destroying ${registry.entries.size} sandbox(es)`)
    await registry.closeAll()
    done()
  }
  installShutdown(shutdown)
  const transport = new StdioServerTransport()
  // the client went away: stdin ended or broke
  let closing = false
  const clientGone = (why) => {
    if (closing) return
    closing = true
    shutdown(why).finally(() => process.exit(0))
  }
  process.stdin.on('end', () => clientGone('the client closed stdin'))
  process.stdin.on('close', () => clientGone('the client closed stdin'))
  process.stdout.on('error', () => clientGone('stdout is closed'))
  transport.onclose = () => clientGone('the transport closed')
  await server.connect(transport)
  log('info', 'serving MCP on stdio')
  await finished
}

function isLoopback(host) {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\./.test(host)
}

/** Constant-time comparison of a bearer token. */
function tokenMatches(header, token) {
  const m = /^Bearer\s+(.+)$/i.exec(header || '')
  if (!m) return false
  const a = Buffer.from(m[1].trim())
  const b = Buffer.from(token)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/**
 * Streamable HTTP at `/mcp`. Each MCP session gets its own McpServer; its sandboxes are
 * destroyed when the session ends (DELETE /mcp), unless the server shares them.
 * Resolves with the listening http.Server and a `close()`.
 */
async function serveHttp(options) {
  const log = stderrLogger(options.verbose)
  const registry = newRegistry(options, log)
  const sessions = new Map() // session id → { transport, server }
  const { host, port, token } = options
  // on loopback, refuse other Host headers (DNS rebinding from a web page); known once listening
  let allowedHosts

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }
  const rpcError = (res, status, code, message) => send(res, status, { jsonrpc: '2.0', error: { code, message }, id: null })

  const readBody = (req) =>
    new Promise((resolve, reject) => {
      const chunks = []
      let size = 0
      req.on('data', (c) => {
        size += c.length
        if (size > options.maxBodyBytes) {
          reject(Object.assign(new Error(`request body larger than ${options.maxBodyBytes} bytes`), { status: 413 }))
          req.destroy()
        } else chunks.push(c)
      })
      req.on('end', () => resolve(Buffer.concat(chunks)))
      req.on('error', reject)
    })

  const handle = async (req, res) => {
    const url = new URL(req.url || '/', 'http://localhost')
    if (url.pathname !== '/mcp') return send(res, 404, { error: `not found: the MCP endpoint is /mcp` })
    if (token && !tokenMatches(req.headers.authorization, token)) {
      return send(res, 401, { error: 'a bearer token is required: send Authorization: Bearer <token> (the server\'s --token / AGENTIC_SANDBOX_MCP_TOKEN)' }, { 'www-authenticate': 'Bearer' })
    }
    const sid = req.headers['mcp-session-id']
    let body
    if (req.method === 'POST') {
      let raw
      try {
        raw = await readBody(req)
      } catch (e) {
        return rpcError(res, e.status || 400, -32600, e.message)
      }
      try {
        body = JSON.parse(raw.toString('utf8'))
      } catch {
        return rpcError(res, 400, -32700, 'Parse error: the body is not JSON')
      }
    }
    if (typeof sid === 'string' && sessions.has(sid)) {
      const session = sessions.get(sid)
      session.lastSeen = Date.now()
      return session.transport.handleRequest(req, res, body)
    }
    if (sid !== undefined) return rpcError(res, 404, -32001, 'Session not found: start a new session with an initialize request')
    if (req.method !== 'POST' || !(Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body))) {
      return rpcError(res, 400, -32000, 'Bad Request: no valid session id; the first request of a session must be initialize')
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      enableDnsRebindingProtection: !!allowedHosts,
      allowedHosts,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, lastSeen: Date.now() })
        log('info', `MCP session ${id} started`)
      },
    })
    const server = createSessionServer(registry, options)
    transport.onclose = () => {
      const id = transport.sessionId
      if (id && sessions.delete(id)) {
        log('info', `MCP session ${id} ended`)
        void registry.closeOwner(id)
      }
    }
    await server.connect(transport)
    return transport.handleRequest(req, res, body)
  }

  // a session whose client vanished without ending it is ended after the idle limit (its
  // sandboxes with it); the client gets 404 and starts a new session, as the protocol says
  let sweeper
  if (options.idleTimeoutSeconds > 0) {
    const limit = options.idleTimeoutSeconds * 1000
    sweeper = setInterval(() => {
      for (const [id, s] of sessions) {
        if (Date.now() - s.lastSeen > limit && !registry.list(id).some((e) => e.busy > 0)) {
          log('info', `ending MCP session ${id}: no request for ${options.idleTimeoutSeconds} s`)
          void s.transport.close()
        }
      }
    }, Math.min(60_000, Math.max(1_000, limit / 4)))
    sweeper.unref()
  }

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      log('error', `HTTP request failed: ${e.stack || e}`)
      if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error')
      else res.end()
    })
  })
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(port, host, resolve)
  })
  const address = httpServer.address()
  if (isLoopback(host)) allowedHosts = ['127.0.0.1', 'localhost', '[::1]'].flatMap((h) => [h, `${h}:${address.port}`])
  log('info', `serving MCP (Streamable HTTP) on http://${host}:${address.port}/mcp`)
  const close = async () => {
    clearInterval(sweeper)
    httpServer.close()
    httpServer.closeAllConnections?.()
    await Promise.allSettled([...sessions.values()].map((s) => s.transport.close()))
    await registry.closeAll()
  }
  return { httpServer, port: address.port, close, registry }
}

module.exports = { serveStdio, serveHttp, installShutdown, isLoopback, createSessionServer }
