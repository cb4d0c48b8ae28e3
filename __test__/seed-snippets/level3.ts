// Seed 000, Quick Start › Level 3: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxedAgentExecutor } from '../../index.js'
import { FederationHub } from './ambient.js'

// seed 000 lines 236–349: Quick Start › Level 3: Advanced (30 minutes) › Step 1: Setup Federation Hub
async function snippet_level3_236() {
// import { FederationHub } from './src/federation/FederationHub.js';  <- see the imports at the top of this file
// import { SandboxedAgentExecutor } from './examples/sandbox-integration/sandboxed-agent-executor.js';  <- see the imports at the top of this file

async function main() {
  // Start federation hub (persistent memory server)
  const hub = new FederationHub({
    port: 5433,
    dbPath: './federation.db'
  });
  await hub.start();
  console.log('‚úÖ Federation hub started on port 5433');

  // Create sandboxed executor
  const executor = new SandboxedAgentExecutor();

  // Define multi-agent swarm tasks
  const tasks = [
    {
      task: 'Research best practices for REST API design',
      config: {
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
        autoCleanup: false, // Keep for inspection
        captureFiles: true
      }
    },
    {
      task: 'Implement REST API with Express based on research findings',
      config: {
        agentName: 'coder',
        systemPrompt: 'You are a backend developer.',
        sandboxConfig: {
          provider: 'docker',
          image: 'node:20-alpine',
          limits: { memoryMB: 512, cpuCores: 1 },
          env: {
            FEDERATION_HUB: 'quic://localhost:5433',
            AGENT_NAMESPACE: 'swarm/implementation'
          }
        },
        autoCleanup: false,
        captureFiles: true
      }
    },
    {
      task: 'Write comprehensive tests for the REST API',
      config: {
        agentName: 'tester',
        systemPrompt: 'You are a QA engineer.',
        sandboxConfig: {
          provider: 'docker',
          image: 'node:20-alpine',
          limits: { memoryMB: 256, cpuCores: 0.5 },
          env: {
            FEDERATION_HUB: 'quic://localhost:5433',
            AGENT_NAMESPACE: 'swarm/testing'
          }
        },
        autoCleanup: false,
        captureFiles: true
      }
    }
  ];

  // Execute swarm in parallel
  console.log('\nüöÄ Launching 3-agent swarm...\n');
  const startTime = Date.now();

  const results = await executor.executeParallel(tasks);

  const totalDuration = Date.now() - startTime;

  // Display results
  console.log('\n‚úÖ Swarm execution completed!\n');

  results.forEach((result, index) => {
    console.log(`Agent ${index + 1} (${tasks[index].config.agentName}):`);
    console.log('- Duration:', result.durationMs, 'ms');
    console.log('- Commands:', result.stats.commandsExecuted);
    console.log('- Files:', result.stats.filesCreated);
    console.log('- Memory:', result.stats.memoryUsageMB, 'MB');
    console.log('- Status:', result.exitCode === 0 ? '‚úÖ Success' : '‚ùå Failed');
    console.log();
  });

  console.log('Total parallel execution:', totalDuration, 'ms');
  console.log('Speedup vs sequential:',
    `${(results.reduce((sum, r) => sum + r.durationMs, 0) / totalDuration).toFixed(2)}x`
  );

  // Query federation hub for shared context
  const memories = await hub.searchMemories({
    query: 'REST API implementation',
    namespace: 'swarm/*',
    k: 10
  });

  console.log('\nüìö Federated memories:', memories.length);

  // Cleanup
  await executor.cleanupAll();
  await hub.stop();
}

main();
}

// seed 000 lines 355–380: Quick Start › Level 3: Advanced (30 minutes) › Step 2: Add E2B Cloud Sandboxes
async function snippet_level3_355(executor: SandboxedAgentExecutor) {
// For production: Use E2B cloud sandboxes
const e2bConfig = {
  agentName: 'production-coder',
  systemPrompt: 'You are a senior developer.',
  sandboxConfig: {
    provider: 'e2b',
    e2b: {
      apiKey: process.env.E2B_API_KEY!,
      templateId: 'node-typescript',
      region: 'us-east-1'
    },
    limits: {
      memoryMB: 1024,
      cpuCores: 2,
      timeoutSeconds: 600
    },
    // ANNOTATION: `as const`: in a variable, 'isolated' widens to string, which networkMode's union
    //   does not accept
    networkMode: 'isolated' as const
  },
  autoCleanup: true,
  captureFiles: true
};

const result = await executor.execute(
  'Build production-ready microservice',
  e2bConfig
);
}
