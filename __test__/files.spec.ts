import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SandboxManager } from '../index.js'
import { BUSYBOX } from './helpers.js'

describe('file operations', () => {
  const manager: any = new SandboxManager({ image: BUSYBOX })
  let sb: any

  beforeAll(async () => {
    sb = await manager.createSandbox()
    await sb.start()
  })
  afterAll(async () => {
    await manager.destroyAll()
  })

  const sh = async (script: string) => {
    const r = await sb.execute('sh', ['-c', script])
    return r
  }

  it('writes and reads a string', async () => {
    const w = await sb.writeFile('/workspace/hello.txt', 'hello world\n')
    expect(w.success).toBe(true)
    expect(w.error).toBeUndefined()
    expect((await sb.execute('cat', ['/workspace/hello.txt'])).stdout).toBe('hello world\n')
    const r = await sb.readFile('/workspace/hello.txt')
    expect(r.success).toBe(true)
    expect(r.content).toBe('hello world\n')
    expect(r.path).toContain('hello.txt')
  })

  it('overwrites an existing file completely', async () => {
    await sb.writeFile('/workspace/over.txt', 'a much longer first version')
    const w = await sb.writeFile('/workspace/over.txt', 'short')
    expect(w.success).toBe(true)
    expect((await sb.readFile('/workspace/over.txt')).content).toBe('short')
  })

  it('round-trips unicode and an empty file', async () => {
    const text = 'héllo ✓ 日本 🎉\nsecond line'
    expect((await sb.writeFile('/workspace/uni.txt', text)).success).toBe(true)
    expect((await sb.readFile('/workspace/uni.txt')).content).toBe(text)
    expect((await sb.execute('wc', ['-c', '/workspace/uni.txt'])).stdout).toMatch(
      new RegExp(`^\\s*${Buffer.byteLength(text)}\\s`),
    )
    expect((await sb.writeFile('/workspace/empty.txt', '')).success).toBe(true)
    const e = await sb.readFile('/workspace/empty.txt')
    expect(e.success).toBe(true)
    expect(e.content).toBe('')
  })

  it('round-trips a binary Buffer with all 256 byte values', async () => {
    const buf = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const w = await sb.writeFile('/workspace/bin/all.bin', buf)
    expect(w.success).toBe(true)
    const md5 = crypto.createHash('md5').update(buf).digest('hex')
    expect((await sb.execute('md5sum', ['/workspace/bin/all.bin'])).stdout.split(/\s+/)[0]).toBe(md5)

    const rb = await sb.readFile('/workspace/bin/all.bin', { encoding: 'buffer' })
    expect(rb.success).toBe(true)
    expect(Buffer.isBuffer(rb.buffer)).toBe(true)
    expect(Buffer.compare(rb.buffer, buf)).toBe(0)

    const r64 = await sb.readFile('/workspace/bin/all.bin', { encoding: 'base64' })
    expect(r64.success).toBe(true)
    expect(r64.content).toBe(buf.toString('base64'))
  })

  it('creates parent directories', async () => {
    const w = await sb.writeFile('/workspace/a/b/c/d.txt', 'deep')
    expect(w.success).toBe(true)
    expect((await sb.execute('test', ['-d', '/workspace/a/b/c'])).exitCode).toBe(0)
    expect((await sb.readFile('/workspace/a/b/c/d.txt')).content).toBe('deep')
  })

  it('resolves relative paths against the workdir', async () => {
    const w = await sb.writeFile('rel/file.txt', 'relative')
    expect(w.success).toBe(true)
    expect((await sb.execute('cat', ['/workspace/rel/file.txt'])).stdout).toBe('relative')
    expect((await sb.readFile('rel/file.txt')).content).toBe('relative')
    expect((await sb.readFile('./rel/../rel/file.txt')).content).toBe('relative')
    expect(await sb.listFiles('rel')).toEqual(['file.txt'])
    expect((await sb.deleteFile('rel/file.txt')).success).toBe(true)
    expect((await sb.execute('test', ['-e', '/workspace/rel/file.txt'])).exitCode).toBe(1)
  })

  it('listFiles returns names like ls -1 (dotfiles only with all)', async () => {
    const setup = await sh(
      'mkdir -p /workspace/list/subdir && cd /workspace/list && echo b > b.txt && echo a > a.txt && echo h > .hidden',
    )
    expect(setup.exitCode).toBe(0)
    const names = await sb.listFiles('/workspace/list')
    expect([...names].sort()).toEqual(['a.txt', 'b.txt', 'subdir'])
    const ls = (await sb.execute('ls', ['-1', '/workspace/list'])).stdout.trim().split('\n')
    expect([...names].sort()).toEqual([...ls].sort())

    const all = await sb.listFiles('/workspace/list', { all: true })
    expect([...all].sort()).toEqual(['.hidden', 'a.txt', 'b.txt', 'subdir'])
  })

  it('listFiles without a path lists the workdir', async () => {
    await sb.writeFile('/workspace/top-level-marker.txt', 'x')
    const names = await sb.listFiles()
    expect(names).toContain('top-level-marker.txt')
    expect(names).toContain('list')
  })

  it('listFiles of a missing directory returns []', async () => {
    expect(await sb.listFiles('/workspace/does-not-exist')).toEqual([])
  })

  it('listFilesDetailed (recursive) reports size, mtime, permissions and type', async () => {
    const setup = await sh(
      [
        'mkdir -p /workspace/tree/d1/d2',
        'printf 12345 > /workspace/tree/f1.txt',
        'printf abc > /workspace/tree/d1/f2.txt',
        'head -c 2048 /dev/zero > /workspace/tree/d1/d2/f3.bin',
        'chmod 640 /workspace/tree/f1.txt',
        'chmod 751 /workspace/tree/d1',
        'chmod 600 /workspace/tree/d1/d2/f3.bin',
        'ln -s f1.txt /workspace/tree/link',
        'echo h > /workspace/tree/.dot',
      ].join(' && '),
    )
    expect(setup.exitCode, setup.stderr).toBe(0)
    const before = Date.now()

    const flat = await sb.listFilesDetailed('/workspace/tree')
    expect(flat.map((e: any) => e.name).sort()).toEqual(['d1', 'f1.txt', 'link'])

    const entries = await sb.listFilesDetailed('/workspace/tree', { recursive: true })
    const byName = (n: string) => {
      const hits = entries.filter((e: any) => e.name === n)
      expect(hits, `entry ${n} in ${JSON.stringify(entries)}`).toHaveLength(1)
      return hits[0]
    }
    const f1 = byName('f1.txt')
    expect(f1.type).toBe('file')
    expect(f1.size).toBe(5)
    expect(f1.permissions).toBe('640')
    expect(f1.path.endsWith('f1.txt')).toBe(true)
    expect(typeof f1.mtimeMs).toBe('number')
    expect(Math.abs(f1.mtimeMs - before)).toBeLessThan(5 * 60_000)

    const d1 = byName('d1')
    expect(d1.type).toBe('directory')
    expect(d1.permissions).toBe('751')

    const f2 = byName('f2.txt')
    expect(f2.type).toBe('file')
    expect(f2.size).toBe(3)
    expect(f2.path.endsWith('d1/f2.txt')).toBe(true)

    const d2 = byName('d2')
    expect(d2.type).toBe('directory')
    expect(d2.path.endsWith('d1/d2')).toBe(true)

    const f3 = byName('f3.bin')
    expect(f3.size).toBe(2048)
    expect(f3.permissions).toBe('600')
    expect(f3.path.endsWith('d1/d2/f3.bin')).toBe(true)

    expect(byName('link').type).toBe('symlink')
    expect(entries.some((e: any) => e.name === '.dot')).toBe(false)

    const withDot = await sb.listFilesDetailed('/workspace/tree', { recursive: true, all: true })
    expect(withDot.some((e: any) => e.name === '.dot')).toBe(true)

    const names = await sb.listFiles('/workspace/tree', { recursive: true })
    expect(names.some((n: string) => n.endsWith('f3.bin'))).toBe(true)
    expect(names.some((n: string) => n.endsWith('f2.txt'))).toBe(true)
  })

  it('deleteFile removes files; directories need recursive', async () => {
    await sb.writeFile('/workspace/del/one.txt', '1')
    await sb.writeFile('/workspace/del/sub/two.txt', '2')
    const d = await sb.deleteFile('/workspace/del/one.txt')
    expect(d.success).toBe(true)
    expect((await sb.execute('test', ['-e', '/workspace/del/one.txt'])).exitCode).toBe(1)
    expect((await sb.readFile('/workspace/del/one.txt')).success).toBe(false)

    const nonRec = await sb.deleteFile('/workspace/del')
    expect(nonRec.success).toBe(false)
    expect(typeof nonRec.error).toBe('string')
    expect((await sb.execute('test', ['-e', '/workspace/del/sub/two.txt'])).exitCode).toBe(0)

    const rec = await sb.deleteFile('/workspace/del', { recursive: true })
    expect(rec.success).toBe(true)
    expect((await sb.execute('test', ['-e', '/workspace/del'])).exitCode).toBe(1)
  })

  it('reading a missing file returns {success:false, error} without throwing', async () => {
    const p = '/workspace/missing-file.txt'
    const r = await sb.readFile(p)
    expect(r.success).toBe(false)
    expect(typeof r.error).toBe('string')
    expect(r.error.includes('missing-file.txt') || /no such file|not found|does not exist/i.test(r.error)).toBe(true)
    expect(r.content).toBeUndefined()
  })

  it('writing to the read-only root fails with success:false', async () => {
    const w = await sb.writeFile('/etc/x', 'y')
    expect(w.success).toBe(false)
    expect(w.error).toMatch(/read.?only|EROFS/i)
    expect((await sb.execute('test', ['-e', '/etc/x'])).exitCode).toBe(1)
  })

  it('path traversal resolves inside the container, never on the host', async () => {
    const marker = path.join(os.tmpdir(), `agentic-sandbox-marker-${process.pid}-${crypto.randomUUID()}.txt`)
    const secret = `host-secret-${crypto.randomUUID()}`
    fs.writeFileSync(marker, secret)
    const escapeTarget = path.join(os.tmpdir(), `agentic-sandbox-escape-${crypto.randomUUID()}.txt`)
    try {
      for (const p of ['../../..' + marker, '../../../../../../../..' + marker, marker, '/workspace/../../..' + marker]) {
        const r = await sb.readFile(p)
        expect(r.success, `readFile(${p}) must not see the host file`).toBe(false)
        expect(String(r.content ?? '')).not.toContain(secret)
      }

      // symlinks are resolved inside the container too
      const ln = await sb.execute('ln', ['-s', '/', '/workspace/escape'])
      expect(ln.exitCode).toBe(0)
      const viaLink = await sb.readFile('/workspace/escape' + marker)
      expect(viaLink.success).toBe(false)

      // ../../../../etc/hostname is the container's hostname file, not the host's
      const inContainer = (await sb.execute('cat', ['/etc/hostname'])).stdout
      const r = await sb.readFile('../../../../etc/hostname')
      expect(r.success).toBe(true)
      expect(r.content).toBe(inContainer)
      if (fs.existsSync('/etc/hostname')) expect(r.content).not.toBe(fs.readFileSync('/etc/hostname', 'utf8'))

      // writes never land on the host
      await sb.writeFile('../../../..' + escapeTarget, 'escaped')
      await sb.writeFile('/workspace/escape' + escapeTarget, 'escaped')
      expect(fs.existsSync(escapeTarget)).toBe(false)
      await sb.deleteFile('../../..' + marker)
      expect(fs.readFileSync(marker, 'utf8')).toBe(secret)
    } finally {
      fs.rmSync(marker, { force: true })
      fs.rmSync(escapeTarget, { force: true })
    }
  })

  it('round-trips a 1 MB binary file and a 1 MB string', async () => {
    const buf = crypto.randomBytes(1024 * 1024)
    expect((await sb.writeFile('/workspace/big.bin', buf)).success).toBe(true)
    const r = await sb.readFile('/workspace/big.bin', { encoding: 'buffer' })
    expect(r.success).toBe(true)
    expect(r.buffer.length).toBe(buf.length)
    expect(Buffer.compare(r.buffer, buf)).toBe(0)
    const md5 = crypto.createHash('md5').update(buf).digest('hex')
    expect((await sb.execute('md5sum', ['/workspace/big.bin'])).stdout.split(/\s+/)[0]).toBe(md5)

    const text = 'abcdefghij'.repeat(100_000) + '\n'
    expect((await sb.writeFile('/workspace/big.txt', text)).success).toBe(true)
    const t = await sb.readFile('/workspace/big.txt')
    expect(t.content.length).toBe(text.length)
    expect(t.content === text).toBe(true)
  })

  it('file ops on a not-started or stopped sandbox return success:false and [] (no throw)', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const s: any = await m.createSandbox()
      const check = async () => {
        const w = await s.writeFile('/workspace/x.txt', 'x')
        expect(w.success).toBe(false)
        expect(typeof w.error).toBe('string')
        const r = await s.readFile('/workspace/keep.txt')
        expect(r.success).toBe(false)
        expect(typeof r.error).toBe('string')
        expect(await s.listFiles('/workspace')).toEqual([])
        const d = await s.deleteFile('/workspace/keep.txt')
        expect(d.success).toBe(false)
      }
      await check() // created, never started
      await s.start()
      expect((await s.writeFile('/workspace/keep.txt', 'kept')).success).toBe(true)
      await s.stop()
      await check() // stopped
      await s.start()
      expect((await s.readFile('/workspace/keep.txt')).content).toBe('kept')
    } finally {
      await m.destroyAll()
    }
  })

  it('listFilesDetailed on a not-started or stopped sandbox rejects with SANDBOX_NOT_RUNNING (documented: unlike listFiles it reports failures)', async () => {
    const m: any = new SandboxManager({ image: BUSYBOX })
    try {
      const s: any = await m.createSandbox()
      await expect(s.listFilesDetailed('/workspace')).rejects.toMatchObject({ code: 'SANDBOX_NOT_RUNNING' })
      await s.start()
      await s.writeFile('/workspace/keep.txt', 'kept')
      await s.stop()
      await expect(s.listFilesDetailed('/workspace')).rejects.toMatchObject({ code: 'SANDBOX_NOT_RUNNING' })
      await s.start()
      expect((await s.listFilesDetailed('/workspace')).map((f: any) => f.path)).toEqual(['keep.txt'])
    } finally {
      await m.destroyAll()
    }
  })
})
