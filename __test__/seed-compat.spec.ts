// The seeds' own ways of configuring the library: seed 003's environment variables, the user
// guide's `.sandboxrc.json` handed to the constructor, the warnings channel for settings that have
// no effect, and the guide's debugging switches (`debug` / `verbose`, `logger.setLevel`).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  DockerSandbox,
  E2BSandbox,
  Sandbox,
  SandboxManager,
  SandboxPool,
  SandboxedAgentExecutor,
  logger,
  type ExecuteOptions,
} from '../index.js'
import { BUSYBOX, containerOf, expectCode, expectCodeSync, goneOf, inspectContainer, waitFor } from './helpers.js'

const INDEX = fileURLToPath(new URL('../index.js', import.meta.url))

// every variable these tests set; unset while a manager is constructed unless a test sets it
const SEED_VARS = [
  'POOL_SIZE',
  'MIN_POOL_SIZE',
  'MAX_POOL_SIZE',
  'CONTAINER_IDLE_TIMEOUT_MINUTES',
  'CLEANUP_INTERVAL_SECONDS',
  'CONTAINER_IMAGE',
  'MEMORY_LIMIT',
  'CPU_QUOTA',
  'SANDBOX_USER',
  'WORKSPACE_DIR',
  'DOCKER_NETWORK_MODE',
  'MAX_TOTAL_FILES',
  'MAX_WORKSPACE_SIZE_MB',
  'SANDBOX_MEMORY_MB',
  'SANDBOX_CPU_CORES',
  'SANDBOX_NETWORK_MODE',
  'SANDBOX_REAPER_INTERVAL_SECONDS',
  'DOCKER_IMAGE',
  'SANDBOX_CONFIG_FILE',
  'SEED_COMPAT_IMAGE',
  'SEED_COMPAT_KEY',
]

/** Construct a manager with exactly `env` of SEED_VARS set (the configuration is read at
 * construction), restoring the environment right after. */
function managerWith(env: Record<string, string>, config?: any): any {
  const saved = Object.fromEntries(SEED_VARS.map((k) => [k, process.env[k]]))
  for (const k of SEED_VARS) delete process.env[k]
  Object.assign(process.env, env)
  try {
    return new SandboxManager(config)
  } finally {
    for (const k of SEED_VARS) {
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
    }
  }
}

let savedCwd = ''
let tmpDir = ''
beforeEach(() => {
  // an empty working directory: no stray .sandboxrc.json
  savedCwd = process.cwd()
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentic-sandbox-seed-'))
  process.chdir(tmpDir)
})
afterEach(() => {
  process.chdir(savedCwd)
  fs.rmSync(tmpDir, { recursive: true, force: true })
})

