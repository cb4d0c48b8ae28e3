// Seed 000, Integration Patterns: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxedAgentExecutor } from '../../index.js'
import { FederationHub, logToHub } from './ambient.js'

// seed 000 lines 1056–1094: Integration Patterns › Single Agent Execution
async function snippet_integration_patterns_1056() {
// import { SandboxedAgentExecutor } from './examples/sandbox-integration/sandboxed-agent-executor.js';  <- see the imports at the top of this file

async function singleAgent() {
  const executor = new SandboxedAgentExecutor();

  const result = await executor.execute(
    'Implement a binary search tree in TypeScript',
    {
      agentName: 'coder',
      systemPrompt: 'You are an algorithms expert.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: {
          memoryMB: 256,
          cpuCores: 0.5,
          timeoutSeconds: 180
        },
        networkMode: 'none'
      },
      workspacePath: '/workspace',
      autoCleanup: true,
      captureFiles: true,
      capturePatterns: ['*.ts', '*.test.ts']
    }
  );

  if (result.exitCode === 0) {
    console.log('‚úÖ Task completed');
    console.log('Files created:', result.files.length);

    result.files.forEach(file => {
      console.log(`\nüìÑ ${file.path}:`);
      console.log(file.content);
    });
  } else {
    console.error('‚ùå Task failed');
  }
}
}

// seed 000 lines 1110–1195: Integration Patterns › Multi-Agent Swarms
async function snippet_integration_patterns_1110() {
async function multiAgentSwarm() {
  const executor = new SandboxedAgentExecutor();

  // Define agent tasks
  const tasks = [
    {
      task: 'Design database schema for e-commerce',
      config: {
        agentName: 'architect',
        systemPrompt: 'You are a database architect.',
        sandboxConfig: {
          provider: 'docker',
          image: 'postgres:15-alpine',
          limits: { memoryMB: 512, cpuCores: 1 }
        },
        capturePatterns: ['*.sql']
      }
    },
    {
      task: 'Implement backend API',
      config: {
        agentName: 'backend',
        systemPrompt: 'You are a backend developer.',
        sandboxConfig: {
          provider: 'docker',
          image: 'node:20-alpine',
          limits: { memoryMB: 512, cpuCores: 1 }
        },
        capturePatterns: ['*.js', '*.ts']
      }
    },
    {
      task: 'Create frontend components',
      config: {
        agentName: 'frontend',
        systemPrompt: 'You are a React developer.',
        sandboxConfig: {
          provider: 'docker',
          image: 'node:20-alpine',
          limits: { memoryMB: 512, cpuCores: 1 }
        },
        capturePatterns: ['*.jsx', '*.tsx']
      }
    },
    {
      task: 'Write integration tests',
      config: {
        agentName: 'tester',
        systemPrompt: 'You are a QA engineer.',
        sandboxConfig: {
          provider: 'docker',
          image: 'node:20-alpine',
          limits: { memoryMB: 256, cpuCores: 0.5 }
        },
        capturePatterns: ['*.test.js']
      }
    }
  ];

  console.log('üöÄ Launching 4-agent swarm...\n');
  const startTime = Date.now();

  // Execute in parallel
  const results = await executor.executeParallel(tasks);

  const totalDuration = Date.now() - startTime;

  // Analyze results
  console.log('‚úÖ Swarm completed!\n');

  results.forEach((result, i) => {
    console.log(`Agent ${i + 1} (${tasks[i].config.agentName}):`);
    console.log(`- Duration: ${result.durationMs}ms`);
    console.log(`- Files: ${result.files.length}`);
    console.log(`- Memory: ${result.stats.memoryUsageMB}MB`);
    console.log(`- Status: ${result.exitCode === 0 ? '‚úÖ' : '‚ùå'}\n`);
  });

  const sequentialTime = results.reduce((sum, r) => sum + r.durationMs, 0);
  const speedup = (sequentialTime / totalDuration).toFixed(2);

  console.log(`‚ö° Speedup: ${speedup}x (${totalDuration}ms vs ${sequentialTime}ms)`);

  // Cleanup
  await executor.cleanupAll();
}
}

