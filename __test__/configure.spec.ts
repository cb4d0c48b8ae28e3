// Sandbox.configure (seed 002 `configure`) and the live options of runCode / runTests (output as
// it arrives, cancellation), on the guest and the exec engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, DEVTOOLS, expectCode, TEST_TEMPLATES, waitFor } from './helpers.js'

let manager: any
let sb: any

beforeAll(async () => {
  manager = new SandboxManager({ image: BUSYBOX, templates: TEST_TEMPLATES })
  sb = await manager.createSandbox({ image: DEVTOOLS, env: { FROM_CONFIG: 'config' } })
  await sb.start()
})

afterAll(async () => {
  await manager?.destroyAll()
})

/** Whether a process whose command line contains `marker` runs in the sandbox. */
async function running(marker: string) {
  const ps = await sb.listProcesses()
  return ps.some((p: any) => [p.command, ...p.args].join(' ').includes(marker))
}

describe('configure', () => {
  it('adds env to every later command (execute, runCode, background); a command\'s own env wins', async () => {
    const r = await sb.configure({ env: { CFG_A: 'a', FROM_CONFIG: 'configured' } })
    expect(r).toMatchObject({ success: true, envVarsUpdated: 2, packagesInstalled: 0, commandsExecuted: 0, steps: [] })
    expect((await sb.execute('sh', ['-c', 'echo $CFG_A $FROM_CONFIG'])).stdout).toBe('a configured\n')
    expect((await sb.runCode('import os; print(os.environ["CFG_A"])', { language: 'python' })).output).toBe('a\n')
    expect((await sb.execute('sh', ['-c', 'echo $CFG_A'], { env: { CFG_A: 'own' } })).stdout).toBe('own\n')
    const bg = await sb.execute('sh', ['-c', 'echo $CFG_A'], { background: true })
    expect((await bg.wait()).stdout).toBe('a\n')
    // later configure calls add to (and override) the earlier ones
    await sb.configure({ env: { CFG_A: 'a2', CFG_B: 'b' } })
    expect((await sb.execute('sh', ['-c', 'echo $CFG_A $CFG_B'])).stdout).toBe('a2 b\n')
  })

  it('runs commands in order in the workdir, streams their output, and stops at the first failure', async () => {
    const out: string[] = []
    const r = await sb.configure({
      runCommands: ['pwd', 'mkdir -p cfg && echo one > cfg/x', 'echo err >&2; exit 5', 'echo never > cfg/y'],
      onStdout: (c: string) => out.push(c),
    })
    expect(r.success).toBe(false)
    expect(r.commandsExecuted).toBe(3)
    expect(r.steps.map((s: any) => [s.kind, s.exitCode])).toEqual([
      ['command', 0],
      ['command', 0],
      ['command', 5],
    ])
    expect(r.steps[0].stdout).toBe('/workspace\n')
    expect(r.steps[2].stderr).toBe('err\n')
    expect(out.join('')).toContain('/workspace')
    expect((await sb.readFile('cfg/x')).content).toBe('one\n')
    expect((await sb.readFile('cfg/y')).success).toBe(false)
    const logs = sb.getLogs({ lines: 1000 }).logs.map((e: any) => e.message)
    expect(logs.some((m: string) => m.includes('configure: echo err'))).toBe(true)
  })

  it('bad input is INVALID_ARGUMENT and changes nothing', async () => {
    await expectCode(sb.configure({ env: { 'A=B': '1', NOT_SET: 'x' } }), 'INVALID_ARGUMENT')
    await expectCode(sb.configure({ env: { NOT_SET: 'x' }, runCommands: ['true', '  '] }), 'INVALID_ARGUMENT')
    // no template with a package manager, and no network: installing is refused up front
    const e = await expectCode(sb.configure({ env: { NOT_SET: 'x' }, installPackages: ['requests'] }), 'INVALID_ARGUMENT')
    expect(e.message).toContain('installPackages')
    expect((await sb.execute('sh', ['-c', 'echo ${NOT_SET:-unset}'])).stdout).toBe('unset\n')
  })

  it('a hostile step cannot outlive its timeout, keep processes behind, or stop the rest from being reported', async () => {
    const r = await sb.configure({ runCommands: ['(sleep 300 &) ; echo forked', 'sleep 300', 'echo never'], timeout: 1 })
    expect(r.success).toBe(false)
    expect(r.commandsExecuted).toBe(2)
    expect(r.steps[1]).toMatchObject({ timedOut: true, exitCode: 124 })
    await waitFor(async () => !(await running('sleep 300')), 10_000, 100)
    expect(await running('sleep 300')).toBe(false)
  })

  it('an AbortSignal kills the running step and rejects ABORTED; an aborted signal starts nothing', async () => {
    const ac = new AbortController()
    const p = sb.configure({ runCommands: ['sleep 301', 'touch /workspace/after-abort'], signal: ac.signal })
    await waitFor(() => running('sleep 301'), 10_000, 50)
    ac.abort()
    await expectCode(p, 'ABORTED')
    await waitFor(async () => !(await running('sleep 301')), 10_000, 100)
    expect((await sb.execute('ls', ['/workspace/after-abort'])).exitCode).not.toBe(0)
    await expectCode(sb.configure({ runCommands: ['true'], signal: AbortSignal.abort() }), 'ABORTED')
  })
})

describe('runCode and runTests: output as it arrives, cancellation, output cap', () => {
  it('runCode streams stdout and stderr before it resolves', async () => {
    const out: string[] = []
    const err: string[] = []
    const r = await sb.runCode('import sys, time\nfor i in range(3):\n    print("tick", i, flush=True)\n    time.sleep(0.05)\nprint("warn", file=sys.stderr)', {
      language: 'python',
      onStdout: (c: string) => out.push(c),
      onStderr: (c: string) => err.push(c),
    })
    expect(out.join('')).toBe(r.stdout)
    expect(r.stdout).toBe('tick 0\ntick 1\ntick 2\n')
    expect(err.join('')).toBe('warn\n')
  })

  it('runCode: an AbortSignal kills the code and rejects ABORTED; maxOutputBytes caps the output', async () => {
    const ac = new AbortController()
    const p = sb.runCode('import time\ntime.sleep(302)', { language: 'python', signal: ac.signal })
    await waitFor(() => running('runCode-python'), 10_000, 50)
    ac.abort()
    await expectCode(p, 'ABORTED')
    await waitFor(async () => !(await running('runCode-python')), 10_000, 100)
    await expectCode(sb.runCode('print(1)', { signal: AbortSignal.abort() }), 'ABORTED')
    const big = await sb.runCode('print("x" * 100000)', { language: 'python', maxOutputBytes: 1000 })
    expect(big.truncated).toBe(true)
    expect(big.stdout.length).toBeLessThanOrEqual(1000)
  })

  it('runTests streams the runner output and can be aborted', async () => {
    await sb.writeFile('t/test_one.py', 'def test_ok():\n    print("inside")\n    assert True\n')
    const out: string[] = []
    const r = await sb.runTests({ framework: 'pytest', workdir: 't', onStdout: (c: string) => out.push(c) })
    expect(r).toMatchObject({ parsed: true, passed: 1 })
    expect(out.join('')).toContain('passed')
    const ac = new AbortController()
    const p = sb.runTests({ command: 'sleep 303', signal: ac.signal })
    await waitFor(() => running('sleep 303'), 10_000, 50)
    ac.abort()
    await expectCode(p, 'ABORTED')
  })
})
