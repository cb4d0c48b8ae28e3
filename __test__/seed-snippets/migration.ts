// Seed 000, Migration Guide: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { exec } from 'child_process'
import { promisify } from 'util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SandboxedAgentExecutor, type SandboxedAgentConfig, type SandboxManager } from '../../index.js'
import { SandboxMetrics } from './monitoring.js'

// seed 000 lines 3056–3065: Migration Guide › From Non-Sandboxed to Sandboxed Execution › Step 1: Assess Current Architecture
async function snippet_migration_3056() {
// Before: Direct execution
// import { exec } from 'child_process';  <- see the imports at the top of this file
// import { promisify } from 'util';  <- see the imports at the top of this file

const execAsync = promisify(exec);

async function runAgent(task: string): Promise<string> {
  const { stdout } = await execAsync(`npx agentic-flow --task "${task}"`);
  return stdout;
}
}

// seed 000 lines 3071–3093: Migration Guide › From Non-Sandboxed to Sandboxed Execution › Step 2: Add Sandbox Layer
async function snippet_migration_3071() {
// After: Sandboxed execution
// import { SandboxedAgentExecutor } from './examples/sandbox-integration/sandboxed-agent-executor.js';  <- see the imports at the top of this file

async function runAgent(task: string): Promise<string> {
  const executor = new SandboxedAgentExecutor();

  const result = await executor.execute(task, {
    agentName: 'agent',
    systemPrompt: 'You are a helpful assistant.',
    sandboxConfig: {
      provider: 'docker',
      image: 'node:20-alpine',
      limits: {
        memoryMB: 512,
        cpuCores: 1,
        timeoutSeconds: 300
      }
    },
    autoCleanup: true
  });

  return result.output;
}
}

// seed 000 lines 3099–3108: Migration Guide › From Non-Sandboxed to Sandboxed Execution › Step 3: Migrate Incrementally
async function snippet_migration_3099(runAgentSandboxed: (task: string) => Promise<string>, runAgentDirect: (task: string) => Promise<string>) {
// Hybrid approach: Feature flag
const USE_SANDBOX = process.env.USE_SANDBOX === 'true';

async function runAgent(task: string): Promise<string> {
  if (USE_SANDBOX) {
    return runAgentSandboxed(task);
  } else {
    return runAgentDirect(task);
  }
}
}

// seed 000 lines 3114–3139: Migration Guide › From Non-Sandboxed to Sandboxed Execution › Step 4: Update Tests
async function snippet_migration_3114(runAgent: (task: string) => Promise<string>, config: SandboxedAgentConfig) {
// Before
describe('Agent', () => {
  it('should execute task', async () => {
    const result = await runAgent('test task');
    expect(result).toContain('success');
  });
});

// After
describe('Agent', () => {
  let executor: SandboxedAgentExecutor;

  beforeEach(() => {
    executor = new SandboxedAgentExecutor();
  });

  afterEach(async () => {
    await executor.cleanupAll();
  });

  it('should execute task in sandbox', async () => {
    const result = await executor.execute('test task', config);
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain('success');
  });
});
}

// seed 000 lines 3145–3151: Migration Guide › From Non-Sandboxed to Sandboxed Execution › Step 5: Monitor and Optimize
async function snippet_migration_3145(manager: SandboxManager) {
// Add monitoring
const metrics = new SandboxMetrics();

setInterval(async () => {
  const stats = await manager.getAllStats();
  // DIFFERENCE: getAllStats() gives { id, provider, stats } entries, not sandboxes, and collect()
  //   takes a Sandbox: look the sandbox up by id
  stats.forEach(s => metrics.collect(manager.getSandbox(s.id)!));
}, 10000); // Every 10 seconds
}