describe('seed 003 environment variables', () => {
  it('each variable takes effect with its meaning', async () => {
    const m = managerWith({
      CONTAINER_IMAGE: BUSYBOX,
      MEMORY_LIMIT: '256m',
      CPU_QUOTA: '25000', // 25% of one core
      SANDBOX_USER: '1234:1234',
      WORKSPACE_DIR: '/work/space',
      DOCKER_NETWORK_MODE: 'none',
      MAX_TOTAL_FILES: '2',
      MAX_WORKSPACE_SIZE_MB: '1',
      CLEANUP_INTERVAL_SECONDS: '300',
    })
    try {
      const d = m.defaultConfig
      expect(d.image).toBe(BUSYBOX)
      expect(d.limits).toMatchObject({ memoryMB: 256, cpuCores: 0.25, maxTotalFiles: 2, maxWorkspaceSizeMB: 1 })
      expect(d.docker).toMatchObject({ user: '1234:1234', reaperIntervalSeconds: 300 })
      expect([d.workdir, d.networkMode]).toEqual(['/work/space', 'none'])
      expect(m.warnings).toEqual([])

      const sb = await m.createSandbox()
      expect(sb.limits).toMatchObject({ memoryMB: 256, cpuCores: 0.25, maxTotalFiles: 2 })
      await sb.start()
      expect((await sb.getStatus()).image).toBe(BUSYBOX)
      const hc = inspectContainer(sb.id).HostConfig
      expect(hc.Memory).toBe(256 * 1024 * 1024)
      expect(hc.NanoCpus ? hc.NanoCpus / 1e9 : hc.CpuQuota / hc.CpuPeriod).toBe(0.25)
      const r = await sb.execute('sh', ['-c', 'id -u; pwd; grep -c eth0 /proc/net/dev || true'])
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['1234', '/work/space', '0'])
      expect((await sb.writeFile('a.txt', 'a')).success).toBe(true)
      expect((await sb.writeFile('b.txt', 'b')).success).toBe(true)
      const third = await sb.writeFile('c.txt', 'c')
      expect([third.success, third.code]).toEqual([false, 'QUOTA_EXCEEDED'])
    } finally {
      await m.destroyAll()
    }
  })

  it('pool variables are the defaults of createPool options', async () => {
    const m = managerWith({
      CONTAINER_IMAGE: BUSYBOX,
      DOCKER_NETWORK_MODE: 'none',
      POOL_SIZE: '2', // started by createPool
      MIN_POOL_SIZE: '1',
      MAX_POOL_SIZE: '3',
      CONTAINER_IDLE_TIMEOUT_MINUTES: '0.02', // 1.2 s
    })
    try {
      const pool = await m.createPool()
      expect(pool.stats).toMatchObject({ idle: 2, inUse: 0, min: 1, max: 3 })
      // the spare above MIN_POOL_SIZE goes after CONTAINER_IDLE_TIMEOUT_MINUTES
      expect(await waitFor(() => pool.stats.idle === 1, 20_000)).toBe(true)
      // explicit options win; POOL_SIZE yields to an explicit max
      const small = await m.createPool({}, { min: 0, max: 1, idleTimeoutSeconds: 0 })
      expect(small.stats).toMatchObject({ idle: 1, min: 0, max: 1 })
    } finally {
      await m.destroyAll()
    }
  })

  it("the library's own variables win, and the losing seed variable is a warning", () => {
    const m = managerWith({
      DOCKER_IMAGE: BUSYBOX,
      CONTAINER_IMAGE: 'sandbox-secure:latest',
      SANDBOX_MEMORY_MB: '300',
      MEMORY_LIMIT: '256m',
      SANDBOX_CPU_CORES: '2',
      CPU_QUOTA: '25000',
      SANDBOX_NETWORK_MODE: 'bridge',
      DOCKER_NETWORK_MODE: 'none',
    })
    const d = m.defaultConfig
    expect([d.image, d.limits.memoryMB, d.limits.cpuCores, d.networkMode]).toEqual([BUSYBOX, 300, 2, 'bridge'])
    for (const [seed, own] of [
      ['CONTAINER_IMAGE', 'DOCKER_IMAGE'],
      ['MEMORY_LIMIT', 'SANDBOX_MEMORY_MB'],
      ['CPU_QUOTA', 'SANDBOX_CPU_CORES'],
      ['DOCKER_NETWORK_MODE', 'SANDBOX_NETWORK_MODE'],
    ]) {
      expect(m.warnings.some((w: string) => w.startsWith(`environment variable ${seed}=`) && w.includes(own)), seed).toBe(true)
    }
    expect(m.warnings).toHaveLength(4)
  })

  it('a bad value is INVALID_CONFIG naming the variable', () => {
    const cases: Array<[Record<string, string>, string[]]> = [
      [{ MEMORY_LIMIT: '512' }, ['MEMORY_LIMIT', '"512m"']], // bytes, as for docker: the hint says so
      [{ MEMORY_LIMIT: 'lots' }, ['MEMORY_LIMIT']],
      [{ CPU_QUOTA: '-1' }, ['CPU_QUOTA', 'SANDBOX_CPU_CORES']],
      [{ DOCKER_NETWORK_MODE: 'host' }, ['DOCKER_NETWORK_MODE', 'host']],
      [{ WORKSPACE_DIR: 'relative' }, ['WORKSPACE_DIR', 'workdir']],
      [{ MAX_TOTAL_FILES: '0' }, ['MAX_TOTAL_FILES', 'limits.maxTotalFiles']],
      [{ CLEANUP_INTERVAL_SECONDS: 'hourly' }, ['CLEANUP_INTERVAL_SECONDS']],
      [{ POOL_SIZE: 'ten' }, ['POOL_SIZE']],
      [{ MIN_POOL_SIZE: '5', MAX_POOL_SIZE: '2' }, ['MIN_POOL_SIZE=5', 'MAX_POOL_SIZE=2']],
      [{ CONTAINER_IDLE_TIMEOUT_MINUTES: '-1' }, ['CONTAINER_IDLE_TIMEOUT_MINUTES']],
    ]
    for (const [env, needles] of cases) {
      const e = expectCodeSync(() => managerWith(env), 'INVALID_CONFIG')
      for (const n of needles) expect(e.message, JSON.stringify(env)).toContain(n)
    }
  })
})

