// Seed 000, Anti-Patterns: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import type { Sandbox, SandboxConfig, SandboxedAgentConfig, SandboxedAgentExecutor, SandboxManager } from '../../index.js'
import { logger } from './ambient.js'

// seed 000 lines 3375–3385 (snippet 3375–3397, part 1 of 2: ❌ Bad): Anti-Patterns › 1. Not Cleaning Up Sandboxes
async function snippet_anti_patterns_3375(manager: SandboxManager) {
// ‚ùå Bad
async function processMany() {
  for (let i = 0; i < 100; i++) {
    const sandbox = await manager.createSandbox();
    await sandbox.start();
    await sandbox.execute('task', []);
    // Missing: await sandbox.destroy();
  }
  // Result: 100 leaked containers!
}

}

// seed 000 lines 3386–3397 (snippet 3375–3397, part 2 of 2: ✅ Good): Anti-Patterns › 1. Not Cleaning Up Sandboxes
async function snippet_anti_patterns_3386(manager: SandboxManager) {
// ‚úÖ Good
async function processMany() {
  for (let i = 0; i < 100; i++) {
    const sandbox = await manager.createSandbox();
    try {
      await sandbox.start();
      await sandbox.execute('task', []);
    } finally {
      await sandbox.destroy();
    }
  }
}
}

// seed 000 lines 3403–3410 (snippet 3403–3417, part 1 of 2: ❌ Bad): Anti-Patterns › 2. Hardcoding Secrets
async function snippet_anti_patterns_3403() {
// ‚ùå Bad
const config: SandboxConfig = {
  env: {
    API_KEY: 'sk-1234567890abcdef',  // Hardcoded!
    DATABASE_PASSWORD: 'password123'
  }
};

}

// seed 000 lines 3411–3417 (snippet 3403–3417, part 2 of 2: ✅ Good): Anti-Patterns › 2. Hardcoding Secrets
async function snippet_anti_patterns_3411() {
// ‚úÖ Good
const config: SandboxConfig = {
  env: {
    API_KEY: process.env.API_KEY!,
    DATABASE_PASSWORD: process.env.DATABASE_PASSWORD!
  }
};
}

// seed 000 lines 3423–3427 (snippet 3423–3436, part 1 of 2: ❌ Bad): Anti-Patterns › 3. Ignoring Timeouts
async function snippet_anti_patterns_3423(sandbox: Sandbox) {
// ‚ùå Bad
const result = await sandbox.execute('long-running-task', [], {
  // No timeout! Could hang forever
});

}

// seed 000 lines 3428–3436 (snippet 3423–3436, part 2 of 2: ✅ Good): Anti-Patterns › 3. Ignoring Timeouts
async function snippet_anti_patterns_3428(sandbox: Sandbox) {
// ‚úÖ Good
const result = await sandbox.execute('long-running-task', [], {
  timeout: 300  // 5 minutes max
});

if (result.timedOut) {
  logger.error('Task timed out');
  await sandbox.stop();  // Stop hung sandbox
}
}

// seed 000 lines 3442–3451 (snippet 3442–3458, part 1 of 2: ❌ Bad): Anti-Patterns › 4. Using Shared State
async function snippet_anti_patterns_3442(sandbox: Sandbox) {
// ‚ùå Bad
let globalCounter = 0;

async function processTask() {
  const result = await sandbox.execute('node', ['-e', `
    // Trying to access globalCounter - won't work!
    console.log(${globalCounter});
  `]);
}

}

// seed 000 lines 3452–3458 (snippet 3442–3458, part 2 of 2: ✅ Good): Anti-Patterns › 4. Using Shared State
async function snippet_anti_patterns_3452(sandbox: Sandbox) {
// ‚úÖ Good
async function processTask(counter: number) {
  const result = await sandbox.execute('node', ['-e', `
    const counter = ${counter};
    console.log(counter);
  `]);
}
}

// seed 000 lines 3464–3471 (snippet 3464–3478, part 1 of 2: ❌ Bad): Anti-Patterns › 5. Over-Allocating Resources
async function snippet_anti_patterns_3464() {
// ‚ùå Bad
const config: SandboxConfig = {
  limits: {
    memoryMB: 16384,  // 16GB for simple task!
    cpuCores: 8,      // 8 cores for echo command!
  }
};

}

