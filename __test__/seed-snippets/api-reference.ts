// Seed 000, API Reference: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import {
  DockerSandbox,
  E2BSandbox,
  SandboxedAgentExecutor,
  SandboxManager,
  type ResourceLimits,
  type Sandbox,
  type SandboxConfig,
  type SandboxedAgentConfig,
  type SandboxState,
} from '../../index.js'
import type * as lib from '../../index.js'

// seed 000 line 396: API Reference › SandboxManager › Constructor
declare class Seed_396 {
constructor(defaultConfig?: Partial<SandboxConfig>)
}
// CHECK: the library's constructor takes every argument the guide's signature takes.
const check_396: new (...args: ConstructorParameters<typeof Seed_396>) => SandboxManager = SandboxManager

// seed 000 lines 404–411: API Reference › SandboxManager › Constructor
async function snippet_api_reference_404() {
const manager = new SandboxManager({
  provider: 'docker',
  limits: {
    memoryMB: 512,
    cpuCores: 1
  },
  networkMode: 'isolated'
});
}

// seed 000 lines 427–433: API Reference › SandboxManager › Methods › `createSandbox(config?: Partial<SandboxConfig>): Promise<Sandbox>`
async function snippet_api_reference_427(manager: SandboxManager) {
const sandbox = await manager.createSandbox({
  image: 'python:3.11-slim',
  limits: {
    memoryMB: 256,
    timeoutSeconds: 120
  }
});
}

// seed 000 line 460: API Reference › SandboxManager › Methods › `destroySandbox(id: string): Promise<void>`
async function snippet_api_reference_460(manager: SandboxManager, sandbox: Sandbox) {
await manager.destroySandbox(sandbox.id);
}

// seed 000 line 469: API Reference › SandboxManager › Methods › `destroyAll(): Promise<void>`
async function snippet_api_reference_469(manager: SandboxManager) {
await manager.destroyAll();
}

// seed 000 lines 480–483: API Reference › SandboxManager › Methods › `getAllStats(): Promise<Array<{id, provider, stats}>>`
async function snippet_api_reference_480(manager: SandboxManager) {
const stats = await manager.getAllStats();
stats.forEach(s => {
  console.log(`${s.id}: ${s.stats.memoryUsageMB}MB, ${s.stats.cpuPercent}%`);
});
}

// seed 000 lines 501–504: API Reference › Sandbox Interface › Properties
declare class Seed_501 {
readonly id: string;              // Unique identifier
// DIFFERENCE: a sandbox's provider may also be a provider registered with manager.registerProvider
//   (FAQ Q25's 'custom')
readonly provider: 'docker' | 'e2b' | (string & {});  // Provider type
readonly state: SandboxState;     // Current state
readonly limits: ResourceLimits;  // Resource limits
}
// CHECK: a library Sandbox has these properties, with these types.
const check_501 = (library: Sandbox): Seed_501 => library

// seed 000 lines 517–518: API Reference › Sandbox Interface › Methods › `start(): Promise<void>`
async function snippet_api_reference_517(sandbox: Sandbox) {
await sandbox.start();
console.log('Sandbox state:', sandbox.state); // 'running'
}

// seed 000 lines 535–541: API Reference › Sandbox Interface › Methods › `execute(command, args?, options?): Promise<ExecutionResult>`
function snippet_api_reference_535() {
interface ExecutionResult {
  exitCode: number;      // 0 = success
  stdout: string;        // Standard output
  stderr: string;        // Standard error
  durationMs: number;    // Execution duration
  timedOut: boolean;     // Whether execution timed out
}
// CHECK: the library's ExecutionResult has every field of the guide's, with the same types.
const check = (library: lib.ExecutionResult): ExecutionResult => library
}

// seed 000 lines 546–556: API Reference › Sandbox Interface › Methods › `execute(command, args?, options?): Promise<ExecutionResult>`
async function snippet_api_reference_546(sandbox: Sandbox) {
const result = await sandbox.execute('npm', ['install'], {
  timeout: 300,
  workdir: '/workspace',
  env: { NODE_ENV: 'production' }
});

if (result.exitCode === 0) {
  console.log('Success:', result.stdout);
} else {
  console.error('Failed:', result.stderr);
}
}

