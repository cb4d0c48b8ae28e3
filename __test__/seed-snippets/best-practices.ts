// Seed 000, Best Practices: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxPool, type Sandbox, type SandboxConfig, type SandboxedAgentConfig, type SandboxedAgentExecutor, type SandboxManager } from '../../index.js'
import { logger, type Result } from './ambient.js'

// seed 000 lines 3176–3185 (snippet 3176–3187, part 1 of 2: ✅ Good): Best Practices › 1. Always Set Resource Limits
async function snippet_best_practices_3176(manager: SandboxManager) {
// ‚úÖ Good
const sandbox = await manager.createSandbox({
  limits: {
    memoryMB: 512,
    cpuCores: 1,
    diskMB: 1024,
    timeoutSeconds: 300
  }
});

}

// seed 000 lines 3186–3187 (snippet 3176–3187, part 2 of 2: ❌ Bad): Best Practices › 1. Always Set Resource Limits
async function snippet_best_practices_3186(manager: SandboxManager) {
// ‚ùå Bad
const sandbox = await manager.createSandbox({});  // No limits!
}

// seed 000 lines 3193–3198 (snippet 3193–3203, part 1 of 2: ✅ Good): Best Practices › 2. Use Auto-Cleanup
async function snippet_best_practices_3193(executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// ‚úÖ Good
const result = await executor.execute(task, {
  ...config,
  autoCleanup: true  // Always cleanup
});

}

// seed 000 lines 3199–3203 (snippet 3193–3203, part 2 of 2: ❌ Bad): Best Practices › 2. Use Auto-Cleanup
async function snippet_best_practices_3199(executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// ‚ùå Bad
const result = await executor.execute(task, {
  ...config,
  autoCleanup: false  // Manual cleanup error-prone
});
}

// seed 000 lines 3209–3223: Best Practices › 3. Implement Error Handling
async function snippet_best_practices_3209(executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// ‚úÖ Good
try {
  const result = await executor.execute(task, config);
  if (result.exitCode !== 0) {
    logger.error('Task failed', { task, exitCode: result.exitCode });
    // Handle failure
  }
} catch (error: any) {
  logger.error('Execution error', { task, error: error.message });
  // Cleanup and retry
  await executor.cleanupAll();
}

// ‚ùå Bad
const result = await executor.execute(task, config);  // No error handling
}

// seed 000 lines 3229–3244: Best Practices › 4. Use Sandbox Pooling for Frequent Operations
async function snippet_best_practices_3229(manager: SandboxManager, config: SandboxConfig) {
// ‚úÖ Good
const pool = new SandboxPool();
const sandbox = await pool.acquire(config);
try {
  // Use sandbox
} finally {
  await pool.release(sandbox);  // Reuse
}

// ‚ùå Bad
for (let i = 0; i < 100; i++) {
  const sandbox = await manager.createSandbox();  // Slow!
  await sandbox.start();
  // ...
  await sandbox.destroy();
}
}

// seed 000 lines 3250–3257 (snippet 3250–3262, part 1 of 2: ✅ Good): Best Practices › 5. Choose Provider Based on Environment
async function snippet_best_practices_3250() {
// ‚úÖ Good
const provider = process.env.NODE_ENV === 'production' ? 'e2b' : 'docker';

const config: SandboxConfig = {
  provider,
  // DIFFERENCE: the guide elides the limits as `{ ... }`, which is not code: written as an empty
  //   object
  limits: { /* ... */ }
};

}

// seed 000 lines 3258–3262 (snippet 3250–3262, part 2 of 2: ❌ Bad): Best Practices › 5. Choose Provider Based on Environment
async function snippet_best_practices_3258() {
// ‚ùå Bad
const config: SandboxConfig = {
  provider: 'e2b',  // Hardcoded, costs money in dev
  // DIFFERENCE: the guide elides the limits as `{ ... }`, which is not code: written as an empty
  //   object
  limits: { /* ... */ }
};
}

