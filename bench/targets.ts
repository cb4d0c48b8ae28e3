// The five ways of running the same workload: the addon with each engine, dockerode, the docker
// CLI (the proof of concept's way) and plain child_process.spawn on the host (the floor).
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type Docker from 'dockerode'
import { benchLabels, docker, dockerCli, dockerodeExec, guarded, removeContainer, run, uniqueName } from './docker.js'

export type PathName = 'addon-guest' | 'addon-exec' | 'dockerode' | 'docker-cli' | 'spawn'
export const ALL_PATHS: PathName[] = ['addon-guest', 'addon-exec', 'dockerode', 'docker-cli', 'spawn']
/** Paths without a per-call `docker exec`: they get the larger iteration counts. */
export const FAST_PATHS: PathName[] = ['addon-guest', 'spawn']

export interface ExecResult {
  exitCode: number
  stdout: string
}

/** One open sandbox (or the host) that the measures drive. Methods throw on failure. */
export interface Target {
  name: PathName
  /** A writable directory for the file measures. */
  root: string
  /** Container name or sandbox id, when there is one. */
  id?: string
  exec(cmd: string, args: string[]): Promise<ExecResult>
  writeFile(file: string, data: Buffer): Promise<void>
  readFile(file: string): Promise<Buffer>
  listFiles(dir: string): Promise<string[]>
  close(): Promise<void>
}

// The addon's API is still growing (engines, pools); these are the parts the bench uses.
export interface AddonSandbox {
  id: string
  execEngine?: string
  start(): Promise<void>
  execute(cmd: string, args?: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>
  writeFile(path: string, content: Buffer): Promise<{ success: boolean; error?: string }>
  readFile(path: string, opts: { encoding: 'buffer' }): Promise<{ success: boolean; buffer?: Buffer; error?: string }>
  listFiles(path: string): Promise<string[]>
  destroy(): Promise<void>
}
export interface AddonManager {
  createSandbox(config: Record<string, unknown>): Promise<AddonSandbox>
  createPool?(config: Record<string, unknown>, opts: Record<string, unknown>): Promise<AddonPool>
  destroyAll(): Promise<void>
}
export interface AddonPool {
  acquire(): Promise<AddonSandbox>
  release(sb: AddonSandbox): Promise<void>
  destroy(): Promise<void>
}

export type Engine = 'guest' | 'exec'

export function addonConfig(image: string, engine: Engine): Record<string, unknown> {
  return { image, networkMode: 'none', docker: { execEngine: engine } }
}

/**
 * Checks that the addon really runs the requested engine: an addon without the guest engine
 * ignores `execEngine` and would otherwise be measured under the wrong name.
 */
export function checkEngine(sb: AddonSandbox, engine: Engine): void {
  const actual = sb.execEngine
  if (engine === 'guest' && actual !== 'guest') {
    throw new Error(`asked for execEngine 'guest', the sandbox reports ${JSON.stringify(actual)} (guest engine not available in this build)`)
  }
  if (engine === 'exec' && actual !== undefined && actual !== 'exec') {
    throw new Error(`asked for execEngine 'exec', the sandbox reports ${JSON.stringify(actual)}`)
  }
}

export function addonTarget(sb: AddonSandbox, name: PathName, close: () => Promise<void>): Target {
  return {
    name,
    root: '/workspace',
    id: sb.id,
    async exec(cmd, args) {
      const r = await sb.execute(cmd, args)
      return { exitCode: r.exitCode, stdout: r.stdout }
    },
    async writeFile(file, data) {
      const r = await sb.writeFile(file, data)
      if (!r.success) throw new Error(`writeFile ${file}: ${r.error}`)
    },
    async readFile(file) {
      const r = await sb.readFile(file, { encoding: 'buffer' })
      if (!r.success || !r.buffer) throw new Error(`readFile ${file}: ${r.error ?? 'no buffer'}`)
      return r.buffer
    },
    listFiles: (dir) => sb.listFiles(dir),
    close,
  }
}

export async function openAddon(manager: AddonManager, image: string, engine: Engine): Promise<Target> {
  const sb = await guarded(() => manager.createSandbox(addonConfig(image, engine)))
  try {
    await guarded(() => sb.start())
    checkEngine(sb, engine)
  } catch (e) {
    await sb.destroy().catch(() => {})
    throw e
  }
  return addonTarget(sb, engine === 'guest' ? 'addon-guest' : 'addon-exec', () => sb.destroy())
}

/**
 * The container the dockerode and CLI paths use: same image, idling on `sleep infinity` under
 * Docker's init, no network, and a tmpfs at /workspace like the addon's tmpfs-backed workspace.
 */
export function plainContainerSpec(image: string, name: string): Docker.ContainerCreateOptions {
  return {
    name,
    Image: image,
    Entrypoint: ['sleep', 'infinity'],
    WorkingDir: '/workspace',
    Labels: benchLabels(),
    HostConfig: { NetworkMode: 'none', Init: true, Tmpfs: { '/workspace': 'rw,mode=1777' } },
  }
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.length > 0)
}

