// Code contexts (README "Code contexts"): long-lived interpreters behind runCode(code, { context })
// on the devtools image (python3 + pandas + matplotlib, node), under both Docker engines. One
// sandbox is shared by the tests that only use their own contexts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { DEBIAN, DEVTOOLS, expectCode, goneOf, processList, waitFor } from './helpers.js'

/** Strings of the embedded drivers, found in their processes' command lines. */
const DRIVER_MARKS = ['_agentic_sandbox_driver', 'agenticSandboxDriver', '__agentic_sandbox_nonce']
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

let m: any
let sb: any

beforeAll(async () => {
  m = new SandboxManager({ image: DEVTOOLS })
  sb = await m.createSandbox({})
  await sb.start()
})

afterAll(async () => {
  await m?.destroyAll()
})

/** Runs `fn` with a new context of `language`, removed afterwards (the sandbox allows 8). */
async function withContext<T>(language: string, fn: (ctx: any) => Promise<T>, options: Record<string, any> = {}): Promise<T> {
  const ctx = await sb.createCodeContext({ language, ...options })
  try {
    return await fn(ctx)
  } finally {
    await sb.removeCodeContext(ctx)
  }
}

const main = (r: any) => r.results.find((x: any) => x.isMainResult)

describe('python contexts', () => {
  it('keep variables, imports and functions between calls; the last expression is the main result', async () => {
    await withContext('python', async (ctx) => {
      expect(ctx).toMatchObject({ language: 'python', cwd: '/workspace' })
      expect(ctx.id).toMatch(/^ctx-/)
      const a = await sb.runCode('import json\nx = 41\ndef twice(n):\n    return n * 2\nprint("set")', { context: ctx })
      expect(a).toMatchObject({ success: true, exitCode: 0, stdout: 'set\n', status: 'completed', language: 'python', contextRestarted: false })
      expect(a.results).toEqual([])
      expect(a.exception).toBeUndefined()
      const b = await sb.runCode('twice(x + 1)', { context: ctx.id })
      expect(main(b)).toEqual({ isMainResult: true, text: '84', json: 84 })
      const c = await sb.runCode('json.dumps({"k": [1, 2]}); {"k": [1, 2], "s": "t"}', { context: ctx })
      expect(main(c).json).toEqual({ k: [1, 2], s: 't' })
      expect(main(c).text).toBe("{'k': [1, 2], 's': 't'}")
      // a value that is not JSON has text only
      const d = await sb.runCode('object()', { context: ctx })
      expect(main(d).text).toMatch(/^<object object at/)
      expect(main(d).json).toBeUndefined()
    })
  })

  it('an error reports name, value and traceback; the context keeps its state', async () => {
    await withContext('python', async (ctx) => {
      await sb.runCode('kept = "yes"', { context: ctx })
      const r = await sb.runCode('def f():\n    return 1 / 0\nf()', { context: ctx })
      expect(r).toMatchObject({ success: false, exitCode: 1, status: 'failed', contextRestarted: false })
      expect(r.exception.name).toBe('ZeroDivisionError')
      expect(r.exception.value).toBe('division by zero')
      expect(r.exception.traceback).toContain('return 1 / 0')
      expect(r.exception.traceback).not.toContain('<string>')
      const s = await sb.runCode('def broken(:', { context: ctx })
      expect(s.exception.name).toBe('SyntaxError')
      expect(main(await sb.runCode('kept', { context: ctx })).text).toBe("'yes'")
    })
  })

  it('streams stdout and stderr, including output of subprocesses the cell starts', async () => {
    await withContext('python', async (ctx) => {
      const out: string[] = []
      const err: string[] = []
      const r = await sb.runCode(
        'import os, subprocess, sys\nprint("py-out")\nprint("py-err", file=sys.stderr)\nos.system("echo sub-out; echo sub-err >&2")\nsubprocess.run(["sh", "-c", "echo run-out"])',
        { context: ctx, onStdout: (s: string) => out.push(s), onStderr: (s: string) => err.push(s) },
      )
      expect(r.stdout).toBe('py-out\nsub-out\nrun-out\n')
      expect(r.stderr).toBe('py-err\nsub-err\n')
      expect(out.join('')).toBe(r.stdout)
      expect(err.join('')).toBe(r.stderr)
    })
  })

  it('rich outputs: a matplotlib figure as PNG, a DataFrame as html and text, display()', async () => {
    await withContext('python', async (ctx) => {
      const fig = await sb.runCode(
        'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 1, 9])\nplt.title("t")\nNone',
        { context: ctx },
      )
      expect(fig.exception).toBeUndefined()
      const pngs = fig.results.filter((x: any) => x.png)
      expect(pngs).toHaveLength(1)
      expect(Buffer.from(pngs[0].png, 'base64').subarray(0, 8)).toEqual(PNG_SIGNATURE)
      expect(pngs[0].isMainResult).toBe(false)
      // figures were closed at the end of the cell
      const again = await sb.runCode('len(plt.get_fignums())', { context: ctx })
      expect(main(again).json).toBe(0)
      const df = await sb.runCode('import pandas as pd\ndf = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})\ndf', { context: ctx })
      expect(main(df).html).toContain('<table')
      expect(main(df).text).toContain('a  b')
      const shown = await sb.runCode('display(df.head(1), 5)\n"done"', { context: ctx })
      expect(shown.results.map((x: any) => x.isMainResult)).toEqual([false, false, true])
      expect(shown.results[0].html).toContain('<table')
      expect(shown.results[1]).toMatchObject({ text: '5', json: 5 })
      const custom = await sb.runCode(
        'class Md:\n    def _repr_markdown_(self):\n        return "**b**"\n    def _repr_svg_(self):\n        return "<svg/>"\nMd()',
        { context: ctx },
      )
      expect(main(custom)).toMatchObject({ markdown: '**b**', svg: '<svg/>' })
    })
  })

  it('a timeout interrupts a cell with SIGINT and keeps the variables', async () => {
    await withContext('python', async (ctx) => {
      await sb.runCode('v = 123', { context: ctx })
      const r = await sb.runCode('import time\ntime.sleep(30)', { context: ctx, timeout: 1 })
      expect(r).toMatchObject({ success: false, timedOut: true, status: 'timeout', contextRestarted: false, exitCode: 1 })
      expect(r.exception.name).toBe('TimeoutError')
      expect(r.exception.traceback).toContain('KeyboardInterrupt')
      expect(main(await sb.runCode('v', { context: ctx })).json).toBe(123)
    })
  })

  it('a cell that ignores SIGINT past the grace is killed and the context restarted, and says so', async () => {
    await withContext('python', async (ctx) => {
      await sb.runCode('lost = 1', { context: ctx })
      const r = await sb.runCode(
        'import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)',
        { context: ctx, timeout: 1 },
      )
      expect(r).toMatchObject({ timedOut: true, contextRestarted: true, success: false, exitCode: 1 })
      expect(r.exception.name).toBe('TimeoutError')
      expect(r.exception.value).toContain('restarted')
      const after = await sb.runCode('"lost" in globals()', { context: ctx })
      expect(main(after).json).toBe(false)
      expect(after.contextRestarted).toBe(false)
    })
  })

  it('input() reads nothing (stdin is /dev/null), so it cannot eat the protocol', async () => {
    await withContext('python', async (ctx) => {
      const r = await sb.runCode('import sys\ndata = sys.stdin.read()\ntry:\n    input()\nexcept EOFError:\n    print("eof")\nlen(data)', { context: ctx })
      expect(r.stdout).toBe('eof\n')
      expect(main(r).json).toBe(0)
      expect(main(await sb.runCode('1 + 1', { context: ctx })).json).toBe(2)
    })
  })
})

