import { describe, expect, it } from 'vitest'
import { DEBIAN, inspectContainer, processList, sleep, waitFor, withSandbox } from './helpers.js'

describe('resource limits and hardening', () => {
  it('memory bomb is OOM-killed with exit code 137', async () => {
    await withSandbox({ image: DEBIAN, limits: { memoryMB: 64, diskMB: 16 } }, async (sb) => {
      expect(inspectContainer(sb.id).HostConfig.Memory).toBe(64 * 1024 * 1024)
      const t0 = Date.now()
      const r = await sb.execute('python3', ['-c', 'b=[]\nwhile True: b.append(bytearray(10**6))'], {
        timeout: 90,
      })
      expect(r.timedOut, `memory bomb should be killed, not time out (took ${Date.now() - t0} ms)`).toBe(false)
      expect(r.exitCode).toBe(137)
      // the sandbox survives
      const ok = await sb.execute('echo', ['ok'])
      expect(ok.stdout).toBe('ok\n')
    })
  })

  it('fork bomb is contained by pidsLimit and the sandbox keeps answering', async () => {
    await withSandbox({ limits: { pidsLimit: 64 } }, async (sb) => {
      expect(inspectContainer(sb.id).HostConfig.PidsLimit).toBe(64)
      const t0 = Date.now()
      await sb.execute('sh', ['-c', ':(){ :|:& };:'], { timeout: 10 }).catch(() => undefined)
      // the bomb's first shell returns at once; the execute must settle (result or rejection) in bounded time
      expect(Date.now() - t0).toBeLessThan(60_000)

      // a later execute answers (retry while the kernel reaps the bomb)
      let answered = false
      const deadline = Date.now() + 30_000
      while (!answered && Date.now() < deadline) {
        try {
          const r = await sb.execute('echo', ['ok'], { timeout: 5 })
          answered = r.exitCode === 0 && r.stdout === 'ok\n'
        } catch {
          /* retry */
        }
        if (!answered) await sleep(1000)
      }
      expect(answered, 'sandbox must answer `echo ok` after the fork bomb').toBe(true)

      // the bomb is gone: only a handful of processes remain, never more than the limit
      const count = async () => {
        const r = await sb.execute('sh', ['-c', 'ls -d /proc/[0-9]* | wc -l'])
        return Number(r.stdout.trim())
      }
      await waitFor(async () => (await count()) < 10, 20_000, 500)
      const n = await count()
      expect(n).toBeLessThanOrEqual(64)
      expect(n).toBeLessThan(10)
    })
  })

  it('disk fill stops at diskMB with ENOSPC', async () => {
    await withSandbox({ limits: { diskMB: 20 } }, async (sb) => {
      const r = await sb.execute('dd', ['if=/dev/zero', 'of=/workspace/big', 'bs=1M', 'count=100'], { timeout: 60 })
      expect(r.timedOut).toBe(false)
      expect(r.exitCode).not.toBe(0)
      expect(r.stderr).toMatch(/No space left/i)
      const du = await sb.execute('du', ['-sm', '/workspace'])
      expect(du.exitCode).toBe(0)
      const mb = Number(du.stdout.trim().split(/\s+/)[0])
      expect(mb).toBeGreaterThan(0)
      expect(mb).toBeLessThanOrEqual(21)
      // writeFile through the API is bounded too
      const w = await sb.writeFile('/workspace/more.bin', Buffer.alloc(5 * 1024 * 1024))
      expect(w.success).toBe(false)
      // after freeing space, writes work again
      expect((await sb.deleteFile('/workspace/big')).success).toBe(true)
      expect((await sb.writeFile('/workspace/small.txt', 'fits')).success).toBe(true)
    })
  })

  it('CPU spin is stopped by the timeout and no spinning process is left', async () => {
    await withSandbox({ limits: { cpuCores: 0.5 } }, async (sb) => {
      const hc = inspectContainer(sb.id).HostConfig
      const cpus = hc.NanoCpus ? hc.NanoCpus / 1e9 : hc.CpuQuota / hc.CpuPeriod
      expect(cpus).toBe(0.5)
      const t0 = Date.now()
      const r = await sb.execute('sh', ['-c', 'while :; do :; done'], { timeout: 2 })
      expect(r.timedOut).toBe(true)
      expect(r.exitCode).toBe(124)
      expect(Date.now() - t0).toBeLessThan(12_000)
      let left: string[] = []
      await waitFor(async () => {
        left = (await processList(sb)).filter((p) => p.includes('while :'))
        return left.length === 0
      }, 3000)
      expect(left).toEqual([])
    })
  })

  it('root filesystem is read-only, capabilities are dropped, no-new-privileges is set', async () => {
    await withSandbox({}, async (sb) => {
      const touch = await sb.execute('touch', ['/usr/x'])
      expect(touch.exitCode).not.toBe(0)
      expect(touch.stderr).toMatch(/read-only/i)
      expect((await sb.execute('touch', ['/x'])).exitCode).not.toBe(0)

      // the workspace is writable
      expect((await sb.execute('touch', ['/workspace/ok'])).exitCode).toBe(0)

      const status = (await sb.execute('cat', ['/proc/self/status'])).stdout
      expect(status).toMatch(/^CapEff:\s+0000000000000000$/m)
      expect(status).toMatch(/^CapPrm:\s+0000000000000000$/m)
      expect(status).toMatch(/^CapBnd:\s+0000000000000000$/m)
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m)

      const nnp = await sb.execute('grep', ['NoNewPrivs', '/proc/self/status'])
      expect(nnp.stdout.trim()).toMatch(/^NoNewPrivs:\s+1$/)

      // dropped capabilities are enforced: e.g. no raw sockets / mknod / chown to another user
      expect((await sb.execute('mknod', ['/workspace/dev0', 'c', '1', '3'])).exitCode).not.toBe(0)
    })
  })
})
