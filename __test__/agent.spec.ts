// SandboxedAgentExecutor end to end: the model loop against the scripted mock LLM servers
// (examples/lib/mock-llm.ts, listening on 127.0.0.1 only), the built-in tools running in real
// Docker sandboxes (networkMode 'none'), the user guide's interceptors, chaining semantics,
// limits, model failures, executeParallel, file capture, cleanup and bring-your-own agents.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxedAgentExecutor } from '../index.js'
import { EXHAUSTED_TEXT, startMockLlm, type MockLlm, type MockLlmOptions, type ScriptedTurn } from '../examples/lib/mock-llm.js'
import { BUSYBOX, dockerLabelled, ownerPidLabel, sandboxLabel, sleep, waitFor, within } from './helpers.js'

const KEY = 'sk-agent-spec-key'
const TOOL_NAMES = ['Bash', 'Read', 'Write', 'Edit', 'Glob', 'Grep', 'LS']
type Provider = 'anthropic' | 'openai'

// ---------------------------------------------------------------- shared helpers

let mocks: MockLlm[] = []
afterEach(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  mocks = []
})

/** A mock model server, closed after the test. */
async function mockLlm(opts: MockLlmOptions): Promise<MockLlm> {
  const m = await startMockLlm(opts)
  mocks.push(m)
  return m
}

/** The `model` config pointing at a mock (no retries' worth of waiting unless asked). */
const modelOf = (m: MockLlm, provider: Provider, extra: Record<string, any> = {}) => ({
  provider,
  apiKey: KEY,
  baseURL: m.url,
  ...extra,
})

/** A manager + executor for one describe; everything is destroyed after it. */
function setup() {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  const executor: any = new SandboxedAgentExecutor(manager)
  afterAll(async () => {
    await executor.cleanupAll()
    await manager.destroyAll()
  })
  return { manager, executor }
}

/** Polls until no container/volume/network of sandbox `id` is left; returns what is left. */
async function goneOf(id: string) {
  let left = dockerLabelled(sandboxLabel(id))
  await waitFor(() => {
    left = dockerLabelled(sandboxLabel(id))
    return left.containers + left.volumes + left.networks === 0
  }, 10_000, 100)
  return left
}
const NONE = { containers: 0, volumes: 0, networks: 0 }

/** Asserts a successful run (printing the error when not). */
function expectOk(r: any) {
  expect(r.error, JSON.stringify(r.error)).toBeUndefined()
  expect(r.exitCode).toBe(0)
}

/** The tool results the model received with request `n` (0-based). */
const resultsAt = (m: MockLlm, n: number) => {
  expect(m.requests.length, `the mock got only ${m.requests.length} requests`).toBeGreaterThan(n)
  return m.requests[n].lastToolResults
}

const envModelVars = () => Object.keys(process.env).filter((k) => /^(ANTHROPIC|OPENAI)_/.test(k))

// ---------------------------------------------------------------- the user guide's interceptors
// Copied from the user guide (Level 2 "Add Custom Interceptors" and "Custom Tool Interceptors"),
// minus console output and the federation hub call. `seen` records what the handlers observed.

type Seen = { agentNames: string[]; workspacePaths: string[]; files: string[]; commands: string[]; reads: any[] }
const newSeen = (): Seen => ({ agentNames: [], workspacePaths: [], files: [], commands: [], reads: [] })

function guideInterceptors(seen: Seen, QUOTA_BYTES = 10 * 1024 * 1024) {
  const fileLogger = {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      seen.agentNames.push(context.metadata.agentName)
      seen.workspacePaths.push(context.workspacePath)
      seen.files.push(params.file)
      // Execute write
      const sandboxPath = `/workspace/${params.file}`
      await context.sandbox.writeFile(sandboxPath, params.content)
      context.metadata.filesCreated++
      return params
    },
  }

  const securityFilter = {
    toolName: 'Bash',
    handler: async (params: any, context: any) => {
      seen.commands.push(params.command)
      const blacklist = ['rm -rf /', 'dd if=/dev/zero', 'fork()', ':(){:|:&};:', 'mkfs', 'format']
      if (blacklist.some((cmd) => params.command.includes(cmd))) {
        context.metadata.errors++
        return {
          exitCode: 1,
          stdout: '',
          stderr: 'Error: Command blocked by security policy',
          durationMs: 0,
          timedOut: false,
        }
      }
      const whitelist = ['npm', 'node', 'git', 'ls', 'cat', 'echo', 'mkdir']
      const commandBase = params.command.split(' ')[0]
      if (!whitelist.includes(commandBase)) {
        // the guide only warns here
      }
      const result = await context.sandbox.execute('sh', ['-c', params.command])
      context.metadata.commandsExecuted++
      if (result.exitCode !== 0) {
        context.metadata.errors++
      }
      return result
    },
  }

  const perfMonitor = {
    toolName: 'Read',
    handler: async (params: any, context: any) => {
      const startTime = Date.now()
      const sandboxPath = `/workspace/${params.file}`
      const result = await context.sandbox.readFile(sandboxPath)
      const durationMs = Date.now() - startTime
      if (durationMs > 100) {
        // the guide warns about slow reads here
      }
      seen.reads.push(result)
      return result
    },
  }

  let totalBytesWritten = 0
  const quotaEnforcer = {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      totalBytesWritten += params.content.length
      if (totalBytesWritten > QUOTA_BYTES) {
        return null // Block write
      }
      const sandboxPath = `/workspace/${params.file}`
      await context.sandbox.writeFile(sandboxPath, params.content)
      context.metadata.filesCreated++
      return params
    },
  }

  // Level 2
  const level2Write = {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      seen.files.push(params.file)
      const sandboxPath = `/workspace/${params.file}`
      await context.sandbox.writeFile(sandboxPath, params.content)
      context.metadata.filesCreated++
      return params
    },
  }
  const level2Bash = {
    toolName: 'Bash',
    handler: async (params: any, context: any) => {
      seen.commands.push(params.command)
      // Block dangerous commands
      if (params.command.includes('rm -rf')) {
        return null
      }
      const result = await context.sandbox.execute('sh', ['-c', params.command])
      context.metadata.commandsExecuted++
      return result
    },
  }

  return { fileLogger, securityFilter, perfMonitor, quotaEnforcer, level2Write, level2Bash }
}

// ================================================================ 1. the built-in tools