// seed 000 lines 3268–3280: Best Practices › 6. Validate Inputs
async function snippet_best_practices_3268(executor: SandboxedAgentExecutor, userInput: string, config: SandboxedAgentConfig) {
// ‚úÖ Good
function validateTask(task: string): void {
  if (!task || task.length > 10000) {
    throw new Error('Invalid task');
  }

  if (task.includes('<script>')) {
    throw new Error('Task contains unsafe content');
  }
}

// ‚ùå Bad
const result = await executor.execute(userInput, config);  // No validation!
}

// seed 000 lines 3286–3299: Best Practices › 7. Implement Graceful Degradation
async function snippet_best_practices_3286(executorE2B: SandboxedAgentExecutor, configE2B: SandboxedAgentConfig, executorDocker: SandboxedAgentExecutor, configDocker: SandboxedAgentConfig, task: string, config: SandboxedAgentConfig) {
// ‚úÖ Good
async function executeWithFallback(task: string): Promise<Result> {
  try {
    // Try E2B cloud
    return await executorE2B.execute(task, configE2B);
  } catch (error) {
    logger.warn('E2B failed, falling back to Docker', { error });
    // Fallback to local Docker
    return await executorDocker.execute(task, configDocker);
  }
}

// ‚ùå Bad
const result = await executorE2B.execute(task, config);  // No fallback
}

// seed 000 lines 3305–3312: Best Practices › 8. Monitor Resource Usage
async function snippet_best_practices_3305(sandbox: Sandbox) {
// ‚úÖ Good
const stats = await sandbox.getStats();
if (stats.memoryUsageMB > 400) {
  logger.warn('High memory usage', { sandboxId: sandbox.id, memoryMB: stats.memoryUsageMB });
}

// ‚ùå Bad
// No monitoring, might hit OOM unexpectedly
}

// seed 000 lines 3318–3329 (snippet 3318–3335, part 1 of 2: ✅ Good): Best Practices › 9. Use Network Isolation by Default
async function snippet_best_practices_3318(requiresNetwork: boolean) {
// ‚úÖ Good
const config: SandboxConfig = {
  provider: 'docker',
  networkMode: 'none',  // No network by default
  // DIFFERENCE: the guide elides the limits as `{ ... }`, which is not code: written as an empty
  //   object
  limits: { /* ... */ }
};

// Only enable when needed
if (requiresNetwork) {
  config.networkMode = 'bridge';
}

}

// seed 000 lines 3330–3335 (snippet 3318–3335, part 2 of 2: ❌ Bad): Best Practices › 9. Use Network Isolation by Default
async function snippet_best_practices_3330(requiresNetwork: boolean) {
// ‚ùå Bad
const config: SandboxConfig = {
  provider: 'docker',
  networkMode: 'bridge',  // Always has network
  // DIFFERENCE: the guide elides the limits as `{ ... }`, which is not code: written as an empty
  //   object
  limits: { /* ... */ }
};
}

// seed 000 lines 3341–3360 (snippet 3341–3365, part 1 of 2: ✅ Good): Best Practices › 10. Document Sandbox Configuration
async function snippet_best_practices_3341() {
// ‚úÖ Good
/**
 * Sandbox configuration for ML training agents
 *
 * High memory and CPU for model training
 * Network access for downloading datasets
 * GPU enabled for CUDA operations
 */
const mlConfig: SandboxConfig = {
  provider: 'docker',
  image: 'tensorflow/tensorflow:latest-gpu',
  limits: {
    memoryMB: 8192,
    cpuCores: 4,
    timeoutSeconds: 3600
  },
  gpu: true,
  networkMode: 'bridge'
};

}

// seed 000 lines 3361–3365 (snippet 3341–3365, part 2 of 2: ❌ Bad): Best Practices › 10. Document Sandbox Configuration
async function snippet_best_practices_3361() {
// ‚ùå Bad
const mlConfig: SandboxConfig = {
  provider: 'docker',
  limits: { memoryMB: 8192 }  // Why 8192? Undocumented
};
}
