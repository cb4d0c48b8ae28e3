/**
 * Custom tool interceptors (integration guide, "Custom Tool Interceptors"): the guide's four
 * interceptors — fileLogger, securityFilter, perfMonitor and quotaEnforcer — watch and steer an
 * agent's tool calls inside its sandbox.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/agent-interceptors.ts --mock   # scripted model (examples/lib/mock-llm.ts); the tools really run
 *   npx tsx examples/agent-interceptors.ts          # a real model: needs ANTHROPIC_API_KEY (or OPENAI_API_KEY / OPENAI_BASE_URL)
 *
 * With --mock the scripted agent makes one call of each kind: a Write (logged, counted against the
 * quota), a blacklisted `rm -rf /...` (blocked by securityFilter), allowed commands (one not on the
 * whitelist: warned about, still run), a Read (perfMonitor), a Write beyond the quota (blocked by
 * quotaEnforcer) and an `ls` that shows the blocked file was never written.
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`. The guide
 * uses 'node:20-alpine'; this example uses the offline-built 'agentic-sandbox/debian:12' (node 18).
 *
 * Exits 0 when the run succeeded (with --mock: and every interceptor did what it should), 1 otherwise.
 */
import { SandboxManager, SandboxedAgentExecutor, type SandboxedAgentContext, type ToolCallInterceptor } from '../index.js';
import { startMockLlm, type MockLlm } from './lib/mock-llm.js';
import { interceptorsScript, runMode, runProblems } from './lib/agent-mock-scripts.js';

const IMAGE = 'agentic-sandbox/debian:12'; // instead of the guide's node:20-alpine (offline image with node)

/**
 * The guide sends events to a federation hub when FEDERATION_HUB is set. There is no hub in this
 * library: this stand-in only logs what it would send.
 */
async function logToHub(event: Record<string, unknown>): Promise<void> {
  console.log(`🌐 [hub stub] would send to ${process.env.FEDERATION_HUB}:`, JSON.stringify(event));
}

