/**
 * Quick start (Level 1 of the integration guide): create a Docker sandbox, run one command in it,
 * print the result and destroy the sandbox again.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/quick-start.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * No image is passed here, so the manager uses the environment variable DOCKER_IMAGE when it is set
 * (the project's scripts set it to the offline-built test image) and its built-in default otherwise.
 *
 * Exits 0 when the command ran and printed its greeting, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';

async function main() {
  // Create sandbox manager
  const manager = new SandboxManager({
    provider: 'docker',
    limits: {
      memoryMB: 256,
      cpuCores: 0.5,
      timeoutSeconds: 60
    }
  });

  let sandbox: Sandbox | undefined;
  try {
    // Create and start sandbox
    sandbox = await manager.createSandbox();
    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id);

    // Execute a command
    const result = await sandbox.execute('echo', ['Hello from sandbox!']);
    console.log('Output:', result.stdout.trimEnd());
    console.log('Exit code:', result.exitCode);

    if (result.exitCode !== 0 || result.stdout.trim() !== 'Hello from sandbox!') {
      console.error('❌ Unexpected result:', result);
      process.exitCode = 1;
    }

    // Cleanup
    await manager.destroySandbox(sandbox.id);
    sandbox = undefined;
    console.log('✅ Sandbox destroyed');
  } finally {
    // Only reached with a sandbox left over when something above failed.
    if (sandbox) await manager.destroySandbox(sandbox.id).catch((err) => console.error('cleanup failed:', err));
  }
}

main().catch((err) => {
  console.error('❌ Quick start failed:', err);
  process.exitCode = 1;
});
