// Network egress policy (README "Network"): the rules are enforced by a gateway outside the
// sandbox. Only hosts this test starts are ever contacted: two server containers on a network the
// test creates (198.18.47.0/24, the benchmarking range: no one's addresses, and not in the fixed
// deny set, so that name rules can be tested without lifting it), named through docker.extraHosts,
// plus a TCP listener in this process for the "engine host" checks.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager, SandboxServer } from '../index.js'
import { DEBIAN, docker, dockerLabelledIds, expectCode, hostIPv4s, sandboxLabel, waitFor } from './helpers.js'

const NET = 'agentic-sandbox-egress-test'
const SUBNET = '198.18.47.0/24'
const HOST_A = 'agentic-sandbox-egress-host-a'
const HOST_B = 'agentic-sandbox-egress-host-b'
const CA_PATH = '/workspace/ca.crt'

let dir = ''
let ipA = ''
let ipB = ''
let netGateway = ''
let listener: net.Server
let listenerPort = 0
let listenerHits = 0
let manager: any
let sb: any
let gw = ''

function rmTestHosts() {
  for (const c of [HOST_A, HOST_B]) {
    try {
      docker(['rm', '-f', c])
    } catch {
      /* not there */
    }
  }
  try {
    docker(['network', 'rm', NET])
  } catch {
    /* not there */
  }
}

function makeCertificates(d: string) {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe' })
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=egress test CA'])
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=api.test'])
  fs.writeFileSync(path.join(d, 'san.ext'), 'subjectAltName=DNS:api.test,DNS:other.test,DNS:*.wild.test\n')
  ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext'])
  fs.chmodSync(path.join(d, 'server.key'), 0o644)
}

function startHost(name: string, label: string): string {
  docker(['run', '-d', '--name', name, '--network', NET, '-v', `${dir}:/srv:ro`, '--entrypoint', 'python3', DEBIAN, '/srv/server.py', label])
  return docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, name])
}

/** Run a probe of client.py in the sandbox; its JSON line. */
async function probe(s: any, ...args: string[]): Promise<any> {
  const r = await s.execute('python3', ['/workspace/client.py', ...args], { timeout: 40 })
  const line = r.stdout.trim().split('\n').pop() || ''
  try {
    return JSON.parse(line)
  } catch {
    throw new Error(`probe ${args.join(' ')}: exit ${r.exitCode}, stdout ${r.stdout}, stderr ${r.stderr}`)
  }
}