describe('agent task: write, run, read (anthropic)', () => {
  const { executor } = setup()

  it('writes a script, runs it, reads its output; the model sees real results; stats and files', async () => {
    const script: ScriptedTurn[] = [
      // absolute file_path: normalized to `file`, relative to the workspace
      { text: 'I will write the script.', toolCalls: [{ name: 'Write', input: { file_path: '/workspace/src/hello.sh', content: 'echo "sum=$((20+22))"\necho written-by-script > out.txt\n' } }] },
      { toolCalls: [{ name: 'Bash', input: { command: 'sh src/hello.sh && ls' } }] },
      { toolCalls: [{ name: 'Read', input: { file: 'out.txt' } }] },
      { text: 'The script printed sum=42.' },
    ]
    const mock = await mockLlm({ provider: 'anthropic', script, requireKey: KEY })
    const r = await executor.execute('Write a script that adds numbers, run it, report', {
      agentName: 'coder',
      systemPrompt: 'You are a careful shell developer. MARKER-7431',
      model: modelOf(mock, 'anthropic', { name: 'claude-test-model' }),
      captureFiles: true,
    })
    expectOk(r)
    expect(r.output).toBe('The script printed sum=42.')
    expect(r.agentName).toBe('coder')
    expect(r.sandboxId).toMatch(/^docker-[0-9a-f]{16}$/)
    expect(mock.requests).toHaveLength(4)
    expect(mock.remaining()).toBe(0)

    // what the model received
    const [write] = resultsAt(mock, 1)
    expect(write.isError).toBe(false)
    expect(write.content).toContain('src/hello.sh')
    const [bash] = resultsAt(mock, 2)
    expect(bash.isError).toBe(false)
    expect(bash.content).toContain('sum=42')
    expect(bash.content).toContain('out.txt') // from `ls`
    expect(bash.content).toContain('src')
    const [read] = resultsAt(mock, 3)
    expect(read.isError).toBe(false)
    expect(read.content).toContain('written-by-script')

    // request contents: system prompt + workspace note, the 7 tools, the model name, the task
    for (const req of mock.requests) {
      expect(req.system).toContain('You are a careful shell developer. MARKER-7431')
      expect(req.system).toContain('/workspace')
      expect(req.toolNames).toEqual(TOOL_NAMES)
      expect(req.body.model).toBe('claude-test-model')
      expect(req.firstUserText).toContain('Write a script that adds numbers, run it, report')
    }
    expect(mock.requests[0].system.indexOf('MARKER-7431')).toBeLessThan(mock.requests[0].system.indexOf('/workspace'))

    // stats
    expect(r.stats.turns).toBe(4)
    expect(r.stats.toolCalls).toBe(3)
    expect(r.stats.commandsExecuted).toBe(1)
    expect(r.stats.filesCreated).toBe(1)
    expect(r.stats.errors).toBe(0)
    expect(r.stats.blockedCalls).toBe(0)
    expect(r.stats.memoryUsageMB).toBeGreaterThan(0)
    expect(r.stats.inputTokens).toBeGreaterThan(0)
    expect(r.stats.outputTokens).toBeGreaterThan(0)
    expect(r.durationMs).toBeGreaterThan(0)

    // captured files
    const files = Object.fromEntries(r.files.map((f: any) => [f.path, f]))
    expect(Object.keys(files).sort()).toEqual(['out.txt', 'src/hello.sh'])
    expect(files['src/hello.sh']).toMatchObject({ encoding: 'utf8', content: 'echo "sum=$((20+22))"\necho written-by-script > out.txt\n' })
    expect(files['out.txt']).toMatchObject({ encoding: 'utf8', content: 'written-by-script\n', size: 18 })

    // autoCleanup (default) removed the sandbox
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
  })

  it('Edit (non-unique → error, replace_all), Glob **/*.txt, Grep with glob, LS with dir/', async () => {
    const script: ScriptedTurn[] = [
      {
        toolCalls: [
          { name: 'Write', input: { file: 'dir/a.txt', content: 'hello\nhello\n' } },
          { name: 'Write', input: { file: 'dir/b.md', content: 'hello md\n' } },
          { name: 'Write', input: { file: 'top.txt', content: 'nothing here\n' } },
        ],
      },
      {
        toolCalls: [
          { name: 'Edit', input: { file: 'dir/a.txt', old_string: 'hello', new_string: 'bye' } },
          { name: 'Glob', input: { pattern: '**/*.txt' } },
          { name: 'Grep', input: { pattern: 'hel+o', glob: '*.txt' } },
          { name: 'LS', input: {} },
        ],
      },
      { toolCalls: [{ name: 'Edit', input: { file_path: '/workspace/dir/a.txt', old_string: 'hello', new_string: 'bye', replace_all: true } }] },
      { toolCalls: [{ name: 'Read', input: { path: 'dir/a.txt' } }] },
      { text: 'edited' },
    ]
    const mock = await mockLlm({ provider: 'anthropic', script })
    const r = await executor.execute('use every tool', { model: modelOf(mock, 'anthropic') })
    expectOk(r)
    expect(r.output).toBe('edited')

    const writes = resultsAt(mock, 1)
    expect(writes.map((w) => w.isError)).toEqual([false, false, false])

    const [edit, glob, grep, ls] = resultsAt(mock, 2)
    expect(edit.isError).toBe(true)
    expect(edit.content).toMatch(/unique|2 times|replace_all/i)

    expect(glob.isError).toBe(false)
    const globbed = glob.content.split('\n').map((l) => l.trim()).filter(Boolean)
    expect(globbed.sort()).toEqual(['dir/a.txt', 'top.txt'])

    expect(grep.isError).toBe(false)
    expect(grep.content).toContain('dir/a.txt:1:hello')
    expect(grep.content).toContain('dir/a.txt:2:hello')
    expect(grep.content).not.toContain('b.md')
    expect(grep.content).not.toContain('top.txt')

    expect(ls.isError).toBe(false)
    const entries = ls.content.split('\n').map((l) => l.trim())
    expect(entries.some((e) => e.startsWith('dir/'))).toBe(true)
    expect(entries.some((e) => e.startsWith('top.txt'))).toBe(true)
    expect(ls.content).not.toMatch(/(^|\n)dir(\s|$)/) // the directory is shown as `dir/`

    const [replaceAll] = resultsAt(mock, 3)
    expect(replaceAll.isError).toBe(false)
    const [read] = resultsAt(mock, 4)
    expect(read.isError).toBe(false)
    expect(read.content).toContain('bye\nbye')
    expect(read.content).not.toContain('hello')

    expect(r.stats.toolCalls).toBe(9)
    expect(r.stats.filesCreated).toBe(3)
    expect(r.stats.errors).toBe(1) // the failed Edit
    expect(r.stats.turns).toBe(5)
  })

  it('a one-turn answer without tools', async () => {
    const mock = await mockLlm({ provider: 'anthropic', script: [{ text: 'only turn' }] })
    const r = await executor.execute('one turn', { model: modelOf(mock, 'anthropic') })
    expectOk(r)
    expect(r.output).toBe('only turn')
    expect(r.stats.turns).toBe(1)
    expect(r.stats.toolCalls).toBe(0)
    expect(r.files).toEqual([]) // captureFiles defaults to false
  })

  it('a non-zero exit and a missing file come back as error results; the run still succeeds', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Bash', input: { command: 'echo to-stderr >&2; exit 3' } }, { name: 'Read', input: { file: 'missing.txt' } }] },
        { text: 'handled' },
      ],
    })
    const r = await executor.execute('fail a bit', { model: modelOf(mock, 'anthropic') })
    expectOk(r)
    const [bash, read] = resultsAt(mock, 1)
    expect(bash.isError).toBe(true)
    expect(bash.content).toContain('to-stderr')
    expect(bash.content).toContain('3')
    expect(read.isError).toBe(true)
    expect(r.stats.errors).toBe(2)
    expect(r.stats.commandsExecuted).toBe(1)
  })
})

