// Seed 000, Troubleshooting Guide: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { logger, SandboxManager, type Sandbox, type SandboxConfig } from '../../index.js'
import { exec } from './ambient.js'

// seed 000 lines 2116–2125: Troubleshooting Guide › Common Issues and Solutions › Issue 2: Sandbox Startup Timeout
async function snippet_troubleshooting_2116() {
// Increase timeout
const manager = new SandboxManager({
  provider: 'docker',
  limits: {
    timeoutSeconds: 600  // 10 minutes
  }
});

// Or use pre-pulled images
await exec('docker pull node:20-alpine');
}

// seed 000 lines 2139–2152: Troubleshooting Guide › Common Issues and Solutions › Issue 3: Out of Memory (OOM)
async function snippet_troubleshooting_2139(manager: SandboxManager) {
// Increase memory limit
const sandbox = await manager.createSandbox({
  provider: 'docker',
  limits: {
    memoryMB: 1024,  // Increase from 512MB
    cpuCores: 2      // Also increase CPU
  }
});

// Or implement memory monitoring
const stats = await sandbox.getStats();
if (stats.memoryUsageMB > 400) {
  console.warn('High memory usage, consider increasing limit');
}
}

// seed 000 lines 2166–2182: Troubleshooting Guide › Common Issues and Solutions › Issue 4: Network Isolation Not Working
async function snippet_troubleshooting_2166(manager: SandboxManager) {
// Ensure Docker network isolation is enforced
const sandbox = await manager.createSandbox({
  provider: 'docker',
  image: 'alpine:latest',
  networkMode: 'none',  // Must be 'none', not 'isolated'
  docker: {
    // Additional security options
    securityOpt: [
      'no-new-privileges',
      'seccomp=default.json'
    ]
  }
});

// Verify isolation
const result = await sandbox.execute('ping', ['-c', '1', '8.8.8.8']);
console.log('Network isolated:', result.exitCode !== 0);
}

// seed 000 lines 2225–2232: Troubleshooting Guide › Common Issues and Solutions › Issue 6: File Operations Failing
async function snippet_troubleshooting_2225(sandbox: Sandbox) {
// Create workspace directory first
await sandbox.execute('mkdir', ['-p', '/workspace']);

// Set permissions
await sandbox.execute('chmod', ['777', '/workspace']);

// Then write files
await sandbox.writeFile('/workspace/file.txt', 'content');
}

// seed 000 lines 2246–2256: Troubleshooting Guide › Common Issues and Solutions › Issue 7: Command Execution Hanging
async function snippet_troubleshooting_2246(sandbox: Sandbox) {
// Always set timeout
const result = await sandbox.execute('long-running-command', [], {
  timeout: 60  // 60 seconds
});

if (result.timedOut) {
  console.error('Command timed out');
  // Restart sandbox
  await sandbox.stop();
  await sandbox.start();
}
}

// seed 000 lines 2317–2341: Troubleshooting Guide › Common Issues and Solutions › Issue 10: Slow Performance
async function snippet_troubleshooting_2317(config: SandboxConfig) {
// 1. Use sandbox pooling
class SandboxPool {
  private pool: Sandbox[] = [];
  // ANNOTATION: declare stub: the guide's class uses this.manager without showing it (emits
  //   nothing)
  private declare manager: SandboxManager;

  async acquire(): Promise<Sandbox> {
    if (this.pool.length > 0) {
      return this.pool.pop()!;
    }
    const sandbox = await this.manager.createSandbox();
    await sandbox.start();
    return sandbox;
  }

  async release(sandbox: Sandbox): Promise<void> {
    // Reset and reuse
    await sandbox.execute('rm', ['-rf', '/workspace/*']);
    this.pool.push(sandbox);
  }
}

// 2. Pre-pull images
await exec('docker pull node:20-alpine');

// 3. Use local Docker instead of E2B
config.provider = 'docker';  // Faster for local dev
}

// seed 000 lines 2351–2360: Troubleshooting Guide › Debugging Tips › Enable Verbose Logging
async function snippet_troubleshooting_2351() {
// import { logger } from './src/utils/logger.js';  <- see the imports at the top of this file

// Set log level
logger.setLevel('debug');

// Enable sandbox debug mode
const manager = new SandboxManager({
  debug: true,
  verbose: true
});
}

// seed 000 lines 2366–2377: Troubleshooting Guide › Debugging Tips › Monitor Resource Usage
async function snippet_troubleshooting_2366(sandbox: Sandbox) {
// Continuous monitoring
const monitor = setInterval(async () => {
  const stats = await sandbox.getStats();
  console.log({
    memory: `${stats.memoryUsageMB}MB`,
    cpu: `${stats.cpuPercent}%`,
    disk: `${stats.diskUsageMB}MB`
  });
}, 1000);

// Stop monitoring
clearInterval(monitor);
}

// seed 000 lines 2383–2395: Troubleshooting Guide › Debugging Tips › Inspect Sandbox State
async function snippet_troubleshooting_2383(sandbox: Sandbox) {
// Get detailed state
console.log('Sandbox ID:', sandbox.id);
console.log('Provider:', sandbox.provider);
console.log('State:', sandbox.state);
console.log('Limits:', sandbox.limits);

// Health check
const health = await sandbox.healthCheck();
console.log('Healthy:', health.healthy);

// List files
const files = await sandbox.listFiles('/workspace');
console.log('Files:', files);
}