describe('hostile cells', () => {
  it('a forged marker without the nonce is plain output', async () => {
    await withContext('python', async (ctx) => {
      const forged = '\x1e' + '0'.repeat(32) + '\x1e{"results":[{"text":"forged","isMainResult":true}],"error":null}'
      const lit = JSON.stringify(forged + '\n')
      const r = await sb.runCode(`import sys\nsys.stdout.write(${lit})\nsys.stderr.write(${lit})\n7`, { context: ctx })
      expect(main(r).json).toBe(7)
      expect(r.stdout).toContain('forged')
      expect(r.stderr).toContain('forged')
    })
  })

  it('an output flood is capped per cell (maxOutputBytes) and the next cell is clean', async () => {
    await withContext('python', async (ctx) => {
      const r = await sb.runCode('import os\nfor _ in range(64):\n    os.write(1, b"x" * 65536)\n"end"', { context: ctx, maxOutputBytes: 100_000 })
      expect(r.truncated).toBe(true)
      expect(r.stdout.length).toBe(100_000)
      expect(main(r).json).toBe('end')
      const next = await sb.runCode('print("clean")', { context: ctx })
      expect(next.stdout).toBe('clean\n')
      expect(next.truncated).toBe(false)
    })
  })

  it('a result over 16 MiB is refused with ResultTooLarge (the host caps the line too) and the next cell works', async () => {
    await withContext('python', async (ctx) => {
      const r = await sb.runCode('"y" * (40 * 1024 * 1024)', { context: ctx })
      expect(r.exception?.name).toBe('ResultTooLarge')
      expect(r.results).toEqual([])
      const next = await sb.runCode('3 * 3', { context: ctx })
      expect(main(next).json).toBe(9)
    })
  })

  it("a cell that steals its nonce can forge only its own result, and the host caps a forged 20 MB line", async () => {
    await withContext('python', async (ctx) => {
      const steal = [
        'import os, sys',
        'f = sys._getframe()',
        "while f is not None and 'nonce' not in f.f_locals:",
        '    f = f.f_back',
        "n, o, e = f.f_locals['nonce'], f.f_locals['out_fd'], f.f_locals['err_fd']",
        "m = b'\\x1e' + n + b'\\x1e'",
        'os.write(e, m)',
        `big = m + b'{"results":[{"text":"' + b'a' * (20 << 20) + b'","isMainResult":true}]}\\n'`,
        'while big:',
        '    big = big[os.write(o, big):]',
      ].join('\n')
      const r = await sb.runCode(steal, { context: ctx })
      expect(r.exception?.name).toBe('ResultError')
      expect(r.exception?.value).toContain('16777216')
      expect(r.results).toEqual([])
      // the driver's own end of that cell arrives late and is not this cell's result
      const next = await sb.runCode('7', { context: ctx })
      expect(main(next).json).toBe(7)
      expect(main(await sb.runCode('8', { context: ctx })).json).toBe(8)
    })
  })

  it('closing fd 1 and 2 in a cell does not break the protocol', async () => {
    await withContext('python', async (ctx) => {
      const r = await sb.runCode('import os\nos.close(1)\nos.close(2)\n5', { context: ctx })
      expect(main(r).json).toBe(5)
      const next = await sb.runCode('print("back")\n6', { context: ctx })
      expect(next.stdout).toBe('back\n')
      expect(main(next).json).toBe(6)
    })
  })

  it('a cell that kills its interpreter ends with an error; the context is restarted and usable', async () => {
    await withContext('python', async (ctx) => {
      await sb.runCode('gone = 1', { context: ctx })
      const r = await sb.runCode('import os\nprint("bye", flush=True)\nos._exit(3)', { context: ctx })
      expect(r).toMatchObject({ success: false, exitCode: 1, contextRestarted: true })
      expect(r.exception.name).toBe('ContextRestarted')
      expect(r.exception.value).toContain('exit code 3')
      const next = await sb.runCode('"gone" in globals()', { context: ctx })
      expect(main(next).json).toBe(false)
    })
  })

  it('an interpreter killed between cells is replaced on the next call (contextRestarted)', async () => {
    await withContext('python', async (ctx) => {
      const pid = main(await sb.runCode('import os\nos.getpid()', { context: ctx })).json
      await sb.execute('kill', ['-9', String(pid)])
      // (the engine reports the death within moments; a cell sent before that dies with it)
      await waitFor(async () => !(await processList(sb)).some((p) => p.startsWith(`${pid}:`)), 5000, 50)
      await new Promise((r) => setTimeout(r, 200))
      const r = await sb.runCode('1', { context: ctx })
      expect(r.contextRestarted).toBe(true)
      expect(main(r).json).toBe(1)
    })
  })
})

