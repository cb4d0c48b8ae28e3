// Seed 000, FAQ: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import {
  DockerSandbox,
  logger,
  SandboxPool,
  type ExecutionResult,
  type ResourceLimits,
  type Sandbox,
  type SandboxConfig,
  type SandboxedAgentConfig,
  type SandboxedAgentExecutor,
  type SandboxedExecutionResult,
  type SandboxManager,
  type SandboxState,
} from '../../index.js'
import type * as lib from '../../index.js'
import { auditLog, exec, FederationHub, generateTempAPIKey, revokeAPIKey, sleep } from './ambient.js'

// seed 000 lines 3631–3636: FAQ › General Questions › Q4: Can sandboxed agents access the internet?
async function snippet_faq_3631() {
const config: SandboxConfig = {
  networkMode: 'bridge',  // or 'restricted'
  network: {
    allowedHosts: ['api.example.com']  // Whitelist specific hosts
  }
};
}

// seed 000 lines 3646–3650: FAQ › General Questions › Q5: What happens if a sandbox runs out of memory?
async function snippet_faq_3646(sandbox: Sandbox) {
const result = await sandbox.execute('memory-intensive-task', []);
if (result.exitCode === 137) {
  console.error('Out of memory');
  // Increase memory limit or optimize task
}
}

// seed 000 lines 3662–3670: FAQ › Technical Questions › Q6: How do I pass files into a sandbox?
async function snippet_faq_3662(sandbox: Sandbox, dataString: string) {
// Method 1: writeFile before execution
await sandbox.writeFile('/workspace/input.txt', 'data');
await sandbox.execute('node', ['process.js']);

// Method 2: Inject via stdin
const result = await sandbox.execute('node', ['-e', `
  const data = '${dataString}';
  process(data);
`]);
}

// seed 000 lines 3680–3683 (snippet 3680–3691, part 1 of 2: Method 1): FAQ › Technical Questions › Q7: How do I get files out of a sandbox?
async function snippet_faq_3680(sandbox: Sandbox, executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// Method 1: readFile after execution
const result = await sandbox.readFile('/workspace/output.txt');
console.log(result.content);

}

// seed 000 lines 3684–3691 (snippet 3680–3691, part 2 of 2: Method 2): FAQ › Technical Questions › Q7: How do I get files out of a sandbox?
async function snippet_faq_3684(sandbox: Sandbox, executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// Method 2: Use captureFiles
const result = await executor.execute(task, {
  ...config,
  captureFiles: true,
  capturePatterns: ['*.json', '*.txt']
});

console.log('Files:', result.files);
}

// seed 000 lines 3701–3708: FAQ › Technical Questions › Q8: Can I use GPU acceleration in sandboxes?
async function snippet_faq_3701() {
const config: SandboxConfig = {
  provider: 'docker',
  image: 'tensorflow/tensorflow:latest-gpu',
  gpu: true,
  env: {
    NVIDIA_VISIBLE_DEVICES: 'all'
  }
};
}

// seed 000 lines 3723–3739: FAQ › Technical Questions › Q9: How do I debug sandbox execution?
async function snippet_faq_3723(sandbox: Sandbox) {
// Enable verbose logging
logger.setLevel('debug');

// Get execution details
const result = await sandbox.execute('command', []);
console.log('Exit code:', result.exitCode);
console.log('stdout:', result.stdout);
console.log('stderr:', result.stderr);
console.log('Duration:', result.durationMs, 'ms');

// Check sandbox state
console.log('State:', sandbox.state);
const health = await sandbox.healthCheck();
console.log('Healthy:', health.healthy);

// Inspect container (Docker only)
await exec(`docker inspect ${sandbox.id}`);
}

// seed 000 lines 3749–3761: FAQ › Technical Questions › Q10: Can multiple agents share the same sandbox?
async function snippet_faq_3749(manager: SandboxManager, executor: SandboxedAgentExecutor, config1: SandboxedAgentConfig, config2: SandboxedAgentConfig) {
// Create shared sandbox
const sandbox = await manager.createSandbox();
await sandbox.start();

// Execute multiple agents sequentially
const result1 = await sandbox.execute('agent-1-task', []);
const result2 = await sandbox.execute('agent-2-task', []);

// Better: Use separate sandboxes for isolation
const results = await executor.executeParallel([
  { task: 'agent-1-task', config: config1 },
  { task: 'agent-2-task', config: config2 }
]);
}

