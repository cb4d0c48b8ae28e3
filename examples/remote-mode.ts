/**
 * Remote mode (issue 15, seed 003's `mode="remote"`): a sandbox service started in-process with
 * `SandboxServer` (as `npx agentic-sandbox serve` would run it on another host), then used the way
 * a remote user would: a manager with `provider: 'remote'`, an API key, and the library's usual
 * API: execute with streaming, files, runCode, a session kept by the server, and the errors a
 * remote user meets (a wrong key, a server that is down).
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/remote-mode.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh` (the
 * server's templates point at them; in production leave `templates` out).
 *
 * Exits 0 when every result matched, 1 otherwise.
 */
import crypto from 'node:crypto';
import { SandboxManager, SandboxServer } from '../index.js';

const API_KEY = crypto.randomBytes(24).toString('hex');
let failures = 0;
function check(what: string, ok: boolean, detail = ''): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
  if (!ok) failures++;
}

// ---------------------------------------------------------------- the service (another host, usually)
const server = new SandboxServer({
  port: 0,
  readEnv: false,
  apiKeys: [{ key: API_KEY, name: 'example-user' }],
  config: {
    image: 'agentic-sandbox/busybox:1',
    networkMode: 'none',
    templates: { python: 'agentic-sandbox/devtools:2', node: 'agentic-sandbox/devtools:2', go: 'agentic-sandbox/devtools:2', base: 'agentic-sandbox/debian:12' },
  },
});
const { url } = await server.listen();
console.log(`sandbox service on ${url}`);

// ---------------------------------------------------------------- the remote user
// (SANDBOX_PROVIDER=remote SANDBOX_SERVICE_URL=... SANDBOX_API_KEY=... does the same without code)
const manager = new SandboxManager({ provider: 'remote', remote: { url, apiKey: API_KEY }, template: 'python' });
try {
  const sb = await manager.createSandbox();
  await sb.start();
  check('a sandbox runs on the service', sb.state === 'running' && sb.provider === 'remote', `${sb.id} (${sb.execEngine})`);

  const chunks: string[] = [];
  const r = await sb.execute('sh', ['-c', 'for i in 1 2 3; do echo line $i; sleep 0.2; done'], { onStdout: (c: string) => chunks.push(c) });
  check('execute streams its output', r.exitCode === 0 && chunks.join('') === 'line 1\nline 2\nline 3\n', `${chunks.length} chunks`);

  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  await sb.writeFile('data/blob.bin', bytes);
  const back = await sb.readFile('data/blob.bin', { encoding: 'buffer' });
  check('files are binary safe', back.success && !!back.buffer && Buffer.compare(back.buffer, bytes) === 0);

  const code = await sb.runCode('import sys\nprint(sum(range(10)), sys.version_info[0])');
  check('runCode (the template: python)', code.success && code.stdout === '45 3\n', code.stdout.trim());

  const failed = await sb.execute('sh', ['-c', 'exit 7']);
  check('exit codes come back', failed.exitCode === 7);

  const s1 = await manager.getOrCreateSession({ userId: 'alice', threadId: 'conversation-1' });
  await s1.writeFile('notes.txt', 'kept by the server');
  const s2 = await manager.getOrCreateSession({ userId: 'alice', threadId: 'conversation-1' });
  check('a session is the same sandbox for its thread', s1.id === s2.id && (await s2.readFile('notes.txt')).content?.toString() === 'kept by the server');
  await manager.closeSession('conversation-1');

  const wrong = new SandboxManager({ provider: 'remote', remote: { url, apiKey: 'not-the-key-0000000000' } });
  try {
    await (await wrong.createSandbox()).start();
    check('a wrong key is refused', false);
  } catch (e: any) {
    check('a wrong key is refused', e.code === 'UNAUTHORIZED', e.code);
  }
  await wrong.destroyAll();
} finally {
  await manager.destroyAll();
  await server.close();
}

const down = new SandboxManager({ provider: 'remote', remote: { url, apiKey: API_KEY } });
try {
  await (await down.createSandbox()).start();
  check('a server that is down is PROVIDER_UNAVAILABLE', false);
} catch (e: any) {
  check('a server that is down is PROVIDER_UNAVAILABLE', e.code === 'PROVIDER_UNAVAILABLE', e.message.slice(0, 100));
}
await down.destroyAll();

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