describe('javascript contexts', () => {
  it('keep let/const/functions; the completion value is the main result; promises are awaited', async () => {
    await withContext('javascript', async (ctx) => {
      expect(ctx.language).toBe('javascript')
      const a = await sb.runCode('let a = 20; const f = (n) => n * 2; function g() { return "g" }', { context: ctx })
      expect(a).toMatchObject({ success: true, exitCode: 0 })
      expect(main(await sb.runCode('f(a) + 2', { context: ctx }))).toEqual({ isMainResult: true, text: '42', json: 42 })
      expect(main(await sb.runCode('g()', { context: ctx })).json).toBe('g')
      expect(main(await sb.runCode('Promise.resolve({ k: 1 })', { context: ctx })).json).toEqual({ k: 1 })
      const awaited = await sb.runCode('const w = await new Promise((r) => setTimeout(() => r(5), 10))\nw + 1', { context: ctx })
      expect(main(awaited).json).toBe(6)
      expect(main(await sb.runCode('w', { context: ctx })).json).toBe(5)
      const logged = await sb.runCode('console.log("out"); console.error("err"); require("child_process").execSync("echo sub", { stdio: "inherit" }); 1', { context: ctx })
      expect(logged.stdout).toBe('out\nsub\n')
      expect(logged.stderr).toBe('err\n')
    })
  })

  it('require resolves relative to the context cwd; errors carry name, value, stack', async () => {
    await sb.writeFile('jsmod/helper.js', 'module.exports = { answer: 42 }')
    await withContext(
      'javascript',
      async (ctx) => {
        expect(ctx.cwd).toBe('/workspace/jsmod')
        expect(main(await sb.runCode('require("./helper.js").answer', { context: ctx })).json).toBe(42)
        const e = await sb.runCode('null.x', { context: ctx })
        expect(e.exception.name).toBe('TypeError')
        expect(e.exception.value).toContain('null')
        expect(e.exitCode).toBe(1)
        const r = await sb.runCode('Promise.reject(new RangeError("nope"))', { context: ctx })
        expect(r.exception).toMatchObject({ name: 'RangeError', value: 'nope' })
      },
      { cwd: 'jsmod' },
    )
  })

  it('a timeout interrupts a busy loop (breakOnSigint) or a pending await and keeps the state', async () => {
    await withContext('javascript', async (ctx) => {
      await sb.runCode('var keep = "k"', { context: ctx })
      const r = await sb.runCode('while (true) {}', { context: ctx, timeout: 1 })
      expect(r).toMatchObject({ timedOut: true, contextRestarted: false })
      expect(r.exception.name).toBe('TimeoutError')
      // an awaited Promise that never settles is rejected by the SIGINT handler
      const pending = await sb.runCode('await new Promise(() => {})', { context: ctx, timeout: 1 })
      expect(pending).toMatchObject({ timedOut: true, contextRestarted: false })
      expect(main(await sb.runCode('keep', { context: ctx })).json).toBe('k')
    })
  })

  it('process.exit() restarts the context', async () => {
    await withContext('javascript', async (ctx) => {
      const r = await sb.runCode('process.exit(4)', { context: ctx })
      expect(r.contextRestarted).toBe(true)
      expect(main(await sb.runCode('1 + 1', { context: ctx })).json).toBe(2)
    })
  })
})