function checkRun(what: string, r: { code: number; stderr: Buffer }): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.toString().trim()}`)
}

export async function openDockerode(image: string): Promise<Target> {
  const name = uniqueName('dockerode')
  const container = await guarded(async () => {
    try {
      const c = await docker.createContainer(plainContainerSpec(image, name))
      await c.start()
      return c
    } catch (e) {
      await removeContainer(name).catch(() => {})
      throw e
    }
  })
  return {
    name: 'dockerode',
    root: '/workspace',
    id: name,
    async exec(cmd, args) {
      const r = await dockerodeExec(container, [cmd, ...args])
      return { exitCode: r.code, stdout: r.stdout.toString() }
    },
    async writeFile(file, data) {
      checkRun('cat >', await dockerodeExec(container, ['sh', '-c', 'cat > "$1"', 'sh', file], data))
    },
    async readFile(file) {
      const r = await dockerodeExec(container, ['cat', file])
      checkRun('cat', r)
      return r.stdout
    },
    async listFiles(dir) {
      const r = await dockerodeExec(container, ['ls', '-1', dir])
      checkRun('ls', r)
      return lines(r.stdout.toString())
    },
    close: () => removeContainer(name),
  }
}

/** `docker run -d` arguments equivalent to plainContainerSpec. */
function plainRunArgs(image: string, name: string): string[] {
  const [label, value] = Object.entries(benchLabels())[0]
  return ['run', '-d', '--name', name, '--label', `${label}=${value}`, '--network', 'none', '--init',
    '--tmpfs', '/workspace:rw,mode=1777', '-w', '/workspace', '--entrypoint', 'sleep', image, 'infinity']
}

export async function openCli(image: string): Promise<Target> {
  const name = uniqueName('cli')
  await guarded(async () => {
    try {
      await dockerCli(plainRunArgs(image, name))
    } catch (e) {
      await removeContainer(name).catch(() => {})
      throw e
    }
  })
  return {
    name: 'docker-cli',
    root: '/workspace',
    id: name,
    async exec(cmd, args) {
      const r = await run('docker', ['exec', name, cmd, ...args])
      return { exitCode: r.code, stdout: r.stdout.toString() }
    },
    async writeFile(file, data) {
      checkRun('docker exec -i cat >', await run('docker', ['exec', '-i', name, 'sh', '-c', 'cat > "$1"', 'sh', file], data))
    },
    async readFile(file) {
      const r = await run('docker', ['exec', name, 'cat', file])
      checkRun('docker exec cat', r)
      return r.stdout
    },
    async listFiles(dir) {
      const r = await run('docker', ['exec', name, 'ls', '-1', dir])
      checkRun('docker exec ls', r)
      return lines(r.stdout.toString())
    },
    close: () => removeContainer(name),
  }
}

export async function openSpawn(): Promise<Target> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'agentic-bench-'))
  return {
    name: 'spawn',
    root,
    exec(cmd, args) {
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        const out: Buffer[] = []
        child.stdout.on('data', (b: Buffer) => out.push(b))
        child.stderr.resume()
        child.on('error', reject)
        child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout: Buffer.concat(out).toString() }))
      })
    },
    writeFile: (file, data) => writeFile(file, data),
    readFile: (file) => readFile(file),
    listFiles: async (dir) => (await readdir(dir)).sort(),
    close: () => rm(root, { recursive: true, force: true }),
  }
}

export function openPath(p: PathName, manager: AddonManager, image: string): Promise<Target> {
  switch (p) {
    case 'addon-guest':
      return openAddon(manager, image, 'guest')
    case 'addon-exec':
      return openAddon(manager, image, 'exec')
    case 'dockerode':
      return openDockerode(image)
    case 'docker-cli':
      return openCli(image)
    case 'spawn':
      return openSpawn()
  }
}
