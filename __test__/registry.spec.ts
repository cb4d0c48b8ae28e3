// Image pulls, for real: a minimal Docker Registry HTTP API v2 server (node:http on 127.0.0.1, random port)
// serves the locally built BusyBox test image under a new, per-run name. Docker treats 127.0.0.0/8 registries
// as insecure, so plain HTTP works. The server requires HTTP Basic auth and records every request, which lets
// the suite check that (1) a missing image is pulled with progress delivered to start({ onProgress }),
// (2) docker.registryAuth credentials reach the registry, and (3) failed pulls reject with IMAGE_NOT_FOUND
// and leave nothing behind. Nothing but 127.0.0.1 is ever contacted.
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'

const SOURCE_IMAGE = 'agentic-sandbox/busybox:1'
const MANAGED_LABEL = 'agentic-sandbox.managed=true'
const USER = 'u'
const PASS = 'p'
const GOOD_AUTH = 'Basic ' + Buffer.from(`${USER}:${PASS}`).toString('base64')
const TIMEOUT = { timeout: 120_000 }

const MT_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const MT_CONFIG = 'application/vnd.docker.container.image.v1+json'
const MT_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

// ------------------------------------------------------------------ helpers (self-contained on purpose)

function docker(args: string[]): string {
  return execFileSync('docker', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  }).trim()
}

function dockerOk(args: string[]): boolean {
  try {
    docker(args)
    return true
  } catch {
    return false
  }
}

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean)

/** Containers (all states), volumes and networks carrying every one of `labels` (key=value). */
function labelled(...labels: string[]) {
  const f = labels.flatMap((l) => ['--filter', `label=${l}`])
  return {
    containers: lines(docker(['ps', '-a', '-q', '--no-trunc', ...f])),
    volumes: lines(docker(['volume', 'ls', '-q', ...f])),
    networks: lines(docker(['network', 'ls', '-q', '--no-trunc', ...f])),
  }
}

// Other suites (or other people's runs) may have sandboxes on the same engine at the same time, so "nothing
// left behind" is checked on the resources this test process owns (the addon labels them with our pid).
const OWNER_LABEL = `agentic-sandbox.owner-pid=${process.pid}`
const NOTHING = { containers: [], volumes: [], networks: [] }

const sha256 = (b: Buffer | string) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex')

const imagePresent = (ref: string) => dockerOk(['image', 'inspect', ref])

function removeImage(ref: string) {
  if (imagePresent(ref)) docker(['rmi', '-f', ref])
  expect(imagePresent(ref), `${ref} should be gone from the engine`).toBe(false)
}

async function startError(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('start() resolved, but it was expected to reject')
}

// ------------------------------------------------------------------ the registry

interface SeenRequest {
  method: string
  url: string
  authorization?: string
  status?: number
}

interface Registry {
  port: number
  host: string // "127.0.0.1:PORT"
  repo: string // "sbx/pulltest-<run>"
  tag: string
  image: string // "127.0.0.1:PORT/sbx/pulltest-<run>:1"
  manifestDigest: string
  configDigest: string
  layerDigests: string[]
  requests: SeenRequest[]
  close: () => Promise<void>
}

/**
 * Build a schema-2 image from `docker save SOURCE_IMAGE` and serve it. The config gets one extra label with
 * the run id (its diff_ids are left exactly as docker save wrote them), and each gzipped layer gets the run id
 * in its gzip header MTIME field (the uncompressed tar is unchanged). Both make the blob digests unique per
 * run, so the engine cannot short-circuit the pull with an image or layer it already knows by digest:
 * config and layer blobs are really downloaded every run.
 */