describe('typescript contexts', () => {
  it('transpile each cell (esbuild from tsx here) and keep state; without a compiler in the image, INVALID_ARGUMENT', async () => {
    await withContext('typescript', async (ctx) => {
      expect(ctx.language).toBe('typescript')
      await sb.runCode('interface P { n: number }\nconst p: P = { n: 21 }\nfunction twice(x: number): number { return x * 2 }', { context: ctx })
      const r = await sb.runCode('twice(p.n) as number', { context: ctx })
      expect(main(r).json).toBe(42)
      const bad = await sb.runCode('const = ;', { context: ctx })
      expect(bad.exception.name).toBe('SyntaxError')
      expect(main(await sb.runCode('p.n', { context: ctx })).json).toBe(21)
    })
    const m2: any = new SandboxManager({ image: DEBIAN })
    try {
      const plain = await m2.createSandbox({})
      await plain.start()
      const e = await expectCode(plain.createCodeContext({ language: 'typescript' }), 'INVALID_ARGUMENT')
      expect(e.message).toContain("installPackages: ['typescript']")
      expect(await plain.listCodeContexts()).toEqual([])
    } finally {
      await m2.destroyAll()
    }
  })
})

describe('bash contexts', () => {
  it('keep cwd, variables and functions; exitCode is the last status', async () => {
    await withContext('bash', async (ctx) => {
      const a = await sb.runCode('cd /tmp\nV=3\nf() { echo "f$1"; }', { context: ctx })
      expect(a).toMatchObject({ success: true, exitCode: 0 })
      const b = await sb.runCode('pwd; echo $V; f 9', { context: ctx })
      expect(b.stdout).toBe('/tmp\n3\nf9\n')
      const c = await sb.runCode('echo x >&2; false', { context: ctx })
      expect(c).toMatchObject({ success: false, exitCode: 1, stderr: 'x\n' })
      expect(c.exception.name).toBe('NonZeroExitStatus')
      const t = await sb.runCode('sleep 30', { context: ctx, timeout: 1 })
      expect(t).toMatchObject({ timedOut: true, contextRestarted: false })
      expect((await sb.runCode('echo $V', { context: ctx })).stdout).toBe('3\n')
    })
  })
})

