// The MCP tools: seed 002's nine sandbox tools with its names and snake_case parameters, plus
// the ones an agent needs to work on files and processes without writing code. Every tool has
// an input and an output schema; results carry `structuredContent` and a short text rendering.
// Failures are tool results with `isError: true` whose text starts with the library's error
// code (`SANDBOX_NOT_FOUND: ...`), also given as `_meta['agentic-sandbox/code']`.
'use strict'

const crypto = require('node:crypto')
const { z } = require('zod')
const { ToolError } = require('./registry.js')

const LANGUAGES = ['python', 'javascript', 'typescript', 'bash', 'go']
/** Longest lifetime a sandbox_create may ask for (seconds). */
const MAX_LIFETIME = 7 * 24 * 3600
/** Most output lines sent as progress notifications per call (the full output is in the result). */
const MAX_PROGRESS_LINES = 2000
/**
 * Most bytes of each output stream (and of a file read) a result carries: a model cannot use
 * more, and a sandboxed program must not be able to make the server hold or send more.
 */
const MAX_OUTPUT_BYTES = 1024 * 1024

const sandboxId = z.string().min(1).describe('The sandbox_id returned by sandbox_create (see sandbox_list).')
const envVars = z.record(z.string(), z.string())
const seconds = (what) => z.number().positive().max(MAX_LIFETIME).describe(what)
const workingDir = z.string().min(1).describe('Working directory; relative paths resolve against the sandbox workdir (/workspace).')
const iso = (ms) => (ms === undefined || ms === null ? null : new Date(ms).toISOString())

// ------------------------------------------------------------------ results and errors

function ok(structured, text) {
  return { content: [{ type: 'text', text }], structuredContent: structured }
}

const HINTS = {
  SANDBOX_NOT_RUNNING: 'The sandbox is not running (it may have been stopped, destroyed or have crashed); check it with sandbox_status, or create a new one.',
  INVALID_CONFIG: 'Fix the named option and call the tool again.',
  INVALID_ARGUMENT: 'Fix the arguments (see the tool\'s inputSchema) and call the tool again.',
  PERMISSION_DENIED: 'The sandbox does not allow this (command policy, read-only path or user); choose another path or command.',
  QUOTA_EXCEEDED: 'Free space or sandboxes first (sandbox_delete), or ask for less.',
  PROVIDER_UNAVAILABLE: 'The sandbox provider cannot be reached (is the Docker engine running, or E2B reachable?); try again later.',
}

function errorResult(e) {
  const code = (e && typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code) && e.code) || 'INTERNAL_ERROR'
  let message = (e && e.message) || String(e)
  const hint = HINTS[code]
  if (hint && !message.includes(hint)) message = `${message}. ${hint}`
  return {
    content: [{ type: 'text', text: `${code}: ${message}` }],
    isError: true,
    _meta: { 'agentic-sandbox/code': code },
  }
}

// ------------------------------------------------------------------ progress

/** Progress notifications for a request, when its client asked for them (`_meta.progressToken`). */
function progress(extra) {
  const token = extra && extra._meta && extra._meta.progressToken
  let n = 0
  let lines = 0
  /** sends under way: the result waits for them, so no notification arrives after it */
  const sending = []
  const send = (message) => {
    if (token === undefined) return
    n++
    sending.push(
      extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: n, message } }).catch(() => {}),
    )
  }
  const pending = { stdout: '', stderr: '' }
  const emitLine = (stream, line) => {
    if (lines === MAX_PROGRESS_LINES) send(`(more output: see the result)`)
    if (lines++ >= MAX_PROGRESS_LINES) return
    send(`${stream}: ${line.length > 1000 ? line.slice(0, 1000) + '…' : line}`)
  }
  const output = (stream) =>
    token === undefined
      ? undefined
      : (chunk) => {
          const parts = (pending[stream] + chunk).split('\n')
          pending[stream] = parts.pop()
          if (pending[stream].length > 4000) {
            parts.push(pending[stream])
            pending[stream] = ''
          }
          for (const line of parts) emitLine(stream, line)
        }
  return {
    active: token !== undefined,
    send,
    onStdout: output('stdout'),
    onStderr: output('stderr'),
    /** send what is left of unterminated lines, and wait until every notification is out */
    async flush() {
      for (const s of ['stdout', 'stderr']) {
        if (pending[s]) emitLine(s, pending[s])
        pending[s] = ''
      }
      await Promise.all(sending)
      // The SDK's client handles notifications a microtask after it reads them but responses at
      // once, and forgets a request's progress handler with its response: a notification read in
      // the same chunk as the response is dropped. A short pause keeps the last lines in front.
      if (sending.length) await new Promise((r) => setTimeout(r, 20))
    },
  }
}

