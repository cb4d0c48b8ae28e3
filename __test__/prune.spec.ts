// `npx agentic-sandbox prune`: the bin run with node, against leftovers made by hand with the docker
// CLI (a stopped container and an orphaned volume and network of a made-up sandbox). `--all` is only
// ever run with `--dry-run` here: other processes may have live sandboxes on the same engine.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX, docker, dockerLabelled, sandboxLabel, sleep } from './helpers.js'

const BIN = fileURLToPath(new URL('../bin/agentic-sandbox.js', import.meta.url))

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A stopped container, a volume and a network labelled as sandbox `id`'s, with no live owner. */
function leftovers(id: string) {
  const labels = ['--label', 'agentic-sandbox.managed=true', '--label', `agentic-sandbox.sandbox-id=${id}`]
  const volume = `agentic-sandbox-${id}-workspace`
  const network = `agentic-sandbox-${id}-net`
  docker(['volume', 'create', ...labels, volume])
  docker(['network', 'create', '--internal', ...labels, network])
  const container = docker(['create', ...labels, '--name', id, '--network', 'none', BUSYBOX, 'true'])
  docker(['start', '-a', container])
  return { volume, network, container }
}

const made: string[] = []
afterAll(() => {
  for (const id of made) {
    for (const args of [['rm', '-f', id], ['volume', 'rm', '-f', `agentic-sandbox-${id}-workspace`], ['network', 'rm', `agentic-sandbox-${id}-net`]]) {
      try {
        docker(args)
      } catch {
        /* already gone */
      }
    }
  }
})

describe('agentic-sandbox prune', () => {
  it('prints help, and rejects unknown commands and options with exit code 2', () => {
    const help = cli('--help')
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: agentic-sandbox <command>')
    expect(help.stdout).toContain('prune')
    const pruneHelp = cli('prune', '--help')
    expect(pruneHelp.code).toBe(0)
    expect(pruneHelp.stdout).toContain('--dry-run')
    expect(pruneHelp.stdout).toContain('--all')

    const bad = cli('prune', '--force')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("unknown option '--force'")
    expect(cli('prune', 'now').code).toBe(2)
    expect(cli('prune', '--dry-run=yes').code).toBe(2)
    expect(cli('prune', '--socket').code).toBe(2)
    const unknown = cli('frobnicate')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("unknown command 'frobnicate'")
    expect(cli().code).toBe(2)
  })

  it('lists (dry run), then removes, what sandboxes of dead processes left', async () => {
    const id = `docker-${randomBytes(8).toString('hex')}`
    made.push(id)
    const { container } = leftovers(id)
    expect(dockerLabelled(sandboxLabel(id))).toEqual({ containers: 1, volumes: 1, networks: 1 })

    // a stopped container goes at once; the volume and network only once 10 s old (a start may be in progress)
    const dry = cli('prune', '--dry-run')
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`would remove container ${id} (${container.slice(0, 12)}): container exited`)
    expect(dry.stdout).not.toContain(`agentic-sandbox-${id}-workspace`)
    expect(dockerLabelled(sandboxLabel(id))).toEqual({ containers: 1, volumes: 1, networks: 1 })

    await sleep(10_500)
    const json = cli('prune', '--dry-run', '--json')
    expect(json.code, json.stderr).toBe(0)
    const listed = JSON.parse(json.stdout)
    expect(listed.dryRun).toBe(true)
    const mine = (list: any[]) => list.filter((r) => r.sandboxId === id)
    expect(mine(listed.containers)).toEqual([
      expect.objectContaining({ kind: 'container', id: container, name: id, reason: 'container exited', removed: false }),
    ])
    expect(mine(listed.volumes)).toEqual([
      expect.objectContaining({ kind: 'volume', name: `agentic-sandbox-${id}-workspace`, removed: false, reason: expect.stringContaining('has no container') }),
    ])
    expect(mine(listed.networks)).toEqual([expect.objectContaining({ kind: 'network', name: `agentic-sandbox-${id}-net`, removed: false })])
    expect(dockerLabelled(sandboxLabel(id))).toEqual({ containers: 1, volumes: 1, networks: 1 })

    const real = cli('prune')
    expect(real.code, real.stdout + real.stderr).toBe(0)
    expect(real.stdout).toContain(`removed container ${id}`)
    expect(real.stdout).toContain(`removed volume agentic-sandbox-${id}-workspace`)
    expect(real.stdout).toContain(`removed network agentic-sandbox-${id}-net`)
    expect(real.stdout).toMatch(/Removed \d+ containers?, \d+ volumes?, \d+ networks?\./)
    expect(dockerLabelled(sandboxLabel(id))).toEqual({ containers: 0, volumes: 0, networks: 0 })
  })

  it('never touches a running sandbox, unless --all (shown here as a dry run only)', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX, networkMode: 'none' })
    const sb: any = await m.createSandbox()
    try {
      await sb.start()
      const plain = cli('prune', '--dry-run')
      expect(plain.code).toBe(0)
      expect(plain.stdout).not.toContain(sb.id)

      const all = JSON.parse(cli('prune', '--all', '--dry-run', '--json').stdout)
      const c = all.containers.find((r: any) => r.sandboxId === sb.id)
      expect(c).toMatchObject({ kind: 'container', name: sb.id, reason: '--all (state running)', removed: false })
      expect(all.volumes.find((r: any) => r.sandboxId === sb.id)).toMatchObject({ reason: '--all' })
      expect(sb.state).toBe('running')
      expect((await sb.execute('echo', ['alive'])).stdout).toBe('alive\n')
    } finally {
      await m.destroyAll()
    }
  })

  it('fails with exit code 1 and a clear message when the engine is unreachable', () => {
    const r = cli('prune', '--socket', '/nonexistent/docker.sock')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('cannot reach the Docker engine at unix:///nonexistent/docker.sock')
  })
})
