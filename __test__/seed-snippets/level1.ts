// Seed 000, Quick Start › Level 1: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxManager } from '../../index.js'

// seed 000 lines 68–96: Quick Start › Level 1: Basic (5 minutes) › Step 2: Run Basic Example
async function snippet_level1_68() {
// import { SandboxManager } from './examples/sandbox-integration/sandbox-manager.js';  <- see the imports at the top of this file

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

  // Create and start sandbox
  const sandbox = await manager.createSandbox();
  await sandbox.start();
  console.log('‚úÖ Sandbox started:', sandbox.id);

  // Execute a command
  const result = await sandbox.execute('echo', ['Hello from sandbox!']);
  console.log('Output:', result.stdout);
  console.log('Exit code:', result.exitCode);

  // Cleanup
  await manager.destroySandbox(sandbox.id);
  console.log('‚úÖ Sandbox destroyed');
}

main();
}