// ================================================================ 2. the user guide's interceptors

describe('the user guide interceptors', () => {
  const { executor } = setup()

  it('fileLogger: context.metadata.agentName, workspacePath, sandbox methods; filesCreated not double counted', async () => {
    const seen = newSeen()
    const { fileLogger } = guideInterceptors(seen)
    const inHandler: any[] = []
    const probe = {
      toolName: 'Write',
      handler: async (params: any, context: any) => {
        // the live sandbox works inside a handler
        const exec = await context.sandbox.execute('sh', ['-c', 'pwd; cat "$0"', `/workspace/${params.file}`])
        const read = await context.sandbox.readFile(`/workspace/${params.file}`)
        const w = await context.sandbox.writeFile(`/workspace/probe-${params.file.replace(/\//g, '_')}.log`, 'probe')
        inHandler.push({ exec, read, w })
        return undefined
      },
    }
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Write', input: { file_path: '/workspace/src/one.txt', content: 'first\n' } }] },
        { toolCalls: [{ name: 'Write', input: { file: 'two.txt', content: 'second\n' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'cat src/one.txt two.txt' } }] },
        { text: 'logged' },
      ],
    })
    const r = await executor.execute('write two files', {
      agentName: 'secured-coder',
      model: modelOf(mock, 'anthropic'),
      interceptors: [fileLogger, probe],
      captureFiles: true,
      capturePatterns: ['*.txt'],
    })
    expectOk(r)
    expect(seen.agentNames).toEqual(['secured-coder', 'secured-coder'])
    expect(seen.workspacePaths).toEqual(['/workspace', '/workspace'])
    expect(seen.files).toEqual(['src/one.txt', 'two.txt']) // normalized before the handler
    expect(inHandler).toHaveLength(2)
    expect(inHandler[0].exec.exitCode).toBe(0)
    expect(inHandler[0].exec.stdout).toBe('/workspace\nfirst\n')
    expect(inHandler[0].read).toMatchObject({ success: true, content: 'first\n' })
    expect(inHandler[0].w.success).toBe(true)
    expect(inHandler[1].read).toMatchObject({ success: true, content: 'second\n' })

    expect(resultsAt(mock, 1)[0].isError).toBe(false)
    expect(resultsAt(mock, 3)[0].content).toBe('first\nsecond\n')
    // the handler counted each write once; the built-in did not add to it
    expect(r.stats.filesCreated).toBe(2)
    expect(r.stats.commandsExecuted).toBe(1)
    expect(r.files.map((f: any) => f.path).sort()).toEqual(['src/one.txt', 'two.txt'])
  })

  it('securityFilter: a blacklisted command is blocked (model sees the policy stderr, one error); allowed ones run', async () => {
    const seen = newSeen()
    const { securityFilter } = guideInterceptors(seen)
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Bash', input: { command: 'rm -rf /' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'echo allowed-$((40+2))' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'cat missing-file.txt' } }] },
        { text: 'secured' },
      ],
    })
    const r = await executor.execute('try commands', {
      agentName: 'secured-coder',
      model: modelOf(mock, 'anthropic'),
      interceptors: [securityFilter],
    })
    expectOk(r)
    expect(r.output).toBe('secured')
    expect(seen.commands).toEqual(['rm -rf /', 'echo allowed-$((40+2))', 'cat missing-file.txt'])
    const [blocked] = resultsAt(mock, 1)
    expect(blocked.isError).toBe(true)
    expect(blocked.content).toContain('blocked by security policy')
    const [allowed] = resultsAt(mock, 2)
    expect(allowed.isError).toBe(false)
    expect(allowed.content).toContain('allowed-42')
    const [failed] = resultsAt(mock, 3)
    expect(failed.isError).toBe(true)
    expect(failed.content).toContain('missing-file.txt')
    // the handler counts: 2 commands ran, 2 errors (the block and the failed cat), none counted twice
    expect(r.stats.commandsExecuted).toBe(2)
    expect(r.stats.errors).toBe(2)
  })

  it('perfMonitor: the readFile result becomes the Read result', async () => {
    const seen = newSeen()
    const { perfMonitor } = guideInterceptors(seen)
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Write', input: { file: 'data/report.txt', content: 'line one\nline two\n' } }] },
        { toolCalls: [{ name: 'Read', input: { file_path: '/workspace/data/report.txt' } }, { name: 'Read', input: { file: 'nope.txt' } }] },
        { text: 'read it' },
      ],
    })
    const r = await executor.execute('read a file', { model: modelOf(mock, 'anthropic'), interceptors: [perfMonitor] })
    expectOk(r)
    const [ok, missing] = resultsAt(mock, 2)
    expect(ok.isError).toBe(false)
    expect(ok.content).toBe('line one\nline two\n')
    expect(seen.reads[0]).toMatchObject({ success: true, content: 'line one\nline two\n' })
    expect(seen.reads[1].success).toBe(false)
    expect(missing.isError).toBe(true)
  })

  it('quotaEnforcer: over the quota the write is blocked with null ("blocked by policy"), nothing written', async () => {
    const seen = newSeen()
    const { quotaEnforcer } = guideInterceptors(seen, 16)
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Write', input: { file: 'small.txt', content: 'tiny\n' } }] },
        { toolCalls: [{ name: 'Write', input: { file: 'big.txt', content: 'this content is over the quota\n' } }] },
        { toolCalls: [{ name: 'LS', input: {} }] },
        { text: 'quota hit' },
      ],
    })
    const r = await executor.execute('write two files', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [quotaEnforcer],
      captureFiles: true,
    })
    expectOk(r)
    expect(resultsAt(mock, 1)[0].isError).toBe(false)
    const [blocked] = resultsAt(mock, 2)
    expect(blocked.isError).toBe(true)
    expect(blocked.content).toContain('blocked by policy')
    const [ls] = resultsAt(mock, 3)
    expect(ls.content).toContain('small.txt')
    expect(ls.content).not.toContain('big.txt')
    expect(r.files.map((f: any) => f.path)).toEqual(['small.txt'])
    expect(r.stats.filesCreated).toBe(1)
    expect(r.stats.blockedCalls).toBe(1)
    expect(r.stats.errors).toBe(1)
  })

  it('the four guide interceptors together, as in the guide', async () => {
    const seen = newSeen()
    const { fileLogger, securityFilter, perfMonitor, quotaEnforcer } = guideInterceptors(seen)
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Write', input: { file_path: '/workspace/app.js', content: 'console.log("app")\n' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'cat app.js' } }, { name: 'Read', input: { file: 'app.js' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'dd if=/dev/zero of=big bs=1M count=10' } }] },
        { text: 'built' },
      ],
    })
    const r = await executor.execute('Build a web application with authentication', {
      agentName: 'secured-coder',
      systemPrompt: 'You are a developer.',
      model: modelOf(mock, 'anthropic'),
      interceptors: [fileLogger, securityFilter, perfMonitor, quotaEnforcer],
      autoCleanup: true,
    })
    expectOk(r)
    expect(r.output).toBe('built')
    expect(seen.files).toEqual(['app.js'])
    const [cat, read] = resultsAt(mock, 2)
    expect(cat.content).toContain('console.log("app")')
    expect(read.content).toBe('console.log("app")\n')
    const [dd] = resultsAt(mock, 3)
    expect(dd.isError).toBe(true)
    expect(dd.content).toContain('blocked by security policy')
    // fileLogger and quotaEnforcer each count the write (the guide's code); the built-in adds nothing
    expect(r.stats.filesCreated).toBe(2)
    expect(r.stats.commandsExecuted).toBe(1)
    expect(r.stats.errors).toBe(1) // "Security blocks"
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
  })

  it('Level 2 Write and Bash interceptors: rm -rf is blocked with null, other commands run through the handler', async () => {
    const seen = newSeen()
    const { level2Write, level2Bash } = guideInterceptors(seen)
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Write', input: { file_path: '/workspace/src/app.sh', content: 'echo app-ran\n' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'sh src/app.sh' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'rm -rf src' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'ls src' } }] },
        { text: 'level 2 done' },
      ],
    })
    const r = await executor.execute('level 2', { model: modelOf(mock, 'anthropic'), interceptors: [level2Write, level2Bash] })
    expectOk(r)
    expect(seen.files).toEqual(['src/app.sh'])
    expect(seen.commands).toEqual(['sh src/app.sh', 'rm -rf src', 'ls src'])
    expect(resultsAt(mock, 2)[0]).toMatchObject({ isError: false, content: expect.stringContaining('app-ran') })
    const [blocked] = resultsAt(mock, 3)
    expect(blocked.isError).toBe(true)
    expect(blocked.content).toContain('blocked by policy')
    expect(resultsAt(mock, 4)[0].content).toContain('app.sh') // not removed
    expect(r.stats.filesCreated).toBe(1)
    expect(r.stats.commandsExecuted).toBe(2)
    expect(r.stats.blockedCalls).toBe(1)
    expect(r.stats.errors).toBe(1)
  })
})