describe('lifecycle', () => {
  it('two contexts are isolated; list, restart and remove', async () => {
    const a = await sb.createCodeContext({ language: 'python' })
    const b = await sb.createCodeContext({ language: 'python', env: { CTX_NAME: 'bee' } })
    try {
      await sb.runCode('secret = "a"', { context: a })
      const r = await sb.runCode('import os\nprint(os.environ["CTX_NAME"])\n"secret" in globals()', { context: b })
      expect(main(r).json).toBe(false)
      expect(r.stdout).toBe('bee\n')
      const ids = (await sb.listCodeContexts()).map((c: any) => c.id)
      expect(ids).toEqual(expect.arrayContaining([a.id, b.id]))
      await sb.restartCodeContext(a)
      expect(main(await sb.runCode('"secret" in globals()', { context: a })).json).toBe(false)
    } finally {
      expect(await sb.removeCodeContext(a.id)).toBe(true)
      expect(await sb.removeCodeContext(b)).toBe(true)
    }
    expect(await sb.removeCodeContext(a.id)).toBe(false)
    // removed contexts leave no interpreter behind (the other tests removed theirs too)
    const drivers = async () => (await processList(sb)).filter((p) => DRIVER_MARKS.some((d) => p.includes(d)))
    expect(await waitFor(async () => (await drivers()).length === 0, 5000, 100)).toBe(true)
    const e = await expectCode(sb.runCode('1', { context: a.id }), 'INVALID_ARGUMENT')
    expect(e.message).toContain('createCodeContext')
  })

  it('refuses go, an unknown language, a language mismatch, workdir/env per cell; at most 8 contexts (QUOTA_EXCEEDED)', async () => {
    await expectCode(sb.createCodeContext({ language: 'go' }), 'INVALID_ARGUMENT')
    await expectCode(sb.createCodeContext({ language: 'cobol' }), 'INVALID_ARGUMENT')
    const made: any[] = []
    try {
      const first = await sb.createCodeContext({ language: 'bash' })
      made.push(first)
      await expectCode(sb.runCode('1', { context: first, language: 'python' }), 'INVALID_ARGUMENT')
      await expectCode(sb.runCode('1', { context: first, workdir: 'x' }), 'INVALID_ARGUMENT')
      const have = (await sb.listCodeContexts()).length
      for (let i = have; i < 8; i++) made.push(await sb.createCodeContext({ language: 'bash' }))
      const e = await expectCode(sb.createCodeContext({ language: 'bash' }), 'QUOTA_EXCEEDED')
      expect(e.message).toContain('removeCodeContext')
    } finally {
      for (const c of made) await sb.removeCodeContext(c)
    }
  })

  it('cells of one context run one at a time, in call order', async () => {
    await withContext('python', async (ctx) => {
      await sb.runCode('seen = []', { context: ctx })
      const runs = await Promise.all(
        [0, 1, 2].map((i) => sb.runCode(`import time\nseen.append(${i})\ntime.sleep(0.1)\nlist(seen)`, { context: ctx })),
      )
      expect(runs.map((r: any) => main(r).json)).toEqual([[0], [0, 1], [0, 1, 2]])
    })
  })

  it('removing a context while a cell runs ends the cell and leaves no interpreter', async () => {
    const ctx = await sb.createCodeContext({ language: 'python' })
    const pid = main(await sb.runCode('import os\nos.getpid()', { context: ctx })).json
    const running = sb.runCode('import time\ntime.sleep(60)', { context: ctx, timeout: 120 })
    await new Promise((r) => setTimeout(r, 300))
    expect(await sb.removeCodeContext(ctx)).toBe(true)
    const r = await running
    expect(r.success).toBe(false)
    expect(r.exception.name).toBe('ContextRemoved')
    expect(r.contextRestarted).toBe(false)
    await waitFor(async () => !(await processList(sb)).some((p) => p.startsWith(`${pid}:`)), 5000, 50)
    const drivers = (await processList(sb)).filter((p) => DRIVER_MARKS.some((d) => p.includes(d)))
    expect(drivers).toEqual([])
  })

  it('without a context, runCode still runs a fresh interpreter', async () => {
    await sb.runCode('fresh = 1', { language: 'python' })
    const r = await sb.runCode('print("fresh" in globals())', { language: 'python' })
    expect(r.stdout).toBe('False\n')
    expect(r.results).toBeUndefined()
  })

  it("a pool's release (reset) ends the sandbox's contexts", async () => {
    const m3: any = new SandboxManager({ image: DEVTOOLS })
    try {
      const pool = await m3.createPool({}, { min: 1, max: 1 })
      const s = await pool.acquire()
      const c = await s.createCodeContext({ language: 'python' })
      await s.runCode('x = 1', { context: c })
      await pool.release(s)
      const again = await pool.acquire()
      expect(again.id).toBe(s.id)
      expect(await again.listCodeContexts()).toEqual([])
      await expectCode(again.runCode('x', { context: c }), 'INVALID_ARGUMENT')
      expect((await processList(again)).filter((p) => DRIVER_MARKS.some((d) => p.includes(d)))).toEqual([])
      await pool.release(again)
      await pool.destroy()
    } finally {
      await m3.destroyAll()
    }
  })

  it('contexts restart after stop/start and end with their sandbox: no interpreter is left, and the ids are gone', async () => {
    const m2: any = new SandboxManager({ image: DEVTOOLS })
    const sb2 = await m2.createSandbox({})
    try {
      await sb2.start()
      const c = await sb2.createCodeContext({ language: 'python' })
      await sb2.createCodeContext({ language: 'javascript' })
      // stop ends the interpreters; the next cell after start gets a fresh one and says so
      await sb2.runCode('x = 1', { context: c })
      await sb2.stop()
      await sb2.start()
      const fresh = await sb2.runCode('"x" in globals()', { context: c })
      expect(fresh.contextRestarted).toBe(true)
      expect(main(fresh).json).toBe(false)
      const running = (await processList(sb2)).filter((p) => DRIVER_MARKS.some((d) => p.includes(d)))
      expect(running.length).toBeGreaterThanOrEqual(2)
      await sb2.destroy()
      expect(await sb2.listCodeContexts()).toEqual([])
      await expectCode(sb2.runCode('1', { context: c }), 'INVALID_ARGUMENT')
      expect(await goneOf(sb2.id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await m2.destroyAll()
    }
  })
})