// seed 000 lines 1211–1294: Integration Patterns › Federation Integration
async function snippet_integration_patterns_1211() {
// import { FederationHub } from './src/federation/FederationHub.js';  <- see the imports at the top of this file
// import { SandboxedAgentExecutor } from './examples/sandbox-integration/sandboxed-agent-executor.js';  <- see the imports at the top of this file

async function federatedSwarm() {
  // Start federation hub (memory server)
  const hub = new FederationHub({
    port: 5433,
    dbPath: './federation.db'
  });
  await hub.start();

  const executor = new SandboxedAgentExecutor();

  // Agent 1: Research and store findings
  const researchResult = await executor.execute(
    'Research microservices architecture patterns',
    {
      agentName: 'researcher',
      systemPrompt: 'You are a research specialist.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: { memoryMB: 512, cpuCores: 1 },
        env: {
          FEDERATION_HUB: 'quic://localhost:5433',
          AGENT_NAMESPACE: 'swarm/research'
        }
      },
      autoCleanup: false
    }
  );

  // Agent 2: Query research and implement
  const coderResult = await executor.execute(
    'Implement microservice based on research findings',
    {
      agentName: 'coder',
      systemPrompt: 'You are a developer. Query federation hub for research findings.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: { memoryMB: 512, cpuCores: 1 },
        env: {
          FEDERATION_HUB: 'quic://localhost:5433',
          AGENT_NAMESPACE: 'swarm/implementation'
        }
      },
      autoCleanup: false
    }
  );

  // Agent 3: Query implementation and test
  const testerResult = await executor.execute(
    'Write tests for the microservice',
    {
      agentName: 'tester',
      systemPrompt: 'You are a QA engineer. Query federation hub for implementation details.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: { memoryMB: 256, cpuCores: 0.5 },
        env: {
          FEDERATION_HUB: 'quic://localhost:5433',
          AGENT_NAMESPACE: 'swarm/testing'
        }
      },
      autoCleanup: false
    }
  );

  // Query federated memories
  const memories = await hub.searchMemories({
    query: 'microservices',
    namespace: 'swarm/*',
    k: 20
  });

  console.log(`\nüìö Federated memories: ${memories.length}`);
  console.log('Agents successfully coordinated via federation hub!');

  // Cleanup
  await executor.cleanupAll();
  await hub.stop();
}
}

// seed 000 lines 1310–1453: Integration Patterns › Custom Tool Interceptors
async function snippet_integration_patterns_1310() {
async function customInterceptors() {
  const executor = new SandboxedAgentExecutor();

  // Interceptor 1: File operation logger
  const fileLogger = {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      console.log(`üìù [${context.metadata.agentName}] Writing: ${params.file}`);
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
          timestamp: Date.now()
        });
      }

      return params;
    }
  };

  // Interceptor 2: Command security filter
  const securityFilter = {
    toolName: 'Bash',
    handler: async (params: any, context: any) => {
      console.log(`‚ö° [${context.metadata.agentName}] Command: ${params.command}`);

      // Blacklist dangerous commands
      const blacklist = [
        'rm -rf /',
        'dd if=/dev/zero',
        'fork()',
        ':(){:|:&};:',  // fork bomb
        'mkfs',
        'format'
      ];

      if (blacklist.some(cmd => params.command.includes(cmd))) {
        console.error(`‚õî [SECURITY] Blocked dangerous command!`);
        context.metadata.errors++;
        return {
          exitCode: 1,
          stdout: '',
          stderr: 'Error: Command blocked by security policy',
          durationMs: 0,
          timedOut: false
        };
      }

      // Whitelist allowed commands (strict mode)
      const whitelist = ['npm', 'node', 'git', 'ls', 'cat', 'echo', 'mkdir'];
      const commandBase = params.command.split(' ')[0];

      if (!whitelist.includes(commandBase)) {
        console.warn(`‚ö†Ô∏è  [SECURITY] Unknown command: ${commandBase}`);
      }

      // Execute command
      const result = await context.sandbox.execute('sh', ['-c', params.command]);
      context.metadata.commandsExecuted++;

      if (result.exitCode !== 0) {
        context.metadata.errors++;
      }

      return result;
    }
  };

  // Interceptor 3: Performance monitor
  const perfMonitor = {
    toolName: 'Read',
    handler: async (params: any, context: any) => {
      const startTime = Date.now();

      const sandboxPath = `/workspace/${params.file}`;
      const result = await context.sandbox.readFile(sandboxPath);

      const durationMs = Date.now() - startTime;

      if (durationMs > 100) {
        console.warn(`‚ö†Ô∏è  [PERF] Slow file read: ${params.file} (${durationMs}ms)`);
      }

      return result;
    }
  };

  // Interceptor 4: Quota enforcement
  let totalBytesWritten = 0;
  const QUOTA_BYTES = 10 * 1024 * 1024; // 10MB

  const quotaEnforcer = {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      totalBytesWritten += params.content.length;

      if (totalBytesWritten > QUOTA_BYTES) {
        console.error(`‚õî [QUOTA] Disk quota exceeded: ${totalBytesWritten} / ${QUOTA_BYTES}`);
        return null; // Block write
      }

      const sandboxPath = `/workspace/${params.file}`;
      await context.sandbox.writeFile(sandboxPath, params.content);
      context.metadata.filesCreated++;

      console.log(`üíæ [QUOTA] ${totalBytesWritten} / ${QUOTA_BYTES} bytes used`);

      return params;
    }
  };

  // Use all interceptors
  const result = await executor.execute(
    'Build a web application with authentication',
    {
      agentName: 'secured-coder',
      systemPrompt: 'You are a developer.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: { memoryMB: 512, cpuCores: 1 }
      },
      interceptors: [
        fileLogger,
        securityFilter,
        perfMonitor,
        quotaEnforcer
      ],
      autoCleanup: true
    }
  );

  console.log('\n‚úÖ Execution with custom interceptors completed');
  console.log('Security blocks:', result.stats.errors);
}
}