// ================================================================ 3. chaining and semantics

describe('interceptor chaining and semantics', () => {
  const { executor } = setup()

  it('two handlers for one tool run in order; the second sees the parameters the first returned', async () => {
    const order: string[] = []
    const secondSaw: string[] = []
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [{ toolCalls: [{ name: 'Bash', input: { command: 'echo ORIGINAL' } }] }, { text: 'chained' }],
    })
    const r = await executor.execute('chain', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: 'Bash', handler: (p: any) => { order.push('first'); return { ...p, command: p.command.replace('ORIGINAL', 'REWRITTEN') } } },
        { toolName: 'Bash', handler: async (p: any) => { order.push('second'); secondSaw.push(p.command); return undefined } },
      ],
    })
    expectOk(r)
    expect(order).toEqual(['first', 'second'])
    expect(secondSaw).toEqual(['echo REWRITTEN'])
    expect(resultsAt(mock, 1)[0]).toMatchObject({ isError: false, content: 'REWRITTEN\n' })
  })

  it("'*' sees every tool, '{Read,Write}' only those two", async () => {
    const all: string[] = []
    const rw: string[] = []
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        {
          toolCalls: [
            { name: 'Write', input: { file: 'f.txt', content: 'abc\n' } },
            { name: 'Bash', input: { command: 'true' } },
            { name: 'Read', input: { file: 'f.txt' } },
            { name: 'Edit', input: { file: 'f.txt', old_string: 'abc', new_string: 'xyz' } },
            { name: 'Glob', input: { pattern: '*.txt' } },
            { name: 'Grep', input: { pattern: 'xyz' } },
            { name: 'LS', input: {} },
          ],
        },
        { text: 'saw all' },
      ],
    })
    // the handler gets no tool name: tell the tools apart by their (distinct) parameters
    const toolOf = (p: any) =>
      'command' in p ? 'Bash' : 'old_string' in p ? 'Edit' : 'content' in p ? 'Write'
        : 'pattern' in p ? (p.pattern === 'xyz' ? 'Grep' : 'Glob') : 'file' in p ? 'Read' : 'LS'
    const r = await executor.execute('glob', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: '*', handler: (p: any, ctx: any) => { all.push(`${toolOf(p)}@${ctx.workspacePath}`); return undefined } },
        { toolName: '{Read,Write}', handler: (p: any) => { rw.push(toolOf(p)); return undefined } },
      ],
    })
    expectOk(r)
    expect(all).toEqual(['Write', 'Bash', 'Read', 'Edit', 'Glob', 'Grep', 'LS'].map((t) => `${t}@/workspace`))
    expect(rw).toEqual(['Write', 'Read'])
    expect(resultsAt(mock, 1).map((t) => t.isError)).toEqual([false, false, false, false, false, false, false])
  })

  it('{ toolResult } replaces the tool (isError honoured); a string replaces it; sync and async both work', async () => {
    const later: string[] = []
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        {
          toolCalls: [
            { name: 'Write', input: { file: 'never.txt', content: 'x' } },
            { name: 'Bash', input: { command: 'touch bash-ran' } },
            { name: 'Read', input: { file: 'whatever.txt' } },
            { name: 'LS', input: {} },
          ],
        },
        { toolCalls: [{ name: 'Write', input: { file: 'real.txt', content: 'real' } }] },
        { toolCalls: [{ name: 'Glob', input: { pattern: '*' } }] },
        { text: 'replaced' },
      ],
    })
    const r = await executor.execute('replace', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: 'Write', handler: (p: any) => (p.file === 'never.txt' ? { toolResult: 'x' } : undefined) },
        { toolName: 'Write', handler: (p: any) => { later.push(p.file); return undefined } },
        { toolName: 'Bash', handler: async () => ({ toolResult: 'custom failure', isError: true }) },
        { toolName: 'Read', handler: () => 'sync-read-result' },
        { toolName: 'LS', handler: async () => { await sleep(20); return 'async-ls-result' } },
      ],
    })
    expectOk(r)
    expect(later).toEqual(['real.txt']) // no later handler ran after a result
    const [write, bash, read, ls] = resultsAt(mock, 1)
    expect(write).toMatchObject({ content: 'x', isError: false })
    expect(bash).toMatchObject({ content: 'custom failure', isError: true })
    expect(read).toMatchObject({ content: 'sync-read-result', isError: false })
    expect(ls).toMatchObject({ content: 'async-ls-result', isError: false })
    expect(resultsAt(mock, 2)[0].isError).toBe(false)
    const [glob] = resultsAt(mock, 3)
    expect(glob.content).toContain('real.txt')
    expect(glob.content).not.toContain('never.txt') // the built-in Write did not run
    expect(glob.content).not.toContain('bash-ran') // nor the built-in Bash
    expect(r.stats.filesCreated).toBe(1)
    expect(r.stats.commandsExecuted).toBe(0)
  })

  it('an execution result object (numeric exitCode) replaces the result', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        {
          toolCalls: [
            { name: 'Write', input: { file: 'marker.txt', content: 'm' } },
            { name: 'Bash', input: { command: 'touch should-not-exist; echo real' } },
            { name: 'Bash', input: { command: 'echo second' } },
          ],
        },
        { toolCalls: [{ name: 'LS', input: {} }] },
        { text: 'faked' },
      ],
    })
    const r = await executor.execute('fake exec', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        {
          toolName: 'Bash',
          handler: (p: any) =>
            p.command.includes('touch')
              ? { exitCode: 0, stdout: 'fake-stdout', stderr: '', durationMs: 0, timedOut: false }
              : { exitCode: 5, stdout: '', stderr: 'fake-stderr', durationMs: 1, timedOut: false },
        },
      ],
    })
    expectOk(r)
    const [, ok, bad] = resultsAt(mock, 1)
    expect(ok.isError).toBe(false)
    expect(ok.content).toContain('fake-stdout')
    expect(ok.content).not.toContain('real')
    expect(bad.isError).toBe(true)
    expect(bad.content).toContain('fake-stderr')
    expect(bad.content).toContain('5')
    const [ls] = resultsAt(mock, 2)
    expect(ls.content).toContain('marker.txt')
    expect(ls.content).not.toContain('should-not-exist')
    expect(r.stats.commandsExecuted).toBe(0)
  })

  it('a handler that throws or rejects: the model gets its message as an error result; the run goes on', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        { toolCalls: [{ name: 'Bash', input: { command: 'echo hi' } }, { name: 'Read', input: { file: 'x.txt' } }] },
        { toolCalls: [{ name: 'Write', input: { file: 'after.txt', content: 'still running\n' } }] },
        { text: 'survived' },
      ],
    })
    const r = await executor.execute('throwing handlers', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: 'Bash', handler: () => { throw new Error('boom-sync-7') } },
        { toolName: 'Read', handler: async () => { await sleep(10); throw new Error('boom-async-8') } },
      ],
      captureFiles: true,
    })
    expectOk(r)
    expect(r.output).toBe('survived')
    const [bash, read] = resultsAt(mock, 1)
    expect(bash.isError).toBe(true)
    expect(bash.content).toContain('boom-sync-7')
    expect(read.isError).toBe(true)
    expect(read.content).toContain('boom-async-8')
    expect(resultsAt(mock, 2)[0].isError).toBe(false)
    expect(r.files.map((f: any) => f.path)).toEqual(['after.txt'])
    expect(r.stats.errors).toBe(2)
    expect(r.stats.commandsExecuted).toBe(0)
  })

  it('null blocks: later handlers do not run; returned parameters are validated again', async () => {
    const later: string[] = []
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [{ toolCalls: [{ name: 'Bash', input: { command: 'echo blocked-me' } }, { name: 'Write', input: { file: 'ok.txt', content: 'x' } }] }, { text: 'done' }],
    })
    const r = await executor.execute('block', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: 'Bash', handler: () => null },
        { toolName: 'Bash', handler: () => { later.push('bash') } },
        { toolName: 'Write', handler: (p: any) => ({ ...p, content: 42 }) }, // not a string: invalid
      ],
    })
    expectOk(r)
    expect(later).toEqual([])
    const [bash, write] = resultsAt(mock, 1)
    expect(bash).toMatchObject({ isError: true, content: expect.stringContaining('blocked by policy') })
    expect(write.isError).toBe(true)
    expect(r.stats.blockedCalls).toBe(1)
    expect(r.stats.filesCreated).toBe(0)
  })

  it('a handler that changes a counter is not counted twice by the built-in tool', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [
        {
          toolCalls: [
            { name: 'Bash', input: { command: 'echo COUNTED' } },
            { name: 'Bash', input: { command: 'echo plain' } },
            { name: 'Write', input: { file: 'a.txt', content: 'a' } },
            { name: 'Write', input: { file: 'b.txt', content: 'b' } },
          ],
        },
        { text: 'counted' },
      ],
    })
    const r = await executor.execute('count', {
      model: modelOf(mock, 'anthropic'),
      interceptors: [
        { toolName: 'Bash', handler: (p: any, ctx: any) => { if (p.command.includes('COUNTED')) ctx.metadata.commandsExecuted++; return p } },
        { toolName: 'Write', handler: (p: any, ctx: any) => { if (p.file === 'a.txt') ctx.metadata.filesCreated += 1; return undefined } },
      ],
    })
    expectOk(r)
    expect(resultsAt(mock, 1)[0].content).toContain('COUNTED')
    expect(r.stats.commandsExecuted).toBe(2)
    expect(r.stats.filesCreated).toBe(2)
  })
})

