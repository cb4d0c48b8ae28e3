/**
 * Long-running background job (Example 9 of the integration guide): start a Node.js job in the
 * sandbox WITHOUT awaiting it, and meanwhile watch its progress file from the host with readFile.
 * This shows that a sandbox serves file operations while one of its commands is still running.
 *
 * The guide's job runs for 100 s; this one is shortened to about 6 s (progress every 300 ms,
 * polled every second).
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/background-job.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`
 * (this example uses 'agentic-sandbox/debian:12', which ships nodejs).
 *
 * Exits 0 when the job completed and its progress was seen while it ran, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/debian:12';

async function backgroundJob() {
  const manager = new SandboxManager({ provider: 'docker' });

  let sandbox: Sandbox | undefined;
  try {
    sandbox = await manager.createSandbox({
      image: IMAGE,
      limits: {
        memoryMB: 512,
        cpuCores: 1,
        timeoutSeconds: 60 // the job takes ~6 s; the guide's one-hour job would use 3600
      }
    });

    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id, `(${IMAGE})`);

    // Write long-running script
    const written = await sandbox.writeFile('/workspace/background.js', `
const fs = require('fs');

let progress = 0;
const total = 1000;

console.log('Starting long-running job...');

const interval = setInterval(() => {
    progress += 50;

    // Write progress to file (tmp + rename, so a reader never sees half a file)
    fs.writeFileSync('/workspace/progress.json.tmp', JSON.stringify({
        progress: progress,
        total: total,
        percent: Math.round((progress / total) * 100)
    }));
    fs.renameSync('/workspace/progress.json.tmp', '/workspace/progress.json');

    console.log(\`Progress: \${progress}/\${total}\`);

    if (progress >= total) {
        console.log('Job completed!');
        clearInterval(interval);
    }
}, 300); // Update every 300 ms
`);
    if (!written.success) throw new Error(`writeFile failed: ${written.error}`);

    console.log('🚀 Starting background job...');

    // Start job (non-blocking): the promise is deliberately not awaited yet
    let jobDone = false;
    const jobPromise = sandbox.execute('node', ['/workspace/background.js']).finally(() => {
      jobDone = true;
    });

    // Monitor progress
    const box = sandbox;
    const seenWhileRunning: number[] = [];
    let polling: Promise<void> | undefined;
    const progressInterval = setInterval(() => {
      if (polling) return; // never overlap two reads
      polling = pollProgress().finally(() => {
        polling = undefined;
      });
    }, 1000); // Check every second

    async function pollProgress() {
      try {
        const progressFile = await box.readFile('/workspace/progress.json');

        if (progressFile.success && progressFile.content) {
          const progress = JSON.parse(progressFile.content);
          console.log(`📊 Progress: ${progress.percent}%`);
          if (!jobDone) seenWhileRunning.push(progress.percent);

          if (progress.percent >= 100) {
            clearInterval(progressInterval);
          }
        }
      } catch (err) {
        console.error('progress read failed:', err);
      }
    }

    // Wait for completion
    let result;
    try {
      result = await jobPromise;
    } finally {
      clearInterval(progressInterval);
      await polling; // let a read that is still under way finish before the sandbox goes away
    }

    console.log('✅ Background job completed');
    console.log('Duration:', result.durationMs, 'ms');
    console.log('Exit code:', result.exitCode);
    console.log('Job output:', result.stdout.trim().split('\n').slice(-2).join(' | '));
    console.log('Progress seen while the job ran:', seenWhileRunning.map((p) => `${p}%`).join(', ') || '(none)');

    const ok =
      result.exitCode === 0 &&
      !result.timedOut &&
      result.stdout.includes('Job completed!') &&
      seenWhileRunning.some((p) => p < 100);
    if (!ok) {
      console.error('❌ Expected a completed job whose progress could be read while it was running');
      if (result.stderr) console.error(result.stderr.trim());
      process.exitCode = 1;
    }
  } finally {
    if (sandbox) {
      try {
        await manager.destroySandbox(sandbox.id);
        console.log('✅ Sandbox destroyed');
      } catch (err) {
        console.error('❌ destroySandbox failed:', err);
        process.exitCode = 1;
      }
    }
  }
}

await backgroundJob().catch((err) => {
  console.error('❌ Background job example failed:', err);
  process.exitCode = 1;
});
