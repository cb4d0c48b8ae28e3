/**
 * The fast path: live output, stdin, cancellation, background processes and a warm pool.
 *
 *   npx tsx examples/streaming-and-pools.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * Exits 0 when every step behaved as described, 1 otherwise.
 */
import { SandboxManager } from '../index.js';

const image = process.env.DOCKER_IMAGE ?? 'agentic-sandbox/busybox:1';

function check(ok: boolean, what: string) {
  console.log(`${ok ? '✅' : '❌'} ${what}`);
  if (!ok) process.exitCode = 1;
}

async function main() {
  const manager = new SandboxManager({ image, networkMode: 'none' });
  try {
    const sandbox = await manager.createSandbox();
    await sandbox.start();
    console.log(`Sandbox ${sandbox.id} runs on the '${sandbox.execEngine}' engine`);

    // 1. live output: chunks arrive while the command runs
    const started = Date.now();
    const lines: string[] = [];
    const r = await sandbox.execute('sh', ['-c', 'for i in 1 2 3; do echo step $i; sleep 0.2; done'], {
      onStdout: (chunk) => {
        lines.push(chunk);
        process.stdout.write(`   +${Date.now() - started} ms  ${chunk}`);
      },
    });
    check(r.exitCode === 0 && lines.join('') === r.stdout, 'streamed output equals the final stdout');

    // 2. stdin
    const wc = await sandbox.execute('wc', ['-c'], { stdin: Buffer.from('twelve bytes') });
    check(wc.stdout.trim() === '12', `stdin reached the command (wc -c says ${wc.stdout.trim()})`);

    // 3. cancellation with an AbortSignal
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const aborted = await sandbox.execute('sleep', ['30'], { signal: ac.signal }).then(
      () => 'not aborted',
      (e: any) => e.code,
    );
    check(aborted === 'ABORTED', `sleep 30 aborted after 200 ms (${aborted})`);

    // 4. a background process we talk to
    const bg = await sandbox.execute('sh', ['-c', 'while read l; do echo "got $l"; done'], { background: true });
    const listed = await sandbox.listProcesses();
    check(listed.some((p) => p.pid === bg.pid && p.background), `background process ${bg.pid} is listed`);
    await bg.sendStdin('hello\n');
    await bg.closeStdin();
    const done = await bg.wait();
    check(done.stdout === 'got hello\n', `background process answered: ${JSON.stringify(done.stdout)}`);

    // 5. a warm pool: acquire is instant once the pool is filled
    const pool = await manager.createPool({ image, networkMode: 'none' }, { min: 2, max: 4 });
    const t = performance.now();
    const pooled = await pool.acquire();
    const acquireMs = performance.now() - t;
    await pooled.writeFile('scratch.txt', 'left behind');
    await pool.release(pooled); // reset: processes killed, workspace emptied
    const again = await pool.acquire();
    const leftover = await again.readFile('scratch.txt');
    check(!leftover.success, `acquire took ${acquireMs.toFixed(1)} ms; a released sandbox comes back clean`);
    await pool.release(again);
    await pool.destroy();
  } finally {
    await manager.destroyAll();
  }
}

main().catch((e) => {
  console.error('❌', e);
  process.exit(1);
});