// ================================================================ 4. maxTurns

describe('maxTurns', () => {
  const { executor } = setup()

  it('a model that keeps calling tools fails with MAX_TURNS_EXCEEDED after maxTurns turns', async () => {
    const script: ScriptedTurn[] = Array.from({ length: 10 }, (_, i) => ({ toolCalls: [{ name: 'Bash', input: { command: `echo turn-${i}` } }] }))
    const mock = await mockLlm({ provider: 'anthropic', script })
    const r = await executor.execute('loop forever', { model: modelOf(mock, 'anthropic'), maxTurns: 3 })
    expect(r.exitCode).toBe(1)
    expect(r.error?.code).toBe('MAX_TURNS_EXCEEDED')
    expect(r.stats.turns).toBe(3)
    expect(mock.requests).toHaveLength(3)
    expect(r.stats.commandsExecuted).toBe(3)
    expect(await goneOf(r.sandboxId)).toEqual(NONE) // autoCleanup also after a failure
  })
})

// ================================================================ 5. model failures

describe.each(['anthropic', 'openai'] as const)('model failures (%s)', (provider) => {
  const { executor } = setup()

  it('500 then success: retried, exitCode 0', async () => {
    const mock = await mockLlm({ provider, script: [{ status: 500, error: 'transient' }, { text: 'recovered' }] })
    const r = await executor.execute('retry 500', { model: modelOf(mock, provider, { maxRetries: 3 }) })
    expectOk(r)
    expect(r.output).toBe('recovered')
    expect(mock.requests).toHaveLength(2)
    expect(mock.remaining()).toBe(0)
  })

  it('429 with retry-after: 0 then success', async () => {
    const mock = await mockLlm({ provider, script: [{ status: 429, error: 'slow down', headers: { 'retry-after': '0' } }, { text: 'after 429' }] })
    const r = await within(executor.execute('retry 429', { model: modelOf(mock, provider) }), 20_000, 'retried run')
    expectOk(r)
    expect(r.output).toBe('after 429')
    expect(mock.requests).toHaveLength(2)
  })

  it('a wrong key (401) fails with PERMISSION_DENIED quoting the API message, without retrying', async () => {
    const mock = await mockLlm({ provider, requireKey: 'the-right-key', script: [{ text: 'never' }] })
    const r = await executor.execute('bad key', { model: modelOf(mock, provider, { apiKey: 'a-wrong-key' }) })
    expect(r.exitCode).toBe(1)
    expect(r.error?.code).toBe('PERMISSION_DENIED')
    expect(r.error?.message).toContain(provider === 'anthropic' ? 'invalid x-api-key' : 'Incorrect API key provided.')
    expect(mock.requests).toHaveLength(1)
    if (r.sandboxId) expect(await goneOf(r.sandboxId)).toEqual(NONE)
  })

  it('persistent 500 with maxRetries 1: MODEL_ERROR quoting the message, after 2 requests', async () => {
    const mock = await mockLlm({
      provider,
      script: [{ status: 500, error: 'upstream exploded' }, { status: 500, error: 'upstream exploded' }, { text: 'never' }],
    })
    const r = await executor.execute('always 500', { model: modelOf(mock, provider, { maxRetries: 1 }) })
    expect(r.exitCode).toBe(1)
    expect(r.error?.code).toBe('MODEL_ERROR')
    expect(r.error?.message).toContain('upstream exploded')
    expect(mock.requests).toHaveLength(2)
    expect(mock.remaining()).toBe(1)
  })

  it('persistent 429 after the retries: QUOTA_EXCEEDED', async () => {
    const busy: ScriptedTurn = { status: 429, error: 'rate limited for good', headers: { 'retry-after': '0' } }
    const mock = await mockLlm({ provider, script: [busy, busy, busy] })
    const r = await executor.execute('always 429', { model: modelOf(mock, provider, { maxRetries: 1 }) })
    expect(r.exitCode).toBe(1)
    expect(r.error?.code).toBe('QUOTA_EXCEEDED')
    expect(r.error?.message).toContain('rate limited for good')
    expect(mock.requests).toHaveLength(2)
  })
})

