/**
 * Level 2 of the integration guide ("agent-example.ts" + "Add Custom Interceptors"): run an agent
 * whose tools execute inside a Docker sandbox, print its answer, statistics and captured files;
 * then run the same task again with two interceptors (a Write logger and a Bash guard that
 * blocks `rm -rf`).
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/agent-level2.ts --mock   # scripted model (examples/lib/mock-llm.ts); the tools really run
 *   npx tsx examples/agent-level2.ts          # a real model: needs ANTHROPIC_API_KEY (or OPENAI_API_KEY / OPENAI_BASE_URL)
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`. The guide
 * uses 'node:20-alpine'; this example uses the offline-built 'agentic-sandbox/debian:12', which
 * ships node (18) and python3, so nothing is pulled from a registry.
 *
 * Exits 0 when both runs succeeded, 1 otherwise.
 */
import {
  SandboxManager,
  SandboxedAgentExecutor,
  type SandboxedAgentConfig,
  type SandboxedAgentContext,
  type SandboxedExecutionResult,
  type ToolCallInterceptor,
} from '../index.js';
import { startMockLlm, type MockLlm } from './lib/mock-llm.js';
import { level2Step1Script, level2Step2Script, runMode, runProblems } from './lib/agent-mock-scripts.js';

const IMAGE = 'agentic-sandbox/debian:12'; // instead of the guide's node:20-alpine (offline image with node)

function report(result: SandboxedExecutionResult) {
  // Display results
  console.log(result.exitCode === 0 ? '✅ Agent execution completed' : `❌ Agent execution failed: ${result.error?.code} ${result.error?.message}`);
  console.log('\nOutput:', result.output);

  console.log('\nStatistics:');
  console.log('- Commands executed:', result.stats.commandsExecuted);
  console.log('- Files created:', result.stats.filesCreated);
  console.log('- Memory usage:', result.stats.memoryUsageMB.toFixed(1), 'MB');
  console.log('- CPU usage:', result.stats.cpuPercent.toFixed(1), '%');
  console.log('- Duration:', Math.round(result.durationMs), 'ms');
  console.log('- Errors:', result.stats.errors);

  console.log('\nCaptured files:');
  result.files.forEach((file) => {
    console.log(`\n📄 ${file.path}:`);
    console.log(file.content);
  });
}

async function main() {
  const mode = runMode('agent-level2.ts');
  if (!mode) return;

  // --mock: both runs share one scripted queue (step 1's turns, then step 2's); they run one after the other.
  const mock: MockLlm | undefined =
    mode === 'mock' ? await startMockLlm({ provider: 'anthropic', script: [...level2Step1Script, ...level2Step2Script] }) : undefined;
  // No model settings for a real model: the executor reads ANTHROPIC_* / OPENAI_* from the environment.
  const model = mock ? ({ provider: 'anthropic', apiKey: 'mock', baseURL: mock.url } as const) : undefined;

  const manager = new SandboxManager({ networkMode: 'none' });
  const executor = new SandboxedAgentExecutor(manager);
  const problems: string[] = [];

  try {
    // Step 1: Create Sandboxed Agent Executor
    const task = 'Create a simple Node.js script that calculates fibonacci numbers';
    const config: SandboxedAgentConfig = {
      agentName: 'coder',
      systemPrompt: 'You are a helpful coding assistant.',
      sandboxConfig: {
        provider: 'docker',
        image: IMAGE,
        limits: {
          memoryMB: 256,
          cpuCores: 0.5,
          timeoutSeconds: 120,
        },
        networkMode: 'none', // No network access
      },
      workspacePath: '/workspace',
      autoCleanup: true,
      captureFiles: true,
      capturePatterns: ['*.js', '*.json'],
      model,
    };

    // Execute agent in isolated sandbox
    console.log('━━━ Step 1: sandboxed agent ━━━\n');
    const result = await executor.execute(task, config);
    report(result);
    problems.push(...runProblems(result, mock, { turnsLeft: level2Step2Script.length }));

    // Step 2: Add Custom Interceptors
    const interceptors: ToolCallInterceptor[] = [
      {
        toolName: 'Write',
        handler: async (params: any, context: SandboxedAgentContext) => {
          console.log(`📝 Writing file: ${params.file} (${params.content.length} bytes)`);

          const sandboxPath = `/workspace/${params.file}`;
          await context.sandbox.writeFile(sandboxPath, params.content);
          context.metadata.filesCreated++;

          // Returning params lets the built-in Write run too (it writes the same content again: harmless,
          // and not counted twice because this handler already counted the file).
          return params;
        },
      },
      {
        toolName: 'Bash',
        handler: async (params: any, context: SandboxedAgentContext) => {
          console.log(`⚡ Executing: ${params.command}`);

          // Block dangerous commands
          if (params.command.includes('rm -rf')) {
            console.log('⛔ Blocked dangerous command!');
            return null; // the model gets "blocked by policy"; counted in stats.errors
          }

          const result = await context.sandbox.execute('sh', ['-c', params.command]);
          context.metadata.commandsExecuted++;

          return result; // an execution result replaces the built-in Bash
        },
      },
    ];

    // Use interceptors in config
    console.log('\n━━━ Step 2: the same task with custom interceptors ━━━\n');
    const result2 = await executor.execute(task, {
      ...config,
      interceptors,
    });
    report(result2);
    console.log('\nBlocked calls:', result2.stats.blockedCalls);
    problems.push(...runProblems(result2, mock));
  } finally {
    await manager.destroyAll().catch((err) => problems.push(`destroyAll failed: ${err}`));
    await mock?.close();
  }

  if (problems.length) {
    console.error('\n❌ Problems:\n- ' + problems.join('\n- '));
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error('❌ Level 2 example failed:', err);
  process.exitCode = 1;
});
