// Templates, runCode, installPackages / startupScript and runTests against real images: the devtools
// image (go, pytest, pip, jest, vitest, tsx) and a pip index served by this test process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import {
  BUSYBOX,
  DEBIAN,
  DEVTOOLS,
  expectCode,
  goneOf,
  processList,
  startPipIndex,
  type PipIndex,
  TEST_TEMPLATES,
  waitFor,
} from './helpers.js'

const NONE = { containers: 0, volumes: 0, networks: 0 }

const newManager = (config: Record<string, any> = {}): any =>
  new SandboxManager({ image: BUSYBOX, templates: TEST_TEMPLATES, ...config })

/** Create + start a sandbox on `m`, run fn, destroy everything of `m`. */
async function withStarted<T>(m: any, config: Record<string, any>, fn: (sb: any) => Promise<T>): Promise<T> {
  try {
    const sb = await m.createSandbox(config)
    await sb.start()
    return await fn(sb)
  } finally {
    await m.destroyAll()
  }
}

const GO_HELLO = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("go says", 6*7)\n}\n'

// ------------------------------------------------------------------------------------------ templates

describe('templates', () => {
  it("template 'python' picks the image from `templates`; getStatus reports image and template", async () => {
    const m = newManager()
    try {
      const sb = await m.createSandbox({ template: 'python' })
      const st = await sb.getStatus()
      expect(st.image).toBe(DEVTOOLS)
      expect(st.template).toBe('python')
      expect(st.state).toBe('created')
      const base = await m.createSandbox({ template: 'base' })
      expect((await base.getStatus()).image).toBe(DEBIAN)
      // no template: the manager's image
      const plain = await m.createSandbox({})
      const ps = await plain.getStatus()
      expect(ps.image).toBe(BUSYBOX)
      expect(ps.template ?? undefined).toBeUndefined()
    } finally {
      await m.destroyAll()
    }
  })

  it('an unknown template is INVALID_CONFIG naming the known ones', async () => {
    const m = newManager({ templates: { ...TEST_TEMPLATES, ml: DEVTOOLS } })
    try {
      const e = await expectCode(m.createSandbox({ template: 'rust' }), 'INVALID_CONFIG')
      expect(e.message).toContain('rust')
      for (const known of ['base', 'python', 'node', 'go', 'ml']) expect(e.message).toContain(known)
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })

  it('`image` in the same config wins over the template', async () => {
    const m = newManager()
    try {
      const sb = await m.createSandbox({ template: 'python', image: DEBIAN })
      const st = await sb.getStatus()
      expect(st.image).toBe(DEBIAN)
      expect(st.template).toBe('python')
      await sb.start()
      // DEBIAN has python3 but no go: the container really is the Debian image
      expect((await sb.execute('sh', ['-c', 'command -v go || echo no-go'])).stdout).toBe('no-go\n')
      // the template still decides runCode's default language
      const r = await sb.runCode('import sys; print("py", sys.version_info[0])')
      expect(r.language).toBe('python')
      expect(r.output).toBe('py 3\n')
    } finally {
      await m.destroyAll()
    }
  })

  it("runCode's default language follows the template", async () => {
    const m = newManager()
    const cases: Array<[string, string, string, string]> = [
      ['nodejs', 'javascript', 'console.log("js", [1, 2, 3].length)', 'js 3\n'],
      ['base', 'bash', 'echo "sh $((6 * 7))"', 'sh 42\n'],
      ['go', 'go', GO_HELLO, 'go says 42\n'],
    ]
    try {
      for (const [template, language, code, out] of cases) {
        const sb = await m.createSandbox({ template })
        await sb.start()
        try {
          const r = await sb.runCode(code)
          expect(r.language, template).toBe(language)
          expect(r.stderr, template).toBe('')
          expect(r.output, template).toBe(out)
          expect(r.status).toBe('completed')
        } finally {
          await sb.destroy()
        }
      }
    } finally {
      await m.destroyAll()
    }
  })
})

// ------------------------------------------------------------------------------------------ runCode

describe('runCode (devtools image, template python)', () => {
  const m = newManager()
  let sb: any

  beforeAll(async () => {
    sb = await m.createSandbox({ template: 'python' })
    await sb.start()
  })
  afterAll(async () => {
    await m.destroyAll()
  })

  it('python by default (the template), with the full result shape', async () => {
    const r = await sb.runCode('print(6 * 7)')
    expect(r).toMatchObject({ success: true, output: '42\n', stdout: '42\n', stderr: '', exitCode: 0, status: 'completed', language: 'python' })
    expect(r.error == null).toBe(true)
    expect(typeof r.duration).toBe('number')
    expect(r.duration).toBeGreaterThanOrEqual(0)
    expect(r.truncated).toBe(false)
  })

  it('javascript, typescript, bash and go', async () => {
    const cases: Array<[string, string, string]> = [
      ['javascript', 'console.log([1, 2, 3].map((x) => x * 2).join(","))', '2,4,6\n'],
      ['typescript', 'const n: number = 5\nconst f = (x: number): string => `ts ${x * 2}`\nconsole.log(f(n))', 'ts 10\n'],
      ['bash', 'for i in 1 2 3; do printf "%s" "$i"; done; echo; echo "${BASH_VERSION:+bash}"', '123\nbash\n'],
      ['go', GO_HELLO, 'go says 42\n'],
    ]
    for (const [language, code, out] of cases) {
      const r = await sb.runCode(code, { language })
      expect(r.stderr, language).toBe('')
      expect(r.output, language).toBe(out)
      expect(r.exitCode, language).toBe(0)
      expect(r.status, language).toBe('completed')
      expect(r.success, language).toBe(true)
      expect(r.language).toBe(language)
    }
  })

  it('language aliases', async () => {
    for (const [alias, language] of [
      ['py', 'python'],
      ['js', 'javascript'],
      ['node', 'javascript'],
      ['sh', 'bash'],
    ]) {
      const code = language === 'python' ? 'print("alias")' : language === 'javascript' ? 'console.log("alias")' : 'echo alias'
      const r = await sb.runCode(code, { language: alias })
      expect(r.language, alias).toBe(language)
      expect(r.output, alias).toBe('alias\n')
    }
  })

  it('a failing program: status failed, exit code, stderr in error', async () => {
    const r = await sb.runCode('import sys\nprint("partial")\nsys.stderr.write("boom-error\\n")\nsys.exit(3)')
    expect(r.status).toBe('failed')
    expect(r.success).toBe(false)
    expect(r.exitCode).toBe(3)
    expect(r.output).toBe('partial\n')
    expect(r.error).toContain('boom-error')
    expect(r.stderr).toContain('boom-error')

    const x = await sb.runCode('def f():\n    raise ValueError("bad value 17")\nf()')
    expect(x.status).toBe('failed')
    expect(x.exitCode).toBe(1)
    expect(x.error).toContain('ValueError: bad value 17')

    const js = await sb.runCode('throw new TypeError("js went wrong")', { language: 'javascript' })
    expect(js.status).toBe('failed')
    expect(js.exitCode).not.toBe(0)
    expect(js.error).toContain('js went wrong')

    const go = await sb.runCode('package main\n\nfunc main() { undefinedFunc() }\n', { language: 'go' })
    expect(go.status).toBe('failed')
    expect(go.error).toContain('undefined: undefinedFunc')
  })

  it('timeout: status timeout and the program is gone', async () => {
    const r = await sb.runCode('while True:\n    pass', { timeout: 1 })
    expect(r.status).toBe('timeout')
    expect(r.success).toBe(false)
    const left = await waitFor(async () => {
      const procs = await processList(sb)
      return procs.every((p) => !p.includes('.agentic-sandbox-')) ? procs : null
    }, 10_000)
    expect(left, 'the timed-out program is still running').toBeTruthy()
    // its hidden code file is removed as after any other run
    const files = await sb.listFiles('/workspace', { all: true })
    expect(files.filter((n: string) => n.startsWith('.agentic-sandbox-')), 'code file left after a timeout').toEqual([])
    // the sandbox is still usable
    expect((await sb.runCode('print("after")')).output).toBe('after\n')
  })

  it('an unknown language is INVALID_ARGUMENT', async () => {
    const e = await expectCode(sb.runCode('DISPLAY "HI"', { language: 'cobol' }), 'INVALID_ARGUMENT')
    expect(e.message).toContain('cobol')
    expect(e.message).toContain('python')
  })

  it('env and workdir options', async () => {
    expect((await sb.writeFile('sub/dir/marker.txt', 'm')).success).toBe(true)
    const r = await sb.runCode('import os\nprint(os.environ["GREETING"])\nprint(os.getcwd())\nprint(open("marker.txt").read())', {
      env: { GREETING: 'hello-env' },
      workdir: '/workspace/sub/dir',
    })
    expect(r.stderr).toBe('')
    expect(r.output).toBe('hello-env\n/workspace/sub/dir\nm\n')
    const js = await sb.runCode('console.log(process.env.GREETING, process.cwd())', {
      language: 'javascript',
      env: { GREETING: 'hi-js' },
      workdir: 'sub',
    })
    expect(js.output).toBe('hi-js /workspace/sub\n')
  })

  it('code can import workspace modules (python and javascript)', async () => {
    await sb.writeFile('helpers_mod.py', 'def triple(x):\n    return 3 * x\n')
    const py = await sb.runCode('from helpers_mod import triple\nprint(triple(14))')
    expect(py.stderr).toBe('')
    expect(py.output).toBe('42\n')
    await sb.writeFile('jsmod.js', 'module.exports = { twice: (x) => 2 * x }\n')
    const js = await sb.runCode('const { twice } = require("./jsmod.js"); console.log(twice(21))', { language: 'javascript' })
    expect(js.stderr).toBe('')
    expect(js.output).toBe('42\n')
  })

  it('leaves no temp file behind (workdir and a sub directory)', async () => {
    const hidden = async (dir: string) =>
      (await sb.listFiles(dir, { all: true })).filter((n: string) => n.startsWith('.agentic-sandbox')).sort()
    await sb.writeFile('sub/keep.txt', 'k')
    // (what an earlier test may have left is not this test's business)
    const before = { top: await hidden('/workspace'), sub: await hidden('/workspace/sub') }
    await sb.runCode('print("x")')
    await sb.runCode('console.log("y")', { language: 'javascript', workdir: 'sub' })
    await sb.runCode(GO_HELLO, { language: 'go' })
    await sb.runCode('import sys; sys.exit(2)')
    expect(await hidden('/workspace')).toEqual(before.top)
    expect(await hidden('/workspace/sub')).toEqual(before.sub)
  })

  it('the code does not wait for stdin (it reads EOF)', async () => {
    const r = await sb.runCode('import sys\ndata = sys.stdin.read()\nprint("stdin:", repr(data))', { timeout: 20 })
    expect(r.status).toBe('completed')
    expect(r.output).toBe("stdin: ''\n")
  })

  it('code with quotes, backslashes, unicode and many lines arrives unchanged', async () => {
    const text = `it's "quoted" \\ back\\slash $HOME \`tick\` ✓ 日本`
    const lines = Array.from({ length: 2000 }, (_, i) => `x${i} = ${i}`).join('\n')
    const code = `${lines}\ns = ${JSON.stringify(text)}\nprint(s)\nprint(x1999)`
    const r = await sb.runCode(code)
    expect(r.stderr).toBe('')
    expect(r.output).toBe(`${text}\n1999\n`)
  })
})

// ------------------------------------------------------------------------------------------ installPackages

/** Builds a minimal pure-Python wheel (agentic_demo 0.1) with python3's zipfile into `dir`. */
describe('installPackages and startupScript', () => {
  let index: PipIndex
  let requests: string[] = []

  beforeAll(async () => {
    index = await startPipIndex()
    requests = index.requests
  })

  afterAll(async () => {
    await index?.close()
  })

  const pipEnv = () => index.env

  it('needs network: installPackages with an isolated or no network is INVALID_CONFIG', async () => {
    const m = newManager()
    try {
      for (const networkMode of [undefined, 'isolated', 'none']) {
        const e = await expectCode(
          m.createSandbox({ template: 'python', installPackages: ['agentic_demo'], ...(networkMode ? { networkMode } : {}) }),
          'INVALID_CONFIG',
        )
        expect(e.message).toContain('bridge')
      }
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })

  it('templates without pip/npm (base: apt, go: none, no template) are INVALID_CONFIG', async () => {
    const m = newManager()
    try {
      for (const config of [
        { template: 'base' },
        { template: 'go' },
        { image: DEVTOOLS },
      ]) {
        await expectCode(m.createSandbox({ ...config, networkMode: 'bridge', installPackages: ['x'] }), 'INVALID_CONFIG')
      }
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })

  it('a real pip install from a local index: the package is importable by runCode and execute', async () => {
    const m = newManager()
    const before = requests.length
    await withStarted(
      m,
      { template: 'python', networkMode: 'bridge', installPackages: ['agentic_demo'], env: pipEnv() },
      async (sb) => {
        expect(requests.slice(before).some((u) => u.endsWith('agentic_demo-0.1-py3-none-any.whl'))).toBe(true)
        const r = await sb.runCode('import agentic_demo; print(agentic_demo.VALUE)')
        expect(r.stderr).toBe('')
        expect(r.output).toBe('agentic-demo-42\n')
        // every command sees the packages (PYTHONPATH), not only runCode
        const x = await sb.execute('python3', ['-c', 'import agentic_demo, sys; print(agentic_demo.__file__)'])
        expect(x.stderr).toBe('')
        expect(x.stdout).toMatch(/^\/workspace\/.+agentic_demo\/__init__\.py\n$/)
        const logs = sb.getLogs({ lines: 1000 }).logs
        expect(logs.some((e: any) => e.source === 'system' && e.message.includes('agentic_demo'))).toBe(true)
      },
    )
  })

  it('configure installs into a running sandbox: later code and commands import it; a missing package fails the step', async () => {
    const m = newManager()
    await withStarted(m, { template: 'python', networkMode: 'bridge', env: pipEnv() }, async (sb) => {
      expect((await sb.runCode('import agentic_demo')).exitCode).not.toBe(0)
      const chunks: string[] = []
      const r = await sb.configure({ installPackages: ['agentic_demo'], runCommands: ['python3 -c "import agentic_demo; print(agentic_demo.VALUE)"'], onStdout: (c: string) => chunks.push(c) })
      expect(r).toMatchObject({ success: true, packagesInstalled: 1, commandsExecuted: 1 })
      expect(r.steps.map((x: any) => x.kind)).toEqual(['install', 'command'])
      expect(r.steps[0].command).toContain('pip install')
      expect(r.steps[1].stdout).toBe('agentic-demo-42\n')
      expect(chunks.join('')).toContain('agentic-demo-42')
      expect((await sb.runCode('import agentic_demo; print(agentic_demo.VALUE)')).output).toBe('agentic-demo-42\n')
      expect((await sb.execute('python3', ['-c', 'import agentic_demo'])).exitCode).toBe(0)
      const bad = await sb.configure({ installPackages: ['agentic_missing_pkg'], runCommands: ['touch never'] })
      expect(bad).toMatchObject({ success: false, packagesInstalled: 0, commandsExecuted: 0 })
      expect(bad.steps).toHaveLength(1)
      expect(bad.steps[0].exitCode).not.toBe(0)
      expect((await sb.execute('ls', ['never'])).exitCode).not.toBe(0)
    })
  })

  it('a package that is not in the index: start rejects EXECUTION_ERROR and nothing is left', async () => {
    const m = newManager()
    try {
      const sb = await m.createSandbox({
        template: 'python',
        networkMode: 'bridge',
        installPackages: ['agentic_missing_pkg'],
        env: pipEnv(),
      })
      const e = await expectCode(sb.start(), 'EXECUTION_ERROR')
      expect(e.message).toContain('agentic_missing_pkg')
      // the installer's output is quoted
      expect(e.message).toMatch(/No matching distribution|Could not find a version/)
      expect(await goneOf(sb.id)).toEqual(NONE)
    } finally {
      await m.destroyAll()
    }
  })

  it('startupScript runs in the workdir at start; its files are there afterwards', async () => {
    const m = newManager()
    await withStarted(
      m,
      { startupScript: 'mkdir -p data && echo "ready at $(pwd)" > data/started.txt && echo script-output' },
      async (sb) => {
        const r = await sb.readFile('data/started.txt')
        expect(r.success).toBe(true)
        expect(r.content).toBe('ready at /workspace\n')
        const logs = sb.getLogs({ lines: 1000 }).logs
        expect(logs.some((e: any) => e.message.includes('script-output'))).toBe(true)
      },
    )
  })

  it('a failing startupScript: start rejects EXECUTION_ERROR with the exit code and output; nothing is left', async () => {
    const m = newManager()
    try {
      const sb = await m.createSandbox({ startupScript: 'echo about-to-fail; echo on-stderr >&2; exit 7' })
      const e = await expectCode(sb.start(), 'EXECUTION_ERROR')
      expect(e.message).toContain('7')
      expect(e.message).toContain('about-to-fail')
      expect(e.message).toContain('on-stderr')
      expect(await goneOf(sb.id)).toEqual(NONE)
    } finally {
      await m.destroyAll()
    }
  })
})

// ------------------------------------------------------------------------------------------ runTests

const JEST_PROJECT: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'jest-demo', private: true, scripts: { test: 'jest' } }, null, 2),
  'sum.js': 'exports.sum = (a, b) => a + b;\n',
  'sum.test.js': `const { sum } = require('./sum');

describe('sum', () => {
  test('adds two numbers', () => {
    expect(sum(1, 2)).toBe(3);
  });
  test('adds negatives', () => {
    expect(sum(-1, -1)).toBe(-2);
  });
  test('adds floats wrongly', () => {
    expect(sum(0.5, 0.25)).toBe(0.8);
  });
  test.skip('skipped case', () => {
    expect(sum(1, 1)).toBe(2);
  });
});
`,
}