// ================================================================ 6. OpenAI provider

describe('agent task through the OpenAI provider', () => {
  const { executor } = setup()

  it('write, run, read via tool_calls; tool results recorded as role "tool" messages', async () => {
    const mock = await mockLlm({
      provider: 'openai',
      requireKey: KEY,
      script: [
        { toolCalls: [{ name: 'Write', input: { file_path: '/workspace/calc.sh', content: 'echo product=$((6*7)) | tee result.txt\n' } }] },
        { toolCalls: [{ name: 'Bash', input: { command: 'sh calc.sh' } }, { name: 'Read', input: { file: 'result.txt' } }] },
        { text: 'product is 42' },
      ],
    })
    const r = await executor.execute('compute a product', {
      systemPrompt: 'OPENAI-SYSTEM-PROMPT',
      model: modelOf(mock, 'openai', { name: 'gpt-test' }),
      captureFiles: true,
    })
    expectOk(r)
    expect(r.output).toBe('product is 42')
    expect(mock.requests).toHaveLength(3)
    for (const req of mock.requests) {
      expect(req.toolNames).toEqual(TOOL_NAMES)
      expect(req.system).toContain('OPENAI-SYSTEM-PROMPT')
      expect(req.system).toContain('/workspace')
      expect(req.body.model).toBe('gpt-test')
    }
    const [write] = resultsAt(mock, 1)
    expect(write.content).toContain('calc.sh')
    const [bash, read] = resultsAt(mock, 2)
    expect(bash.content).toContain('product=42')
    expect(read.content).toContain('product=42')
    // the conversation carries the assistant's tool_calls and one tool message per call
    const msgs = mock.requests[2].body.messages
    expect(msgs.filter((m: any) => m.role === 'assistant' && m.tool_calls?.length)).toHaveLength(2)
    expect(msgs.filter((m: any) => m.role === 'tool')).toHaveLength(3)
    expect(r.stats).toMatchObject({ turns: 3, toolCalls: 3, commandsExecuted: 1, filesCreated: 1, errors: 0 })
    expect(r.files.map((f: any) => f.path).sort()).toEqual(['calc.sh', 'result.txt'])
  })
})

// ================================================================ 7. no model configured

describe('no model key or endpoint', () => {
  const { manager, executor } = setup()
  const present = envModelVars()

  it.skipIf(present.length > 0)('fails with INVALID_CONFIG before any sandbox is created', async () => {
    // (skipped when ANTHROPIC_* / OPENAI_* variables are set in this environment)
    const mine = ownerPidLabel(process.pid)
    const before = dockerLabelled(mine)
    const sandboxesBefore = manager.listSandboxes().length
    for (const model of [undefined, { provider: 'anthropic' as const }, { provider: 'openai' as const, name: 'gpt-x' }]) {
      const r = await executor.execute('no model', { model })
      expect(r.exitCode).toBe(1)
      expect(r.error?.code).toBe('INVALID_CONFIG')
      expect(r.error?.message.length).toBeGreaterThan(0)
      expect(manager.listSandboxes()).toHaveLength(sandboxesBefore)
      expect(dockerLabelled(mine)).toEqual(before)
    }
  })

  it('bad numbers in the model options fail with INVALID_CONFIG naming the option', async () => {
    const base = { provider: 'anthropic' as const, apiKey: 'k', baseURL: 'http://127.0.0.1:9' }
    for (const [model, name] of [
      [{ ...base, maxTokens: -1 }, 'maxTokens'],
      [{ ...base, maxTokens: 1.5 }, 'maxTokens'],
      [{ ...base, maxRetries: -2 }, 'maxRetries'],
    ] as const) {
      const r = await executor.execute('bad numbers', { model })
      expect(r.exitCode).toBe(1)
      expect(r.error?.code).toBe('INVALID_CONFIG')
      expect(r.error?.message).toContain(name)
    }
  })
})

