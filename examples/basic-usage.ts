/**
 * Basic sandbox usage (Example 1 of the integration guide): write a JavaScript file into the
 * sandbox workspace and run it with the sandbox's own Node.js.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/basic-usage.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`
 * (this example uses 'agentic-sandbox/debian:12', which ships nodejs).
 *
 * Exits 0 when the script ran inside the sandbox and printed its greeting, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/debian:12';

async function basicUsage() {
  const manager = new SandboxManager({ provider: 'docker' });

  let sandbox: Sandbox | undefined;
  try {
    // Create sandbox
    sandbox = await manager.createSandbox({
      image: IMAGE,
      limits: { memoryMB: 256, timeoutSeconds: 60 }
    });

    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id, `(${IMAGE})`);

    // Write script
    const written = await sandbox.writeFile('/workspace/hello.js', `
      console.log('Hello from sandbox!');
      console.log('Node.js ' + process.version + ' on ' + process.platform + '/' + process.arch);
    `);
    if (!written.success) throw new Error(`writeFile failed: ${written.error}`);

    // Execute
    const result = await sandbox.execute('node', ['/workspace/hello.js']);
    console.log(result.stdout.trimEnd());
    if (result.stderr) console.error(result.stderr.trimEnd());
    console.log(`Exit code: ${result.exitCode} (${result.durationMs} ms)`);

    if (result.exitCode !== 0 || !result.stdout.includes('Hello from sandbox!')) {
      console.error('❌ The script did not run as expected');
      process.exitCode = 1;
    } else {
      console.log('✅ Script ran inside the sandbox');
    }
  } finally {
    // Cleanup
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

await basicUsage().catch((err) => {
  console.error('❌ Basic usage example failed:', err);
  process.exitCode = 1;
});
