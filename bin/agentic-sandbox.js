#!/usr/bin/env node
// The agentic-sandbox command line: `npx agentic-sandbox <command> [options]`.
'use strict'

const USAGE = `Usage: agentic-sandbox <command> [options]

Commands:
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

const COMMANDS = { prune }

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
    } else {
      process.stderr.write(`agentic-sandbox: ${(e && e.stack) || e}\n`)
      process.exitCode = 1
    }
  },
)
