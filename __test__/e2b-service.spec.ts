// Seeds 002–004's features on the E2B provider: they are built over the provider-independent
// sandbox, so they must behave the same behind E2B's wire protocol. Runs against the local fake E2B
// (examples/lib/fake-e2b.ts: the real REST + Connect protocol on 127.0.0.1, each fake sandbox a
// real container of the Debian test image). The E2B_* variables are cleared for the whole file.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { startFakeE2b, type FakeE2b } from '../examples/lib/fake-e2b.js'
import { DEBIAN, expectCode, waitFor } from './helpers.js'

const KEY = `e2b_${'e5'.repeat(20)}`
const E2B_VARS = ['E2B_API_KEY', 'E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_TEMPLATE_ID', 'E2B_DOMAIN', 'E2B_REGION']
const savedEnv: Record<string, string | undefined> = {}
let fake: FakeE2b
let manager: SandboxManager

beforeAll(async () => {
  for (const k of E2B_VARS) {
    savedEnv[k] = process.env[k]
    delete process.env[k]
  }
  fake = await startFakeE2b({ requireKey: KEY, image: DEBIAN })
  manager = new SandboxManager({ provider: 'e2b', e2b: { apiKey: KEY, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl } } as any)
})

afterAll(async () => {
  await manager?.destroyAll()
  await fake?.close()
  for (const k of E2B_VARS) {
    if (savedEnv[k] === undefined) delete process.env[k]
    else process.env[k] = savedEnv[k]
  }
})

describe('seeds 002–004 on the E2B provider (local fake)', () => {
  it('runCode, logs, status, quotas, command policy, upload and download', async () => {
    const sb = await manager.createSandbox({
      template: 'python',
      name: 'e2b-service',
      limits: { maxFileSizeMB: 1 },
      commandPolicy: { deny: ['rm'] },
    })
    await sb.start()
    expect(sb.provider).toBe('e2b')

    const py = await sb.runCode('import os; print(os.getcwd(), 6 * 7)')
    expect(py.language).toBe('python')
    expect(py.status).toBe('completed')
    // /workspace is E2B's /home/user
    expect(py.output.trim()).toBe('/home/user 42')
    const sh = await sb.runCode('echo out; echo err >&2; exit 3', { language: 'bash' })
    expect([sh.status, sh.exitCode, sh.output, sh.error]).toEqual(['failed', 3, 'out\n', 'err\n'])
    expect((await sb.listFiles('.', { all: true })).filter((f) => f.startsWith('.agentic-sandbox'))).toEqual([])

    const logs = sb.getLogs({ lines: 1000 }).logs
    expect(logs.some((l) => l.source === 'system' && l.message.includes('started (e2b provider'))).toBe(true)
    expect(logs.some((l) => l.source === 'stderr' && l.level === 'error' && l.message === 'err')).toBe(true)

    const st = await sb.getStatus()
    expect([st.provider, st.engine, st.template, st.name, st.state]).toEqual(['e2b', 'e2b', 'python', 'e2b-service', 'running'])
    expect(st.executions).toMatchObject({ total: 2, successful: 1, failed: 1 })

    const big = await sb.writeFile('big.bin', Buffer.alloc(1024 * 1024 + 1))
    expect([big.success, big.code]).toEqual([false, 'QUOTA_EXCEEDED'])
    expect((await sb.writeFile('ok.bin', Buffer.alloc(1024 * 1024))).success).toBe(true)

    const denied = await expectCode(sb.execute('sh', ['-c', 'ls && rm ok.bin']), 'PERMISSION_DENIED')
    expect(denied.message).toContain('"rm"')
    expect((await sb.readFile('ok.bin', { encoding: 'buffer' })).buffer?.length).toBe(1024 * 1024)

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-service-'))
    try {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      fs.writeFileSync(path.join(dir, 'in.bin'), bytes)
      const up = await sb.uploadFile(path.join(dir, 'in.bin'), 'data/in.bin')
      expect(up).toMatchObject({ status: 'uploaded', filename: 'in.bin', sizeBytes: 256 })
      const local = await sb.downloadFile('data/in.bin', path.join(dir, 'out.bin'))
      expect(fs.readFileSync(local).equals(bytes)).toBe(true)
      await expectCode(sb.downloadFile('data/missing.bin', dir), 'FILE_NOT_FOUND')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a session expires (its E2B sandbox is killed) and is recreated on use', async () => {
    const sb = await manager.getOrCreateSession({ userId: 'u', threadId: 'e2b-thread', timeoutMinutes: 0.02 })
    await sb.writeFile('note.txt', 'kept')
    const live = fake.sandboxes().length
    expect(live).toBeGreaterThan(0)
    await waitFor(() => manager.listSessions().find((s) => s.threadId === 'e2b-thread')?.expired, 10_000, 100)
    expect(sb.state).toBe('destroyed')
    expect(fake.sandboxes().length).toBe(live - 1)
    const r = await sb.execute('cat', ['note.txt'])
    expect(sb.state).toBe('running')
    expect(r.exitCode).not.toBe(0) // a new sandbox: the workspace starts empty
    expect(await manager.closeSession('e2b-thread')).toBe(true)
  })
})