describe('the constructor config is normalised like .sandboxrc.json', () => {
  // the user guide: new SandboxManager(JSON.parse(fs.readFileSync('.sandboxrc.json', 'utf8')))
  const guideFile = `{
    "provider": "docker",
    "limits": { "memoryMB": 128, "cpuCores": 1, "diskMB": 64, "timeoutSeconds": 300 },
    "networkMode": "none",
    "autoCleanup": true,
    "docker": { "image": "\${SEED_COMPAT_IMAGE}" },
    "env": { "API_KEY_FROM_HOST": "\${SEED_COMPAT_KEY}", "FALLBACK": "\${SEED_COMPAT_UNSET:-dflt}" },
    "startupScript": "echo \${HOME} > /dev/null",
    "security": { "readOnlyRoot": false, "dropCapabilities": ["ALL"], "noNewPrivileges": true }
  }`

  it('${VAR} expansion, docker.image and security reach the sandbox', async () => {
    const m = managerWith({ SEED_COMPAT_IMAGE: BUSYBOX, SEED_COMPAT_KEY: 'k-123' }, JSON.parse(guideFile))
    try {
      const d = m.defaultConfig
      expect(d.image).toBe(BUSYBOX)
      expect(d.docker).toMatchObject({ readOnlyRoot: false, capDrop: ['ALL'], securityOpt: ['no-new-privileges'] })
      expect(d.docker.image).toBeUndefined()
      expect(d.security).toBeUndefined()
      expect(d.env).toEqual({ API_KEY_FROM_HOST: '***', FALLBACK: 'dflt' }) // a *key* is redacted when handed back
      expect(d.startupScript).toBe('echo ${HOME} > /dev/null') // a shell script keeps its own ${VAR}s
      expect(m.warnings).toEqual([])

      const sb = await m.createSandbox()
      await sb.start()
      const info = inspectContainer(sb.id)
      expect(info.HostConfig.ReadonlyRootfs).toBe(false)
      expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges')
      expect(info.HostConfig.CapDrop).toContain('ALL')
      expect((await sb.execute('sh', ['-c', 'echo "$API_KEY_FROM_HOST $FALLBACK"'])).stdout).toBe('k-123 dflt\n')
    } finally {
      await m.destroyAll()
    }
  })

  it('createSandbox configs get the same treatment', async () => {
    const m = managerWith({}, { networkMode: 'none' })
    try {
      // ${VAR} is read when the sandbox is created
      process.env.SEED_COMPAT_IMAGE = BUSYBOX
      let sb: any
      try {
        sb = await m.createSandbox({ docker: { image: '${SEED_COMPAT_IMAGE}' }, security: { readOnlyRoot: true, noNewPrivileges: false } })
      } finally {
        delete process.env.SEED_COMPAT_IMAGE
      }
      await sb.start()
      expect((await sb.getStatus()).image).toBe(BUSYBOX)
      const info = inspectContainer(sb.id)
      expect(info.HostConfig.ReadonlyRootfs).toBe(true)
      expect(info.HostConfig.SecurityOpt ?? []).not.toContain('no-new-privileges')
    } finally {
      await m.destroyAll()
    }
  })

  it('an unset ${VAR}, a shadowed spelling and an unknown security field are warnings', () => {
    const m = managerWith({}, { image: BUSYBOX, docker: { image: 'other:1' }, env: { K: '${SEED_COMPAT_KEY}' }, security: { seccomp: 'strict' } })
    expect(m.defaultConfig.image).toBe(BUSYBOX)
    expect(m.warnings).toEqual([
      '${SEED_COMPAT_KEY} in the SandboxManager config is not set, so it was replaced by an empty string; set the variable or write ${SEED_COMPAT_KEY:-default}',
      'docker.image in the SandboxManager config has no effect: image is also given there, and wins',
      'security.seccomp in the SandboxManager config has no effect: it is not a known security option (known: readOnlyRoot, dropCapabilities, noNewPrivileges)',
    ])
    const e = expectCodeSync(() => managerWith({}, { security: { noNewPrivileges: 'yes' } }), 'INVALID_CONFIG')
    expect(e.message).toContain('security.noNewPrivileges')
  })
})

