import os from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxState } from '../index.js'
import {
  BUSYBOX,
  docker,
  dockerLabelled,
  expectCode,
  inspectContainer,
  sandboxLabel,
  sleep,
  withSandbox,
} from './helpers.js'

const MiB = 1024 * 1024

describe('SandboxState', () => {
  it('exposes the documented string values', () => {
    expect(SandboxState.CREATED).toBe('created')
    expect(SandboxState.STARTING).toBe('starting')
    expect(SandboxState.RUNNING).toBe('running')
    expect(SandboxState.STOPPING).toBe('stopping')
    expect(SandboxState.STOPPED).toBe('stopped')
    expect(SandboxState.DESTROYED).toBe('destroyed')
    expect(SandboxState.ERROR).toBe('error')
  })
})

describe('sandbox lifecycle', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX })
  afterAll(async () => {
    await manager.destroyAll()
  })

  it('createSandbox does not start the sandbox', async () => {
    const sb: any = await manager.createSandbox()
    try {
      expect(sb.state).toBe('created')
      expect(sb.id).toMatch(/^docker-[0-9a-f]{16}$/)
      expect(sb.provider).toBe('docker')
      // nothing is running for it yet
      expect(docker(['ps', '-q', '--filter', `label=${sandboxLabel(sb.id)}`])).toBe('')
      await expectCode(sb.execute('echo', ['hi']), 'SANDBOX_NOT_RUNNING')
    } finally {
      await sb.destroy()
    }
  })

  it('gives every sandbox a distinct id', async () => {
    const a: any = await manager.createSandbox()
    const b: any = await manager.createSandbox()
    try {
      expect(a.id).not.toBe(b.id)
      expect(b.id).toMatch(/^docker-[0-9a-f]{16}$/)
    } finally {
      await a.destroy()
      await b.destroy()
    }
  })

  it('deep-merges limits with the manager defaults', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, limits: { memoryMB: 256 } })
    const sb: any = await m.createSandbox({ limits: { timeoutSeconds: 60 } })
    try {
      expect(sb.limits.memoryMB).toBe(256)
      expect(sb.limits.timeoutSeconds).toBe(60)
      expect(sb.limits.cpuCores).toBe(1)
      expect(sb.limits.diskMB).toBe(1024)
      expect(sb.limits.pidsLimit).toBe(256)
      // the manager defaults are untouched by the per-sandbox override
      expect(m.defaultConfig.limits.memoryMB).toBe(256)
      expect(m.defaultConfig.limits.timeoutSeconds).toBe(300)
    } finally {
      await m.destroyAll()
    }
  })

  it('runs created -> running -> stopped -> running -> destroyed; workspace survives stop/start', async () => {
    const sb: any = await manager.createSandbox()
    try {
      expect(sb.state).toBe('created')
      await sb.start()
      expect(sb.state).toBe('running')
      expect(inspectContainer(sb.id).State.Running).toBe(true)

      const w = await sb.writeFile('/workspace/persist.txt', 'still here')
      expect(w.success).toBe(true)

      // a long-running command is killed by stop()
      const pending = sb.execute('sleep', ['1000'], { timeout: 600 }).then(
        (r: any) => ({ ok: true, r }),
        (e: any) => ({ ok: false, e }),
      )
      await sleep(500)

      await sb.stop()
      expect(sb.state).toBe('stopped')
      // not paused: the container runs on idle, so that it can still notice its owner's death
      // (only images that keep their own command are paused; see guest.spec.ts)
      expect(inspectContainer(sb.id).State.Paused).toBe(false)
      expect(inspectContainer(sb.id).State.Running).toBe(true)
      await expectCode(sb.execute('echo', ['hi']), 'SANDBOX_NOT_RUNNING')
      const settled = await Promise.race([pending, sleep(15_000).then(() => 'still pending')])
      expect(settled, 'execute that was running during stop() must settle').not.toBe('still pending')

      await sb.start()
      expect(sb.state).toBe('running')
      const r = await sb.execute('cat', ['/workspace/persist.txt'])
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe('still here')
      const ps = await sb.execute('ps', ['-o', 'pid,args'])
      expect(ps.stdout).not.toContain('sleep 1000')

      // stop/start a second time
      await sb.stop()
      await sb.start()
      expect((await sb.execute('echo', ['again'])).stdout).toBe('again\n')

      await sb.destroy()
      expect(sb.state).toBe('destroyed')
      const err = await sb.execute('echo', ['x']).then(
        () => undefined,
        (e: any) => e,
      )
      expect(err, 'execute after destroy must reject').toBeDefined()
      expect(['SANDBOX_DESTROYED', 'SANDBOX_NOT_RUNNING']).toContain(err.code)
    } finally {
      await sb.destroy()
    }
  })

  it('destroy() twice resolves', async () => {
    const sb: any = await manager.createSandbox()
    await sb.start()
    expect((await sb.execute('echo', ['ok'])).stdout).toBe('ok\n')
    await sb.destroy()
    await expect(sb.destroy()).resolves.toBeUndefined()
    expect(sb.state).toBe('destroyed')
  })

  it('getSandbox / listSandboxes / destroySandbox', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      expect(m.getSandbox('docker-0000000000000000')).toBeUndefined()
      expect(m.getSandbox('nope')).toBeUndefined()
      expect(m.listSandboxes()).toEqual([])
      const a: any = await m.createSandbox()
      const b: any = await m.createSandbox()
      expect(m.getSandbox(a.id)?.id).toBe(a.id)
      expect(
        m
          .listSandboxes()
          .map((s: any) => s.id)
          .sort(),
      ).toEqual([a.id, b.id].sort())
      await m.destroySandbox(a.id)
      expect(m.getSandbox(a.id)).toBeUndefined()
      expect(m.listSandboxes().map((s: any) => s.id)).toEqual([b.id])
      // unknown ids resolve (PoC behaviour)
      await expect(m.destroySandbox('docker-ffffffffffffffff')).resolves.toBeUndefined()
      await expect(m.destroySandbox(a.id)).resolves.toBeUndefined()
    } finally {
      await m.destroyAll()
    }
  })

  it('destroyAll destroys started and unstarted sandboxes', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    const a: any = await m.createSandbox()
    const b: any = await m.createSandbox()
    try {
      await a.start()
      expect(dockerLabelled(sandboxLabel(a.id)).containers).toBe(1)
      await m.destroyAll()
      expect(m.listSandboxes()).toEqual([])
      expect(a.state).toBe('destroyed')
      expect(b.state).toBe('destroyed')
      for (const s of [a, b]) {
        expect(dockerLabelled(sandboxLabel(s.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
      }
    } finally {
      await m.destroyAll()
    }
  })

  it('getAllStats / healthCheckAll return one entry per sandbox', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const a: any = await m.createSandbox()
      const b: any = await m.createSandbox()
      await a.start()
      await b.start()
      const stats = await m.getAllStats()
      expect(stats).toHaveLength(2)
      expect(stats.map((s: any) => s.id).sort()).toEqual([a.id, b.id].sort())
      for (const s of stats) {
        expect(s.provider).toBe('docker')
        for (const k of ['memoryUsageMB', 'cpuPercent', 'diskUsageMB', 'networkRxMB', 'networkTxMB']) {
          expect(typeof s.stats[k], `stats.${k}`).toBe('number')
          expect(s.stats[k], `stats.${k}`).toBeGreaterThanOrEqual(0)
        }
      }
      const health = await m.healthCheckAll()
      expect(health).toHaveLength(2)
      expect(health.map((h: any) => h.id).sort()).toEqual([a.id, b.id].sort())
      for (const h of health) {
        expect(h.provider).toBe('docker')
        expect(h.health.healthy).toBe(true)
      }
      await b.stop()
      const health2 = await m.healthCheckAll()
      const hb = health2.find((h: any) => h.id === b.id)
      const ha = health2.find((h: any) => h.id === a.id)
      expect(ha.health.healthy).toBe(true)
      expect(hb.health.healthy).toBe(false)
    } finally {
      await m.destroyAll()
    }
  })

  it('healthCheck is healthy when running and unhealthy with a message when stopped', async () => {
    await withSandbox({}, async (sb) => {
      const h = await sb.healthCheck()
      expect(h.healthy).toBe(true)
      await sb.stop()
      const h2 = await sb.healthCheck()
      expect(h2.healthy).toBe(false)
      expect(typeof h2.message).toBe('string')
      expect(h2.message.length).toBeGreaterThan(0)
    })
  })

  it('healthCheck of a created (not started) sandbox is unhealthy', async () => {
    const sb: any = await manager.createSandbox()
    try {
      const h = await sb.healthCheck()
      expect(h.healthy).toBe(false)
      expect(typeof h.message).toBe('string')
    } finally {
      await sb.destroy()
    }
  })

  it('getStats reports memory, disk and cpu', async () => {
    await withSandbox({}, async (sb) => {
      const w = await sb.execute('dd', ['if=/dev/zero', 'of=/workspace/five', 'bs=1M', 'count=5'])
      expect(w.exitCode).toBe(0)
      // hold ~30 MB of anonymous memory (sort buffers its whole input) while stats are taken
      const hog = sb.execute('sh', ['-c', "head -c 30000000 /dev/zero | tr '\\0' a | sort | sleep 8"], {
        timeout: 30,
      })
      await sleep(3000)
      const s = await sb.getStats()
      await hog
      for (const k of ['memoryUsageMB', 'cpuPercent', 'diskUsageMB', 'networkRxMB', 'networkTxMB']) {
        expect(typeof s[k], `stats.${k}`).toBe('number')
        expect(Number.isFinite(s[k]), `stats.${k} finite`).toBe(true)
        expect(s[k], `stats.${k}`).toBeGreaterThanOrEqual(0)
      }
      expect(s.memoryUsageMB).toBeGreaterThan(10)
      expect(s.memoryUsageMB).toBeLessThanOrEqual(512)
      expect(s.diskUsageMB).toBeGreaterThanOrEqual(4)
      expect(s.diskUsageMB).toBeLessThan(100)
    })
  })

  it('getStats cpuPercent rises while the sandbox spins', async () => {
    await withSandbox({}, async (sb) => {
      const spin = sb.execute('sh', ['-c', 'while :; do :; done'], { timeout: 6 })
      await sleep(2000)
      const s = await sb.getStats()
      const r = await spin
      expect(r.timedOut).toBe(true)
      expect(s.cpuPercent).toBeGreaterThan(10)
    })
  })

  it('labels the container, volume and network, applies limits, and removes everything on destroy', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    const sb: any = await m.createSandbox({ limits: { memoryMB: 200, pidsLimit: 100, cpuCores: 1 } })
    try {
      await sb.start()
      const info = inspectContainer(sb.id)
      const labels = info.Config.Labels
      expect(labels['agentic-sandbox.managed']).toBe('true')
      expect(labels['agentic-sandbox.sandbox-id']).toBe(sb.id)
      expect(labels['agentic-sandbox.owner-pid']).toBe(String(process.pid))
      expect(labels['agentic-sandbox.owner-host']).toBe(os.hostname())

      expect(info.HostConfig.Memory).toBe(200 * MiB)
      expect(info.HostConfig.PidsLimit).toBe(100)
      const cpus = info.HostConfig.NanoCpus
        ? info.HostConfig.NanoCpus / 1e9
        : info.HostConfig.CpuQuota / info.HostConfig.CpuPeriod
      expect(cpus).toBe(1)
      expect(info.HostConfig.ReadonlyRootfs).toBe(true)
      expect(info.HostConfig.CapDrop).toContain('ALL')

      const res = dockerLabelled(sandboxLabel(sb.id))
      expect(res.containers).toBe(1)
      expect(res.volumes).toBeGreaterThanOrEqual(1)
      expect(res.networks).toBe(1) // default networkMode is 'isolated'
      const vols = docker(['volume', 'ls', '-q', '--filter', `label=${sandboxLabel(sb.id)}`]).split('\n')
      for (const v of vols) {
        const vl = JSON.parse(docker(['volume', 'inspect', v]))[0].Labels
        expect(vl['agentic-sandbox.managed']).toBe('true')
        expect(vl['agentic-sandbox.owner-pid']).toBe(String(process.pid))
      }
      const net = docker(['network', 'ls', '-q', '--filter', `label=${sandboxLabel(sb.id)}`])
      const nl = JSON.parse(docker(['network', 'inspect', net]))[0].Labels
      expect(nl['agentic-sandbox.managed']).toBe('true')
      expect(nl['agentic-sandbox.owner-pid']).toBe(String(process.pid))

      await m.destroySandbox(sb.id)
      expect(sb.state).toBe('destroyed')
      expect(dockerLabelled(sandboxLabel(sb.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await m.destroyAll()
    }
  })

  it('destroying a stopped sandbox removes it', async () => {
    const sb: any = await manager.createSandbox()
    try {
      await sb.start()
      await sb.stop()
      await sb.destroy()
      expect(sb.state).toBe('destroyed')
      expect(dockerLabelled(sandboxLabel(sb.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await sb.destroy()
    }
  })
})