/** Run `fn` with a call's live options (output lines as progress, cancellation as an AbortSignal). */
async function live(extra, fn) {
  const p = progress(extra)
  try {
    return await fn({ signal: extra.signal, onStdout: p.onStdout, onStderr: p.onStderr })
  } finally {
    await p.flush()
  }
}

// ------------------------------------------------------------------ schemas of results

const execShape = {
  sandbox_id: z.string(),
  exit_code: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  duration_ms: z.number(),
  timed_out: z.boolean(),
  truncated: z.boolean(),
  success: z.boolean(),
  status: z.enum(['completed', 'failed', 'timeout']),
}

const usageShape = z.object({
  cpu_percent: z.number(),
  memory_used_mb: z.number(),
  memory_limit_mb: z.number().optional(),
  disk_used_mb: z.number().optional(),
  disk_limit_mb: z.number().optional(),
  network_rx_mb: z.number().optional(),
  network_tx_mb: z.number().optional(),
})

function execStatus(r) {
  return r.timedOut ? 'timeout' : r.exitCode === 0 ? 'completed' : 'failed'
}

function renderExec(r) {
  const head = r.status === 'timeout' ? `timed out after ${r.duration_ms} ms` : `exit code ${r.exit_code} in ${r.duration_ms} ms`
  const parts = [head]
  if (r.stdout) parts.push(`stdout:\n${r.stdout}`)
  if (r.stderr) parts.push(`stderr:\n${r.stderr}`)
  return parts.join('\n')
}

// ------------------------------------------------------------------ the tools

/**
 * Register every tool on `server` (an McpServer) for one MCP session.
 * @param {import('@modelcontextprotocol/sdk/server/mcp.js').McpServer} server
 * @param {{ registry: import('./registry.js').SandboxRegistry, defaultTimeoutSeconds: number }} ctx
 */
