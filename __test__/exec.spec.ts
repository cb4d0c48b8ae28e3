import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, processList, waitFor, withSandbox } from './helpers.js'

describe('execute', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX })
  let sb: any

  beforeAll(async () => {
    sb = await manager.createSandbox({ env: { FROM_CONFIG: 'cfg value', OVERRIDE_ME: 'config' } })
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  /** Processes whose command line contains `needle`, polled for up to 3 s until none is left. */
  async function leftovers(needle: string): Promise<string[]> {
    let found: string[] = []
    await waitFor(async () => {
      found = (await processList(sb)).filter((p) => p.includes(needle))
      return found.length === 0
    }, 3000)
    return found
  }

  it('echo round trip', async () => {
    const r = await sb.execute('echo', ['hello', 'world'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('hello world\n')
    expect(r.stderr).toBe('')
    expect(r.timedOut).toBe(false)
    expect(r.truncated).toBe(false)
    expect(typeof r.durationMs).toBe('number')
    expect(r.durationMs).toBeGreaterThanOrEqual(0)
    expect(r.durationMs).toBeLessThan(30_000)
  })

  it('works without args', async () => {
    const r = await sb.execute('pwd')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('/workspace\n')
  })

  it('passes args verbatim, without shell interpretation', async () => {
    const r = await sb.execute('echo', ['a b', '$(id)', 'x;y'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('a b $(id) x;y\n')

    const tricky = [
      "it's",
      'say "hi"',
      'line1\nline2',
      '`uname`',
      '*',
      '$HOME',
      'a && b || c',
      '| cat',
      '> /workspace/pwned',
      '',
      '  lead and trail  ',
      'tab\there',
      '\\backslash\\',
      'unicode ✓ héllo 日本',
    ]
    const r2 = await sb.execute('printf', ['%s|', ...tricky])
    expect(r2.exitCode).toBe(0)
    expect(r2.stdout).toBe(tricky.map((t) => t + '|').join(''))
    const check = await sb.execute('ls', ['/workspace/pwned'])
    expect(check.exitCode).not.toBe(0)
  })

  it('passes a command name with spaces as one argv[0] (no word splitting)', async () => {
    const r = await sb.execute('echo hello')
    expect(r.exitCode).toBe(127)
    expect(r.stdout).toBe('')
  })

  it('returns non-zero exit codes instead of throwing', async () => {
    const r = await sb.execute('sh', ['-c', 'exit 3'])
    expect(r.exitCode).toBe(3)
    expect(r.timedOut).toBe(false)
    const f = await sb.execute('false')
    expect(f.exitCode).toBe(1)
  })

  it('command not found -> 127', async () => {
    const r = await sb.execute('definitely-not-a-command-xyz', ['arg'])
    expect(r.exitCode).toBe(127)
    expect(r.timedOut).toBe(false)
    const abs = await sb.execute('/no/such/binary')
    expect(abs.exitCode).toBe(127)
  })

  it('passes env vars (config env + per-call env, per-call wins)', async () => {
    const r = await sb.execute('sh', ['-c', 'printf "%s|%s|%s|%s" "$FOO" "$BAR" "$FROM_CONFIG" "$OVERRIDE_ME"'], {
      env: { FOO: 'x y', BAR: '$(id);`id`', OVERRIDE_ME: 'call' },
    })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('x y|$(id);`id`|cfg value|call')
    // per-call env does not leak into later calls
    const r2 = await sb.execute('sh', ['-c', 'printf "%s|%s" "${FOO-unset}" "$OVERRIDE_ME"'])
    expect(r2.stdout).toBe('unset|config')
  })

  it('workdir option, default workdir and relative workdir', async () => {
    expect((await sb.execute('pwd', [], { workdir: '/tmp' })).stdout).toBe('/tmp\n')
    expect((await sb.execute('pwd')).stdout).toBe('/workspace\n')
    const mk = await sb.execute('mkdir', ['-p', '/workspace/sub/dir'])
    expect(mk.exitCode).toBe(0)
    expect((await sb.execute('pwd', [], { workdir: 'sub/dir' })).stdout).toBe('/workspace/sub/dir\n')
  })

  it('timeout kills the command: timedOut, exit 124, fast, nothing left', async () => {
    const t0 = Date.now()
    const r = await sb.execute('sleep', ['30'], { timeout: 1 })
    const elapsed = Date.now() - t0
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBe(124)
    expect(elapsed).toBeLessThan(10_000)
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(await leftovers('sleep 30')).toEqual([])
  })

  it('timeout kills the whole process group (children of a shell too)', async () => {
    const r = await sb.execute('sh', ['-c', 'sleep 31 & sleep 32; echo never'], { timeout: 1 })
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBe(124)
    expect(r.stdout).not.toContain('never')
    expect(await leftovers('sleep 31')).toEqual([])
    expect(await leftovers('sleep 32')).toEqual([])
  })

  it('output produced before a timeout is returned', async () => {
    const r = await sb.execute('sh', ['-c', 'echo before; sleep 30'], { timeout: 1 })
    expect(r.timedOut).toBe(true)
    expect(r.stdout).toBe('before\n')
  })

  it('default timeout comes from limits.timeoutSeconds', async () => {
    await withSandbox({ limits: { timeoutSeconds: 2 } }, async (s) => {
      const t0 = Date.now()
      const r = await s.execute('sleep', ['30'])
      const elapsed = Date.now() - t0
      expect(r.timedOut).toBe(true)
      expect(r.exitCode).toBe(124)
      expect(elapsed).toBeGreaterThanOrEqual(1900)
      expect(elapsed).toBeLessThan(12_000)
      // an explicit option overrides the default
      const quick = await s.execute('sleep', ['3'], { timeout: 10 })
      expect(quick.timedOut).toBe(false)
      expect(quick.exitCode).toBe(0)
    })
  })

  it('keeps stderr separate from stdout', async () => {
    const r = await sb.execute('sh', ['-c', 'echo out; echo err >&2; echo out2; echo err2 >&2'])
    expect(r.stdout).toBe('out\nout2\n')
    expect(r.stderr).toBe('err\nerr2\n')
  })

  it('returns NUL bytes in output', async () => {
    const r = await sb.execute('printf', ['a\\0b'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('a\0b')
  })

  it('returns unicode output intact', async () => {
    const r = await sb.execute('printf', ['%s', 'héllo ✓ 日本 🎉'])
    expect(r.stdout).toBe('héllo ✓ 日本 🎉')
  })

  it('returns 10 MB of output completely', async () => {
    const r = await sb.execute('sh', ['-c', "head -c 10485760 /dev/zero | tr '\\0' 'x'"])
    expect(r.exitCode).toBe(0)
    expect(r.truncated).toBe(false)
    expect(r.stdout.length).toBe(10485760)
    expect(/^x+$/.test(r.stdout)).toBe(true)
  })

  it('10 MB on stdout and stderr at the same time does not deadlock', async () => {
    const r = await sb.execute(
      'sh',
      ['-c', "head -c 5000000 /dev/zero | tr '\\0' o & head -c 5000000 /dev/zero | tr '\\0' e >&2; wait"],
      { timeout: 60 },
    )
    expect(r.timedOut).toBe(false)
    expect(r.stdout.length).toBe(5000000)
    expect(r.stderr.length).toBe(5000000)
  })

  it('sets truncated when output exceeds maxOutputBytes', async () => {
    const r = await sb.execute('sh', ['-c', "head -c 1000000 /dev/zero | tr '\\0' y"], { maxOutputBytes: 1000 })
    expect(r.truncated).toBe(true)
    expect(r.stdout.length).toBeGreaterThan(0)
    expect(r.stdout.length).toBeLessThanOrEqual(1000)
    expect(/^y+$/.test(r.stdout)).toBe(true)
    const small = await sb.execute('echo', ['short'], { maxOutputBytes: 1000 })
    expect(small.truncated).toBe(false)
    expect(small.stdout).toBe('short\n')
  })

  it('an endless flood with maxOutputBytes still ends at the timeout with bounded output', async () => {
    const t0 = Date.now()
    const r = await sb.execute('yes', ['flood'], { maxOutputBytes: 100_000, timeout: 3 })
    // the timeout must still be honoured while the command floods its output
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(r.truncated).toBe(true)
    expect(r.stdout.length).toBeLessThanOrEqual(100_000)
    expect(r.stdout.startsWith('flood\nflood\n')).toBe(true)
    expect(await leftovers('yes flood')).toEqual([])
  })

  it('runs concurrent executes in one sandbox', async () => {
    const t0 = Date.now()
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => sb.execute('sh', ['-c', 'sleep 1; echo "$0"', `job-${i}`])),
    )
    const elapsed = Date.now() - t0
    results.forEach((r: any, i: number) => {
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe(`job-${i}\n`)
    })
    // eight 1-second sleeps run in parallel, not one after another
    expect(elapsed).toBeLessThan(7000)
  })

  it('kills background leftovers of a foreground execute', async () => {
    const t0 = Date.now()
    const r = await sb.execute('sh', ['-c', 'sleep 300 & echo started'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('started\n')
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(await leftovers('sleep 300')).toEqual([])
  })

  it('kills leftovers that closed stdout/stderr too', async () => {
    const r = await sb.execute('sh', ['-c', 'sleep 301 >/dev/null 2>&1 </dev/null & echo started'])
    expect(r.stdout).toBe('started\n')
    expect(await leftovers('sleep 301')).toEqual([])
  })

  it('the sandbox still works after all of the above', async () => {
    const r = await sb.execute('echo', ['still alive'])
    expect(r.stdout).toBe('still alive\n')
  })
})
