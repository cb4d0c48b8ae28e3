/**
 * Security stress test (Example 10 of the integration guide): throw a memory bomb, a fork bomb,
 * a disk filler and a CPU burner at a tightly limited sandbox and show that the limits hold:
 *
 *   memoryMB 64, cpuCores 0.1, pidsLimit 64, diskMB 50 (the /workspace volume), networkMode 'none',
 *   and an explicit 5 s timeout on every command so that the whole run takes well under a minute.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/security-stress-test.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`
 * (this example uses 'agentic-sandbox/busybox:1').
 *
 * Exits 0 when all four attacks were contained, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/busybox:1';
const MEMORY_MB = 64;
const TIMEOUT = 5; // seconds, for each attack

async function securityStressTest() {
  const manager = new SandboxManager({ provider: 'docker' });
  let sandbox: Sandbox | undefined;
  let failures = 0;
  const verdict = (ok: boolean, good: string, bad: string) => {
    if (!ok) failures++;
    console.log('Result:', ok ? `✅ ${good}` : `${bad}`);
  };

  try {
    sandbox = await manager.createSandbox({
      image: IMAGE,
      limits: {
        memoryMB: MEMORY_MB, // Very low
        cpuCores: 0.1, // Very low
        timeoutSeconds: 30,
        pidsLimit: 64, // at most 64 processes
        diskMB: 50 // the /workspace volume holds at most 50 MB
      },
      networkMode: 'none'
    });

    await sandbox.start();
    console.log(`Sandbox ${sandbox.id} (${IMAGE}) started`);

    console.log('🔒 Running security stress tests...\n');

    // Test 1: Memory bomb. The guide's version writes 10 MB files to /tmp in a loop; here /tmp is a
    // tmpfs, so that fills the sandbox's memory with files that no OOM kill gives back, and every
    // later command of this run would be killed on start. So the bomb allocates process memory
    // instead (a shell string that doubles forever): the limit has to stop it.
    console.log('Test 1: Memory allocation bomb');
    const memResult = await sandbox.execute('sh', ['-c', `
    x=a
    while true; do
      x="$x$x"
    done
  `], { timeout: TIMEOUT });
    verdict(
      memResult.timedOut || memResult.exitCode === 137,
      memResult.timedOut
        ? `Terminated (timeout after ${memResult.durationMs} ms)`
        : `Terminated (killed at the ${MEMORY_MB} MB limit, exit code 137, after ${memResult.durationMs} ms)`,
      `❌ Continued running (exit code ${memResult.exitCode})`
    );

    // Test 2: Fork bomb. The guide's `:(){ :|:& };:` is a syntax error in BusyBox sh ("bad function
    // name"), which would "pass" without forking anything, so the function gets a real name here.
    // It runs for 3 s against pidsLimit 64; the limit shows up as "can't fork" errors.
    console.log('\nTest 2: Fork bomb');
    const countProcesses = async () => {
      const r = await sandbox!.execute('sh', ['-c', 'ls -d /proc/[0-9]* | wc -l'], { timeout: TIMEOUT });
      return r.exitCode === 0 ? Number(r.stdout.trim()) : NaN;
    };
    const processesBefore = await countProcesses();
    const forkResult = await sandbox.execute('sh', ['-c', 'bomb() { bomb | bomb & }; bomb; sleep 3'], {
      timeout: TIMEOUT
    });
    const forkFailures = (forkResult.stderr.match(/can't fork|Resource temporarily unavailable/g) ?? []).length;
    // Whatever the bomb left behind must be gone once execute has returned.
    const processesAfter = await countProcesses();
    const health = await sandbox.healthCheck();
    console.log(
      `  fork failures: ${forkFailures}, exit code: ${forkResult.exitCode}${forkResult.timedOut ? ' (timed out)' : ''}, ` +
        `processes before/after: ${processesBefore}/${processesAfter}, healthy: ${health.healthy}`
    );
    verdict(
      (forkFailures > 0 || forkResult.exitCode !== 0) && processesAfter <= processesBefore && health.healthy,
      `Blocked (pidsLimit 64)`,
      `❌ Executed`
    );

    // Test 3: File system fill, into the size-capped workspace
    console.log('\nTest 3: Disk space exhaustion');
    const diskResult = await sandbox.execute('dd', ['if=/dev/zero', 'of=/workspace/bigfile', 'bs=1M', 'count=1000'], {
      timeout: TIMEOUT
    });
    const ddSays = diskResult.stderr.trim().split('\n');
    console.log(`  dd: ${ddSays[0]} (${ddSays.find((l) => l.includes('records out')) ?? '?'})`);
    verdict(diskResult.exitCode !== 0, `Limited (exit code ${diskResult.exitCode})`, '⚠️  Succeeded');
    await sandbox.deleteFile('/workspace/bigfile'); // the workspace is memory too: give it back

    // Test 4: CPU saturation
    console.log('\nTest 4: CPU saturation');
    await sandbox.getStats(); // cpuPercent is measured since the previous getStats() call
    const cpuResult = await sandbox.execute('sh', ['-c', 'while true; do :; done'], { timeout: TIMEOUT });
    verdict(
      cpuResult.timedOut,
      `Terminated (timeout after ${cpuResult.durationMs} ms)`,
      `❌ Continued (exit code ${cpuResult.exitCode})`
    );

    // Check final stats
    const stats = await sandbox.getStats();
    console.log('\nFinal stats:');
    console.log('- Memory:', stats.memoryUsageMB, '/', MEMORY_MB, 'MB');
    console.log('- CPU:', stats.cpuPercent, '% of one core during test 4 (limit: 0.1 cores = 10 %)');
    console.log('- Disk:', stats.diskUsageMB, 'MB');
    console.log('- Network rx/tx:', stats.networkRxMB, '/', stats.networkTxMB, 'MB');
  } finally {
    if (sandbox) {
      try {
        await manager.destroySandbox(sandbox.id);
      } catch (err) {
        console.error('❌ destroySandbox failed:', err);
        failures++;
      }
    }
  }

  if (failures > 0) {
    console.error(`\n❌ Security stress test: ${failures} check(s) did not hold`);
    process.exitCode = 1;
  } else {
    console.log('\n✅ Security stress test completed');
  }
}

await securityStressTest().catch((err) => {
  console.error('❌ Security stress test failed:', err);
  process.exitCode = 1;
});