// seed 000 lines 569–574: API Reference › Sandbox Interface › Methods › `writeFile(path, content): Promise<FileOperation>`
function snippet_api_reference_569() {
interface FileOperation {
  path: string;
  content?: string;  // For read operations
  success: boolean;
  error?: string;    // Error message if failed
}
// CHECK: the library's FileOperation has every field of the guide's, with the same types.
const check = (library: lib.FileOperation): FileOperation => library
}

// seed 000 lines 579–585: API Reference › Sandbox Interface › Methods › `writeFile(path, content): Promise<FileOperation>`
async function snippet_api_reference_579(sandbox: Sandbox) {
const result = await sandbox.writeFile('/workspace/app.js', `
  console.log('Hello from sandboxed app!');
`);

if (result.success) {
  console.log('File written successfully');
}
}

// seed 000 lines 599–602: API Reference › Sandbox Interface › Methods › `readFile(path): Promise<FileOperation>`
async function snippet_api_reference_599(sandbox: Sandbox) {
const result = await sandbox.readFile('/workspace/output.txt');
if (result.success) {
  console.log('File content:', result.content);
}
}

// seed 000 lines 616–617: API Reference › Sandbox Interface › Methods › `listFiles(path): Promise<string[]>`
async function snippet_api_reference_616(sandbox: Sandbox) {
const files = await sandbox.listFiles('/workspace');
console.log('Files:', files); // ['app.js', 'package.json', ...]
}

// seed 000 lines 639–640: API Reference › Sandbox Interface › Methods › `destroy(): Promise<void>`
async function snippet_api_reference_639(sandbox: Sandbox) {
await sandbox.destroy();
console.log('Sandbox destroyed');
}

// seed 000 lines 649–655: API Reference › Sandbox Interface › Methods › `getStats(): Promise<ResourceStats>`
function snippet_api_reference_649() {
interface ResourceStats {
  memoryUsageMB: number;
  cpuPercent: number;
  diskUsageMB: number;
  networkRxMB: number;
  networkTxMB: number;
}
// CHECK: the library's ResourceStats has every field of the guide's, with the same types.
const check = (library: lib.ResourceStats): ResourceStats => library
}

// seed 000 lines 660–663: API Reference › Sandbox Interface › Methods › `getStats(): Promise<ResourceStats>`
async function snippet_api_reference_660(sandbox: Sandbox) {
const stats = await sandbox.getStats();
console.log(`Memory: ${stats.memoryUsageMB}MB`);
console.log(`CPU: ${stats.cpuPercent}%`);
console.log(`Disk: ${stats.diskUsageMB}MB`);
}

// seed 000 lines 672–675: API Reference › Sandbox Interface › Methods › `healthCheck(): Promise<HealthCheckResult>`
function snippet_api_reference_672() {
interface HealthCheckResult {
  healthy: boolean;
  message?: string;
}
// CHECK: the library's HealthCheckResult has every field of the guide's, with the same types.
const check = (library: lib.HealthCheckResult): HealthCheckResult => library
}

// seed 000 lines 680–685: API Reference › Sandbox Interface › Methods › `healthCheck(): Promise<HealthCheckResult>`
async function snippet_api_reference_680(sandbox: Sandbox) {
const health = await sandbox.healthCheck();
if (health.healthy) {
  console.log('‚úÖ Sandbox is healthy');
} else {
  console.error('‚ùå Sandbox unhealthy:', health.message);
}
}

// seed 000 line 697: API Reference › DockerSandbox › Constructor
declare class Seed_697 {
constructor(config: SandboxConfig)
}
// CHECK: the library's constructor takes every argument the guide's signature takes.
const check_697: new (...args: ConstructorParameters<typeof Seed_697>) => DockerSandbox = DockerSandbox

// seed 000 lines 711–733: API Reference › DockerSandbox › Configuration Example
async function snippet_api_reference_711(manager: SandboxManager) {
const dockerSandbox = await manager.createSandbox({
  provider: 'docker',
  image: 'node:20-alpine',
  limits: {
    memoryMB: 512,
    cpuCores: 1,
    diskMB: 1024,
    timeoutSeconds: 300
  },
  networkMode: 'none',  // or 'isolated', 'bridge'
  workdir: '/workspace',
  env: {
    NODE_ENV: 'production',
    NPM_CONFIG_LOGLEVEL: 'warn'
  },
  docker: {
    socketPath: '/var/run/docker.sock',
    registryAuth: {
      username: 'user',
      password: 'pass'
    }
  }
});
}