function registerTools(server, ctx) {
  const { registry } = ctx
  /** Sandboxes belong to the MCP session that created them (one session on stdio). */
  const ownerOf = (extra) => (extra && extra.sessionId) || 'stdio'
  const manager = registry.manager

  /** Register a tool whose handler's failures become `isError` results with a code. */
  const tool = (name, config, handler) =>
    server.registerTool(name, config, async (args, extra) => {
      try {
        return await handler(args, extra)
      } catch (e) {
        return errorResult(e)
      }
    })

  /** Run `fn` on a running sandbox: a stopped one (sandbox_stop) is resumed first. */
  const onRunning = (id, extra, fn) =>
    registry.use(id, ownerOf(extra), async (e) => {
      if (e.sandbox.state === 'stopped') await e.sandbox.start()
      return fn(e)
    })

  tool(
    'sandbox_create',
    {
      title: 'Create a sandbox',
      description:
        'Creates and starts an isolated sandbox (a hardened container on the local Docker engine, or an E2B sandbox when the server is configured for E2B). Returns its sandbox_id for the other tools. It is destroyed after `timeout` seconds, when idle too long, or when the server stops.',
      inputSchema: {
        template: z.string().min(1).optional().describe("Environment: 'python', 'node' (alias 'nodejs'), 'go', 'base', or a template the server configures. Default: the server's default image."),
        name: z.string().min(1).max(200).optional().describe('A display name.'),
        env_vars: envVars.optional().describe('Environment variables of every command in the sandbox.'),
        install_packages: z.array(z.string().min(1)).optional().describe("Packages to install at creation with the template's package manager (pip for python, npm for node). Needs network access (server networkMode 'bridge')."),
        startup_script: z.string().optional().describe('A shell script run once after the packages are installed; a failure destroys the sandbox and reports its output.'),
        timeout: seconds('Lifetime in seconds; the sandbox is destroyed when it ends. Default: the server\'s (3600).').optional(),
        metadata: z.record(z.string(), z.any()).optional().describe('Free-form data kept with the sandbox.'),
      },
      outputSchema: {
        sandbox_id: z.string(),
        name: z.string().nullable(),
        template: z.string().nullable(),
        status: z.string(),
        provider: z.string(),
        engine: z.string().nullable(),
        env_vars_configured: z.number().int(),
        packages_to_install: z.array(z.string()),
        startup_script_configured: z.boolean(),
        timeout: z.number(),
        metadata: z.record(z.string(), z.any()),
        created_at: z.string(),
        expires_at: z.string(),
      },
    },
    async (a, extra) => {
      const release = registry.reserve()
      const p = progress(extra)
      let sandbox
      try {
        const config = {}
        if (a.template !== undefined) config.template = a.template
        if (a.name !== undefined) config.name = a.name
        if (a.env_vars !== undefined) config.env = a.env_vars
        if (a.metadata !== undefined) config.metadata = a.metadata
        sandbox = await manager.createSandbox(config)
        p.send('starting the sandbox')
        await sandbox.start({
          onProgress: (ev) => p.send(`pulling image: ${ev.status}${ev.progress ? ' ' + ev.progress : ''}`),
        })
        const packages = a.install_packages || []
        const script = a.startup_script && a.startup_script.trim() ? a.startup_script : undefined
        if (packages.length || script) {
          p.send(packages.length ? `installing ${packages.join(' ')}` : 'running the startup script')
          const r = await sandbox.configure({
            installPackages: packages,
            runCommands: script ? [script] : [],
            signal: extra.signal,
            onStdout: p.onStdout,
            onStderr: p.onStderr,
          })
          await p.flush()
          if (!r.success) {
            const failed = r.steps[r.steps.length - 1]
            const what = failed.kind === 'install' ? `installing ${packages.join(' ')}` : 'the startup script'
            const out = `${failed.stdout}${failed.stderr}`.trim().slice(-2000) || '(no output)'
            throw new ToolError(
              'EXECUTION_ERROR',
              `${what} failed with exit code ${failed.exitCode}${failed.timedOut ? ' (timed out)' : ''}; the sandbox was destroyed. Output: ${out}`,
            )
          }
        }
        if (registry.closed) throw new ToolError('SANDBOX_NOT_RUNNING', 'the server is shutting down; the sandbox was destroyed')
        const status = await sandbox.getStatus()
        const timeout = a.timeout || ctx.defaultTimeoutSeconds
        const entry = registry.add(
          sandbox,
          {
            name: a.name ?? null,
            template: status.template ?? null,
            envVarsConfigured: Object.keys(a.env_vars || {}).length,
            packages,
            startupScript: !!script,
            timeout,
            metadata: a.metadata || {},
          },
          ownerOf(extra),
        )
        sandbox = undefined
        const out = {
          sandbox_id: entry.id,
          name: entry.name,
          template: entry.template,
          status: entry.sandbox.state,
          provider: entry.sandbox.provider,
          engine: status.engine || null,
          env_vars_configured: entry.envVarsConfigured,
          packages_to_install: packages,
          startup_script_configured: entry.startupScript,
          timeout,
          metadata: entry.metadata,
          created_at: iso(entry.createdAt),
          expires_at: iso(entry.expiresAt),
        }
        await p.flush()
        return ok(out, `Created sandbox ${out.sandbox_id}${out.template ? ` (${out.template})` : ''}, running; it expires at ${out.expires_at}.`)
      } finally {
        release()
        if (sandbox) await sandbox.destroy().catch(() => {})
      }
    },
  )

  tool(
    'sandbox_execute',
    {
      title: 'Run code in a sandbox',
      description:
        'Runs a piece of code in a language (a fresh interpreter per call, in the sandbox workdir, which keeps files between calls; with `persist: true` the sandbox\'s notebook interpreter for that language instead, whose variables, imports and loaded data stay for later persist calls, and `results` holds the last expression\'s value and figures). Resolves for any exit code: read `status` and `exit_code`. Each output stream is capped at 1 MiB (`truncated`). With a progress token, output lines arrive as progress notifications; cancelling the request kills the code.',
      inputSchema: {
        sandbox_id: sandboxId,
        code: z.string().describe('The program text.'),
        language: z.enum(LANGUAGES).optional().describe("Default: the template's language (python, node → javascript, go), else bash."),
        timeout: seconds('Seconds before the code is killed (status "timeout", exit code 124). Default: the sandbox limit.').optional(),
        env_vars: envVars.optional().describe('Extra environment variables of this run.'),
        working_dir: workingDir.optional(),
        capture_output: z.boolean().optional().describe('Return stdout and stderr (default true); false returns them empty.'),
        persist: z
          .boolean()
          .optional()
          .describe('Run in the sandbox\'s long-lived interpreter for this language (python, javascript, typescript or bash), so that variables, imports and loaded data stay for the next persist call, like a notebook. Not with env_vars or working_dir (set them in the code). Default false.'),
      },
      outputSchema: {
        ...execShape,
        language: z.string(),
        execution_id: z.string(),
        memory_used_mb: z.number().optional(),
        results: z.array(z.record(z.string(), z.any())).optional(),
        exception: z.object({ name: z.string(), value: z.string(), traceback: z.string() }).optional(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        let context
        if (a.persist) {
          if (a.env_vars || a.working_dir) {
            throw Object.assign(new Error('persist: true runs in a long-lived interpreter; set environment variables and the directory in the code instead of env_vars / working_dir'), { code: 'INVALID_ARGUMENT' })
          }
          // one interpreter per language and sandbox, made at the first persist call
          e.contexts ??= new Map()
          const key = a.language ?? ''
          const alive = new Set((await e.sandbox.listCodeContexts()).map((c) => c.id))
          // the interpreter of this language made earlier (with or without naming the language)
          context = [e.contexts.get(key), ...[...e.contexts.values()].filter((c) => c.language === a.language)].find((c) => c && alive.has(c.id))
          if (!context) {
            context = await e.sandbox.createCodeContext(a.language ? { language: a.language } : {})
            e.contexts.set(context.language, context)
          }
          e.contexts.set(key, context)
        }
        const r = await live(extra, (l) =>
          e.sandbox.runCode(
            a.code,
            context
              ? { context, timeout: a.timeout, maxOutputBytes: MAX_OUTPUT_BYTES, ...l }
              : { language: a.language, timeout: a.timeout, env: a.env_vars, workdir: a.working_dir, maxOutputBytes: MAX_OUTPUT_BYTES, ...l },
          ),
        )
        const capture = a.capture_output !== false
        const out = {
          sandbox_id: e.id,
          execution_id: 'exec_' + crypto.randomBytes(6).toString('hex'),
          language: r.language,
          exit_code: r.exitCode,
          stdout: capture ? r.stdout : '',
          stderr: capture ? r.stderr : '',
          duration_ms: r.duration,
          timed_out: r.status === 'timeout',
          truncated: r.truncated,
          success: r.success,
          status: r.status,
        }
        if (r.memoryUsedMB !== undefined && r.memoryUsedMB !== null) out.memory_used_mb = r.memoryUsedMB
        if (context) {
          out.results = (r.results ?? []).map((x) => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined && v !== null)))
          if (r.exception) out.exception = r.exception
        }
        const main = out.results?.find((x) => x.isMainResult)
        return ok(out, renderExec(out) + (main?.text !== undefined ? `\n=> ${main.text}` : '') + (out.exception ? `\n${out.exception.traceback || out.exception.name + ': ' + out.exception.value}` : ''))
      }),
  )

  tool(
    'sandbox_list',
    {
      title: 'List sandboxes',
      description: 'The sandboxes of this server (of this MCP session, unless the server shares them), newest first.',
      inputSchema: {
        status: z.enum(['running', 'stopped', 'starting', 'error', 'all']).optional().describe("Only sandboxes in this state (default 'all')."),
        template: z.string().min(1).optional().describe('Only sandboxes of this template.'),
        limit: z.number().int().positive().max(1000).optional().describe('At most this many (default 100).'),
      },
      outputSchema: {
        sandboxes: z.array(
          z.object({
            sandbox_id: z.string(),
            name: z.string().nullable(),
            template: z.string().nullable(),
            status: z.string(),
            uptime: z.number(),
            created_at: z.string(),
            last_activity: z.string(),
            expires_at: z.string(),
            resource_usage: usageShape,
          }),
        ),
        total_count: z.number().int(),
        running_count: z.number().int(),
        stopped_count: z.number().int(),
      },
    },
    async (a, extra) => {
      const mine = new Map(registry.list(ownerOf(extra)).map((e) => [e.id, e]))
      const all = (await manager.list({ sortBy: 'createdAt', order: 'desc' })).filter((s) => mine.has(s.id))
      const rows = all
        .filter((s) => !a.status || a.status === 'all' || s.status === a.status)
        .filter((s) => !a.template || s.template === a.template || (s.template === undefined && a.template === 'default'))
        .slice(0, a.limit || 100)
        .map((s) => ({
          sandbox_id: s.id,
          name: s.name ?? null,
          template: s.template ?? null,
          status: s.status,
          uptime: s.uptime,
          created_at: s.createdAt,
          last_activity: s.lastActivity,
          expires_at: iso(mine.get(s.id).expiresAt),
          resource_usage: { cpu_percent: s.resourceUsage.cpuPercent, memory_used_mb: s.resourceUsage.memoryUsedMB },
        }))
      const out = {
        sandboxes: rows,
        total_count: all.length,
        running_count: all.filter((s) => s.status === 'running').length,
        stopped_count: all.filter((s) => s.status === 'stopped').length,
      }
      const text = rows.length
        ? rows.map((r) => `${r.sandbox_id}  ${r.status}  ${r.template || '-'}  ${r.name || ''}`.trimEnd()).join('\n')
        : 'No sandboxes.'
      return ok(out, text)
    },
  )

  tool(
    'sandbox_status',
    {
      title: 'Sandbox status',
      description: 'State, template, uptime, resource use against the limits, execution counters and expiry of one sandbox.',
      inputSchema: { sandbox_id: sandboxId },
      outputSchema: {
        sandbox_id: z.string(),
        name: z.string().nullable(),
        status: z.string(),
        template: z.string().nullable(),
        image: z.string(),
        provider: z.string(),
        engine: z.string(),
        uptime: z.number(),
        created_at: z.string(),
        started_at: z.string().nullable(),
        last_activity: z.string(),
        expires_at: z.string(),
        resource_usage: usageShape,
        executions: z.object({ total: z.number(), successful: z.number(), failed: z.number(), average_duration_ms: z.number() }),
        metadata: z.record(z.string(), z.any()),
      },
    },
    async (a, extra) =>
      registry.use(a.sandbox_id, ownerOf(extra), async (e) => {
        const s = await e.sandbox.getStatus()
        const u = s.resourceUsage
        const out = {
          sandbox_id: e.id,
          name: s.name ?? null,
          status: s.state,
          template: s.template ?? null,
          image: s.image,
          provider: s.provider,
          engine: s.engine,
          uptime: s.uptime,
          created_at: s.createdAt,
          started_at: s.startedAt ?? null,
          last_activity: s.lastActivity,
          expires_at: iso(e.expiresAt),
          resource_usage: {
            cpu_percent: u.cpuPercent,
            memory_used_mb: u.memoryUsedMB,
            memory_limit_mb: u.memoryLimitMB,
            disk_used_mb: u.diskUsedMB,
            disk_limit_mb: u.diskLimitMB,
            network_rx_mb: u.networkRxMB,
            network_tx_mb: u.networkTxMB,
          },
          executions: {
            total: s.executions.total,
            successful: s.executions.successful,
            failed: s.executions.failed,
            average_duration_ms: s.executions.averageDuration,
          },
          metadata: e.metadata,
        }
        return ok(
          out,
          `${out.sandbox_id}: ${out.status}, up ${out.uptime} s, memory ${u.memoryUsedMB}/${u.memoryLimitMB} MB, disk ${u.diskUsedMB}/${u.diskLimitMB} MB, ${out.executions.total} executions (${out.executions.failed} failed); expires ${out.expires_at}`,
        )
      }),
  )

  tool(
    'sandbox_configure',
    {
      title: 'Configure a sandbox',
      description:
        'Changes a running sandbox: env_vars apply to every later execution; install_packages are installed with the template\'s package manager; run_commands run in order (sh -c, in the workdir), stopping at the first failure. Each step\'s result is reported.',
      inputSchema: {
        sandbox_id: sandboxId,
        env_vars: envVars.optional().describe('Added to the environment of every later command.'),
        install_packages: z.array(z.string().min(1)).optional().describe("Installed with the template's package manager (pip or npm)."),
        run_commands: z.array(z.string().min(1)).optional().describe('Shell commands run in order; the first failure stops the rest.'),
        timeout: seconds('Seconds for each step (default: the sandbox limit).').optional(),
      },
      outputSchema: {
        sandbox_id: z.string(),
        success: z.boolean(),
        status: z.enum(['configured', 'failed']),
        env_vars_updated: z.number().int(),
        packages_installed: z.number().int(),
        commands_executed: z.number().int(),
        steps: z.array(
          z.object({
            kind: z.enum(['install', 'command']),
            command: z.string(),
            exit_code: z.number().int(),
            stdout: z.string(),
            stderr: z.string(),
            duration_ms: z.number(),
            timed_out: z.boolean(),
          }),
        ),
        configuration_time_ms: z.number(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        const r = await live(extra, (l) =>
          e.sandbox.configure({
            env: a.env_vars,
            installPackages: a.install_packages,
            runCommands: a.run_commands,
            timeout: a.timeout,
            ...l,
          }),
        )
        const out = {
          sandbox_id: e.id,
          success: r.success,
          status: r.success ? 'configured' : 'failed',
          env_vars_updated: r.envVarsUpdated,
          packages_installed: r.packagesInstalled,
          commands_executed: r.commandsExecuted,
          steps: r.steps.map((s) => ({
            kind: s.kind,
            command: s.command,
            exit_code: s.exitCode,
            stdout: s.stdout,
            stderr: s.stderr,
            duration_ms: s.durationMs,
            timed_out: s.timedOut,
          })),
          configuration_time_ms: r.durationMs,
        }
        const lines = [`${out.status}: ${out.env_vars_updated} env vars, ${out.packages_installed} packages, ${out.commands_executed} commands`]
        for (const s of out.steps) lines.push(`${s.exit_code === 0 && !s.timed_out ? 'ok' : 'FAILED (exit ' + s.exit_code + ')'}  ${s.command}`)
        const failed = out.steps.find((s) => s.exit_code !== 0 || s.timed_out)
        if (failed) lines.push(`${failed.stdout}${failed.stderr}`.trim().slice(-2000))
        return ok(out, lines.join('\n'))
      }),
  )

  tool(
    'sandbox_upload',
    {
      title: 'Write a file into a sandbox',
      description: 'Writes a file (creating parent directories; atomic). Relative paths resolve against the workdir (/workspace).',
      inputSchema: {
        sandbox_id: sandboxId,
        file_path: z.string().min(1).describe('Where to write it.'),
        content: z.string().describe("The file's content: text, or base64 with encoding 'base64'."),
        encoding: z.enum(['utf8', 'base64']).optional().describe("How `content` is encoded (default 'utf8')."),
      },
      outputSchema: {
        sandbox_id: z.string(),
        file_path: z.string(),
        size_bytes: z.number().int(),
        checksum: z.string(),
        upload_time_ms: z.number(),
        created_at: z.string(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        let bytes
        if (a.encoding === 'base64') {
          if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(a.content)) {
            throw new ToolError('INVALID_ARGUMENT', "content is not valid base64 (encoding 'base64'); encode the bytes with standard base64, or send text with encoding 'utf8'")
          }
          bytes = Buffer.from(a.content, 'base64')
        } else {
          bytes = Buffer.from(a.content, 'utf8')
        }
        const t0 = performance.now()
        const op = await e.sandbox.writeFile(a.file_path, bytes)
        if (!op.success) throw new ToolError(op.code || 'EXECUTION_ERROR', `cannot write ${a.file_path}: ${op.error}`)
        const out = {
          sandbox_id: e.id,
          file_path: op.path,
          size_bytes: bytes.length,
          checksum: 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex'),
          upload_time_ms: Math.round((performance.now() - t0) * 100) / 100,
          created_at: new Date().toISOString(),
        }
        return ok(out, `Wrote ${out.size_bytes} bytes to ${out.file_path}.`)
      }),
  )

  tool(
    'sandbox_logs',
    {
      title: 'Sandbox logs',
      description: "The sandbox's own log (lifecycle events, commands run, their output), newest last.",
      inputSchema: {
        sandbox_id: sandboxId,
        lines: z.number().int().min(0).max(1000).optional().describe('The newest this many entries (default 100).'),
        log_level: z.enum(['error', 'warn', 'info', 'debug', 'all']).optional().describe("Minimum level (default 'all')."),
        include_timestamps: z.boolean().optional().describe('Default true.'),
      },
      outputSchema: {
        sandbox_id: z.string(),
        logs: z.array(z.object({ timestamp: z.string().optional(), level: z.string(), source: z.string(), message: z.string() })),
        total_lines: z.number().int(),
        dropped: z.number().int(),
        oldest_entry: z.string().nullable(),
      },
    },
    async (a, extra) =>
      registry.use(a.sandbox_id, ownerOf(extra), async (e) => {
        const l = e.sandbox.getLogs({ lines: a.lines, level: a.log_level, includeTimestamps: a.include_timestamps })
        const out = { sandbox_id: e.id, logs: l.logs, total_lines: l.totalLines, dropped: l.dropped, oldest_entry: l.oldestEntry ?? null }
        const text = l.logs.map((x) => `${x.timestamp ? x.timestamp + ' ' : ''}${x.level} ${x.source}: ${x.message}`).join('\n') || 'No log entries.'
        return ok(out, text)
      }),
  )

  tool(
    'sandbox_stop',
    {
      title: 'Stop a sandbox',
      description: 'Ends every process in the sandbox and freezes it; its files are kept. The next tool that runs something in it resumes it.',
      inputSchema: { sandbox_id: sandboxId },
      outputSchema: {
        sandbox_id: z.string(),
        previous_status: z.string(),
        current_status: z.string(),
        uptime: z.number(),
        total_executions: z.number().int(),
        stopped_at: z.string(),
        data_preserved: z.boolean(),
      },
    },
    async (a, extra) =>
      registry.use(a.sandbox_id, ownerOf(extra), async (e) => {
        const before = await e.sandbox.getStatus()
        await e.sandbox.stop()
        const out = {
          sandbox_id: e.id,
          previous_status: before.state,
          current_status: e.sandbox.state,
          uptime: before.uptime,
          total_executions: before.executions.total,
          stopped_at: new Date().toISOString(),
          data_preserved: true,
        }
        return ok(out, `Stopped ${e.id} (was ${out.previous_status}); its files are kept.`)
      }),
  )

  tool(
    'sandbox_delete',
    {
      title: 'Delete a sandbox',
      description: 'Destroys the sandbox: its processes, files, container, volume and network.',
      inputSchema: { sandbox_id: sandboxId },
      outputSchema: { sandbox_id: z.string(), deleted: z.boolean(), deleted_at: z.string() },
    },
    async (a, extra) => {
      const e = registry.get(a.sandbox_id, ownerOf(extra))
      await registry.remove(e.id)
      const out = { sandbox_id: e.id, deleted: true, deleted_at: new Date().toISOString() }
      return ok(out, `Deleted ${e.id}.`)
    },
  )

  tool(
    'sandbox_run_command',
    {
      title: 'Run a command in a sandbox',
      description:
        'Runs one command: `command` with `args` as a real argv (no shell), or `shell`, a line for /bin/sh -c. Resolves for any exit code. Each output stream is capped at 1 MiB (`truncated`). With a progress token, output lines arrive as progress notifications; cancelling the request kills the command.',
      inputSchema: {
        sandbox_id: sandboxId,
        command: z.string().min(1).optional().describe('The program (argv form), e.g. "ls".'),
        args: z.array(z.string()).optional().describe('Its arguments (argv form).'),
        shell: z.string().min(1).optional().describe('A shell command line instead, e.g. "ls -la | wc -l".'),
        stdin: z.string().optional().describe('Written to the command\'s stdin, which is then closed.'),
        timeout: seconds('Seconds before it is killed (exit code 124). Default: the sandbox limit.').optional(),
        working_dir: workingDir.optional(),
        env_vars: envVars.optional(),
      },
      outputSchema: { ...execShape, signal: z.string().optional() },
    },
    async (a, extra) => {
      if ((a.command === undefined) === (a.shell === undefined)) {
        throw new ToolError('INVALID_ARGUMENT', "give either command (with args) or shell, not both and not neither: e.g. { command: 'ls', args: ['-la'] } or { shell: 'ls -la | wc -l' }")
      }
      if (a.shell !== undefined && a.args !== undefined) throw new ToolError('INVALID_ARGUMENT', 'args go with command, not with shell; put them into the shell line')
      return onRunning(a.sandbox_id, extra, async (e) => {
        const [cmd, argv] = a.shell !== undefined ? ['/bin/sh', ['-c', a.shell]] : [a.command, a.args || []]
        const r = await live(extra, (l) =>
          e.sandbox.execute(cmd, argv, {
            timeout: a.timeout,
            workdir: a.working_dir,
            env: a.env_vars,
            stdin: a.stdin,
            maxOutputBytes: MAX_OUTPUT_BYTES,
            ...l,
          }),
        )
        const out = {
          sandbox_id: e.id,
          exit_code: r.exitCode,
          stdout: r.stdout,
          stderr: r.stderr,
          duration_ms: r.durationMs,
          timed_out: r.timedOut,
          truncated: r.truncated,
          success: r.exitCode === 0 && !r.timedOut,
          status: execStatus(r),
        }
        if (r.signal) out.signal = r.signal
        return ok(out, renderExec(out))
      })
    },
  )

  tool(
    'sandbox_read_file',
    {
      title: 'Read a file from a sandbox',
      description: "Reads a file (its first MiB; `truncated` says when there is more). Text comes back as UTF-8; use encoding 'base64' for binary files.",
      inputSchema: {
        sandbox_id: sandboxId,
        file_path: z.string().min(1),
        encoding: z.enum(['utf8', 'base64']).optional().describe("Default 'utf8'."),
      },
      outputSchema: {
        sandbox_id: z.string(),
        file_path: z.string(),
        content: z.string(),
        encoding: z.enum(['utf8', 'base64']),
        size_bytes: z.number().int(),
        truncated: z.boolean(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        const op = await e.sandbox.readFile(a.file_path, { encoding: 'buffer' })
        if (!op.success) throw new ToolError(op.code || 'EXECUTION_ERROR', `cannot read ${a.file_path}: ${op.error}`)
        const buf = op.buffer || Buffer.alloc(0)
        const encoding = a.encoding || 'utf8'
        const shown = buf.length > MAX_OUTPUT_BYTES ? buf.subarray(0, MAX_OUTPUT_BYTES) : buf
        const out = { sandbox_id: e.id, file_path: op.path, content: shown.toString(encoding), encoding, size_bytes: buf.length, truncated: shown !== buf }
        return ok(out, encoding === 'utf8' ? out.content : `${buf.length} bytes (base64):\n${out.content}`)
      }),
  )

  tool(
    'sandbox_list_files',
    {
      title: 'List files in a sandbox',
      description: 'Entries of a directory (default: the workdir) with type, size, modification time and permissions.',
      inputSchema: {
        sandbox_id: sandboxId,
        path: z.string().min(1).optional().describe('The directory (default: the workdir).'),
        recursive: z.boolean().optional().describe('The whole tree (paths relative to `path`).'),
        all: z.boolean().optional().describe('Include dotfiles.'),
        limit: z.number().int().positive().max(100000).optional().describe('At most this many entries (default 1000).'),
      },
      outputSchema: {
        sandbox_id: z.string(),
        path: z.string(),
        entries: z.array(z.object({ path: z.string(), type: z.string(), size: z.number(), modified_at: z.string(), permissions: z.string() })),
        total_count: z.number().int(),
        truncated: z.boolean(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        const list = await e.sandbox.listFilesDetailed(a.path, { recursive: a.recursive, all: a.all })
        const limit = a.limit || 1000
        const entries = list.slice(0, limit).map((f) => ({ path: f.path, type: f.type, size: f.size, modified_at: iso(f.mtimeMs), permissions: f.permissions }))
        const out = { sandbox_id: e.id, path: a.path || '.', entries, total_count: list.length, truncated: list.length > limit }
        const text =
          entries.map((f) => `${f.type === 'directory' ? 'd' : f.type === 'symlink' ? 'l' : '-'} ${f.permissions} ${String(f.size).padStart(9)} ${f.path}`).join('\n') +
          (out.truncated ? `\n… ${list.length - limit} more (raise limit)` : '')
        return ok(out, text || 'Empty directory.')
      }),
  )

  tool(
    'sandbox_run_tests',
    {
      title: "Run a project's tests",
      description: "Runs the project's tests (jest, vitest, pytest or go test, detected from the files, or `command`) and parses the summary.",
      inputSchema: {
        sandbox_id: sandboxId,
        framework: z.enum(['jest', 'vitest', 'pytest', 'go']).optional().describe('Default: detected from package.json, go.mod or test files.'),
        command: z.string().min(1).optional().describe("A shell command to run instead of the framework's default (its output is still parsed)."),
        timeout: seconds('Seconds (default: the sandbox limit).').optional(),
        working_dir: workingDir.optional(),
        env_vars: envVars.optional(),
      },
      outputSchema: {
        sandbox_id: z.string(),
        framework: z.string().nullable(),
        command: z.string(),
        success: z.boolean(),
        exit_code: z.number().int(),
        timed_out: z.boolean(),
        total: z.number().int(),
        passed: z.number().int(),
        failed: z.number().int(),
        skipped: z.number().int(),
        failures: z.array(z.object({ name: z.string(), message: z.string() })),
        parsed: z.boolean(),
        duration_ms: z.number(),
        output: z.string(),
      },
    },
    async (a, extra) =>
      onRunning(a.sandbox_id, extra, async (e) => {
        const r = await live(extra, (l) =>
          e.sandbox.runTests({
            framework: a.framework,
            command: a.command,
            timeout: a.timeout,
            workdir: a.working_dir,
            env: a.env_vars,
            ...l,
          }),
        )
        const out = {
          sandbox_id: e.id,
          framework: r.framework ?? null,
          command: r.command,
          success: r.success,
          exit_code: r.exitCode,
          timed_out: r.timedOut,
          total: r.total,
          passed: r.passed,
          failed: r.failed,
          skipped: r.skipped,
          failures: r.failures,
          parsed: r.parsed,
          duration_ms: r.duration,
          // the end of the output is where runners put their summary
          output: r.output.length > MAX_OUTPUT_BYTES ? r.output.slice(-MAX_OUTPUT_BYTES) : r.output,
        }
        const head = r.parsed ? `${r.passed}/${r.total} passed, ${r.failed} failed, ${r.skipped} skipped (${r.framework})` : `no test summary found (exit code ${r.exitCode})`
        const fails = r.failures.map((f) => `FAIL ${f.name}: ${f.message}`).join('\n')
        return ok(out, [head, fails, r.parsed ? '' : r.output.slice(-2000)].filter(Boolean).join('\n'))
      }),
  )
}

module.exports = { registerTools, errorResult, LANGUAGES }
