// docker.runtime: the sandbox under gVisor (runsc), a stronger boundary than a shared kernel.
// scripts/ensure-runsc.sh registers Debian's runsc with the engine when this project's scripts
// started it; elsewhere these tests skip.
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, sandboxLabel } from './helpers.js'

function hasRunsc(): boolean {
  try {
    return docker(['info', '--format', '{{json .Runtimes}}']).includes('"runsc"')
  } catch {
    return false
  }
}

const RUNSC = hasRunsc()
if (!RUNSC) console.warn('runtime.spec: the engine has no runsc runtime (see scripts/ensure-runsc.sh); skipping')

// the guest engine's run only: these are about the guest under gVisor
describe.skipIf(!RUNSC || process.env.SANDBOX_EXEC_ENGINE === 'exec')('docker.runtime: runsc (gVisor)', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none', docker: { runtime: 'runsc' } })
  afterAll(() => manager.destroyAll())

  it('runs commands and files under gVisor as uid 1000, the guest as PID 1', async () => {
    const sb = await manager.createSandbox()
    await sb.start()
    const r = await sb.execute('sh', ['-c', 'dmesg 2>/dev/null | head -1; id -u; cat /proc/1/comm'])
    expect(r.exitCode, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toContain('gVisor')
    expect(lines.slice(1)).toEqual(['1000', 'agentic-sandbox'])
    expect((await sb.writeFile('a.txt', 'under gvisor')).success).toBe(true)
    expect((await sb.readFile('a.txt')).content).toBe('under gvisor')
    expect((await sb.execute('echo', ['still'])).stdout).toBe('still\n')
    const id = sb.id
    await sb.destroy()
    expect(dockerLabelled(sandboxLabel(id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })

  // gVisor (Debian's 2022-12 runsc) lets a process inside stop PID 1 and open its descriptors
  // (README: Security model); the host-side bounds are what hold there
  it('a guest frozen from inside hangs nothing: the call fails by its deadline, later calls go through docker exec', async () => {
    const sb = await manager.createSandbox()
    await sb.start()
    const t0 = Date.now()
    const frozen = await sb.execute('sh', ['-c', 'kill -STOP 1; sleep 30'], { timeout: 3 }).then(
      (v: any) => ({ ok: true, v }),
      (e: any) => ({ ok: false, e }),
    )
    expect(Date.now() - t0).toBeLessThan(25_000)
    if (!frozen.ok) expect(frozen.e.code).toBe('PROVIDER_ERROR')
    expect((await sb.execute('echo', ['after'], { timeout: 10 })).stdout).toBe('after\n')
    await sb.destroy()
  })
})
