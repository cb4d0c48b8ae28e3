import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import {
  BUSYBOX,
  docker,
  dockerLabelled,
  expectCode,
  expectCodeSync,
  inspectContainer,
  sandboxLabel,
  withSandbox,
} from './helpers.js'

const ENV_KEYS = [
  'SANDBOX_PROVIDER',
  'SANDBOX_MEMORY_MB',
  'SANDBOX_CPU_CORES',
  'SANDBOX_TIMEOUT_SECONDS',
  'SANDBOX_DISK_MB',
  'SANDBOX_NETWORK_MODE',
  'SANDBOX_PIDS_LIMIT',
  'DOCKER_SOCKET_PATH',
  'DOCKER_IMAGE',
  'SANDBOX_CONFIG_FILE',
  'AS_TEST_IMAGE',
  'AS_TEST_NAME',
]

let savedEnv: Record<string, string | undefined> = {}
let savedCwd = ''
let tmpDir = ''

beforeEach(() => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]))
  for (const k of ENV_KEYS) delete process.env[k]
  savedCwd = process.cwd()
  // run every test from an empty directory so no stray .sandboxrc.json is picked up
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-config-'))
  process.chdir(tmpDir)
})

afterEach(() => {
  process.chdir(savedCwd)
  fs.rmSync(tmpDir, { recursive: true, force: true })
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k]
    else process.env[k] = savedEnv[k]
  }
})

const rc = (obj: unknown) => fs.writeFileSync(path.join(tmpDir, '.sandboxrc.json'), JSON.stringify(obj, null, 2))

describe('config validation', () => {
  it('negative memoryMB: constructor throws synchronously, createSandbox rejects', async () => {
    const e1 = expectCodeSync(() => new SandboxManager({ limits: { memoryMB: -1 } } as any), 'INVALID_CONFIG')
    expect(e1.message).toContain('memoryMB')
    expect(e1).toBeInstanceOf(Error)

    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const e2 = await expectCode(m.createSandbox({ limits: { memoryMB: -5 } }), 'INVALID_CONFIG')
      expect(e2.message).toContain('memoryMB')
      expect(m.listSandboxes()).toEqual([])
    } finally {
      await m.destroyAll()
    }
  })

  it('other out-of-range limits are rejected', async () => {
    for (const limits of [{ cpuCores: -1 }, { diskMB: -10 }, { timeoutSeconds: -3 }]) {
      const e = expectCodeSync(() => new SandboxManager({ limits } as any), 'INVALID_CONFIG')
      expect(e.message).toContain(Object.keys(limits)[0])
    }
  })

  it('unknown provider', async () => {
    const e = expectCodeSync(() => new SandboxManager({ provider: 'Kubernetes!' } as any), 'INVALID_CONFIG')
    expect(e.message).toContain('provider')
    // a well-formed name may be registered later (registerProvider); creating a sandbox on it before is refused
    const m = new SandboxManager({ provider: 'kubernetes' })
    const e2 = await expectCode(m.createSandbox(), 'INVALID_CONFIG')
    expect(e2.message).toContain("registerProvider(\"kubernetes\"")
  })

  it('unknown networkMode', async () => {
    const e = expectCodeSync(() => new SandboxManager({ networkMode: 'wormhole' } as any), 'INVALID_CONFIG')
    expect(e.message).toContain('networkMode')
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const e2 = await expectCode(m.createSandbox({ networkMode: 'host' }), 'INVALID_CONFIG')
      expect(e2.message).toContain('networkMode')
    } finally {
      await m.destroyAll()
    }
  })

  it('wrong types name the field', async () => {
    const e1 = expectCodeSync(() => new SandboxManager({ limits: { memoryMB: 'lots' } } as any), 'INVALID_CONFIG')
    expect(e1.message).toContain('memoryMB')
    const e2 = expectCodeSync(() => new SandboxManager({ env: { A: 1 } } as any), 'INVALID_CONFIG')
    expect(e2.message).toContain('env')
    const e3 = expectCodeSync(() => new SandboxManager({ limits: 5 } as any), 'INVALID_CONFIG')
    expect(e3.message).toContain('limits')

    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const e4 = await expectCode(m.createSandbox({ limits: { memoryMB: 'lots' } }), 'INVALID_CONFIG')
      expect(e4.message).toContain('memoryMB')
      const e5 = await expectCode(m.createSandbox({ env: { A: 1 } }), 'INVALID_CONFIG')
      expect(e5.message).toContain('env')
    } finally {
      await m.destroyAll()
    }
  })
})

