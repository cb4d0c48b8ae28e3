// The "raw Docker API" baseline for create+start: the same container the addon creates (read back
// with inspect), created directly through the Engine API, and the same through `docker run -d`.
import type Docker from 'dockerode'
import { benchLabels, docker, dockerCli, guarded, removeContainer, removeVolume, uniqueName } from './docker.js'

export interface Template {
  config: Docker.ContainerInspectInfo['Config']
  hostConfig: Record<string, any>
  /** The sandbox's workspace volume, when it has one. */
  volume?: { name: string; driver: string; options: Record<string, string>; target: string }
}

/** Labels without the addon's own (`agentic-sandbox.*`), so the addon's reaper ignores the replicas. */
function foreignLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(labels ?? {})) if (!k.startsWith('agentic-sandbox.')) out[k] = v
  return { ...out, ...benchLabels() }
}

/** Reads the container (named by the sandbox id) and its workspace volume. */
export async function captureTemplate(sandboxId: string): Promise<Template> {
  const info = await docker.getContainer(sandboxId).inspect()
  const hostConfig = info.HostConfig as Record<string, any>
  const mounts: any[] = hostConfig.Mounts ?? []
  const vm = mounts.find((m) => m.Type === 'volume')
  let volume: Template['volume']
  if (vm) {
    const v = await docker.getVolume(vm.Source).inspect()
    volume = { name: vm.Source, driver: v.Driver, options: (v.Options ?? {}) as Record<string, string>, target: vm.Target }
  }
  return { config: info.Config, hostConfig, volume }
}

export interface Replica {
  container: string
  volume?: string
}

/** Timed part: a fresh volume like the workspace, a container with the same Config/HostConfig, start. */
export function createReplica(t: Template, created: Replica[]): Promise<void> {
  return guarded(() => createReplicaUnguarded(t, created))
}

async function createReplicaUnguarded(t: Template, created: Replica[]): Promise<void> {
  const name = uniqueName('raw')
  const replica: Replica = { container: name }
  created.push(replica)
  const hostConfig = { ...t.hostConfig }
  if (t.volume) {
    replica.volume = `${name}-workspace`
    await docker.createVolume({ Name: replica.volume, Driver: t.volume.driver, DriverOpts: t.volume.options, Labels: benchLabels() })
    hostConfig.Mounts = (t.hostConfig.Mounts ?? []).map((m: any) =>
      m.Type === 'volume' && m.Source === t.volume!.name ? { ...m, Source: replica.volume } : m,
    )
  }
  const c = t.config
  const container = await docker.createContainer({
    name,
    Image: c.Image,
    Entrypoint: c.Entrypoint as string[] | undefined,
    Cmd: c.Cmd ?? undefined,
    Env: c.Env,
    User: c.User,
    WorkingDir: c.WorkingDir,
    OpenStdin: c.OpenStdin,
    StdinOnce: c.StdinOnce,
    AttachStdin: c.AttachStdin,
    AttachStdout: c.AttachStdout,
    AttachStderr: c.AttachStderr,
    Tty: c.Tty,
    Labels: foreignLabels(c.Labels),
    HostConfig: hostConfig,
  })
  await container.start()
}

/** Not timed: container first, then its volume. */
export async function removeReplica(r: Replica): Promise<void> {
  await removeContainer(r.container)
  if (r.volume) await removeVolume(r.volume)
}

/** `docker run -d` arguments for (nearly) the same container, for reference. */
export function runArgs(t: Template, name: string, volumeName: string): string[] {
  const c = t.config
  const h = t.hostConfig
  const args = ['run', '-d', '--name', name]
  for (const [k, v] of Object.entries(foreignLabels(c.Labels))) args.push('--label', `${k}=${v}`)
  if (h.NetworkMode) args.push('--network', h.NetworkMode)
  if (h.Init) args.push('--init')
  if (h.ReadonlyRootfs) args.push('--read-only')
  for (const cap of h.CapDrop ?? []) args.push('--cap-drop', cap)
  for (const cap of h.CapAdd ?? []) args.push('--cap-add', cap)
  for (const opt of h.SecurityOpt ?? []) args.push('--security-opt', opt)
  for (const [p, o] of Object.entries(h.Tmpfs ?? {})) args.push('--tmpfs', o ? `${p}:${o}` : p)
  if (h.Memory) args.push('--memory', `${h.Memory}b`)
  if (h.MemorySwap) args.push('--memory-swap', `${h.MemorySwap}b`)
  if (h.NanoCpus) args.push('--cpus', String(h.NanoCpus / 1e9))
  if (h.PidsLimit) args.push('--pids-limit', String(h.PidsLimit))
  for (const m of h.Mounts ?? []) {
    if (m.Type === 'volume' && t.volume && m.Source === t.volume.name) {
      const fields = [`type=volume`, `src=${volumeName}`, `dst=${m.Target}`, `volume-driver=${t.volume.driver}`]
      for (const [k, v] of Object.entries(benchLabels())) fields.push(`volume-label=${k}=${v}`)
      for (const [k, v] of Object.entries(t.volume.options)) fields.push(`"volume-opt=${k}=${v}"`)
      args.push('--mount', fields.join(','))
    } else if (m.Type === 'bind') {
      args.push('--mount', `type=bind,src=${m.Source},dst=${m.Target}${m.ReadOnly ? ',readonly' : ''}`)
    }
  }
  for (const e of c.Env ?? []) args.push('-e', e)
  if (c.User) args.push('-u', c.User)
  if (c.WorkingDir) args.push('-w', c.WorkingDir)
  if (c.OpenStdin) args.push('-i')
  if (c.Tty) args.push('-t')
  const ep = (c.Entrypoint as string[] | null) ?? []
  if (ep.length > 0) args.push('--entrypoint', ep[0])
  args.push(c.Image, ...ep.slice(1), ...((c.Cmd as string[] | null) ?? []))
  return args
}

export async function createViaCli(t: Template, created: Replica[]): Promise<void> {
  const name = uniqueName('run')
  const replica: Replica = { container: name, volume: t.volume ? `${name}-workspace` : undefined }
  created.push(replica)
  await guarded(() => dockerCli(runArgs(t, name, replica.volume ?? '')))
}