async function startRegistry(saveDir: string, runId: string): Promise<Registry> {
  const tarFile = path.join(saveDir, 'image.tar')
  docker(['save', '-o', tarFile, SOURCE_IMAGE])
  const extracted = path.join(saveDir, 'x')
  fs.mkdirSync(extracted)
  execFileSync('tar', ['-xf', tarFile, '-C', extracted])

  const saved = JSON.parse(fs.readFileSync(path.join(extracted, 'manifest.json'), 'utf8'))
  expect(saved, 'docker save manifest.json').toHaveLength(1)
  const config = JSON.parse(fs.readFileSync(path.join(extracted, saved[0].Config), 'utf8'))
  const layerTars: Buffer[] = saved[0].Layers.map((l: string) => fs.readFileSync(path.join(extracted, l)))
  expect(layerTars.length, 'layers in the saved image').toBeGreaterThanOrEqual(1)
  // the engine verifies the uncompressed layers against the config's diff_ids
  expect(config.rootfs.diff_ids).toEqual(layerTars.map((t) => sha256(t)))

  config.config = config.config ?? {}
  config.config.Labels = { ...(config.config.Labels ?? {}), 'registry-spec.run': runId }
  const configBlob = Buffer.from(JSON.stringify(config))
  const mtime = crypto.randomBytes(4)
  const layerBlobs = layerTars.map((t) => {
    const gz = zlib.gzipSync(t)
    mtime.copy(gz, 4) // gzip header bytes 4..7 = MTIME; FHCRC is not set, so nothing else changes
    expect(zlib.gunzipSync(gz).equals(t)).toBe(true)
    return gz
  })

  const blobs = new Map<string, Buffer>()
  blobs.set(sha256(configBlob), configBlob)
  for (const b of layerBlobs) blobs.set(sha256(b), b)
  const manifestBlob = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      config: { mediaType: MT_CONFIG, size: configBlob.length, digest: sha256(configBlob) },
      layers: layerBlobs.map((b) => ({ mediaType: MT_LAYER, size: b.length, digest: sha256(b) })),
    }),
  )
  const manifestDigest = sha256(manifestBlob)

  const repo = `sbx/pulltest-${runId}`
  const tag = '1'
  const requests: SeenRequest[] = []
  const apiHeaders = { 'Docker-Distribution-API-Version': 'registry/2.0' }
  const errorBody = (code: string, message: string) => JSON.stringify({ errors: [{ code, message }] })

  const server = http.createServer((req, res) => {
    const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization }
    requests.push(seen)
    res.on('finish', () => (seen.status = res.statusCode))
    const send = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      res.writeHead(status, { ...apiHeaders, ...headers })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    req.resume()

    if (req.headers.authorization !== GOOD_AUTH) {
      return send(
        401,
        { 'WWW-Authenticate': 'Basic realm="test"', 'Content-Type': 'application/json' },
        errorBody('UNAUTHORIZED', 'authentication required'),
      )
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, { 'Content-Type': 'application/json' }, errorBody('UNSUPPORTED', 'read-only registry'))
    }
    const url = (req.url ?? '').split('?')[0]
    if (url === '/v2/' || url === '/v2') return send(200, { 'Content-Type': 'application/json' }, '{}')

    let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url)
    if (m) {
      if (m[1] === repo && (m[2] === tag || m[2] === manifestDigest)) {
        return send(
          200,
          { 'Content-Type': MT_MANIFEST, 'Content-Length': manifestBlob.length, 'Docker-Content-Digest': manifestDigest },
          manifestBlob,
        )
      }
      return send(404, { 'Content-Type': 'application/json' }, errorBody('MANIFEST_UNKNOWN', `manifest unknown: ${m[1]}:${m[2]}`))
    }
    m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url)
    if (m && m[1] === repo && blobs.has(m[2])) {
      const b = blobs.get(m[2])!
      return send(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': b.length, 'Docker-Content-Digest': m[2] }, b)
    }
    if (m) return send(404, { 'Content-Type': 'application/json' }, errorBody('BLOB_UNKNOWN', 'blob unknown'))
    return send(404, { 'Content-Type': 'application/json' }, errorBody('NAME_UNKNOWN', 'not found'))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const host = `127.0.0.1:${port}`
  return {
    port,
    host,
    repo,
    tag,
    image: `${host}/${repo}:${tag}`,
    manifestDigest,
    configDigest: sha256(configBlob),
    layerDigests: layerBlobs.map((b) => sha256(b)),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

// ------------------------------------------------------------------ the suite

describe('image pulls from a registry (local Registry API v2 server on 127.0.0.1)', () => {
  const runId = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`
  let tmp: string
  let reg: Registry
  const manager: any = new SandboxManager()

  beforeAll(async () => {
    expect(imagePresent(SOURCE_IMAGE), `${SOURCE_IMAGE} must be built (scripts/build-images.sh)`).toBe(true)
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-spec-'))
    reg = await startRegistry(tmp, runId)
    removeImage(reg.image)
  }, 120_000)

  afterAll(async () => {
    try {
      await manager.destroyAll()
    } finally {
      if (reg) {
        await reg.close()
        for (const ref of [reg.image, `${reg.host}/${reg.repo}:nope-${runId}`]) {
          if (imagePresent(ref)) docker(['rmi', '-f', ref])
        }
      }
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
    }
  }, 120_000)

  it('pulls a missing image with docker.registryAuth, reporting progress to onProgress', TIMEOUT, async () => {
    removeImage(reg.image)
    reg.requests.length = 0
    const events: any[] = []
    const sb: any = await manager.createSandbox({
      image: reg.image,
      networkMode: 'none',
      docker: { registryAuth: { username: USER, password: PASS, serveraddress: reg.host } },
    })
    try {
      await sb.start({ onProgress: (p: any) => events.push(p) })
      expect(sb.state).toBe('running')
      // the owner-pid filter used by the failure cases below does find a live sandbox of ours
      expect(labelled(MANAGED_LABEL, OWNER_LABEL, `agentic-sandbox.sandbox-id=${sb.id}`).containers).toHaveLength(1)

      // the image is now on the engine, and it is the one this run's registry served
      expect(imagePresent(reg.image)).toBe(true)
      expect(docker(['image', 'inspect', '-f', '{{index .Config.Labels "registry-spec.run"}}', reg.image])).toBe(runId)

      // credentials: the engine presented exactly Basic base64(u:p), and got the manifest and every blob with it
      const authed = reg.requests.filter((r) => r.authorization !== undefined)
      expect(authed.length, JSON.stringify(reg.requests)).toBeGreaterThan(0)
      expect(new Set(authed.map((r) => r.authorization))).toEqual(new Set([GOOD_AUTH]))
      const served = (re: RegExp) => reg.requests.some((r) => r.method === 'GET' && r.status === 200 && re.test(r.url))
      expect(served(new RegExp(`^/v2/${reg.repo}/manifests/`)), JSON.stringify(reg.requests)).toBe(true)
      for (const d of [reg.configDigest, ...reg.layerDigests]) {
        expect(served(new RegExp(`^/v2/${reg.repo}/blobs/${d}$`)), `blob ${d} downloaded; ${JSON.stringify(reg.requests)}`).toBe(true)
      }

      // progress: delivered to onProgress (by the time start() resolved), with the documented shape
      expect(events.length, 'onProgress events').toBeGreaterThanOrEqual(1)
      for (const e of events) {
        expect(typeof e.status, JSON.stringify(e)).toBe('string')
        if (e.id !== undefined && e.id !== null) expect(typeof e.id).toBe('string')
        if (e.progress !== undefined && e.progress !== null) expect(typeof e.progress).toBe('string')
      }
      expect(events.some((e) => e.status.length > 0)).toBe(true)
      // the engine's own per-layer and final pull messages come through (layer ids are short digests)
      const shortLayer = reg.layerDigests[0].slice('sha256:'.length, 'sha256:'.length + 12)
      expect(events.some((e) => e.id === shortLayer), `an event for layer ${shortLayer}: ${JSON.stringify(events)}`).toBe(true)
      expect(events.some((e) => e.status.includes(reg.manifestDigest)), JSON.stringify(events)).toBe(true)
      expect(events.some((e) => e.status.includes(`Downloaded newer image for ${reg.image}`)), JSON.stringify(events)).toBe(true)

      // and the pulled image runs
      const r = await sb.execute('echo', ['pulled'])
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stdout).toBe('pulled\n')
    } finally {
      await sb.destroy()
    }
  })

  it('without registryAuth the pull is refused: IMAGE_NOT_FOUND naming the image, nothing left behind', TIMEOUT, async () => {
    removeImage(reg.image)
    reg.requests.length = 0
    expect(labelled(MANAGED_LABEL, OWNER_LABEL), 'nothing of ours before start()').toEqual(NOTHING)
    const sb: any = await manager.createSandbox({ image: reg.image, networkMode: 'none' })
    try {
      const err = await startError(sb.start({ onProgress: () => {} }))
      expect(err.code, `err.code (message: ${err.message})`).toBe('IMAGE_NOT_FOUND')
      expect(err.message).toContain(reg.image)
      expect(sb.state).toBe('error')

      // the engine did go to the registry, and had no credentials to offer
      expect(reg.requests.length, 'requests the registry saw').toBeGreaterThan(0)
      expect(reg.requests.every((r) => r.authorization === undefined), JSON.stringify(reg.requests)).toBe(true)
      expect(reg.requests.some((r) => r.url.startsWith(`/v2/${reg.repo}/`) && r.status === 200)).toBe(false)
      expect(imagePresent(reg.image)).toBe(false)

      // nothing labelled for this sandbox, and nothing new labelled at all
      expect(labelled(MANAGED_LABEL, `agentic-sandbox.sandbox-id=${sb.id}`)).toEqual(NOTHING)
      expect(labelled(MANAGED_LABEL, OWNER_LABEL)).toEqual(NOTHING)
    } finally {
      await sb.destroy()
    }
  })

  it('a tag the registry does not have gives IMAGE_NOT_FOUND naming the image', TIMEOUT, async () => {
    const missing = `${reg.host}/${reg.repo}:nope-${runId}`
    expect(imagePresent(missing)).toBe(false)
    reg.requests.length = 0
    expect(labelled(MANAGED_LABEL, OWNER_LABEL), 'nothing of ours before start()').toEqual(NOTHING)
    const sb: any = await manager.createSandbox({
      image: missing,
      networkMode: 'none',
      docker: { registryAuth: { username: USER, password: PASS, serveraddress: reg.host } },
    })
    try {
      const err = await startError(sb.start())
      expect(err.code, `err.code (message: ${err.message})`).toBe('IMAGE_NOT_FOUND')
      expect(err.message).toContain(missing)
      expect(sb.state).toBe('error')

      // the engine asked for that tag, with the credentials, and got a 404
      const asked = reg.requests.filter((r) => r.url === `/v2/${reg.repo}/manifests/nope-${runId}`)
      expect(asked.length, JSON.stringify(reg.requests)).toBeGreaterThan(0)
      expect(asked.some((r) => r.authorization === GOOD_AUTH && r.status === 404), JSON.stringify(asked)).toBe(true)

      expect(labelled(MANAGED_LABEL, `agentic-sandbox.sandbox-id=${sb.id}`)).toEqual(NOTHING)
      expect(labelled(MANAGED_LABEL, OWNER_LABEL)).toEqual(NOTHING)
    } finally {
      await sb.destroy()
    }
  })
})