describe('manager.warnings', () => {
  // creating an E2B sandbox sends no request (start() would); the API URL is a local one anyway
  const e2b = { apiKey: 'e2b_0123456789abcdef', templateId: 'base', region: 'us-east-1', apiUrl: 'http://127.0.0.1:9' }

  it('E2B: limits, networkMode and docker options have no effect and say so', async () => {
    const m = managerWith({}, { provider: 'e2b', e2b, limits: { memoryMB: 1024, cpuCores: 2, timeoutSeconds: 60 }, networkMode: 'isolated', docker: { user: '1000' } })
    try {
      // (the suite also runs with SANDBOX_EXEC_ENGINE=exec, which rightly warns about docker.execEngine too)
      const w: string[] = m.warnings.filter((x: string) => !x.startsWith('docker.execEngine'))
      for (const key of ['limits.memoryMB', 'limits.cpuCores', "networkMode 'isolated'", 'docker.user', 'e2b.region']) {
        expect(w.some((x) => x.startsWith(`${key} has no effect`)), `${key} in ${JSON.stringify(w)}`).toBe(true)
      }
      expect(w.some((x) => x.includes('timeoutSeconds has')), 'timeoutSeconds is E2B lifetime').toBe(false)
      expect(w).toHaveLength(5)
      expect(w.every((x) => x.includes(' has no effect'))).toBe(true)

      // a createSandbox config adds its own, once
      const before = m.warnings.length
      await m.createSandbox({ gpu: true, limits: { networkMbps: 5 } })
      await m.createSandbox({ gpu: true, limits: { networkMbps: 5 } })
      const added = m.warnings.slice(before)
      expect(added).toHaveLength(2)
      expect(added[0]).toMatch(/^limits\.networkMbps has no effect: no provider enforces/)
      expect(added[1]).toMatch(/^gpu has no effect with provider 'e2b'/)
      expect(m.listSandboxes().every((s: any) => s.state === 'created')).toBe(true)

      // with a Docker fallback, the Docker settings count
      const withFallback = managerWith({}, { provider: 'e2b', e2b, fallbackProviders: ['docker'], limits: { memoryMB: 1024 }, image: BUSYBOX })
      expect(withFallback.warnings).toEqual(["e2b.region has no effect: E2B's API takes no region (E2B places sandboxes itself)"])
    } finally {
      await m.destroyAll()
    }
  })

  it('keys that are ignored on Docker', async () => {
    const m = managerWith({}, {
      image: BUSYBOX,
      colour: 'blue',
      autoCleanup: false,
      limits: { networkMbps: 100 },
      docker: { capdrop: ['ALL'] },
      e2b,
      debug: false,
      verbose: false,
    })
    try {
      const w: string[] = m.warnings
      for (const start of [
        'colour is not a known config key',
        'autoCleanup: false has no effect',
        'limits.networkMbps has no effect',
        'docker.capdrop is not a known Docker option',
        "e2b has no effect: the provider is 'docker'",
      ]) {
        expect(w.some((x) => x.startsWith(start)), `${start} in ${JSON.stringify(w)}`).toBe(true)
      }
      expect(w).toHaveLength(5) // debug / verbose work in a manager's config
      await m.createSandbox({ debug: true, docker: { reaperIntervalSeconds: 5 } })
      expect(m.warnings.slice(5)).toEqual([
        'debug in a createSandbox config has no effect: logging is process-wide; set debug in new SandboxManager(config) or .sandboxrc.json, or call logger.setLevel()',
        'docker.reaperIntervalSeconds in a createSandbox config has no effect: the reaper\'s interval is process-wide per engine; set it in new SandboxManager(config), .sandboxrc.json or SANDBOX_REAPER_INTERVAL_SECONDS',
      ])
      // a config that fails validation adds nothing
      await expectCode(m.createSandbox({ colour: 'red', limits: { memoryMB: -1 } }), 'INVALID_CONFIG')
      expect(m.warnings).toHaveLength(7)
    } finally {
      await m.destroyAll()
    }
  })

  it('a clean configuration has none', () => {
    expect(managerWith({}).warnings).toEqual([])
    expect(managerWith({}, { image: BUSYBOX, limits: { memoryMB: 64 }, networkMode: 'none', docker: { user: '1000' } }).warnings).toEqual([])
  })
})