describe('config sources', () => {
  it('built-in defaults', () => {
    const m: any = new SandboxManager()
    const d = m.defaultConfig
    expect(d.provider).toBe('docker')
    expect(d.image).toBe('node:20-alpine')
    expect(d.networkMode).toBe('isolated')
    expect(d.workdir).toBe('/workspace')
    expect(d.limits).toMatchObject({ memoryMB: 512, cpuCores: 1, diskMB: 1024, timeoutSeconds: 300, pidsLimit: 256 })
  })

  it('reads SANDBOX_* / DOCKER_IMAGE env vars at construction', async () => {
    process.env.SANDBOX_PROVIDER = 'docker'
    process.env.SANDBOX_MEMORY_MB = '300'
    process.env.SANDBOX_CPU_CORES = '0.5'
    process.env.SANDBOX_TIMEOUT_SECONDS = '77'
    process.env.SANDBOX_DISK_MB = '100'
    process.env.SANDBOX_NETWORK_MODE = 'none'
    process.env.DOCKER_IMAGE = BUSYBOX
    const m: any = new SandboxManager()
    // changes after construction are not seen
    process.env.SANDBOX_MEMORY_MB = '999'
    process.env.SANDBOX_NETWORK_MODE = 'bridge'
    try {
      expect(m.defaultConfig.limits).toMatchObject({ memoryMB: 300, cpuCores: 0.5, timeoutSeconds: 77, diskMB: 100 })
      expect(m.defaultConfig.networkMode).toBe('none')
      expect(m.defaultConfig.image).toBe(BUSYBOX)
      const sb: any = await m.createSandbox()
      expect(sb.limits).toMatchObject({ memoryMB: 300, cpuCores: 0.5, timeoutSeconds: 77, diskMB: 100 })
      await sb.start()
      const info = inspectContainer(sb.id)
      expect(info.Image).toBe(docker(['image', 'inspect', '-f', '{{.Id}}', BUSYBOX]))
      expect(info.HostConfig.Memory).toBe(300 * 1024 * 1024)
      const dev = await sb.execute('cat', ['/proc/net/dev'])
      expect(dev.stdout).not.toMatch(/eth0/)
    } finally {
      await m.destroyAll()
    }
  })

  it('SANDBOX_MEMORY_MB=abc is INVALID_CONFIG naming the variable', () => {
    process.env.SANDBOX_MEMORY_MB = 'abc'
    const e = expectCodeSync(() => new SandboxManager(), 'INVALID_CONFIG')
    expect(e.message).toContain('SANDBOX_MEMORY_MB')
  })

  it('SANDBOX_NETWORK_MODE=wormhole is INVALID_CONFIG naming the variable', () => {
    process.env.SANDBOX_NETWORK_MODE = 'wormhole'
    const e = expectCodeSync(() => new SandboxManager(), 'INVALID_CONFIG')
    expect(e.message).toContain('SANDBOX_NETWORK_MODE')
  })

  it('.sandboxrc.json in cwd with ${VAR} expansion', async () => {
    process.env.AS_TEST_IMAGE = BUSYBOX
    process.env.AS_TEST_NAME = 'world'
    rc({
      image: '${AS_TEST_IMAGE}',
      limits: { memoryMB: 384, timeoutSeconds: 111 },
      networkMode: 'none',
      env: { GREETING: 'hello ${AS_TEST_NAME}!' },
    })
    const m: any = new SandboxManager()
    try {
      expect(m.defaultConfig.image).toBe(BUSYBOX)
      expect(m.defaultConfig.networkMode).toBe('none')
      expect(m.defaultConfig.env).toMatchObject({ GREETING: 'hello world!' })
      expect(m.defaultConfig.limits).toMatchObject({ memoryMB: 384, timeoutSeconds: 111, cpuCores: 1 })
      const sb: any = await m.createSandbox()
      expect(sb.limits.memoryMB).toBe(384)
      await sb.start()
      const r = await sb.execute('sh', ['-c', 'echo "$GREETING"'])
      expect(r.stdout).toBe('hello world!\n')
    } finally {
      await m.destroyAll()
    }
  })

  it('.sandboxrc.json in the seed guide format (docker.image, security)', () => {
    process.env.AS_TEST_IMAGE = BUSYBOX
    rc({
      provider: 'docker',
      limits: { memoryMB: 512, cpuCores: 1, diskMB: 1024, timeoutSeconds: 300 },
      networkMode: 'isolated',
      autoCleanup: true,
      docker: { image: '${AS_TEST_IMAGE}', socketPath: '/var/run/docker.sock' },
      e2b: { apiKey: '${E2B_API_KEY}', templateId: 'node-typescript', region: 'us-east-1' },
      security: { readOnlyRoot: true, dropCapabilities: ['ALL'], noNewPrivileges: true },
    })
    const m: any = new SandboxManager()
    expect(m.defaultConfig.image).toBe(BUSYBOX)
    expect(m.defaultConfig.networkMode).toBe('isolated')
  })

  it('a malformed .sandboxrc.json is INVALID_CONFIG naming the file', () => {
    fs.writeFileSync(path.join(tmpDir, '.sandboxrc.json'), '{ "limits": { "memoryMB": 12, } ')
    const e = expectCodeSync(() => new SandboxManager(), 'INVALID_CONFIG')
    expect(e.message).toContain('.sandboxrc.json')
  })

  it('an invalid value in .sandboxrc.json is INVALID_CONFIG', () => {
    rc({ limits: { memoryMB: -64 } })
    const e = expectCodeSync(() => new SandboxManager(), 'INVALID_CONFIG')
    expect(e.message).toContain('memoryMB')
  })

  it('precedence: explicit > env > file > defaults', async () => {
    rc({ image: BUSYBOX, limits: { memoryMB: 384, diskMB: 64, timeoutSeconds: 111, cpuCores: 0.5 }, networkMode: 'none' })
    process.env.SANDBOX_MEMORY_MB = '320'
    process.env.SANDBOX_DISK_MB = '48'
    process.env.SANDBOX_NETWORK_MODE = 'bridge'
    const m: any = new SandboxManager({ limits: { memoryMB: 200 } })
    try {
      expect(m.defaultConfig.limits).toMatchObject({
        memoryMB: 200, // constructor
        diskMB: 48, // env beats file
        timeoutSeconds: 111, // file
        cpuCores: 0.5, // file
        pidsLimit: 256, // default
      })
      expect(m.defaultConfig.networkMode).toBe('bridge') // env beats file
      expect(m.defaultConfig.image).toBe(BUSYBOX) // file
      const sb: any = await m.createSandbox({ limits: { timeoutSeconds: 30 }, networkMode: 'none' })
      expect(sb.limits).toMatchObject({ memoryMB: 200, diskMB: 48, timeoutSeconds: 30, cpuCores: 0.5, pidsLimit: 256 })
      const sb2: any = await m.createSandbox({ limits: { memoryMB: 128 } })
      expect(sb2.limits).toMatchObject({ memoryMB: 128, diskMB: 48, timeoutSeconds: 111 })
    } finally {
      await m.destroyAll()
    }
  })
})