// ================================================================ 8. executeParallel

describe('executeParallel', () => {
  const { executor } = setup()

  it('runs at most `concurrency` tasks at once, results in input order, a bad config fails alone', async () => {
    const names = ['task-alpha', 'task-bravo', 'task-charlie', 'task-delta', 'task-echo']
    const scripts: Record<string, ScriptedTurn[]> = {}
    for (const n of names) {
      scripts[n] = [{ toolCalls: [{ name: 'Bash', input: { command: `sleep 1; echo ran-${n}` } }] }, (req) => ({ text: `result of ${n}: ${req.lastToolResults[0]?.content.trim()}` })]
    }
    const mock = await mockLlm({ provider: 'anthropic', scripts })
    const model = modelOf(mock, 'anthropic')
    const tasks = names.map((task) => ({ task, config: { model } }))
    tasks.splice(2, 0, { task: 'task-bad', config: { model, captureFiles: true, capturePatterns: ['a['] } as any })

    let maxActive = 0
    let polling = true
    const poller = (async () => {
      while (polling) {
        maxActive = Math.max(maxActive, executor.listActive().length)
        await sleep(50)
      }
    })()
    let results: any[]
    try {
      results = await within(executor.executeParallel(tasks, { concurrency: 2 }), 60_000, 'executeParallel')
    } finally {
      polling = false
      await poller
    }
    expect(results).toHaveLength(6)
    const bad = results[2]
    expect(bad.exitCode).toBe(1)
    expect(bad.error?.code).toBe('INVALID_CONFIG')
    const good = results.filter((_, i) => i !== 2)
    good.forEach((r, i) => {
      expectOk(r)
      expect(r.output).not.toBe(EXHAUSTED_TEXT)
      expect(r.output).toBe(`result of ${names[i]}: ran-${names[i]}`)
    })
    for (const n of names) expect(mock.remaining(n)).toBe(0)
    expect(maxActive).toBeLessThanOrEqual(2)
    expect(maxActive).toBeGreaterThanOrEqual(2)
    expect(executor.listActive()).toEqual([])
  })
})

// ================================================================ 9. captured files

describe('captured files', () => {
  const { executor } = setup()

  // Creates the test tree through the tools (a JS agent, so no model is needed).
  const makeTree = async (_task: string, tools: any) => {
    const files: Record<string, string> = {
      'a.js': 'console.log("a")\n',
      'src/b.js': 'export const b = 1\n',
      'src/lib/c.js': 'export const c = 2\n',
      'src/lib/c.json': '{"c": 2}\n',
      '.hidden.js': '// hidden\n',
      'docs/readme.md': '# Readme\n\nA somewhat longer document for the size limit.\n',
    }
    for (const [file, content] of Object.entries(files)) {
      const r = await tools.call('Write', { file, content })
      if (r.isError) throw new Error(`Write ${file}: ${r.content}`)
    }
    const r = await tools.call('Bash', { command: "printf '\\000\\001\\377' > bin.dat" })
    if (r.isError) throw new Error(`Bash: ${r.content}`)
    return 'tree made'
  }
  const capture = async (extra: Record<string, any>) => {
    const r = await executor.execute('make a tree', { agent: makeTree, captureFiles: true, ...extra })
    expectOk(r)
    return r
  }
  const paths = (r: any) => r.files.map((f: any) => f.path).sort()

  it("['*.js'] matches at any depth, without dotfiles; captureDotfiles adds them", async () => {
    const r = await capture({ capturePatterns: ['*.js'] })
    expect(paths(r)).toEqual(['a.js', 'src/b.js', 'src/lib/c.js'])
    expect(r.files.find((f: any) => f.path === 'src/lib/c.js')).toMatchObject({ content: 'export const c = 2\n', encoding: 'utf8', size: 19 })
    const d = await capture({ capturePatterns: ['*.js'], captureDotfiles: true })
    expect(paths(d)).toEqual(['.hidden.js', 'a.js', 'src/b.js', 'src/lib/c.js'])
  })

  it("['src/*.js'] matches only direct children of src", async () => {
    const r = await capture({ capturePatterns: ['src/*.js'] })
    expect(paths(r)).toEqual(['src/b.js'])
  })

  it('no patterns: every file, binary ones as base64; [] none; captureFiles false none', async () => {
    const r = await capture({})
    expect(paths(r)).toEqual(['a.js', 'bin.dat', 'docs/readme.md', 'src/b.js', 'src/lib/c.js', 'src/lib/c.json'])
    const bin = r.files.find((f: any) => f.path === 'bin.dat')
    expect(bin).toMatchObject({ encoding: 'base64', content: Buffer.from([0, 1, 255]).toString('base64'), size: 3 })
    expect(bin.skipped).toBeFalsy()
    expect(r.files.find((f: any) => f.path === 'a.js')).toMatchObject({ encoding: 'utf8', content: 'console.log("a")\n' })

    const none = await capture({ capturePatterns: [] })
    expect(none.files).toEqual([])
    const off = await executor.execute('make a tree', { agent: makeTree, capturePatterns: ['*.js'] })
    expectOk(off)
    expect(off.files).toEqual([])
  })

  it('captureMaxFileBytes: larger files are listed with skipped and no content; captureMaxFiles caps the count', async () => {
    const r = await capture({ captureMaxFileBytes: 20, capturePatterns: ['*.md', '*.js'] })
    const readme = r.files.find((f: any) => f.path === 'docs/readme.md')
    expect(readme).toBeDefined()
    expect(readme.skipped).toBeTruthy()
    expect(readme.content).toBe('')
    expect(readme.size).toBe(Buffer.byteLength('# Readme\n\nA somewhat longer document for the size limit.\n'))
    const a = r.files.find((f: any) => f.path === 'a.js')
    expect(a.skipped).toBeFalsy()
    expect(a.content).toBe('console.log("a")\n')

    const capped = await capture({ captureMaxFiles: 2 })
    expect(capped.files).toHaveLength(2)
  })
})

// ================================================================ 10. autoCleanup