async function newSandbox(network: any, extra: Record<string, any> = {}) {
  const s = await manager.createSandbox({
    image: DEBIAN,
    network,
    docker: {
      egressNetwork: NET,
      extraHosts: {
        'api.test': ipA,
        'sub.wild.test': ipA,
        'deep.sub.wild.test': ipA,
        'wild.test': ipA,
        'other.test': ipB,
        'rebind.test': netGateway,
        'meta.test': '169.254.169.254',
      },
    },
    ...extra,
  })
  await s.start()
  await s.writeFile('/workspace/client.py', fs.readFileSync(path.join(__dirname, 'egress', 'client.py'), 'utf8'))
  await s.writeFile(CA_PATH, fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'))
  return s
}

const networkLogs = async (s: any) => (await s.getLogs({ lines: 1000 })).logs.filter((l: any) => l.source === 'network')

beforeAll(async () => {
  rmTestHosts()
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-test-'))
  fs.chmodSync(dir, 0o755)
  fs.copyFileSync(path.join(__dirname, 'egress', 'server.py'), path.join(dir, 'server.py'))
  makeCertificates(dir)
  netGateway = '198.18.47.1'
  docker(['network', 'create', '--subnet', SUBNET, '--gateway', netGateway, NET])
  ipA = startHost(HOST_A, 'A')
  ipB = startHost(HOST_B, 'B')
  await waitFor(() => docker(['logs', HOST_A]).includes('ready') && docker(['logs', HOST_B]).includes('ready'), 20_000)
  listener = net.createServer((sock) => {
    listenerHits++
    sock.on('error', () => {})
    sock.end('hello-from-host\n')
  })
  await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', () => resolve()))
  listenerPort = (listener.address() as net.AddressInfo).port
  manager = new SandboxManager()
  sb = await newSandbox({ allowOut: ['api.test', '*.wild.test', `${ipB}:9000`, 'rebind.test', 'meta.test'], denyOut: ['0.0.0.0/0'] })
  gw = (await sb.getStatus()).network.gateway
})

afterAll(async () => {
  if (manager) await manager.destroyAll()
  if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()))
  rmTestHosts()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

describe('egress policy (Docker)', () => {
  it('HTTP to an allowed name goes through the gateway; the decision is logged and counted', async () => {
    const r = await probe(sb, 'http', 'http://api.test:8080/x')
    expect(r.status).toBe(200)
    expect(r.body).toContain('hello A host=api.test:8080 path=/x')
    const logs = await networkLogs(sb)
    expect(logs.some((l: any) => l.level === 'info' && /api\.test:8080.*allowed by allowOut api\.test/.test(l.message))).toBe(true)
    const st = await sb.getStatus()
    expect(st.network.allowOut).toContain('api.test')
    expect(st.network.allowed).toBeGreaterThan(0)
  })

  it('a denied name and a denied IP get 403 from the gateway with the rule, and a log entry', async () => {
    const byName = await probe(sb, 'http', 'http://other.test:8080/')
    expect(byName.status).toBe(403)
    expect(byName.body).toMatch(/other\.test:8080 denied \(denyOut 0\.0\.0\.0\/0\)/)
    const byIp = await probe(sb, 'http', `http://${ipB}:8080/`)
    expect(byIp.status).toBe(403)
    const logs = await networkLogs(sb)
    expect(logs.some((l: any) => l.level === 'warn' && l.message.includes('other.test:8080') && l.message.includes('denied'))).toBe(true)
    expect((await sb.getStatus()).network.denied).toBeGreaterThanOrEqual(2)
  })

  it('HTTPS through CONNECT to an allowed name works; a different TLS server name (SNI) is cut', async () => {
    const ok = await probe(sb, 'https', 'https://api.test:8443/tls', CA_PATH)
    expect(ok.status).toBe(200)
    expect(ok.body).toContain('hello A')
    const fronted = await probe(sb, 'sni', 'api.test', '8443', 'other.test', CA_PATH)
    expect(fronted.connect).toBe('200')
    expect(fronted.body ?? '').not.toContain('hello')
    expect(fronted.error).toBeTruthy()
    const same = await probe(sb, 'sni', 'api.test', '8443', 'api.test', CA_PATH)
    expect(same.body).toContain('hello A')
    expect((await networkLogs(sb)).some((l: any) => /server name other\.test/.test(l.message))).toBe(true)
  })

  it('raw TCP through SOCKS5: the allowed IP:port connects, another port of the same host is refused', async () => {
    const ok = await probe(sb, 'socks', ipB, '9000')
    expect(ok).toEqual({ reply: 0, data: 'tcp-9000-B\n' })
    const refused = await probe(sb, 'socks', ipB, '9001')
    expect(refused.reply).toBe(2) // "connection not allowed by ruleset"
    // the same with OpenBSD nc, as a user would
    const nc = await sb.execute('sh', ['-c', `nc -w 5 -X 5 -x ${gw}:1080 ${ipB} 9000 </dev/null`], { timeout: 20 })
    expect(nc.stdout).toContain('tcp-9000-B')
  })

  it('*. wildcards match subdomains at any depth, not the domain itself', async () => {
    expect((await probe(sb, 'http', 'http://sub.wild.test:8080/')).status).toBe(200)
    expect((await probe(sb, 'http', 'http://deep.sub.wild.test:8080/')).status).toBe(200)
    expect((await probe(sb, 'http', 'http://wild.test:8080/')).status).toBe(403)
  })

  it('an allowed name that resolves to the engine host or to 169.254.169.254 is refused (DNS rebinding)', async () => {
    const rebind = await probe(sb, 'http', `http://rebind.test:${listenerPort}/`)
    expect(rebind.status).toBe(403)
    expect(rebind.body).toMatch(/deny set/)
    const meta = await probe(sb, 'http', 'http://meta.test/latest/meta-data/')
    expect(meta.status).toBe(403)
    expect(meta.body).toMatch(/deny set/)
  })

  it('DNS from inside answers only what the rules allow', async () => {
    expect(await probe(sb, 'dns', 'api.test', gw)).toEqual({ rcode: 0, ips: [ipA] })
    // wild.test resolves to host A, which no rule allows under that name
    const denied = await probe(sb, 'dns', 'wild.test', gw)
    expect(denied.ips).toEqual([])
    expect(denied.rcode).toBe(3) // NXDOMAIN
    // other.test resolves to host B, whose port 9000 is allowed: the address is answered, the
    // connection is decided per port
    expect(await probe(sb, 'dns', 'other.test', gw)).toEqual({ rcode: 0, ips: [ipB] })
    expect((await networkLogs(sb)).some((l: any) => /dns wild\.test/.test(l.message) && l.level === 'warn')).toBe(true)
  })

  it('updateNetwork replaces the rules of the running sandbox, without a restart', async () => {
    const before = (await sb.getStatus()).startedAt
    await sb.updateNetwork({ allowOut: ['other.test'], denyOut: ['0.0.0.0/0'] })
    expect((await probe(sb, 'http', 'http://other.test:8080/')).status).toBe(200)
    expect((await probe(sb, 'http', 'http://api.test:8080/')).status).toBe(403)
    const st = await sb.getStatus()
    expect(st.network.allowOut).toEqual(['other.test'])
    expect(st.startedAt).toBe(before)
    // a bad entry changes nothing
    const e = await expectCode(sb.updateNetwork({ allowOut: ['exa mple.com'] }), 'INVALID_CONFIG')
    expect(e.message).toContain('exa mple.com')
    expect((await sb.getStatus()).network.allowOut).toEqual(['other.test'])
    await sb.updateNetwork({ allowOut: ['api.test', '*.wild.test', `${ipB}:9000`, 'rebind.test', 'meta.test'], denyOut: ['0.0.0.0/0'] })
    expect((await probe(sb, 'http', 'http://api.test:8080/')).status).toBe(200)
  })

  it('attempts from inside to go around the gateway fail', async () => {
    // no route out: direct connections to the test hosts, the gateway's other network and the host
    expect((await probe(sb, 'direct', ipA, '8080')).connected).toBe(false)
    const gwContainer = docker(['ps', '-q', '--filter', `label=${sandboxLabel(sb.id)}`, '--filter', 'name=-egress'])
    const gwOther = docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, gwContainer])
    expect(gwOther).toMatch(/^198\.18\.47\./)
    expect((await probe(sb, 'direct', gwOther, '3128')).connected).toBe(false)
    expect((await probe(sb, 'direct', netGateway, String(listenerPort))).connected).toBe(false)
    // no control port on the gateway: only the proxy, SOCKS5 and DNS ports answer
    for (const port of ['22', '80', '2375', '8080', '9000']) {
      expect((await probe(sb, 'direct', gw, port)).connected, `gateway port ${port}`).toBe(false)
    }
    // no capability to change routes (and the gateway does not forward anyway)
    const route = await sb.execute('sh', ['-c', `ip route add default via ${gw} 2>&1 || echo refused`])
    expect(route.stdout).toMatch(/refused|not permitted/i)
    // garbage to the proxy ports does not take the gateway down
    await probe(sb, 'raw', gw, '3128', 'ff'.repeat(5000) + '0d0a0d0a')
    await probe(sb, 'raw', gw, '1080', '0500')
    expect((await probe(sb, 'http', 'http://api.test:8080/')).status).toBe(200)
    expect(listenerHits).toBe(0)
  })

  it('a broad allow entry (0.0.0.0/0) still leaves 169.254.169.254 and the engine host unreachable', async () => {
    const broad = await newSandbox({ allowOut: ['0.0.0.0/0'] })
    try {
      expect((await probe(broad, 'http', 'http://api.test:8080/')).status).toBe(200)
      expect((await probe(broad, 'http', `http://${ipB}:8080/`)).status).toBe(200)
      const meta = await probe(broad, 'http', 'http://169.254.169.254/latest/meta-data/')
      expect(meta.status).toBe(403)
      expect(meta.body).toMatch(/deny set: link-local/)
      for (const ip of new Set([netGateway, ...hostIPv4s()])) {
        const r = await probe(broad, 'http', `http://${ip}:${listenerPort}/`)
        expect(r.status, `host address ${ip}`).toBe(403)
        expect((await probe(broad, 'socks', ip, String(listenerPort))).reply, `host address ${ip} over SOCKS5`).toBe(2)
      }
      expect(listenerHits).toBe(0)
    } finally {
      await broad.destroy()
    }
  })

  it("seed 000's { policy: 'restricted', allowedHosts } is an allow list; networkMode 'restricted' alone lets nothing out", async () => {
    const seed = await newSandbox({ policy: 'restricted', allowedHosts: ['api.test'] })
    try {
      expect((await probe(seed, 'http', 'http://api.test:8080/')).status).toBe(200)
      expect((await probe(seed, 'http', 'http://sub.wild.test:8080/')).status).toBe(403)
      expect((await seed.getStatus()).network).toMatchObject({ allowOut: ['api.test'], denyOut: ['0.0.0.0/0'] })
    } finally {
      await seed.destroy()
    }
    const closed = await newSandbox(undefined, { networkMode: 'restricted' })
    try {
      expect((await probe(closed, 'http', 'http://api.test:8080/')).status).toBe(403)
    } finally {
      await closed.destroy()
    }
  })

  it('a thread session takes the same network config', async () => {
    const cfg = {
      image: DEBIAN,
      network: { allowOut: ['api.test'], denyOut: ['0.0.0.0/0'] },
      docker: { egressNetwork: NET, extraHosts: { 'api.test': ipA, 'other.test': ipB } },
    }
    const session = await manager.getOrCreateSession({ userId: 'u1', threadId: 'egress', config: cfg })
    try {
      await session.writeFile('/workspace/client.py', fs.readFileSync(path.join(__dirname, 'egress', 'client.py'), 'utf8'))
      expect((await probe(session, 'http', 'http://api.test:8080/')).status).toBe(200)
      expect((await probe(session, 'http', 'http://other.test:8080/')).status).toBe(403)
    } finally {
      await session.destroy()
    }
  })

  it("a pool's release brings back the configured rules after a user changed them", async () => {
    const pool = await manager.createPool(
      {
        image: DEBIAN,
        network: { allowOut: ['api.test'], denyOut: ['0.0.0.0/0'] },
        docker: { egressNetwork: NET, extraHosts: { 'api.test': ipA, 'other.test': ipB } },
      },
      { min: 1, max: 1 },
    )
    try {
      const first = await pool.acquire()
      await first.updateNetwork({ allowOut: ['other.test'], denyOut: ['0.0.0.0/0'] })
      await pool.release(first)
      const second = await pool.acquire()
      expect(second.id).toBe(first.id)
      expect((await second.getStatus()).network.allowOut).toEqual(['api.test'])
      await second.writeFile('/workspace/client.py', fs.readFileSync(path.join(__dirname, 'egress', 'client.py'), 'utf8'))
      expect((await probe(second, 'http', 'http://other.test:8080/')).status).toBe(403)
      await pool.release(second)
    } finally {
      await pool.destroy()
    }
  })

  it('bad rules are INVALID_CONFIG naming the entry; updateNetwork needs a sandbox with rules', async () => {
    for (const [network, bad] of [
      [{ allowOut: ['http://example.com'] }, 'http://example.com'],
      [{ denyOut: ['10.0.0.1/8'] }, '10.0.0.1/8'],
      [{ allowOut: ['example.com:99999'] }, 'example.com:99999'],
      [{ allowOut: ['::1'] }, '::1'],
      [{ allowOut: 'example.com' }, 'allowOut'],
      [{ allow: ['x'] }, 'network.allow'],
    ] as const) {
      const e = await expectCode(manager.createSandbox({ image: DEBIAN, network }), 'INVALID_CONFIG')
      expect(e.message).toContain(bad)
    }
    await expectCode(manager.createSandbox({ image: DEBIAN, networkMode: 'none', network: { allowOut: ['npm'] } }), 'INVALID_CONFIG')
    await expectCode(manager.createSandbox({ image: DEBIAN, docker: { extraHosts: { 'a.test': 'nope' } } }), 'INVALID_CONFIG')
    const plain = await manager.createSandbox({ image: DEBIAN })
    await plain.start()
    try {
      const e = await expectCode(plain.updateNetwork({ allowOut: ['api.test'] }), 'INVALID_CONFIG')
      expect(e.message).toMatch(/without network rules/)
      expect((await plain.getStatus()).network).toBeFalsy()
    } finally {
      await plain.destroy()
    }
  })

  it('remote mode: the rules travel with the config, updateNetwork is PUT /v1/sandboxes/{id}/network; an isolated service refuses them', async () => {
    const key = 'k'.repeat(32)
    const docker = { egressNetwork: NET, extraHosts: { 'api.test': ipA, 'other.test': ipB } }
    const bridgeServer = new SandboxServer({ port: 0, readEnv: false, apiKeys: [{ key, name: 't' }], config: { image: DEBIAN, networkMode: 'bridge', docker } })
    const isolatedServer = new SandboxServer({ port: 0, readEnv: false, apiKeys: [{ key, name: 't' }], config: { image: DEBIAN, docker } })
    const remote = new SandboxManager({ provider: 'remote', remote: { url: (await bridgeServer.listen()).url, apiKey: key }, image: DEBIAN })
    const refused = new SandboxManager({ provider: 'remote', remote: { url: (await isolatedServer.listen()).url, apiKey: key }, image: DEBIAN })
    try {
      const r = await remote.createSandbox({ network: { allowOut: ['api.test'], denyOut: ['0.0.0.0/0'] } })
      await r.start()
      await r.writeFile('/workspace/client.py', fs.readFileSync(path.join(__dirname, 'egress', 'client.py'), 'utf8'))
      expect((await probe(r, 'http', 'http://api.test:8080/')).status).toBe(200)
      expect((await probe(r, 'http', 'http://other.test:8080/')).status).toBe(403)
      await r.updateNetwork({ allowOut: ['other.test'], denyOut: ['0.0.0.0/0'] })
      expect((await probe(r, 'http', 'http://other.test:8080/')).status).toBe(200)
      const st = await r.getStatus()
      expect(st.network).toMatchObject({ allowOut: ['other.test'], denyOut: ['0.0.0.0/0'] })
      expect(st.network?.gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      await expectCode(r.updateNetwork({ allowOut: ['bad entry'] }), 'INVALID_CONFIG')
      const denied = await refused.createSandbox({ network: { allowOut: ['api.test'] } })
      await expectCode(denied.start(), 'PERMISSION_DENIED')
    } finally {
      await remote.destroyAll()
      await refused.destroyAll()
      await bridgeServer.close()
      await isolatedServer.close()
    }
  })

  it('destroy removes the gateway with the sandbox: nothing is left', async () => {
    const s = await newSandbox({ allowOut: ['api.test'] })
    const label = sandboxLabel(s.id)
    expect(dockerLabelledIds(label).containers).toHaveLength(2)
    await s.destroy()
    expect(dockerLabelledIds(label)).toEqual({ containers: [], volumes: [], networks: [] })
  })
})
