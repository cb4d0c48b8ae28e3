// Network isolation. Only addresses on this machine are ever contacted: a TCP listener in this test
// process (reached through Docker's bridge / the sandbox network gateway) and other local sandboxes.
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BUSYBOX, bridgeGateway, hostIPv4s, containerOf, docker, dockerLabelledIds, sandboxLabel, sleep, withSandbox } from './helpers.js'

const GREETING = 'hello-from-host'

let server: net.Server
let port = 0
let connections = 0
let gateway = ''

beforeAll(async () => {
  gateway = bridgeGateway()
  server = net.createServer((sock) => {
    connections++
    sock.on('error', () => {})
    sock.end(GREETING + '\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', () => resolve()))
  port = (server.address() as net.AddressInfo).port
})

afterAll(async () => {
  if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
})

/** Try a TCP connection from inside the sandbox; true when the peer's greeting was received. */
async function canConnect(sb: any, ip: string, p: number, greeting = GREETING): Promise<boolean> {
  const r = await sb.execute('sh', ['-c', `nc -w 2 ${ip} ${p} </dev/null`], { timeout: 15 })
  return r.stdout.includes(greeting)
}

/** Interface names from /proc/net/dev. */
async function interfaces(sb: any): Promise<string[]> {
  const r = await sb.execute('cat', ['/proc/net/dev'])
  expect(r.exitCode).toBe(0)
  return r.stdout
    .split('\n')
    .slice(2)
    .map((l: string) => l.split(':')[0].trim())
    .filter(Boolean)
}

/** The default-route gateway inside the sandbox, if any. */
async function defaultGateway(sb: any): Promise<string | undefined> {
  const r = await sb.execute('ip', ['route'])
  return /^default via (\d+\.\d+\.\d+\.\d+)/m.exec(r.stdout)?.[1]
}

/** IPv4 addresses of the sandbox's container on its docker networks. */
function containerIps(id: string): string[] {
  return docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', containerOf(id)])
    .split(/\s+/)
    .filter(Boolean)
}

describe('network isolation', () => {
  it("bridge: the host listener IS reachable (proves the probe works)", async () => {
    await withSandbox({ networkMode: 'bridge' }, async (sb) => {
      const before = connections
      expect(await canConnect(sb, gateway, port)).toBe(true)
      expect(connections).toBeGreaterThan(before)
    })
  })

  it("none: only lo exists and the host listener is unreachable", async () => {
    await withSandbox({ networkMode: 'none' }, async (sb) => {
      expect(await interfaces(sb)).toEqual(['lo'])
      expect(await defaultGateway(sb)).toBeUndefined()
      const before = connections
      for (const ip of new Set([gateway, ...hostIPv4s()])) {
        expect(await canConnect(sb, ip, port), `host listener reachable via ${ip}`).toBe(false)
      }
      expect(connections).toBe(before)
      // no sandbox network is created for 'none'
      expect(dockerLabelledIds(sandboxLabel(sb.id)).networks).toEqual([])
    })
  })

  it("isolated: one internal network, host unreachable via the bridge and via the sandbox's own gateway", async () => {
    await withSandbox({ networkMode: 'isolated' }, async (sb) => {
      const nets = dockerLabelledIds(sandboxLabel(sb.id)).networks
      expect(nets).toHaveLength(1)
      const info = JSON.parse(docker(['network', 'inspect', nets[0]]))[0]
      expect(info.Internal).toBe(true)
      expect(info.Labels['agentic-sandbox.managed']).toBe('true')

      const targets = new Set<string>([gateway, ...hostIPv4s()])
      const dg = await defaultGateway(sb)
      if (dg) targets.add(dg)
      for (const c of info.IPAM?.Config ?? []) if (c.Gateway) targets.add(c.Gateway)
      expect(targets.size).toBeGreaterThanOrEqual(1)

      const before = connections
      for (const ip of targets) {
        expect(await canConnect(sb, ip, port), `host listener reachable from isolated sandbox via ${ip}`).toBe(false)
      }
      expect(connections).toBe(before)
    })
  })

  it('default networkMode is isolated (internal network)', async () => {
    await withSandbox({}, async (sb) => {
      const nets = dockerLabelledIds(sandboxLabel(sb.id)).networks
      expect(nets).toHaveLength(1)
      expect(docker(['network', 'inspect', '-f', '{{.Internal}}', nets[0]])).toBe('true')
      const before = connections
      expect(await canConnect(sb, gateway, port)).toBe(false)
      expect(connections).toBe(before)
    })
  })

  it('two isolated sandboxes cannot reach each other', async () => {
    await withSandbox({ networkMode: 'isolated' }, async (a) => {
      await withSandbox({ networkMode: 'isolated' }, async (b) => {
        const ipsA = containerIps(a.id)
        expect(ipsA.length).toBeGreaterThanOrEqual(1)
        // A serves one greeting on 8080 (not awaited; bounded by its timeout)
        const listener = a
          .execute('sh', ['-c', 'echo hello-from-a | nc -l -p 8080'], { timeout: 25 })
          .catch((e: any) => e)
        await sleep(1000)
        try {
          for (const ip of ipsA) {
            expect(await canConnect(b, ip, 8080, 'hello-from-a'), `B reached A at ${ip}`).toBe(false)
          }
          // control: the listener in A is up and reachable on that address from inside A
          expect(await canConnect(a, ipsA[0], 8080, 'hello-from-a')).toBe(true)
        } finally {
          await listener
        }
      })
    })
  })
})