async function customInterceptors() {
  const mode = runMode('agent-interceptors.ts');
  if (!mode) return;

  // The guide's quota is 10 MB. The scripted run uses 4 KB so that its second Write exceeds it.
  const QUOTA_BYTES = mode === 'mock' ? 4 * 1024 : 10 * 1024 * 1024;

  const mock: MockLlm | undefined =
    mode === 'mock' ? await startMockLlm({ provider: 'anthropic', script: interceptorsScript(QUOTA_BYTES) }) : undefined;
  // No model settings for a real model: the executor reads ANTHROPIC_* / OPENAI_* from the environment.
  const model = mock ? ({ provider: 'anthropic', apiKey: 'mock', baseURL: mock.url } as const) : undefined;

  const manager = new SandboxManager({ networkMode: 'none' });
  const executor = new SandboxedAgentExecutor(manager);
  const problems: string[] = [];

  // Interceptor 1: File operation logger
  const fileLogger: ToolCallInterceptor = {
    toolName: 'Write',
    handler: async (params: any, context: SandboxedAgentContext) => {
      console.log(`📝 [${context.metadata.agentName}] Writing: ${params.file}`);
      console.log(`   Size: ${params.content.length} bytes`);

      // Execute write
      const sandboxPath = `/workspace/${params.file}`;
      await context.sandbox.writeFile(sandboxPath, params.content);
      context.metadata.filesCreated++;

      // Log to federation hub
      if (process.env.FEDERATION_HUB) {
        await logToHub({
          event: 'file_written',
          agent: context.metadata.agentName,
          file: params.file,
          timestamp: Date.now(),
        });
      }

      // Returning params lets the built-in Write run too: it writes the same content again (harmless).
      return params;
    },
  };

  // Interceptor 2: Command security filter
  const securityFilter: ToolCallInterceptor = {
    toolName: 'Bash',
    handler: async (params: any, context: SandboxedAgentContext) => {
      console.log(`⚡ [${context.metadata.agentName}] Command: ${params.command}`);

      // Blacklist dangerous commands
      const blacklist = [
        'rm -rf /',
        'dd if=/dev/zero',
        'fork()',
        ':(){:|:&};:', // fork bomb
        'mkfs',
        'format',
      ];

      if (blacklist.some((cmd) => params.command.includes(cmd))) {
        console.error(`⛔ [SECURITY] Blocked dangerous command!`);
        context.metadata.errors++;
        // An execution result replaces the built-in Bash: the model sees this as the command's result.
        return {
          exitCode: 1,
          stdout: '',
          stderr: 'Error: Command blocked by security policy',
          durationMs: 0,
          timedOut: false,
        };
      }

      // Whitelist allowed commands (strict mode)
      const whitelist = ['npm', 'node', 'git', 'ls', 'cat', 'echo', 'mkdir'];
      const commandBase = params.command.split(' ')[0];

      if (!whitelist.includes(commandBase)) {
        console.warn(`⚠️  [SECURITY] Unknown command: ${commandBase}`);
      }

      // Execute command
      const result = await context.sandbox.execute('sh', ['-c', params.command]);
      context.metadata.commandsExecuted++;

      if (result.exitCode !== 0) {
        context.metadata.errors++;
      }

      return result;
    },
  };

  // Interceptor 3: Performance monitor
  const perfMonitor: ToolCallInterceptor = {
    toolName: 'Read',
    handler: async (params: any, context: SandboxedAgentContext) => {
      const startTime = Date.now();

      const sandboxPath = `/workspace/${params.file}`;
      const result = await context.sandbox.readFile(sandboxPath);

      const durationMs = Date.now() - startTime;

      if (durationMs > 100) {
        console.warn(`⚠️  [PERF] Slow file read: ${params.file} (${durationMs}ms)`);
      }
      console.log(`📖 [PERF] Read ${params.file} in ${durationMs}ms`);

      // What readFile returned ({ success, content }) becomes the Read result.
      return result;
    },
  };

  // Interceptor 4: Quota enforcement
  let totalBytesWritten = 0;

  const quotaEnforcer: ToolCallInterceptor = {
    toolName: 'Write',
    handler: async (params: any, context: SandboxedAgentContext) => {
      totalBytesWritten += params.content.length;

      if (totalBytesWritten > QUOTA_BYTES) {
        console.error(`⛔ [QUOTA] Disk quota exceeded: ${totalBytesWritten} / ${QUOTA_BYTES}`);
        return null; // Block write
      }

      // The guide's quotaEnforcer also writes the file here and counts it (filesCreated++). It runs
      // first now (see below) and fileLogger, next in line, writes and counts every write it lets
      // through; doing both would count each file twice. So this one only decides.
      console.log(`💾 [QUOTA] ${totalBytesWritten} / ${QUOTA_BYTES} bytes used (${context.metadata.agentName})`);

      return params;
    },
  };

  try {
    // Use all interceptors
    const result = await executor.execute(
      'Build a small web application backend with authentication (Node.js built-in modules only: the sandbox has no network)',
      {
        agentName: 'secured-coder',
        systemPrompt: 'You are a developer.',
        sandboxConfig: {
          provider: 'docker',
          image: IMAGE,
          limits: { memoryMB: 512, cpuCores: 1 },
          networkMode: 'none',
        },
        // Order matters. Matching interceptors run in array order, and a handler's own side effects
        // happen as soon as it runs. The guide lists fileLogger before quotaEnforcer: fileLogger
        // would then write the oversized file into the sandbox before quotaEnforcer's `null` blocks
        // the call, so the "blocked" file would exist anyway. Policy interceptors (blockers) go
        // first, interceptors that act (write, run) after them.
        interceptors: [quotaEnforcer, fileLogger, securityFilter, perfMonitor],
        autoCleanup: true,
        model,
      },
    );

    console.log(result.exitCode === 0 ? '\n✅ Execution with custom interceptors completed' : `\n❌ Execution failed: ${result.error?.code} ${result.error?.message}`);
    console.log('\nOutput:', result.output);
    console.log('\nStats:');
    console.log('- Commands executed:', result.stats.commandsExecuted);
    console.log('- Files created:', result.stats.filesCreated);
    console.log('- Tool calls:', result.stats.toolCalls, `(${result.stats.blockedCalls} blocked with null)`);
    console.log('- Memory usage:', result.stats.memoryUsageMB.toFixed(1), 'MB');
    console.log('- CPU usage:', result.stats.cpuPercent.toFixed(1), '%');
    console.log('- Duration:', Math.round(result.durationMs), 'ms');
    console.log('Security blocks:', result.stats.errors);

    problems.push(...runProblems(result, mock));
    if (mock) {
      // What the script's calls must add up to: auth.js written; node, wc and ls run; the
      // blacklisted command (securityFilter) and the oversized write (quotaEnforcer) blocked.
      const want = { commandsExecuted: 3, filesCreated: 1, errors: 2, blockedCalls: 1 };
      for (const [k, v] of Object.entries(want)) {
        const got = result.stats[k as keyof typeof want];
        if (got !== v) problems.push(`stats.${k} is ${got}, expected ${v}`);
      }
    }
  } finally {
    await manager.destroyAll().catch((err) => problems.push(`destroyAll failed: ${err}`));
    await mock?.close();
  }

  if (problems.length) {
    console.error('\n❌ Problems:\n- ' + problems.join('\n- '));
    process.exitCode = 1;
  }
}

customInterceptors().catch((err) => {
  console.error('❌ Custom interceptors example failed:', err);
  process.exitCode = 1;
});
