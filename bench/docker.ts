// Docker plumbing for the benchmark: the run label, the docker CLI runner, dockerode exec with
// demultiplexing, and the sweep that removes everything this run created.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import Docker from 'dockerode'

/** Every container and volume the benchmark creates itself carries this label (value: run id). */
export const BENCH_LABEL = 'agentic-sandbox-bench'
export const RUN_ID = `${process.pid}-${randomBytes(3).toString('hex')}`
export const benchLabels = () => ({ [BENCH_LABEL]: RUN_ID })

export const docker = new Docker()

export function uniqueName(prefix: string): string {
  return `agentic-bench-${prefix}-${randomBytes(5).toString('hex')}`
}

export interface RunResult {
  code: number
  stdout: Buffer
  stderr: Buffer
}

/**
 * `child_process.execFile` with Buffer output, a large maxBuffer (the 1 MB read would hit the
 * default 1 MiB cap together with framing), and optional stdin. Resolves for non-zero exits.
 */
export function run(cmd: string, args: string[], input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0
      if (err && typeof code !== 'number') return reject(err)
      resolve({ code: code as number, stdout, stderr })
    })
    if (input) child.stdin!.end(input)
    else child.stdin!.end()
  })
}

/** `docker …` that must succeed; returns trimmed stdout. */
export async function dockerCli(args: string[], input?: Buffer): Promise<string> {
  const r = await run('docker', args, input)
  if (r.code !== 0) throw new Error(`docker ${args[0]} exited ${r.code}: ${r.stderr.toString().trim()}`)
  return r.stdout.toString().trim()
}

function collector(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk)
      cb()
    },
  })
}

/**
 * One `docker exec` through the Engine API, as dockerode users write it: create the exec,
 * start it hijacked, demultiplex stdout/stderr, feed stdin (then half-close), wait for the end
 * of the stream and read the exit code with `exec.inspect()`.
 */
export async function dockerodeExec(container: Docker.Container, cmd: string[], stdin?: Buffer): Promise<RunResult> {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: !!stdin })
  const stream = (await exec.start({ hijack: true, stdin: !!stdin })) as NodeJS.ReadWriteStream
  const out: Buffer[] = []
  const err: Buffer[] = []
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve)
    stream.on('close', resolve)
    stream.on('error', reject)
  })
  docker.modem.demuxStream(stream, collector(out), collector(err))
  if (stdin) stream.end(stdin)
  await ended
  let info = await exec.inspect()
  // The stream can end a moment before the engine records the exit code.
  for (let i = 0; info.Running && i < 1000; i++) {
    await new Promise((r) => setTimeout(r, 2))
    info = await exec.inspect()
  }
  if (info.ExitCode === null || info.ExitCode === undefined) throw new Error(`exec ${cmd.join(' ')}: no exit code`)
  return { code: info.ExitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }
}

/** Removes a container (force, with anonymous volumes); a missing one counts as removed. */
export async function removeContainer(idOrName: string): Promise<void> {
  try {
    await docker.getContainer(idOrName).remove({ force: true, v: true })
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw e
  }
}

/** Removes a volume, retrying briefly while the engine still holds it; a missing one counts as removed. */
export async function removeVolume(name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await docker.getVolume(name).remove()
      return
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode
      if (status === 404) return
      if (status !== 409 || attempt >= 20) throw e
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/** Everything of this run still present: containers and volumes with the bench label, plus the addon's sandboxes owned by this process. */
export async function leftovers(): Promise<{ containers: string[]; volumes: string[] }> {
  const filters = [`${BENCH_LABEL}=${RUN_ID}`, `agentic-sandbox.owner-pid=${process.pid}`]
  const containers: string[] = []
  const volumes: string[] = []
  for (const label of filters) {
    const cs = await docker.listContainers({ all: true, filters: { label: [label] } })
    containers.push(...cs.map((c) => `${c.Names[0] ?? c.Id} (${label})`))
    const vs = await docker.listVolumes({ filters: { label: [label] } })
    volumes.push(...(vs.Volumes ?? []).map((v) => `${v.Name} (${label})`))
  }
  return { containers, volumes }
}

let stopping = false
const inFlight = new Set<Promise<unknown>>()

/**
 * Runs a step that creates engine resources, so that cleanup can wait for it: a create still in
 * flight when the sweep lists resources would otherwise finish afterwards and leak. Once cleanup
 * has begun (a signal, or the end of the run), new steps are refused.
 */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  if (stopping) throw new Error('the benchmark is shutting down')
  const p = fn()
  inFlight.add(p)
  try {
    return await p
  } finally {
    inFlight.delete(p)
  }
}

/** Refuses new creates and waits (up to 20 s) for those in flight. */
export async function stopCreating(): Promise<void> {
  stopping = true
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.allSettled([...inFlight]),
    new Promise((r) => (timer = setTimeout(r, 20_000))),
  ])
  clearTimeout(timer)
}

/** Removes every container and volume carrying this run's bench label. */
export async function sweep(): Promise<void> {
  const label = `${BENCH_LABEL}=${RUN_ID}`
  const cs = await docker.listContainers({ all: true, filters: { label: [label] } })
  await Promise.allSettled(cs.map((c) => removeContainer(c.Id)))
  const vs = await docker.listVolumes({ filters: { label: [label] } })
  await Promise.allSettled((vs.Volumes ?? []).map((v) => removeVolume(v.Name)))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes what earlier runs left behind when they were killed outright (SIGKILL, OOM): resources
 * with the bench label whose run's process is gone. Returns how many were removed.
 */
export async function reapDeadRuns(): Promise<number> {
  const dead = (labels: Record<string, string> | undefined) => {
    const run = labels?.[BENCH_LABEL]
    const pid = Number(run?.split('-')[0])
    return run !== undefined && run !== RUN_ID && Number.isInteger(pid) && pid > 0 && !alive(pid)
  }
  const cs = (await docker.listContainers({ all: true, filters: { label: [BENCH_LABEL] } })).filter((c) => dead(c.Labels))
  await Promise.allSettled(cs.map((c) => removeContainer(c.Id)))
  const vs = ((await docker.listVolumes({ filters: { label: [BENCH_LABEL] } })).Volumes ?? []).filter((v) => dead(v.Labels))
  await Promise.allSettled(vs.map((v) => removeVolume(v.Name)))
  return cs.length + vs.length
}