// seed 000 line 752: API Reference › E2BSandbox › Constructor
declare class Seed_752 {
constructor(config: SandboxConfig)
}
// CHECK: the library's constructor takes every argument the guide's signature takes.
const check_752: new (...args: ConstructorParameters<typeof Seed_752>) => E2BSandbox = E2BSandbox

// seed 000 lines 766–782: API Reference › E2BSandbox › Configuration Example
async function snippet_api_reference_766(manager: SandboxManager) {
const e2bSandbox = await manager.createSandbox({
  provider: 'e2b',
  limits: {
    memoryMB: 1024,
    cpuCores: 2,
    timeoutSeconds: 600
  },
  e2b: {
    apiKey: process.env.E2B_API_KEY!,
    templateId: 'node-typescript',  // or 'python3', 'rust', 'base'
    region: 'us-east-1'  // or 'eu-west-1', 'ap-southeast-1'
  },
  metadata: {
    userId: 'user-123',
    environment: 'production'
  }
});
}

// seed 000 line 808: API Reference › SandboxedAgentExecutor › Constructor
declare class Seed_808 {
constructor(sandboxManager?: SandboxManager)
}
// CHECK: the library's constructor takes every argument the guide's signature takes.
const check_808: new (...args: ConstructorParameters<typeof Seed_808>) => SandboxedAgentExecutor = SandboxedAgentExecutor

// seed 000 lines 826–838: API Reference › SandboxedAgentExecutor › Methods › `execute(task, config): Promise<SandboxedExecutionResult>`
function snippet_api_reference_826() {
interface SandboxedExecutionResult {
  output: string;
  exitCode: number;
  durationMs: number;
  stats: {
    commandsExecuted: number;
    filesCreated: number;
    memoryUsageMB: number;
    cpuPercent: number;
    errors: number;
  };
  files: Array<{ path: string; content: string }>;
}
// CHECK: the library's SandboxedExecutionResult has every field of the guide's, with the same types.
const check = (library: lib.SandboxedExecutionResult): SandboxedExecutionResult => library
}

// seed 000 lines 843–863: API Reference › SandboxedAgentExecutor › Methods › `execute(task, config): Promise<SandboxedExecutionResult>`
async function snippet_api_reference_843() {
const executor = new SandboxedAgentExecutor();

const result = await executor.execute(
  'Build a REST API with authentication',
  {
    agentName: 'backend-dev',
    systemPrompt: 'You are an expert backend developer.',
    sandboxConfig: {
      provider: 'docker',
      image: 'node:20-alpine',
      limits: { memoryMB: 512, cpuCores: 1 }
    },
    workspacePath: '/workspace',
    autoCleanup: true,
    captureFiles: true,
    capturePatterns: ['*.js', '*.json', '*.md']
  }
);

console.log('Agent output:', result.output);
console.log('Files created:', result.files.length);
}

// seed 000 lines 877–892: API Reference › SandboxedAgentExecutor › Methods › `executeParallel(tasks): Promise<SandboxedExecutionResult[]>`
// The guide does not define `sandboxConfig`: here it is agent options the three tasks share, spread
// into each task's config.
async function snippet_api_reference_877(executor: SandboxedAgentExecutor, sandboxConfig: SandboxedAgentConfig) {
const results = await executor.executeParallel([
  {
    task: 'Create backend API',
    config: { agentName: 'backend', ...sandboxConfig }
  },
  {
    task: 'Create frontend UI',
    config: { agentName: 'frontend', ...sandboxConfig }
  },
  {
    task: 'Write tests',
    config: { agentName: 'tester', ...sandboxConfig }
  }
]);

console.log('All agents completed:', results.length);
}

// seed 000 line 901: API Reference › SandboxedAgentExecutor › Methods › `cleanupAll(): Promise<void>`
async function snippet_api_reference_901(executor: SandboxedAgentExecutor) {
await executor.cleanupAll();
}