const VITEST_PROJECT: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'vitest-demo', private: true, type: 'module', scripts: { test: 'vitest run' } }, null, 2),
  'sum.js': 'export const sum = (a, b) => a + b;\n',
  'sum.test.js': `import { describe, test, expect } from 'vitest';
import { sum } from './sum.js';

describe('sum', () => {
  test('adds two numbers', () => {
    expect(sum(1, 2)).toBe(3);
  });
  test('adds negatives', () => {
    expect(sum(-1, -1)).toBe(-2);
  });
  test('adds floats wrongly', () => {
    expect(sum(0.5, 0.25)).toBe(0.8);
  });
  test.skip('skipped case', () => {
    expect(sum(1, 1)).toBe(2);
  });
});
`,
}

const PYTEST_PROJECT: Record<string, string> = {
  'calc.py': 'def add(a, b):\n    return a + b\n',
  'test_calc.py': `import pytest
from calc import add


def test_add_passes():
    assert add(1, 2) == 3


def test_add_fails():
    assert add(2, 2) == 5, "two plus two is not five"


@pytest.mark.skip(reason="not today")
def test_add_skipped():
    assert add(0, 0) == 0
`,
}

const GO_PROJECT: Record<string, string> = {
  'go.mod': 'module example.com/goproj\n\ngo 1.19\n',
  'calc.go': 'package goproj\n\nfunc Add(a, b int) int { return a + b }\n',
  'calc_test.go': `package goproj

import "testing"

func TestAddPasses(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("1 + 2 is not 3")
	}
}

func TestAddFails(t *testing.T) {
	if got := Add(2, 2); got != 5 {
		t.Errorf("Add(2, 2) = %d, want 5", got)
	}
}

func TestAddSkipped(t *testing.T) {
	t.Skip("not today")
}
`,
}