// seed 000 lines 3802–3806 (snippet 3802–3818, part 1 of 2: ❌ Bad): FAQ › Security Questions › Q13: How do I prevent agents from accessing my API keys?
async function snippet_faq_3802() {
// ‚ùå Bad: Hardcoded secrets
const config = {
  env: { API_KEY: 'sk-secret' }
};

}

// seed 000 lines 3807–3818 (snippet 3802–3818, part 2 of 2: ✅ Good): FAQ › Security Questions › Q13: How do I prevent agents from accessing my API keys?
async function snippet_faq_3807() {
// ‚úÖ Good: Inject per-sandbox keys
const temporaryKey = await generateTempAPIKey({
  expiresIn: 300,  // 5 minutes
  rateLimit: 10     // 10 requests/minute
});

const config = {
  env: { API_KEY: temporaryKey }
};

// Revoke after use
await revokeAPIKey(temporaryKey);
}

// seed 000 lines 3828–3855: FAQ › Security Questions › Q14: How do I audit sandbox operations?
async function snippet_faq_3828() {
// Implement audit logging
class AuditedSandbox extends DockerSandbox {
  // DIFFERENCE: TypeScript does not let a non-generic method override the library's generic
  //   execute() (its return type depends on `{ background: true }`), so Promise<ExecutionResult>
  //   fails with TS2416. The body is unchanged and `result` is still an ExecutionResult; to keep
  //   options working, take `options?: ExecuteOptions` and pass them to super.execute
  async execute(command: string, args: string[]): Promise<any> {
    // Log before
    await auditLog({
      event: 'command_start',
      sandboxId: this.id,
      command,
      args,
      timestamp: Date.now()
    });

    // Execute
    const result = await super.execute(command, args);

    // Log after
    await auditLog({
      event: 'command_complete',
      sandboxId: this.id,
      command,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      timestamp: Date.now()
    });

    return result;
  }
}
}

// seed 000 lines 3892–3893: FAQ › Performance Questions › Q16: How can I speed up sandbox startup?
async function snippet_faq_3892() {
const pool = new SandboxPool({ size: 5 });
const sandbox = await pool.acquire();  // Instant!
}

// seed 000 lines 3898–3900 (snippet 3898–3902, part 1 of 2: ❌ Bad): FAQ › Performance Questions › Q16: How can I speed up sandbox startup?
// A fragment of a configuration object: each version is checked as the SandboxConfig literal it
// belongs in.
const snippet_faq_3898: SandboxConfig = {
// ‚ùå Slow: 1GB image
image: 'ubuntu:latest'

}

// seed 000 lines 3901–3902 (snippet 3898–3902, part 2 of 2: ✅ Good): FAQ › Performance Questions › Q16: How can I speed up sandbox startup?
const snippet_faq_3901: SandboxConfig = {
// ‚úÖ Fast: 40MB image
image: 'alpine:latest'
}

// seed 000 lines 3907–3909: FAQ › Performance Questions › Q16: How can I speed up sandbox startup?
async function snippet_faq_3907(sandbox: Sandbox) {
// Reset instead of destroy
await sandbox.execute('rm', ['-rf', '/workspace/*']);
// Reuse sandbox
}

// seed 000 lines 3937–3959: FAQ › Federation Questions › Q18: How do sandboxed agents coordinate via federation?
async function snippet_faq_3937() {
// 1. Start federation hub (memory server)
const hub = new FederationHub({ port: 5433 });
await hub.start();

// 2. Agents connect via env vars
const config: SandboxConfig = {
  env: {
    FEDERATION_HUB: 'quic://localhost:5433',
    AGENT_NAMESPACE: 'swarm/agent-1'
  }
};

// 3. Agents share context
await hub.storeMemory({
  namespace: 'swarm/shared',
  data: { key: 'value' }
});

// 4. Other agents query
const memories = await hub.searchMemories({
  query: 'context',
  namespace: 'swarm/*'
});
}

// seed 000 lines 3969–3984: FAQ › Federation Questions › Q19: Can sandboxes in different regions communicate?
async function snippet_faq_3969() {
// Region A: us-east-1
const hubA = new FederationHub({ port: 5433, region: 'us-east-1' });
await hubA.start();

// Region B: eu-west-1
const hubB = new FederationHub({ port: 5433, region: 'eu-west-1' });
await hubB.start();

// Connect hubs (QUIC sync)
await hubA.connectToPeer('quic://hub-b.example.com:5433');

// Agents in Region A can access memories from Region B
const memories = await hubA.searchMemories({
  query: 'global context',
  namespace: '*'  // Search all regions
});
}

