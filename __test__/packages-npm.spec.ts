// installPackages with npm: a real `npm install` inside the sandbox against an npm registry this
// test serves on this machine (a packument and a tarball made with the host's tar, with the
// integrity npm checks). The sandbox reaches it over Docker's bridge at the host's gateway address.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { bridgeGateway, dockerLabelled, expectCode, sandboxLabel } from './helpers.js'

const DEVTOOLS = 'agentic-sandbox/devtools:2'
const NAME = 'agentic-npm-demo'

let server: http.Server
let registry = ''
const requests: string[] = []

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-registry-'))
  fs.mkdirSync(path.join(dir, 'package'))
  fs.writeFileSync(path.join(dir, 'package', 'package.json'), JSON.stringify({ name: NAME, version: '1.0.0', main: 'index.js' }))
  fs.writeFileSync(path.join(dir, 'package', 'index.js'), 'module.exports = { answer: 42 }\n')
  execFileSync('tar', ['-czf', path.join(dir, 'pkg.tgz'), '-C', dir, 'package'])
  const tgz = fs.readFileSync(path.join(dir, 'pkg.tgz'))
  fs.rmSync(dir, { recursive: true, force: true })
  const integrity = 'sha512-' + createHash('sha512').update(tgz).digest('base64')
  const shasum = createHash('sha1').update(tgz).digest('hex')
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '')
    const base = `http://${req.headers.host}`
    if (req.url === `/${NAME}`) {
      const version = { name: NAME, version: '1.0.0', main: 'index.js', dist: { tarball: `${base}/${NAME}/-/${NAME}-1.0.0.tgz`, integrity, shasum } }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ name: NAME, 'dist-tags': { latest: '1.0.0' }, versions: { '1.0.0': version } }))
    } else if (req.url === `/${NAME}/-/${NAME}-1.0.0.tgz`) {
      res.setHeader('content-type', 'application/octet-stream')
      res.end(tgz)
    } else {
      res.statusCode = 404
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ error: 'Not found' }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve))
  registry = `http://${bridgeGateway()}:${(server.address() as AddressInfo).port}/`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('installPackages with npm', () => {
  it('installs from the configured registry into the workspace, and the code can require it', async () => {
    const manager = new SandboxManager({ templates: { node: DEVTOOLS } })
    try {
      const sb = await manager.createSandbox({
        template: 'node',
        networkMode: 'bridge',
        installPackages: [NAME],
        env: { npm_config_registry: registry },
      })
      await sb.start()
      expect(requests).toContain(`/${NAME}`)
      const r = await sb.runCode(`console.log(require('${NAME}').answer)`)
      expect(r.language).toBe('javascript')
      expect(r.output).toBe('42\n')
      expect(await sb.listFiles()).toContain('node_modules')
      const logs = sb.getLogs({ level: 'info' }).logs.map((l) => l.message)
      expect(logs.some((m) => m.includes(`Installed packages: ${NAME}`))).toBe(true)
    } finally {
      await manager.destroyAll()
    }
  })

  it('a package the registry does not have fails start with EXECUTION_ERROR and leaves nothing', async () => {
    const manager = new SandboxManager({ templates: { node: DEVTOOLS } })
    try {
      const sb = await manager.createSandbox({
        template: 'node',
        networkMode: 'bridge',
        installPackages: ['agentic-npm-missing'],
        env: { npm_config_registry: registry },
      })
      const err = await expectCode(sb.start(), 'EXECUTION_ERROR')
      expect(err.message).toContain('agentic-npm-missing')
      expect(err.message).toMatch(/404|Not found/i)
      expect(dockerLabelled(sandboxLabel(sb.id)).containers).toBe(0)
    } finally {
      await manager.destroyAll()
    }
  })
})
