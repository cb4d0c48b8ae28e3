/**
 * Single agent execution (integration guide, "Integration Patterns"): one agent implements a
 * binary search tree with tests inside an isolated sandbox; the example prints the captured files.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/agent-single.ts --mock   # scripted model (examples/lib/mock-llm.ts); the tools really run
 *   npx tsx examples/agent-single.ts          # a real model: needs ANTHROPIC_API_KEY (or OPENAI_API_KEY / OPENAI_BASE_URL)
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * Differences from the guide: the guide uses 'node:20-alpine' and asks for TypeScript; this
 * example uses the offline-built 'agentic-sandbox/debian:12' (node 18, python3, no TypeScript
 * compiler, and no network to install one), so the task asks for JavaScript tested with node's
 * built-in test runner (`node --test`), and the capture patterns follow.
 *
 * Exits 0 when the task succeeded, 1 otherwise.
 */
import { SandboxManager, SandboxedAgentExecutor } from '../index.js';
import { startMockLlm, type MockLlm } from './lib/mock-llm.js';
import { runMode, runProblems, singleAgentScript } from './lib/agent-mock-scripts.js';

const IMAGE = 'agentic-sandbox/debian:12'; // instead of the guide's node:20-alpine (offline image with node)

async function singleAgent() {
  const mode = runMode('agent-single.ts');
  if (!mode) return;

  const mock: MockLlm | undefined = mode === 'mock' ? await startMockLlm({ provider: 'anthropic', script: singleAgentScript }) : undefined;
  // No model settings for a real model: the executor reads ANTHROPIC_* / OPENAI_* from the environment.
  const model = mock ? ({ provider: 'anthropic', apiKey: 'mock', baseURL: mock.url } as const) : undefined;

  const manager = new SandboxManager({ networkMode: 'none' });
  const executor = new SandboxedAgentExecutor(manager);
  const problems: string[] = [];

  try {
    const result = await executor.execute(
      'Implement a binary search tree in JavaScript (CommonJS module bst.js for Node 18) with tests in bst.test.js using node:test, and run the tests',
      {
        agentName: 'coder',
        systemPrompt: 'You are an algorithms expert.',
        sandboxConfig: {
          provider: 'docker',
          image: IMAGE,
          limits: {
            memoryMB: 256,
            cpuCores: 0.5,
            timeoutSeconds: 180,
          },
          networkMode: 'none',
        },
        workspacePath: '/workspace',
        autoCleanup: true,
        captureFiles: true,
        capturePatterns: ['*.js', '*.test.js'], // the guide's ['*.ts', '*.test.ts'], for JavaScript
        model,
      },
    );

    if (result.exitCode === 0) {
      console.log('✅ Task completed');
      console.log('\nOutput:', result.output);
      console.log(
        `\nStats: ${result.stats.commandsExecuted} commands, ${result.stats.filesCreated} files created, ` +
          `${result.stats.errors} errors, ${result.stats.memoryUsageMB.toFixed(1)} MB, ${result.stats.cpuPercent.toFixed(1)} % CPU, ` +
          `${result.stats.turns} model turns, ${Math.round(result.durationMs)} ms`,
      );
      console.log('Files created:', result.files.length);

      result.files.forEach((file) => {
        console.log(`\n📄 ${file.path}:`);
        console.log(file.content);
      });
    } else {
      console.error('❌ Task failed:', result.error?.code, result.error?.message);
    }
    problems.push(...runProblems(result, mock));
  } finally {
    await manager.destroyAll().catch((err) => problems.push(`destroyAll failed: ${err}`));
    await mock?.close();
  }

  if (problems.length) {
    console.error('\n❌ Problems:\n- ' + problems.join('\n- '));
    process.exitCode = 1;
  }
}

singleAgent().catch((err) => {
  console.error('❌ Single agent example failed:', err);
  process.exitCode = 1;
});
