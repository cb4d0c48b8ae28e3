// Seed 000, Configuration Guide: the user guide's TypeScript snippets, type-checked, never run.
// Conventions: see ./ambient.ts.
import fs from 'fs'
import { SandboxManager, type SandboxConfig, type SandboxedAgentExecutor } from '../../index.js'
import type { Provider, Requirements } from './ambient.js'

// seed 000 lines 982–985: Configuration Guide › Config Files
async function snippet_configuration_982() {
// import fs from 'fs';  <- see the imports at the top of this file

const config = JSON.parse(fs.readFileSync('.sandboxrc.json', 'utf8'));
const manager = new SandboxManager(config);
}

// seed 000 lines 993–1005: Configuration Guide › Runtime Options
async function snippet_configuration_993(executor: SandboxedAgentExecutor, task: string, defaultConfig: SandboxConfig) {
// Override limits per execution
const result = await executor.execute(task, {
  agentName: 'coder',
  systemPrompt: 'You are a developer.',
  sandboxConfig: {
    ...defaultConfig,
    limits: {
      memoryMB: 1024,  // Override: Use more memory
      cpuCores: 2,     // Override: Use more CPU
      timeoutSeconds: 600  // Override: Longer timeout
    }
  }
});
}

// seed 000 lines 1026–1044: Configuration Guide › Provider Selection
async function snippet_configuration_1026() {
function selectProvider(requirements: Requirements): Provider {
  if (requirements.environment === 'local' || requirements.cicd) {
    return 'docker';
  }

  if (requirements.multiTenant || requirements.production) {
    return 'e2b';
  }

  if (requirements.customImage) {
    return 'docker';
  }

  if (requirements.globalDeployment) {
    return 'e2b';
  }

  return 'docker'; // Default
}
}