// seed 000 lines 4026–4055: FAQ › Troubleshooting Questions › Q21: How do I recover from a crashed sandbox?
async function snippet_faq_4026(executor: SandboxedAgentExecutor) {
// Implement auto-recovery
async function executeWithRetry(
  task: string,
  config: SandboxedAgentConfig,
  maxRetries: number = 3
): Promise<SandboxedExecutionResult> {
  for (let i = 0; i < maxRetries; i++) {
    try {
      const result = await executor.execute(task, config);

      if (result.exitCode === 0) {
        return result;
      }

      // Non-zero exit, retry
      console.log(`Attempt ${i + 1} failed, retrying...`);
    } catch (error: any) {
      console.error(`Attempt ${i + 1} error:`, error.message);

      if (i === maxRetries - 1) {
        throw error;  // Final attempt failed
      }

      // Wait before retry (exponential backoff)
      await sleep(Math.pow(2, i) * 1000);
    }
  }

  throw new Error('Max retries exceeded');
}
}

// seed 000 lines 4098–4100: FAQ › Troubleshooting Questions › Q23: Why am I getting 'permission denied' errors?
async function snippet_faq_4098(sandbox: Sandbox) {
// Create workspace with correct permissions
await sandbox.execute('mkdir', ['-p', '/workspace']);
await sandbox.execute('chmod', ['777', '/workspace']);
}

// seed 000 lines 4105–4111: FAQ › Troubleshooting Questions › Q23: Why am I getting 'permission denied' errors?
async function snippet_faq_4105() {
// Use tmpfs for writable space
const config: SandboxConfig = {
  docker: {
    readOnlyRoot: true,
    tmpfs: ['/tmp:rw,size=100m']
  }
};
}

// seed 000 lines 4123–4136: FAQ › Advanced Questions › Q24: Can I use Docker-in-Docker (DinD)?
async function snippet_faq_4123(manager: SandboxManager) {
const config: SandboxConfig = {
  provider: 'docker',
  image: 'docker:24-dind',
  limits: { memoryMB: 2048, cpuCores: 2 },
  docker: {
    socketPath: '/var/run/docker.sock'  // Mount Docker socket
  }
};

const sandbox = await manager.createSandbox(config);
await sandbox.start();

// Build Docker images inside sandbox
await sandbox.execute('docker', ['build', '-t', 'app:latest', '.']);
}

// seed 000 lines 4148–4171: FAQ › Advanced Questions › Q25: How do I implement custom sandbox providers?
async function snippet_faq_4148(manager: SandboxManager) {
// Implement Sandbox interface
// DIFFERENCE: a provider implements the library's CustomSandbox interface (binding.d.ts), not the
//   Sandbox class (whose methods, quotas, logs, policy... the library adds on top); its methods take
//   absolute paths and Buffers and return plain results, and all of them are required
class CustomSandbox implements lib.CustomSandbox {
  // ANNOTATION: `!`: assigned outside the class (strictPropertyInitialization)
  readonly id!: string;
  readonly provider = 'custom' as const;
  // ANNOTATION: `!`: as above
  readonly state!: SandboxState;
  // ANNOTATION: `!`: as above
  readonly limits!: ResourceLimits;

  async start(): Promise<void> {
    // Custom startup logic
  }

  // DIFFERENCE: execute gets the command's timeout, env, workdir and stdin, and resolves with {
  //   exitCode, stdout, stderr }
  async execute(command: string, args: string[], options: lib.CustomExecuteOptions): Promise<lib.CustomExecuteResult> {
    // Custom execution logic
    // DIFFERENCE: a function with a return type must return (the guide leaves the body empty)
    return { exitCode: 0, stdout: '', stderr: '' };
  }

  // DIFFERENCE: writeFile gets the bytes and resolves (or throws): the library builds the
  //   FileOperation
  async writeFile(path: string, content: Buffer): Promise<void> {
    // Custom file operations
  }

  // ... implement all interface methods
  // DIFFERENCE: the rest of the required methods, which the guide elides (optional: getStats,
  //   healthCheck, listFilesDetailed, reset)
  async readFile(path: string): Promise<Buffer> { return Buffer.alloc(0); }
  async listFiles(path: string, options: { recursive: boolean; all: boolean }): Promise<string[]> { return []; }
  async deleteFile(path: string, options: { recursive: boolean }): Promise<void> {}
  async stop(): Promise<void> {}
  async destroy(): Promise<void> {}
}

// Register with manager
manager.registerProvider('custom', CustomSandbox);
}