/** Run a script in a child node process with the addon loaded as `lib`; returns its output. */
function runChild(script: string, env: Record<string, string> = {}) {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
  for (const k of ['RUST_LOG', 'DEBUG']) if (!(k in env)) delete childEnv[k]
  const r = spawnSync(process.execPath, ['-e', `const lib = require(${JSON.stringify(INDEX)});\n${script}`], {
    cwd: tmpDir,
    env: childEnv,
    encoding: 'utf8',
    timeout: 60_000,
  })
  expect(r.status, r.stderr).toBe(0)
  return r
}

/** stderr split at the `--name--` marks the script writes. */
function sections(stderr: string): Record<string, string> {
  const out: Record<string, string> = {}
  let name = 'start'
  for (const line of stderr.split('\n')) {
    const mark = /^--(\w[\w-]*)--$/.exec(line)
    if (mark) name = mark[1]
    else out[name] = (out[name] ?? '') + line + '\n'
  }
  return out
}

describe('debugging: logger.setLevel, debug and verbose', () => {
  // an unknown key logs a DEBUG line (config resolution) and a WARN line (the warning) at each construction
  const SCRIPT = `
    const { SandboxManager, logger } = lib
    const mark = (s) => process.stderr.write('--' + s + '--\\n')
    const make = (extra) => new SandboxManager({ image: 'x:1', colour: 1, ...extra })
    mark('silent'); make()
    logger.setLevel('debug'); mark('debug'); make()
    logger.setLevel('off'); mark('off'); make()
    logger.setLevel('warn'); mark('warn'); make()
    logger.setLevel('off'); mark('ctor-debug'); make({ debug: true }); make()
    mark('ctor-verbose'); make({ verbose: true })
    const levels = [logger.getLevel()]
    try { logger.setLevel('loud') } catch (e) { levels.push(e.code) }
    logger.setLevel('off'); levels.push(logger.getLevel())
    process.stdout.write(JSON.stringify(levels))
  `

  it('logs nothing by default; setLevel and debug/verbose turn the tracing output on at run time', () => {
    const r = runChild(SCRIPT)
    const s = sections(r.stderr)
    const debugLine = /DEBUG agentic_sandbox::core::config: unknown sandbox config key ignored/
    const warnLine = /WARN agentic_sandbox::core::manager: colour is not a known config key/
    expect(s.silent ?? '').toBe('')
    expect(s.debug).toMatch(debugLine)
    expect(s.debug).toMatch(warnLine)
    expect(s.off ?? '').toBe('')
    expect(s.warn).toMatch(warnLine)
    expect(s.warn).not.toMatch(/DEBUG/)
    expect(s['ctor-debug']).toMatch(debugLine) // debug: true raised the level for the whole process
    expect(s['ctor-verbose'] ?? '').toMatch(warnLine)
    expect(JSON.parse(r.stdout)).toEqual(['trace', 'INVALID_ARGUMENT', 'off'])
    expect(r.stderr).not.toMatch(/\x1b\[/) // no colours when stderr is not a terminal
  })

  it('DEBUG=1 and RUST_LOG still set the level at start-up', () => {
    const script = `lib.logger.getLevel(); process.stdout.write(lib.logger.getLevel()); new lib.SandboxManager({ image: 'x:1', colour: 1 })`
    const r = runChild(script, { DEBUG: '1' })
    expect(r.stdout).toBe('debug')
    expect(r.stderr).toMatch(/DEBUG agentic_sandbox::core::config/)
    const q = runChild(script, { RUST_LOG: 'agentic_sandbox=warn' })
    expect(q.stdout).toBe('agentic_sandbox=warn')
    expect(q.stderr).toMatch(/WARN/)
    expect(q.stderr).not.toMatch(/DEBUG/)
  })

  it('setLevel rejects an unknown level in this process too', () => {
    const e = expectCodeSync(() => logger.setLevel('verbose' as any), 'INVALID_ARGUMENT')
    expect(e.message).toContain("'debug'")
  })
})

describe("the guide's classes: DockerSandbox, E2BSandbox, new SandboxPool, await using", () => {
  it('new DockerSandbox(config) then start(); a subclass wraps its methods (seed 000 Q14)', async () => {
    const audit: string[] = []
    class AuditedSandbox extends DockerSandbox {
      override async execute(command: string, args?: string[], options?: ExecuteOptions): Promise<any> {
        audit.push(`start ${this.id} ${command} ${args?.join(' ')}`)
        const result = await super.execute(command, args, options)
        audit.push(`done ${command} ${result.exitCode}`)
        return result
      }
    }
    const sb = new AuditedSandbox({ image: BUSYBOX, env: { WHO: 'audited' } })
    try {
      expect(sb).toBeInstanceOf(Sandbox)
      expect(sb.provider).toBe('docker')
      expect(sb.state).toBe('created')
      expect(sb.id).toMatch(/^docker-[0-9a-f]{16}$/)
      await sb.start()
      expect(inspectContainer(sb.id).State.Running).toBe(true)
      const r = await sb.execute('sh', ['-c', 'echo $WHO'])
      expect(r.stdout).toBe('audited\n')
      expect(audit).toEqual([`start ${sb.id} sh -c echo $WHO`, 'done sh 0'])
      // the rest of the Sandbox surface is the napi class's
      expect((await sb.writeFile('a.txt', 'x')).success).toBe(true)
      expect(await sb.listFiles()).toContain('a.txt')
    } finally {
      await sb.destroy()
    }
    expect(await goneOf(sb.id)).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })

  it('the provider is fixed by the class; a bad config throws at construction', () => {
    const e = expectCodeSync(() => new DockerSandbox({ provider: 'e2b' }), 'INVALID_CONFIG')
    expect(e.message).toContain('new Sandbox({ provider:')
    expectCodeSync(() => new DockerSandbox({ limits: { memoryMB: -1 } }), 'INVALID_CONFIG')
    expectCodeSync(() => new DockerSandbox('node:20' as any), 'INVALID_CONFIG')
    const e2b = new E2BSandbox({ e2b: { apiKey: 'e2b_0123456789abcdef0123456789abcdef01234567' } })
    expect(e2b).toBeInstanceOf(Sandbox)
    expect(e2b.provider).toBe('e2b')
    expect(e2b.id).toMatch(/^e2b-[0-9a-f]{16}$/)
  })

  it('new SandboxPool({ size, ...config }): warm sandboxes, acquire(config) per configuration, release, destroy', async () => {
    const pool = new SandboxPool({ size: 2, image: BUSYBOX, env: { KIND: 'base' } })
    try {
      // it fills in the background
      await waitFor(() => pool.stats.idle === 2, 60_000)
      expect(pool.stats).toMatchObject({ idle: 2, inUse: 0, min: 2, max: 2 })
      const a = await pool.acquire()
      const b = await pool.acquire()
      expect((await a.execute('sh', ['-c', 'echo $KIND'])).stdout).toBe('base\n')
      // size is also the maximum
      await expectCode(pool.acquire({ timeoutSeconds: 0.2 }), 'POOL_EXHAUSTED')
      await pool.release(a)
      const again = await pool.acquire()
      expect(again.id).toBe(a.id)
      // another configuration: its own pool, reused after release
      const other = await pool.acquire({ env: { EXTRA: 'yes' } })
      expect(other.id).not.toBe(a.id)
      // merged like a createSandbox config over the defaults: `env` replaces, the image stays
      expect((await other.execute('sh', ['-c', 'echo "$KIND-$EXTRA"'])).stdout).toBe('-yes\n')
      expect(pool.stats.inUse).toBe(3)
      await pool.release(other)
      expect((await pool.acquire({ env: { EXTRA: 'yes' } })).id).toBe(other.id)
      await expectCode(pool.acquire({ timeoutSeconds: 'soon' } as any), 'INVALID_ARGUMENT')
      await expectCode(pool.release(new DockerSandbox({ image: BUSYBOX })), 'INVALID_ARGUMENT')
      await pool.release(b)
    } finally {
      await pool.destroy()
    }
    await expectCode(pool.acquire(), 'POOL_CLOSED')
    expect(pool.stats.idle + pool.stats.inUse).toBe(0)
    expectCodeSync(() => new SandboxPool({ size: -1 }), 'INVALID_ARGUMENT')
    expectCodeSync(() => new SandboxPool({ size: 1, limits: { cpuCores: 0 } }), 'INVALID_CONFIG')
  })

  it('await using destroys sandboxes and pools, and runs destroyAll / cleanupAll at the end of the scope', async () => {
    const m = new SandboxManager({ image: BUSYBOX })
    let kept = ''
    let scoped = ''
    let pooled = ''
    let container = ''
    {
      await using sb = await m.createSandbox()
      await sb.start()
      scoped = sb.id
      container = containerOf(sb.id)
      expect(container).not.toBe('')
    }
    expect(m.getSandbox(scoped)).toBeUndefined()
    expect(await goneOf(scoped)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    {
      await using pool = await m.createPool({}, { min: 1 })
      pooled = (await pool.acquire()).id
    }
    expect(await goneOf(pooled)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    {
      await using executor = new SandboxedAgentExecutor(m)
      const r = await executor.execute('keep it', { autoCleanup: false, agent: async () => 'done' })
      expect(r.exitCode).toBe(0)
      kept = r.sandboxId!
      expect(executor.listActive()).toHaveLength(1)
    }
    expect(await goneOf(kept)).toEqual({ containers: 0, volumes: 0, networks: 0 })
    {
      await using inner = new SandboxManager({ image: BUSYBOX })
      const sb = await inner.createSandbox()
      await sb.start()
      kept = sb.id
    }
    expect(await goneOf(kept)).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })
})
