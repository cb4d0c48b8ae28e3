// Seed 000, Quick Start › Level 2: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import { SandboxedAgentExecutor, type SandboxedAgentConfig } from '../../index.js'

// seed 000 lines 126–173: Quick Start › Level 2: Intermediate (15 minutes) › Step 1: Create Sandboxed Agent Executor
async function snippet_level2_126() {
// import { SandboxedAgentExecutor } from './examples/sandbox-integration/sandboxed-agent-executor.js';  <- see the imports at the top of this file

async function main() {
  const executor = new SandboxedAgentExecutor();

  // Execute agent in isolated sandbox
  const result = await executor.execute(
    'Create a simple Node.js script that calculates fibonacci numbers',
    {
      agentName: 'coder',
      systemPrompt: 'You are a helpful coding assistant.',
      sandboxConfig: {
        provider: 'docker',
        image: 'node:20-alpine',
        limits: {
          memoryMB: 256,
          cpuCores: 0.5,
          timeoutSeconds: 120
        },
        networkMode: 'none' // No network access
      },
      workspacePath: '/workspace',
      autoCleanup: true,
      captureFiles: true,
      capturePatterns: ['*.js', '*.json']
    }
  );

  // Display results
  console.log('‚úÖ Agent execution completed');
  console.log('\nOutput:', result.output);

  console.log('\nStatistics:');
  console.log('- Commands executed:', result.stats.commandsExecuted);
  console.log('- Files created:', result.stats.filesCreated);
  console.log('- Memory usage:', result.stats.memoryUsageMB, 'MB');
  console.log('- CPU usage:', result.stats.cpuPercent, '%');
  console.log('- Duration:', result.durationMs, 'ms');
  console.log('- Errors:', result.stats.errors);

  console.log('\nCaptured files:');
  result.files.forEach(file => {
    console.log(`\nüìÑ ${file.path}:`);
    console.log(file.content);
  });
}

main();
}

// seed 000 lines 185–222: Quick Start › Level 2: Intermediate (15 minutes) › Step 2: Add Custom Interceptors
async function snippet_level2_185(executor: SandboxedAgentExecutor, task: string, config: SandboxedAgentConfig) {
// Add custom tool interceptor for logging
const interceptors = [
  {
    toolName: 'Write',
    handler: async (params: any, context: any) => {
      console.log(`üìù Writing file: ${params.file} (${params.content.length} bytes)`);

      const sandboxPath = `/workspace/${params.file}`;
      await context.sandbox.writeFile(sandboxPath, params.content);
      context.metadata.filesCreated++;

      return params;
    }
  },
  {
    toolName: 'Bash',
    handler: async (params: any, context: any) => {
      console.log(`‚ö° Executing: ${params.command}`);

      // Block dangerous commands
      if (params.command.includes('rm -rf')) {
        console.log('‚õî Blocked dangerous command!');
        return null;
      }

      const result = await context.sandbox.execute('sh', ['-c', params.command]);
      context.metadata.commandsExecuted++;

      return result;
    }
  }
];

// Use interceptors in config
const result = await executor.execute(task, {
  ...config,
  interceptors
});
}
