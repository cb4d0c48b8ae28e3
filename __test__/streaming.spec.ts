// Streaming output, stdin, cancellation, background processes and listProcesses, on both execution engines.
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, expectCode, sleep, waitFor, within } from './helpers.js'

const ENGINES = ['guest', 'exec'] as const

const cmdline = (p: any) => [p.command, ...p.args].join(' ')

/** A string survives a UTF-8 round trip unchanged: no U+FFFD, no lone surrogate (a split character). */
const wellFormed = (s: string) => !s.includes('\uFFFD') && Buffer.from(s, 'utf8').toString('utf8') === s

describe.each(ENGINES)('streaming, stdin, abort and background processes (%s engine)', (engine) => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
  let sb: any

  beforeAll(async () => {
    sb = await manager.createSandbox({ docker: { execEngine: engine } })
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  /** listProcesses entries whose command line contains needle, polled for up to 5 s until none is left. */
  async function leftovers(needle: string): Promise<string[]> {
    let found: string[] = []
    await waitFor(async () => {
      found = (await sb.listProcesses()).map(cmdline).filter((c: string) => c.includes(needle))
      return found.length === 0
    }, 5000)
    return found
  }

  it('runs on the requested engine and starts with no processes', async () => {
    expect(sb.execEngine).toBe(engine)
    expect(sb.state).toBe('running')
    expect(await sb.listProcesses()).toEqual([])
  })

  it('onStdout/onStderr receive every chunk, in order, equal to the final output', async () => {
    const out: string[] = []
    const err: string[] = []
    const r = await sb.execute(
      'sh',
      ['-c', 'for i in 1 2 3 4 5; do echo "out$i"; echo "err$i" >&2; sleep 0.05; done'],
      { onStdout: (c: string) => out.push(c), onStderr: (c: string) => err.push(c) },
    )
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('out1\nout2\nout3\nout4\nout5\n')
    expect(r.stderr).toBe('err1\nerr2\nerr3\nerr4\nerr5\n')
    expect(out.join('')).toBe(r.stdout)
    expect(err.join('')).toBe(r.stderr)
    for (const c of [...out, ...err]) expect(typeof c).toBe('string')
  })

  it('streams 1 MB completely; the chunks add up to the result', async () => {
    const out: string[] = []
    const r = await sb.execute('sh', ['-c', "head -c 1048576 /dev/zero | tr '\\0' a"], {
      onStdout: (c: string) => out.push(c),
    })
    expect(r.exitCode).toBe(0)
    expect(r.truncated).toBe(false)
    expect(r.stdout.length).toBe(1048576)
    const joined = out.join('')
    expect(joined.length).toBe(1048576)
    expect(joined === r.stdout).toBe(true)
  })

  it('chunks arrive while the command is still running', async () => {
    // Causal proof: the command only finishes after the test reacted to its first chunk.
    await sb.deleteFile('/workspace/go')
    let reacted: Promise<any> | undefined
    const chunks: string[] = []
    const r = await sb.execute(
      'sh',
      ['-c', 'echo ready; i=0; while [ ! -f /workspace/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; [ -f /workspace/go ] && echo finished'],
      {
        timeout: 30,
        onStdout: (c: string) => {
          chunks.push(c)
          if (!reacted && chunks.join('').includes('ready')) reacted = sb.writeFile('/workspace/go', 'go')
        },
      },
    )
    expect(reacted, 'the first chunk was not delivered while the command ran').toBeDefined()
    expect((await reacted).success).toBe(true)
    expect(r.timedOut).toBe(false)
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('ready\nfinished\n')
    expect(chunks.join('')).toBe(r.stdout)

    // print, sleep 300 ms, print: the first line comes as its own chunk, before the result
    const times: number[] = []
    const parts: string[] = []
    const r2 = await sb.execute('sh', ['-c', 'echo first; sleep 0.3; echo second'], {
      onStdout: (c: string) => {
        times.push(Date.now())
        parts.push(c)
      },
    })
    const resolvedAt = Date.now()
    expect(r2.stdout).toBe('first\nsecond\n')
    expect(parts[0]).toBe('first\n')
    expect(parts.length).toBeGreaterThanOrEqual(2)
    expect(times[0]).toBeLessThan(resolvedAt)
  })

  it('UTF-8 output is intact and never split inside a character', async () => {
    const out: string[] = []
    const r = await sb.execute('printf', ['%s', 'é€😀'], { onStdout: (c: string) => out.push(c) })
    expect(r.stdout).toBe('é€😀')
    expect(out.join('')).toBe('é€😀')

    // the bytes of each character are written in two parts, 300 ms apart
    const parts: string[] = []
    const r2 = await sb.execute(
      'sh',
      ['-c', "printf '\\303'; sleep 0.3; printf '\\251\\342\\202'; sleep 0.3; printf '\\254\\360\\237'; sleep 0.3; printf '\\230\\200'"],
      { onStdout: (c: string) => parts.push(c) },
    )
    expect(r2.exitCode).toBe(0)
    expect(r2.stdout).toBe('é€😀')
    expect(parts.join('')).toBe('é€😀')
    for (const p of parts) expect(wellFormed(p), `chunk ${JSON.stringify(p)}`).toBe(true)

    // ~270 KB of multi-byte text: whatever the chunk boundaries, no character is split
    const text = 'é€😀'.repeat(30_000)
    expect((await sb.writeFile('/workspace/utf8.txt', text)).success).toBe(true)
    const big: string[] = []
    const r3 = await sb.execute('cat', ['/workspace/utf8.txt'], { onStdout: (c: string) => big.push(c) })
    expect(r3.stdout === text).toBe(true)
    expect(big.join('') === text).toBe(true)
    const bad = big.filter((c) => !wellFormed(c))
    expect(bad.length, `${big.length} chunks, ${bad.length} malformed`).toBe(0)
  })

  it('stdin as a string', async () => {
    const r = await sb.execute('cat', [], { stdin: 'hello\nwörld 😀\n' })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('hello\nwörld 😀\n')
    const wc = await sb.execute('wc', ['-c'], { stdin: 'twelve bytes' })
    expect(wc.stdout.trim()).toBe('12')
    const empty = await sb.execute('wc', ['-c'], { stdin: '' })
    expect(empty.stdout.trim()).toBe('0')
  })

  it('stdin as a Buffer: binary bytes arrive unchanged', async () => {
    const buf = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)])
    const r = await sb.execute('base64', [], { stdin: buf })
    expect(r.exitCode).toBe(0)
    expect(Buffer.from(r.stdout.replace(/\s+/g, ''), 'base64').equals(buf)).toBe(true)

    const sum = await sb.execute('sha256sum', [], { stdin: buf })
    expect(sum.stdout.split(/\s+/)[0]).toBe(createHash('sha256').update(buf).digest('hex'))

    const u8 = new Uint8Array([0, 255, 10, 13, 0xc3])
    const od = await sb.execute('od', ['-An', '-tx1'], { stdin: u8 })
    expect(od.stdout.trim().split(/\s+/)).toEqual(['00', 'ff', '0a', '0d', 'c3'])

    const wc = await sb.execute('wc', ['-c'], { stdin: Buffer.alloc(3 * 1024 * 1024, 7) })
    expect(wc.stdout.trim()).toBe(String(3 * 1024 * 1024))
  })

  it('stdin for a command that never reads it does not hang; no stdin means empty stdin', async () => {
    const r = await within(
      sb.execute('echo', ['ignored'], { stdin: 'x'.repeat(2 * 1024 * 1024), timeout: 20 }),
      15_000,
      'execute with unread stdin',
    )
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('ignored\n')
    expect(r.timedOut).toBe(false)

    const slow = await within(
      sb.execute('sh', ['-c', 'sleep 0.3; echo late'], { stdin: Buffer.alloc(1024 * 1024, 1), timeout: 20 }),
      15_000,
      'execute with unread stdin (slow command)',
    )
    expect(slow.stdout).toBe('late\n')

    const cat = await within(sb.execute('cat', [], { timeout: 20 }), 15_000, 'cat without stdin')
    expect(cat.timedOut).toBe(false)
    expect(cat.exitCode).toBe(0)
    expect(cat.stdout).toBe('')
  })

  it('aborting mid-run rejects with ABORTED and kills the process group', async () => {
    const ac = new AbortController()
    const t0 = Date.now()
    const p = sb.execute('sh', ['-c', 'sleep 331 & echo started; sleep 332; echo never'], {
      signal: ac.signal,
      onStdout: (c: string) => {
        if (c.includes('started')) ac.abort()
      },
    })
    const err = await within(expectCode(p, 'ABORTED'), 15_000, 'aborted execute')
    expect(err.message).toBeTruthy()
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(await leftovers('sleep 331')).toEqual([])
    expect(await leftovers('sleep 332')).toEqual([])
    let procs: any[] = []
    await waitFor(async () => (procs = await sb.listProcesses()).length === 0, 5000)
    expect(procs).toEqual([])

    // aborting from a timer (no output involved)
    const ac2 = new AbortController()
    setTimeout(() => ac2.abort(), 200)
    await within(expectCode(sb.execute('sleep', ['333'], { signal: ac2.signal }), 'ABORTED'), 15_000, 'abort by timer')
    expect(await leftovers('sleep 333')).toEqual([])
  })

  it('an already aborted signal rejects at once without running the command', async () => {
    await sb.deleteFile('/workspace/aborted-ran')
    await expectCode(
      sb.execute('sh', ['-c', 'echo ran > /workspace/aborted-ran'], { signal: AbortSignal.abort() }),
      'ABORTED',
    )
    await sleep(300)
    const f = await sb.readFile('/workspace/aborted-ran')
    expect(f.success).toBe(false)
  })

  it('aborting after the command finished changes nothing', async () => {
    const ac = new AbortController()
    const r = await sb.execute('echo', ['done'], { signal: ac.signal })
    expect(r.stdout).toBe('done\n')
    ac.abort()
    await sleep(100)
    expect((await sb.execute('echo', ['after'])).stdout).toBe('after\n')
  })

  it('background: handle, listed with background true, stdin and wait()', async () => {
    const bg = await sb.execute('sh', ['-c', 'while read l; do echo "got $l"; done; echo eof >&2'], { background: true })
    try {
      expect(typeof bg.pid).toBe('number')
      expect(bg.pid).toBeGreaterThan(0)
      expect(bg.command).toBe('sh')
      expect(bg.running).toBe(true)

      const procs = await sb.listProcesses()
      const me = procs.find((p: any) => p.pid === bg.pid)
      expect(me, `pid ${bg.pid} in ${JSON.stringify(procs)}`).toBeDefined()
      expect(me.background).toBe(true)
      expect(me.command).toBe('sh')
      expect(me.args[0]).toBe('-c')
      expect(typeof me.ppid).toBe('number')
      expect(typeof me.state).toBe('string')
      expect(me.memoryKB).toBeGreaterThan(0)

      await bg.sendStdin('hello\n')
      await bg.sendStdin(Buffer.from('wörld\n'))
      await bg.closeStdin()
      const r = await within(bg.wait(), 15_000, 'wait() after closeStdin')
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe('got hello\ngot wörld\n')
      expect(r.stderr).toBe('eof\n')
      expect(r.timedOut).toBe(false)
      expect(bg.running).toBe(false)

      // wait() can be called again and gives the same result
      const again = await within(bg.wait(), 5000, 'second wait()')
      expect(again.exitCode).toBe(0)
      expect(again.stdout).toBe(r.stdout)
      expect(again.stderr).toBe(r.stderr)
      expect((await sb.listProcesses()).some((p: any) => p.pid === bg.pid)).toBe(false)
    } finally {
      if (bg.running) await bg.kill()
    }
  })

  it('background processes stream to onStdout while they run', async () => {
    const chunks: string[] = []
    const bg = await sb.execute('sh', ['-c', 'echo tick; read x; echo "tock $x"'], {
      background: true,
      onStdout: (c: string) => chunks.push(c),
    })
    try {
      const ticked = await waitFor(() => chunks.join('').includes('tick'), 10_000, 50)
      expect(ticked, 'no output streamed from the background process').toBe(true)
      expect(bg.running).toBe(true)
      await bg.sendStdin('42\n')
      const r = await within(bg.wait(), 15_000, 'background wait()')
      expect(r.stdout).toBe('tick\ntock 42\n')
      expect(chunks.join('')).toBe(r.stdout)
    } finally {
      if (bg.running) await bg.kill()
    }
  })

  it('kill() ends a background process: SIGKILL by default, other signals by name', async () => {
    const bg = await sb.execute('sleep', ['334'], { background: true })
    expect(bg.running).toBe(true)
    await bg.kill()
    const r = await within(bg.wait(), 15_000, 'wait() after kill()')
    expect(r.signal === 'SIGKILL' || r.exitCode === 137, JSON.stringify(r)).toBe(true)
    expect(r.exitCode).not.toBe(0)
    expect(bg.running).toBe(false)
    expect(await leftovers('sleep 334')).toEqual([])

    const bg2 = await sb.execute('sleep', ['335'], { background: true })
    await bg2.kill('SIGTERM')
    const r2 = await within(bg2.wait(), 15_000, 'wait() after kill(SIGTERM)')
    expect(r2.signal === 'SIGTERM' || r2.exitCode === 143, JSON.stringify(r2)).toBe(true)
    expect(await leftovers('sleep 335')).toEqual([])
  })

  it('kill() reaches the whole process group of a background process', async () => {
    const bg = await sb.execute('sh', ['-c', 'sleep 336 & sleep 337; echo never'], { background: true })
    await waitFor(async () => (await sb.listProcesses()).some((p: any) => cmdline(p) === 'sleep 336'), 5000)
    await bg.kill()
    const r = await within(bg.wait(), 15_000, 'wait() after kill()')
    expect(r.stdout).not.toContain('never')
    expect(await leftovers('sleep 336')).toEqual([])
    expect(await leftovers('sleep 337')).toEqual([])
  })

  it("kill('SIGNOPE') rejects with INVALID_ARGUMENT and leaves the process running", async () => {
    const bg = await sb.execute('sleep', ['338'], { background: true })
    try {
      await expectCode(bg.kill('SIGNOPE'), 'INVALID_ARGUMENT')
      expect(bg.running).toBe(true)
      expect((await sb.listProcesses()).some((p: any) => cmdline(p) === 'sleep 338')).toBe(true)
    } finally {
      await bg.kill()
      await within(bg.wait(), 15_000, 'wait() after kill()')
    }
    expect(await leftovers('sleep 338')).toEqual([])
  })

  it('a background timeout is honoured (exit 124, timedOut)', async () => {
    const bg = await sb.execute('sleep', ['339'], { background: true, timeout: 1 })
    expect(bg.running).toBe(true)
    const r = await within(bg.wait(), 15_000, 'background with timeout')
    expect(r.timedOut).toBe(true)
    expect(r.exitCode).toBe(124)
    expect(await leftovers('sleep 339')).toEqual([])
  })

  it('a background job may leave a child that keeps running after it exits', async () => {
    const bg = await sb.execute('sh', ['-c', 'sleep 340 & echo parent-done'], { background: true })
    const r = await within(bg.wait(), 15_000, 'wait() of a parent that left a child')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('parent-done\n')
    expect(bg.running).toBe(false)
    await sleep(300)
    const child = (await sb.listProcesses()).find((p: any) => cmdline(p) === 'sleep 340')
    expect(child, 'the child of the background job was killed').toBeDefined()
    // clean up the survivor
    const k = await sb.execute('kill', ['-9', String(child.pid)])
    expect(k.exitCode).toBe(0)
    expect(await leftovers('sleep 340')).toEqual([])
  })

  it('foreground executes kill the children they leave behind', async () => {
    const r = await sb.execute('sh', ['-c', 'sleep 341 & sleep 342 >/dev/null 2>&1 </dev/null & echo started'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('started\n')
    expect(await leftovers('sleep 341')).toEqual([])
    expect(await leftovers('sleep 342')).toEqual([])
  })

  it('maxOutputBytes with streaming: truncated, and the chunks stop at the cap too', async () => {
    const out: string[] = []
    const err: string[] = []
    const r = await sb.execute(
      'sh',
      ['-c', "head -c 100000 /dev/zero | tr '\\0' z; head -c 50 /dev/zero | tr '\\0' e >&2"],
      { maxOutputBytes: 1000, onStdout: (c: string) => out.push(c), onStderr: (c: string) => err.push(c) },
    )
    expect(r.exitCode).toBe(0)
    expect(r.truncated).toBe(true)
    expect(r.stdout.length).toBeGreaterThan(0)
    expect(r.stdout.length).toBeLessThanOrEqual(1000)
    expect(/^z+$/.test(r.stdout)).toBe(true)
    expect(r.stderr).toBe('e'.repeat(50))
    expect(err.join('')).toBe(r.stderr)
    const joined = out.join('')
    expect(joined.length, 'bytes streamed to onStdout beyond maxOutputBytes').toBeLessThanOrEqual(1000)
    expect(joined).toBe(r.stdout)
  })

  it('10 parallel executes in one sandbox are all correct and keep their streams apart', async () => {
    const n = 10
    const streams = Array.from({ length: n }, () => ({ out: [] as string[], err: [] as string[] }))
    const results = await within(
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          sb.execute('sh', ['-c', 'read x; sleep 0.2; echo "$x-$0"; echo "err-$0" >&2', `job${i}`], {
            stdin: `in${i}\n`,
            onStdout: (c: string) => streams[i].out.push(c),
            onStderr: (c: string) => streams[i].err.push(c),
          }),
        ),
      ),
      30_000,
      '10 parallel executes',
    )
    results.forEach((r: any, i: number) => {
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe(`in${i}-job${i}\n`)
      expect(r.stderr).toBe(`err-job${i}\n`)
      expect(streams[i].out.join('')).toBe(r.stdout)
      expect(streams[i].err.join('')).toBe(r.stderr)
    })
  })

  it('Example 9: a background job whose progress file is polled with readFile until done', async () => {
    const script = [
      'i=0',
      'while [ $i -lt 5 ]; do',
      '  i=$((i+1))',
      '  echo "step $i/5" > /workspace/progress.tmp && mv /workspace/progress.tmp /workspace/progress.txt',
      '  echo "progress $i"',
      '  sleep 0.3',
      'done',
      'echo done > /workspace/progress.tmp && mv /workspace/progress.tmp /workspace/progress.txt',
      'echo "Job completed!"',
    ].join('\n')
    expect((await sb.writeFile('/workspace/job.sh', script)).success).toBe(true)
    await sb.deleteFile('/workspace/progress.txt')

    const job = await sb.execute('sh', ['/workspace/job.sh'], { background: true })
    const seen: string[] = []
    const finished = await waitFor(
      async () => {
        const f = await sb.readFile('/workspace/progress.txt')
        if (!f.success) return false
        const v = f.content.trim()
        if (seen[seen.length - 1] !== v) seen.push(v)
        return v === 'done'
      },
      15_000,
      100,
    )
    expect(finished, `progress seen: ${JSON.stringify(seen)}`).toBe(true)
    // progress was readable while the job was still running
    expect(seen.some((s) => /^step [1-5]\/5$/.test(s)), JSON.stringify(seen)).toBe(true)
    expect(seen[seen.length - 1]).toBe('done')

    const r = await within(job.wait(), 15_000, 'job.wait()')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toBe('progress 1\nprogress 2\nprogress 3\nprogress 4\nprogress 5\nJob completed!\n')
    expect(job.running).toBe(false)
  })

  it('background processes have no default timeout, foreground ones do', async () => {
    const s2 = await manager.createSandbox({ docker: { execEngine: engine }, limits: { timeoutSeconds: 1 } })
    try {
      await s2.start()
      expect(s2.execEngine).toBe(engine)
      const bg = await s2.execute('sh', ['-c', 'sleep 2; echo survived'], { background: true })
      const fg = await s2.execute('sh', ['-c', 'sleep 2; echo survived'])
      expect(fg.timedOut).toBe(true)
      expect(fg.exitCode).toBe(124)
      const r = await within(bg.wait(), 15_000, 'background wait()')
      expect(r.timedOut).toBe(false)
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe('survived\n')
    } finally {
      await s2.destroy()
    }
  })

  it('a huge timeout value is rejected with INVALID_ARGUMENT, never hangs or crashes', async () => {
    for (const background of [false, true]) {
      for (const timeout of [1e300, Infinity, NaN, -1, 0]) {
        const err: any = await within(
          sb.execute('echo', ['huge'], { timeout, background }).then(() => null, (e: any) => e),
          15_000,
          `timeout ${timeout} (background ${background})`,
        )
        expect(err, `timeout ${timeout}`).not.toBeNull()
        expect(err.code, err.message).toBe('INVALID_ARGUMENT')
        expect(err.message).toMatch(/timeout/)
      }
    }
    // the longest accepted span still works
    const r = await sb.execute('echo', ['long'], { timeout: 31_536_000 })
    expect(r.stdout).toBe('long\n')
  })

  it('the sandbox is healthy and has no processes left after all of the above', async () => {
    let procs: any[] = []
    await waitFor(async () => (procs = await sb.listProcesses()).length === 0, 5000)
    expect(procs).toEqual([])
    expect((await sb.execute('echo', ['still alive'])).stdout).toBe('still alive\n')
  })
})