// seed 000 lines 3472–3478 (snippet 3464–3478, part 2 of 2: ✅ Good): Anti-Patterns › 5. Over-Allocating Resources
async function snippet_anti_patterns_3472() {
// ‚úÖ Good
const config: SandboxConfig = {
  limits: {
    memoryMB: 256,   // Right-sized
    cpuCores: 0.5    // Right-sized
  }
};
}

// seed 000 lines 3484–3490 (snippet 3484–3494, part 1 of 2: ❌ Bad): Anti-Patterns › 6. Synchronous Execution for Independent Tasks
async function snippet_anti_patterns_3484(executor: SandboxedAgentExecutor, tasks: string[], config: SandboxedAgentConfig) {
// ‚ùå Bad
const results = [];
for (const task of tasks) {
  const result = await executor.execute(task, config);
  results.push(result);
}

}

// seed 000 lines 3491–3494 (snippet 3484–3494, part 2 of 2: ✅ Good): Anti-Patterns › 6. Synchronous Execution for Independent Tasks
async function snippet_anti_patterns_3491(executor: SandboxedAgentExecutor, tasks: string[], config: SandboxedAgentConfig) {
// ‚úÖ Good
const results = await executor.executeParallel(
  tasks.map(task => ({ task, config }))
);
}

// seed 000 lines 3500–3503 (snippet 3500–3509, part 1 of 2: ❌ Bad): Anti-Patterns › 7. Not Validating Execution Results
async function snippet_anti_patterns_3500(sandbox: Sandbox) {
// ‚ùå Bad
const result = await sandbox.execute('command', []);
console.log(result.stdout);  // Assuming success

}

// seed 000 lines 3504–3509 (snippet 3500–3509, part 2 of 2: ✅ Good): Anti-Patterns › 7. Not Validating Execution Results
async function snippet_anti_patterns_3504(sandbox: Sandbox) {
// ‚úÖ Good
const result = await sandbox.execute('command', []);
if (result.exitCode !== 0) {
  throw new Error(`Command failed: ${result.stderr}`);
}
console.log(result.stdout);
}

// seed 000 lines 3515–3527: Anti-Patterns › 8. Mixing Provider-Specific Code
// `dockerSandbox` and `e2bSandbox` are not defined by the guide, and this library has no such
// provider-specific methods (which is the anti-pattern's point): they are typed with just the
// methods the ❌ Bad half calls.
async function snippet_anti_patterns_3515(sandbox: Sandbox, dockerSandbox: { inspectContainer(): Promise<unknown> }, e2bSandbox: { getSessionInfo(): Promise<unknown> }) {
// ‚ùå Bad
if (sandbox.provider === 'docker') {
  // Docker-specific code
  await dockerSandbox.inspectContainer();
} else if (sandbox.provider === 'e2b') {
  // E2B-specific code
  await e2bSandbox.getSessionInfo();
}

// ‚úÖ Good
// Use provider-agnostic interface
const stats = await sandbox.getStats();
const health = await sandbox.healthCheck();
}

// seed 000 lines 3533–3552: Anti-Patterns › 9. Not Handling Network Failures
async function snippet_anti_patterns_3533(manager: SandboxManager) {
// ‚ùå Bad
const sandbox = await manager.createSandbox({
  provider: 'e2b',
  e2b: { apiKey: 'key' }
});
// Network error? Unhandled!

// ‚úÖ Good
try {
  const sandbox = await manager.createSandbox({
    provider: 'e2b',
    e2b: { apiKey: 'key' }
  });
// ANNOTATION: `: any`: under strict, a caught value is `unknown` and has no .message
} catch (error: any) {
  if (error.message.includes('network')) {
    // Fallback to Docker
    return await manager.createSandbox({ provider: 'docker' });
  }
  throw error;
}
}

// seed 000 lines 3558–3575: Anti-Patterns › 10. Creating Sandboxes in Loops
async function snippet_anti_patterns_3558(manager: SandboxManager) {
// ‚ùå Bad
for (let i = 0; i < 100; i++) {
  const sandbox = await manager.createSandbox();  // 100 creations!
  await sandbox.start();
  await sandbox.execute('task', []);
  await sandbox.destroy();
}

// ‚úÖ Good
const sandbox = await manager.createSandbox();
await sandbox.start();
try {
  for (let i = 0; i < 100; i++) {
    await sandbox.execute('task', []);  // Reuse sandbox
  }
} finally {
  await sandbox.destroy();
}
}