describe('provider and image errors', () => {
  it('an image that cannot be pulled -> IMAGE_NOT_FOUND, nothing left behind', async () => {
    const image = 'agentic-sandbox/does-not-exist:1'
    const m: any = new SandboxManager({ image })
    try {
      const sb: any = await m.createSandbox()
      const e = await expectCode(sb.start(), 'IMAGE_NOT_FOUND')
      expect(e.message).toContain(image)
      expect(sb.state).not.toBe('running')
      expect(dockerLabelled(sandboxLabel(sb.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
      await m.destroySandbox(sb.id)
      expect(dockerLabelled(sandboxLabel(sb.id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
    } finally {
      await m.destroyAll()
    }
  })

  it.skipIf(!!process.env.E2B_API_KEY)("provider 'e2b' without a key, or with a malformed one -> INVALID_CONFIG before any request", async () => {
    const manager: any = new SandboxManager({ provider: 'e2b' } as any)
    try {
      const err = await expectCode(manager.createSandbox(), 'INVALID_CONFIG')
      expect(err.message).toMatch(/E2B_API_KEY/)
      const bad = await expectCode(manager.createSandbox({ e2b: { apiKey: 'not-a-key' } }), 'INVALID_CONFIG')
      expect(bad.message).not.toContain('not-a-key')
      expect(manager.listSandboxes()).toHaveLength(0)
    } finally {
      await manager.destroyAll()
    }
  })

  it('fallbackProviders must name providers', async () => {
    const manager: any = new SandboxManager({ image: BUSYBOX })
    try {
      await expectCode(manager.createSandbox({ fallbackProviders: ['kubernetes'] }), 'INVALID_CONFIG')
    } finally {
      await manager.destroyAll()
    }
  })

  it('docker.socketPath to a missing socket -> PROVIDER_UNAVAILABLE explaining how to start Docker', async () => {
    const socketPath = path.join(tmpDir, 'no-such-docker.sock')
    let manager: any
    try {
      const t0 = Date.now()
      const e = await expectCode(
        (async () => {
          manager = new SandboxManager({ image: BUSYBOX, docker: { socketPath } })
          const sb: any = await manager.createSandbox()
          await sb.start()
        })(),
        'PROVIDER_UNAVAILABLE',
      )
      expect(Date.now() - t0).toBeLessThan(30_000)
      expect(e.message).toMatch(/start|systemctl|Docker Desktop|dockerd/i)
      expect(e.message).toMatch(/docker/i)
    } finally {
      await manager?.destroyAll()
    }
  })

  it('the real engine still works after the failures above', async () => {
    await withSandbox({}, async (sb) => {
      expect((await sb.execute('echo', ['ok'])).stdout).toBe('ok\n')
      expect(docker(['ps', '-q', '--filter', `label=${sandboxLabel(sb.id)}`])).not.toBe('')
    })
  })
})
