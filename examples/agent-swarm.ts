/**
 * Multi-agent swarm (integration guide, Level 3 and "Multi-Agent Swarms"): three agents run in
 * parallel, each in its own sandbox: a backend developer writes and runs a small Node.js module, a
 * tester writes and runs a Python test suite, a documenter writes a README and checks it with sh.
 * The example prints per-agent statistics and the speedup over running them one after another.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/agent-swarm.ts --mock   # scripted model (examples/lib/mock-llm.ts); the tools really run
 *   npx tsx examples/agent-swarm.ts          # a real model: needs ANTHROPIC_API_KEY (or OPENAI_API_KEY / OPENAI_BASE_URL)
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`. The guide
 * uses 'node:20-alpine' (and 'postgres:15-alpine'); this example uses the offline-built images
 * instead: 'agentic-sandbox/debian:12' (node 18 and python3) and 'agentic-sandbox/busybox:1' (sh
 * and the usual tools only). The guide's federation hub is not part of this library and is left out.
 *
 * Like the guide's Level 3 swarm, the sandboxes are kept after the runs (`autoCleanup: false`, for
 * inspection) and `executor.cleanupAll()` destroys them at the end.
 *
 * Exits 0 when every agent succeeded, 1 otherwise.
 */
import { SandboxManager, SandboxedAgentExecutor, type AgentTask } from '../index.js';
import { startMockLlm, type MockLlm } from './lib/mock-llm.js';
import { runMode, runProblems, swarmScripts } from './lib/agent-mock-scripts.js';

// instead of the guide's node:20-alpine: offline images
const DEBIAN = 'agentic-sandbox/debian:12'; // node 18, python3
const BUSYBOX = 'agentic-sandbox/busybox:1'; // sh, coreutils-like applets

async function multiAgentSwarm() {
  const mode = runMode('agent-swarm.ts');
  if (!mode) return;

  // Define agent tasks
  const tasks: AgentTask[] = [
    {
      task: 'Implement a small in-memory todo service in Node.js: todo-api.js exporting a REST-style handler (GET/POST /todos, GET/PATCH/DELETE /todos/:id), plus demo.js that exercises it; run the demo',
      config: {
        agentName: 'backend-dev',
        systemPrompt: 'You are a backend developer.',
        sandboxConfig: {
          provider: 'docker',
          image: DEBIAN,
          limits: { memoryMB: 512, cpuCores: 1 },
          networkMode: 'none',
        },
        autoCleanup: false, // Keep for inspection
        captureFiles: true,
        capturePatterns: ['*.js'],
      },
    },
    {
      task: 'Write a Python shopping-cart pricing module (pricing.py: subtotal, discount codes, VAT) and a unittest suite for it (test_pricing.py); run the tests',
      config: {
        agentName: 'tester',
        systemPrompt: 'You are a QA engineer.',
        sandboxConfig: {
          provider: 'docker',
          image: DEBIAN,
          limits: { memoryMB: 256, cpuCores: 0.5 },
          networkMode: 'none',
        },
        autoCleanup: false,
        captureFiles: true,
        capturePatterns: ['*.py'],
      },
    },
    {
      task: 'Write README.md for a todo service with a REST-style handler (usage, endpoint table, testing) and check its heading structure with shell tools',
      config: {
        agentName: 'documenter',
        systemPrompt: 'You are a technical writer.',
        sandboxConfig: {
          provider: 'docker',
          image: BUSYBOX,
          limits: { memoryMB: 128, cpuCores: 0.5 },
          networkMode: 'none',
        },
        autoCleanup: false,
        captureFiles: true,
        capturePatterns: ['*.md'],
      },
    },
  ];

  // --mock: one scripted conversation per agent, routed by the task text (the mock's default key,
  // the first user message).
  const mock: MockLlm | undefined =
    mode === 'mock'
      ? await startMockLlm({
          provider: 'anthropic',
          scripts: Object.fromEntries(tasks.map((t) => [t.task, swarmScripts[t.config.agentName as keyof typeof swarmScripts]])),
        })
      : undefined;
  if (mock) {
    // No model settings for a real model: the executor reads ANTHROPIC_* / OPENAI_* from the environment.
    for (const t of tasks) t.config.model = { provider: 'anthropic', apiKey: 'mock', baseURL: mock.url };
  }

  const manager = new SandboxManager({ networkMode: 'none' });
  const executor = new SandboxedAgentExecutor(manager);
  const problems: string[] = [];

  try {
    console.log(`🚀 Launching ${tasks.length}-agent swarm...\n`);
    const startTime = Date.now();

    // Execute in parallel
    const results = await executor.executeParallel(tasks, { concurrency: 3 });

    const totalDuration = Date.now() - startTime;

    // Analyze results
    console.log('✅ Swarm completed!\n');

    results.forEach((result, i) => {
      console.log(`Agent ${i + 1} (${tasks[i].config.agentName}, ${tasks[i].config.sandboxConfig?.image}):`);
      console.log(`- Duration: ${Math.round(result.durationMs)}ms`);
      console.log(`- Commands: ${result.stats.commandsExecuted}`);
      console.log(`- Files: ${result.stats.filesCreated} created, ${result.files.length} captured (${result.files.map((f) => f.path).join(', ')})`);
      console.log(`- Memory: ${result.stats.memoryUsageMB.toFixed(1)}MB, CPU: ${result.stats.cpuPercent.toFixed(1)}%`);
      console.log(`- Errors: ${result.stats.errors}`);
      console.log(`- Status: ${result.exitCode === 0 ? '✅ Success' : `❌ Failed (${result.error?.code}: ${result.error?.message})`}`);
      console.log(`- Output: ${result.output.replace(/\n/g, '\n  ')}\n`);
      problems.push(...runProblems(result, mock, { conversation: tasks[i].task }));
    });

    const sequentialTime = results.reduce((sum, r) => sum + r.durationMs, 0);
    const speedup = (sequentialTime / totalDuration).toFixed(2);

    console.log(`⚡ Speedup: ${speedup}x (${totalDuration}ms vs ${Math.round(sequentialTime)}ms)`);

    // autoCleanup: false kept the sandboxes; they are still there to inspect.
    const kept = executor.listActive();
    console.log(`\n🔍 Kept for inspection: ${kept.map((c) => `${c.metadata.agentName} (${c.sandbox.id})`).join(', ')}`);
    if (kept.length !== tasks.length) problems.push(`expected ${tasks.length} kept sandboxes, found ${kept.length}`);
  } finally {
    // Cleanup
    await executor.cleanupAll().catch((err) => problems.push(`cleanupAll failed: ${err}`));
    console.log(`🧹 cleanupAll done; sandboxes left: ${executor.listActive().length}`);
    await manager.destroyAll().catch((err) => problems.push(`destroyAll failed: ${err}`));
    await mock?.close();
  }

  if (problems.length) {
    console.error('\n❌ Problems:\n- ' + problems.join('\n- '));
    process.exitCode = 1;
  }
}

multiAgentSwarm().catch((err) => {
  console.error('❌ Swarm example failed:', err);
  process.exitCode = 1;
});