describe('runTests (devtools image)', () => {
  const m = newManager()
  let sb: any

  const writeProject = async (dir: string, files: Record<string, string>) => {
    for (const [name, content] of Object.entries(files)) {
      const w = await sb.writeFile(`${dir}/${name}`, content)
      expect(w.success, `${dir}/${name}: ${w.error}`).toBe(true)
    }
  }

  /** What to show when a run does not look as expected. */
  const show = (r: any) => `command: ${r.command}\nexit ${r.exitCode}\noutput:\n${r.output}`

  beforeAll(async () => {
    sb = await m.createSandbox({ template: 'node' })
    await sb.start()
    await writeProject('jestproj', JEST_PROJECT)
    await writeProject('vitestproj', VITEST_PROJECT)
    await writeProject('pyproj', PYTEST_PROJECT)
    await writeProject('goproj', GO_PROJECT)
    await writeProject('empty', { 'README.txt': 'no tests here\n' })
  })
  afterAll(async () => {
    await m.destroyAll()
  })

  it('jest: detected from package.json; counts, failure name and message', async () => {
    const r = await sb.runTests({ workdir: 'jestproj' })
    expect(r.framework, show(r)).toBe('jest')
    expect(r.parsed, show(r)).toBe(true)
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }, show(r)).toEqual({ total: 4, passed: 2, failed: 1, skipped: 1 })
    expect(r.success).toBe(false)
    expect(r.exitCode).not.toBe(0)
    expect(r.timedOut).toBe(false)
    expect(r.failures.map((f: any) => f.name)).toEqual(['sum › adds floats wrongly'])
    expect(r.failures[0].message).toContain('0.8')
    expect(r.failures[0].message).toContain('0.75')
    expect(r.output).toContain('Tests:')
    expect(r.duration).toBeGreaterThan(0)
  })

  it('vitest: detected from package.json; counts, failure name and message', async () => {
    const r = await sb.runTests({ workdir: 'vitestproj' })
    expect(r.framework, show(r)).toBe('vitest')
    expect(r.parsed, show(r)).toBe(true)
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }, show(r)).toEqual({ total: 4, passed: 2, failed: 1, skipped: 1 })
    expect(r.success).toBe(false)
    expect(r.exitCode).not.toBe(0)
    expect(r.failures.map((f: any) => f.name)).toEqual(['sum > adds floats wrongly'])
    expect(r.failures[0].message).toContain('expected 0.75 to be 0.8')
  })

  it('pytest: detected from test_*.py; counts, failure name and message', async () => {
    const r = await sb.runTests({ workdir: 'pyproj' })
    expect(r.framework, show(r)).toBe('pytest')
    expect(r.parsed, show(r)).toBe(true)
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }, show(r)).toEqual({ total: 3, passed: 1, failed: 1, skipped: 1 })
    expect(r.success).toBe(false)
    expect(r.exitCode).toBe(1)
    expect(r.failures.map((f: any) => f.name)).toEqual(['test_calc.py::test_add_fails'])
    expect(r.failures[0].message).toContain('two plus two is not five')
    expect(r.failures[0].message).toContain('assert 4 == 5')
  })

  it('go: detected from go.mod; counts, failure name and message', async () => {
    const r = await sb.runTests({ workdir: 'goproj' })
    expect(r.framework, show(r)).toBe('go')
    expect(r.parsed, show(r)).toBe(true)
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }, show(r)).toEqual({ total: 3, passed: 1, failed: 1, skipped: 1 })
    expect(r.success).toBe(false)
    expect(r.exitCode).not.toBe(0)
    expect(r.failures.map((f: any) => f.name)).toEqual(['TestAddFails'])
    expect(r.failures[0].message).toContain('Add(2, 2) = 4, want 5')
    // the runner's temp dirs are cleaned up
    expect((await sb.listFiles('goproj', { all: true })).filter((n: string) => n.startsWith('.agentic-sandbox'))).toEqual([])
  })

  it('seed 004 loop: failing tests, fix the code, passing tests', async () => {
    await writeProject('loop', {
      'parity.py': 'def is_even(n):\n    return n % 2 == 1\n',
      'test_parity.py': 'from parity import is_even\n\n\ndef test_even():\n    assert is_even(4)\n\n\ndef test_odd():\n    assert not is_even(3)\n',
    })
    const first = await sb.runTests({ workdir: 'loop' })
    expect(first.framework, show(first)).toBe('pytest')
    expect(first.success).toBe(false)
    expect(first.failed, show(first)).toBe(2)
    expect(first.failures.map((f: any) => f.name).sort()).toEqual(['test_parity.py::test_even', 'test_parity.py::test_odd'])

    expect((await sb.writeFile('loop/parity.py', 'def is_even(n):\n    return n % 2 == 0  # fixed\n')).success).toBe(true)
    const second = await sb.runTests({ workdir: 'loop', framework: 'pytest' })
    expect(second.success, show(second)).toBe(true)
    expect(second.exitCode).toBe(0)
    expect({ total: second.total, passed: second.passed, failed: second.failed, skipped: second.skipped }).toEqual({ total: 2, passed: 2, failed: 0, skipped: 0 })
    expect(second.failures).toEqual([])
  })

  it('a fix written within the same second as the previous run is seen (no stale Python bytecode)', async () => {
    // An agent (or a script) that fixes a module right after a run: same size, same mtime second. Python
    // validates __pycache__ by (mtime seconds, size), so such a fix must not be hidden by the cached bytecode.
    await writeProject('quickfix', {
      'parity.py': 'def is_even(n):\n    return n % 2 == 1\n',
      'test_parity.py': 'from parity import is_even\n\n\ndef test_even():\n    assert is_even(4)\n',
    })
    const mtime = (await sb.execute('stat', ['-c', '%Y', 'quickfix/parity.py'])).stdout.trim()
    expect(mtime).toMatch(/^\d+$/)
    const first = await sb.runTests({ workdir: 'quickfix' })
    expect(first.failed, show(first)).toBe(1)
    // the same number of bytes, and the same modification second as the buggy version
    expect((await sb.writeFile('quickfix/parity.py', 'def is_even(n):\n    return n % 2 == 0\n')).success).toBe(true)
    expect((await sb.execute('touch', ['-d', `@${mtime}`, 'quickfix/parity.py'])).exitCode).toBe(0)
    expect((await sb.readFile('quickfix/parity.py')).content).toContain('== 0')
    const second = await sb.runTests({ workdir: 'quickfix' })
    expect(second.failed, show(second)).toBe(0)
    expect(second.success).toBe(true)
  })

  it('a custom command is run (and echoed) instead of the default one', async () => {
    const command = 'python3 -m pytest -v test_calc.py::test_add_passes'
    const r = await sb.runTests({ workdir: 'pyproj', command })
    expect(r.command).toBe(command)
    expect(r.framework, show(r)).toBe('pytest')
    expect(r.parsed).toBe(true)
    expect({ total: r.total, passed: r.passed, failed: r.failed }).toEqual({ total: 1, passed: 1, failed: 0 })
    expect(r.success).toBe(true)

    // without a detectable project the output tells which framework ran
    const other = await sb.runTests({ workdir: 'empty', command: `cd ../pyproj && ${command}` })
    expect(other.framework, show(other)).toBe('pytest')
    expect(other.passed).toBe(1)
  })

  it('options: env (plus CI=1 NO_COLOR=1) and timeout', async () => {
    const r = await sb.runTests({ workdir: 'empty', command: 'echo "vars: $MY_VAR CI=$CI NO_COLOR=$NO_COLOR"', env: { MY_VAR: 'mine' } })
    expect(r.output).toContain('vars: mine CI=1 NO_COLOR=1')
    const t = await sb.runTests({ workdir: 'empty', command: 'sleep 30', timeout: 1 })
    expect(t.timedOut).toBe(true)
    expect(t.success).toBe(false)
  })

  it('no detectable framework and no command: INVALID_ARGUMENT; an unknown framework too', async () => {
    const e = await expectCode(sb.runTests({ workdir: 'empty' }), 'INVALID_ARGUMENT')
    expect(e.message).toMatch(/framework|command/)
    await expectCode(sb.runTests({ workdir: 'jestproj', framework: 'mocha' }), 'INVALID_ARGUMENT')
  })

  it('output without a test summary: parsed false', async () => {
    const r = await sb.runTests({ workdir: 'empty', command: 'echo hi' })
    expect(r.parsed).toBe(false)
    expect(r.framework ?? undefined).toBeUndefined()
    expect(r.exitCode).toBe(0)
    expect({ total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped }).toEqual({ total: 0, passed: 0, failed: 0, skipped: 0 })
    expect(r.failures).toEqual([])
    expect(r.output).toContain('hi')
  })
})
