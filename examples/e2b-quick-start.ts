/**
 * E2B quick start (the integration guide's "Add E2B Cloud Sandboxes" step and its E2BSandbox
 * configuration example): create an E2B sandbox, run a command in it, write and read back a file,
 * print its resource statistics and destroy it.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/e2b-quick-start.ts          # a local fake E2B (no key needed; needs Docker)
 *   E2B_API_KEY=e2b_... npx tsx examples/e2b-quick-start.ts   # the real E2B cloud
 *
 * With `E2B_API_KEY` set it runs in E2B's cloud (template: E2B_TEMPLATE_ID, else 'base'; add
 * `--fake` to use the fake anyway). Without a key it starts the local fake E2B of
 * `examples/lib/fake-e2b.ts`, which speaks E2B's wire protocol and runs each sandbox as a local
 * Docker container (image 'agentic-sandbox/busybox:1' from `bash scripts/build-images.sh`).
 *
 * On E2B the default workdir `/workspace` maps to `/home/user`; memoryMB, cpuCores and the network
 * are decided by the template, and `timeoutSeconds` is also the sandbox's lifetime (extended
 * while it is used).
 *
 * Exits 0 when every step worked, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';
import { e2bTarget, type E2bSandboxConfig } from './lib/e2b-target.js';

async function main() {
  const target = await e2bTarget('e2b-quick-start.ts');
  const manager = new SandboxManager();
  const problems: string[] = [];

  try {
    // For production: Use E2B cloud sandboxes
    const e2bConfig: E2bSandboxConfig = {
      provider: 'e2b',
      e2b: target.e2b({
        templateId: 'node-typescript', // or 'python3', 'rust', 'base' (with the fake: any name)
        region: 'us-east-1', // or 'eu-west-1', 'ap-southeast-1' (informational: E2B places sandboxes itself)
      }),
      limits: {
        memoryMB: 1024,
        cpuCores: 2,
        timeoutSeconds: 600,
      },
      networkMode: 'isolated',
      metadata: {
        userId: 'user-123',
        environment: 'production',
      },
    };

    // Create and start sandbox
    const started = Date.now();
    const sandbox: Sandbox = await manager.createSandbox(e2bConfig);
    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id, `(provider ${sandbox.provider}, ${Date.now() - started} ms)`);

    // Execute a command
    const result = await sandbox.execute('echo', ['Hello from E2B!']);
    console.log('Output:', result.stdout.trimEnd());
    console.log('Exit code:', result.exitCode);
    if (result.exitCode !== 0 || result.stdout.trim() !== 'Hello from E2B!') {
      problems.push(`echo: exit ${result.exitCode}, stdout ${JSON.stringify(result.stdout)}, stderr ${JSON.stringify(result.stderr)}`);
    }

    // Write a file and read it back. A relative path resolves against the workdir (/home/user on
    // E2B, /workspace on Docker); an absolute '/workspace/...' path would be used as is on E2B.
    const content = `written at ${new Date().toISOString()}\n`;
    const written = await sandbox.writeFile('hello.txt', content);
    console.log('Write:', written.success ? `✅ ${written.path}` : `❌ ${written.error}`);
    if (!written.success) problems.push(`writeFile failed: ${written.error}`);

    const read = await sandbox.readFile('hello.txt');
    console.log('Read: ', read.success ? `✅ ${JSON.stringify(read.content)}` : `❌ ${read.error}`);
    if (!read.success) problems.push(`readFile failed: ${read.error}`);
    else if (read.content !== content) problems.push(`readFile returned ${JSON.stringify(read.content)}, expected ${JSON.stringify(content)}`);

    // Commands run in the workdir too, and see the file
    const ls = await sandbox.execute('sh', ['-c', 'pwd && ls -l hello.txt']);
    console.log('Workdir listing:\n' + ls.stdout.trimEnd().replace(/^/gm, '  '));
    if (ls.exitCode !== 0) problems.push(`ls: exit ${ls.exitCode}: ${ls.stderr.trim()}`);

    // Resource statistics
    const stats = await sandbox.getStats();
    console.log('Stats:');
    console.log('- Memory:', stats.memoryUsageMB.toFixed(1), 'MB');
    console.log('- CPU:', stats.cpuPercent.toFixed(1), '%');
    console.log('- Disk:', stats.diskUsageMB.toFixed(1), 'MB');

    // Cleanup
    await manager.destroySandbox(sandbox.id);
    console.log('✅ Sandbox destroyed', `(state: ${sandbox.state})`);
  } catch (err) {
    problems.push(`${err}`);
  } finally {
    // Only has work left when something above failed.
    await manager.destroyAll().catch((err) => problems.push(`destroyAll failed: ${err}`));
    await target.close().catch((err) => problems.push(`closing the fake failed: ${err}`));
  }

  if (problems.length) {
    console.error('\n❌ Problems:\n- ' + problems.join('\n- '));
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error('❌ E2B quick start failed:', err);
  process.exitCode = 1;
});