describe('autoCleanup', () => {
  const { executor } = setup()

  it('default: the sandbox is destroyed after the run', async () => {
    const mock = await mockLlm({ provider: 'anthropic', script: [{ toolCalls: [{ name: 'Bash', input: { command: 'echo x' } }] }, { text: 'bye' }] })
    const r = await executor.execute('cleanup', { model: modelOf(mock, 'anthropic') })
    expectOk(r)
    expect(r.sandboxId).toBeDefined()
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
    expect(executor.getContext(r.sandboxId)).toBeUndefined()
    expect(executor.listActive()).toEqual([])
  })

  it('false: the sandbox is kept with its context until cleanupAll()', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [{ toolCalls: [{ name: 'Bash', input: { command: 'echo kept > kept.txt' } }] }, { text: 'kept' }],
    })
    const r = await executor.execute('keep', { agentName: 'keeper', model: modelOf(mock, 'anthropic'), autoCleanup: false })
    expectOk(r)
    const id = r.sandboxId
    expect(dockerLabelled(sandboxLabel(id)).containers).toBe(1)
    const ctx = executor.getContext(id)
    expect(ctx).toBeDefined()
    expect(ctx.sandbox.id).toBe(id)
    expect(ctx.workspacePath).toBe('/workspace')
    expect(ctx.metadata.agentName).toBe('keeper')
    expect(ctx.metadata.commandsExecuted).toBe(r.stats.commandsExecuted)
    expect(ctx.metadata.commandsExecuted).toBe(1)
    const cat = await ctx.sandbox.execute('cat', ['kept.txt'])
    expect(cat).toMatchObject({ exitCode: 0, stdout: 'kept\n' })
    expect(executor.listActive().map((c: any) => c.sandbox.id)).toContain(id)

    await executor.cleanupAll()
    expect(await goneOf(id)).toEqual(NONE)
    expect(executor.getContext(id)).toBeUndefined()
    expect(executor.listActive()).toEqual([])
  })

  it('a failed run (maxTurns) with the default leaves nothing behind', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [{ toolCalls: [{ name: 'Bash', input: { command: 'true' } }] }, { toolCalls: [{ name: 'Bash', input: { command: 'true' } }] }],
    })
    const r = await executor.execute('fail', { model: modelOf(mock, 'anthropic'), maxTurns: 1 })
    expect(r.exitCode).toBe(1)
    expect(r.error?.code).toBe('MAX_TURNS_EXCEEDED')
    expect(r.sandboxId).toBeDefined()
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
    expect(executor.listActive()).toEqual([])
  })
})

// ================================================================ 11. timeoutSeconds

describe('timeoutSeconds', () => {
  const { executor } = setup()

  it('a run past its limit fails with EXECUTION_TIMEOUT (124) and the sandbox is destroyed', async () => {
    const mock = await mockLlm({
      provider: 'anthropic',
      script: [{ toolCalls: [{ name: 'Bash', input: { command: 'sleep 30' } }] }, { text: 'too late' }],
    })
    const r = await within(executor.execute('sleep long', { model: modelOf(mock, 'anthropic'), timeoutSeconds: 2 }), 20_000, 'timed-out run')
    expect(r.exitCode).toBe(124)
    expect(r.error?.code).toBe('EXECUTION_TIMEOUT')
    expect(r.sandboxId).toBeDefined()
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
    expect(executor.listActive()).toEqual([])
  })
})

// ================================================================ 12. bring your own agent

describe('bring your own agent', () => {
  const { executor } = setup()

  it('drives the sandboxed tools; interceptors apply; definitions; ctx.sandbox works', async () => {
    const calls: any = {}
    const seenByInterceptor: string[] = []
    const r = await executor.execute('my task text', {
      agentName: 'js-agent',
      interceptors: [
        { toolName: 'Bash', handler: (p: any) => { seenByInterceptor.push(p.command); return p.command.includes('forbidden') ? null : undefined } },
      ],
      agent: async (task: string, tools: any, ctx: any) => {
        calls.task = task
        calls.definitions = tools.definitions
        calls.write = await tools.call('Write', { file_path: '/workspace/js/hello.sh', content: 'echo from-js-agent\n' })
        calls.bash = await tools.call('Bash', { command: 'sh js/hello.sh' })
        calls.blocked = await tools.call('Bash', { command: 'echo forbidden' })
        calls.missing = await tools.call('Read', { file: 'nope.txt' })
        calls.exec = await ctx.sandbox.execute('cat', ['js/hello.sh'])
        calls.ctx = { workspacePath: ctx.workspacePath, agentName: ctx.metadata.agentName }
        return 'my answer'
      },
    })
    expectOk(r)
    expect(r.output).toBe('my answer')
    expect(r.agentName).toBe('js-agent')
    expect(calls.task).toBe('my task text')

    expect(calls.definitions).toHaveLength(7)
    expect(calls.definitions.map((d: any) => d.name).sort()).toEqual([...TOOL_NAMES].sort())
    for (const d of calls.definitions) {
      expect(typeof d.description).toBe('string')
      expect(d.description.length).toBeGreaterThan(0)
      expect(typeof d.inputSchema).toBe('object')
      expect(d.inputSchema.type).toBe('object')
      expect(typeof d.inputSchema.properties).toBe('object')
    }

    expect(calls.write.isError).toBe(false)
    expect(calls.bash).toMatchObject({ isError: false, content: expect.stringContaining('from-js-agent') })
    expect(calls.blocked.isError).toBe(true)
    expect(calls.blocked.content).toContain('blocked by policy')
    expect(calls.missing.isError).toBe(true)
    expect(seenByInterceptor).toEqual(['sh js/hello.sh', 'echo forbidden'])
    expect(calls.exec).toMatchObject({ exitCode: 0, stdout: 'echo from-js-agent\n' })
    expect(calls.ctx).toEqual({ workspacePath: '/workspace', agentName: 'js-agent' })

    expect(r.stats.commandsExecuted).toBe(1)
    expect(r.stats.filesCreated).toBe(1)
    expect(r.stats.blockedCalls).toBe(1)
    expect(r.stats.toolCalls).toBe(4)
    expect(await goneOf(r.sandboxId)).toEqual(NONE)
  })

  it('an agent that throws (or rejects) fails the run with EXECUTION_ERROR and its message', async () => {
    const thrown = await executor.execute('throw', {
      agent: () => {
        throw new Error('agent exploded 123')
      },
    })
    expect(thrown.exitCode).toBe(1)
    expect(thrown.error?.code).toBe('EXECUTION_ERROR')
    expect(thrown.error?.message).toContain('agent exploded 123')

    const rejected = await executor.execute('reject', {
      agent: async (_t: string, tools: any) => {
        await tools.call('Bash', { command: 'true' })
        throw new Error('agent rejected 456')
      },
    })
    expect(rejected.exitCode).toBe(1)
    expect(rejected.error?.code).toBe('EXECUTION_ERROR')
    expect(rejected.error?.message).toContain('agent rejected 456')
    if (rejected.sandboxId) expect(await goneOf(rejected.sandboxId)).toEqual(NONE)
    expect(executor.listActive()).toEqual([])
  })

  it('a sync agent returning a string works', async () => {
    const r = await executor.execute('sync', { agent: (task: string) => `echo: ${task}` })
    expectOk(r)
    expect(r.output).toBe('echo: sync')
  })
})
