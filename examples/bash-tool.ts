/**
 * A Bash tool for an AI agent (seed 003, "Example: Bash Tool for AI Agent"): one persistent sandbox
 * per conversation thread, so files an agent creates in one command are there for the next one.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/bash-tool.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * The sessions use the 'python' template, which this example points at the offline image
 * 'agentic-sandbox/devtools:2' (it has jq and python3, two of the seed's allowed commands). In
 * production leave `templates` out: the built-in table maps python → python:3.12-slim,
 * node → node:20-slim, go → golang:1.22-bookworm and base → debian:bookworm-slim.
 *
 * What it shows:
 *   - conversation A writes input.json with echo and reads it back with jq in a second call
 *   - conversation B gets its own sandbox and does not see A's file
 *   - a host file from os.tmpdir() is uploaded, processed, and the result downloaded
 *   - the seed's command validation (allow/deny lists) refuses curl and rm with PERMISSION_DENIED
 *   - the seed's resource limits: an upload over maxFileSizeMB fails with QUOTA_EXCEEDED
 *   - cleanup of both sessions
 *
 * Exits 0 when every step behaved as described, 1 otherwise.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SandboxManager, type Sandbox, type SandboxConfig, type UploadResult } from '../index.js';

// Offline images for this example; without `templates` the built-in table is used (see above).
const TEMPLATES = {
  python: 'agentic-sandbox/devtools:2',
  node: 'agentic-sandbox/devtools:2',
  go: 'agentic-sandbox/devtools:2',
  base: 'agentic-sandbox/debian:12',
};

// Seed 003, "Security": only these commands may run, and these never may. The agent's command goes
// through `bash -c`; the shell only carries the script, and every command inside it (pipelines,
// &&, ;, $(...), ...) is checked against the lists.
const COMMAND_POLICY = {
  allow: [
    'jq', 'awk', 'grep', 'sed', 'sort', 'uniq', 'head', 'tail', 'wc', 'cut', 'tr',
    'cat', 'echo', 'date', 'find', 'ls', 'python3', 'python', 'bc', 'comm', 'diff',
    'basename', 'dirname', 'file', 'stat', 'tee',
  ],
  deny: ['rm', 'mv', 'dd', 'curl', 'wget', 'ssh', 'sudo', 'chmod', 'chown'],
};

// ------------------------------------------------------------------ the tool (seed 003's BashTool)

interface BashResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  executionTimeMs: number;
}

interface WorkspaceFile {
  name: string;
  sizeBytes: number;
  /** ISO 8601 */
  modified: string;
  permissions: string;
}

interface WorkspaceListing {
  sessionId: string;
  workspaceDir: string;
  files: WorkspaceFile[];
  totalFiles: number;
  totalSizeBytes: number;
}

/**
 * Bash execution tool for AI agents. Maintains one persistent session (sandbox) per conversation
 * thread: `threadId` = conversation id, `userId` = the user (a thread belongs to one user).
 * Sessions expire after `timeoutMinutes` without a call and are recreated on the next one.
 */
class BashTool {
  constructor(
    private readonly manager: SandboxManager,
    private readonly sessionConfig: SandboxConfig = {},
    private readonly timeoutMinutes = 30,
  ) {}

  /** Get or create the session for this thread (an existing one is reused, files and all). */
  private session(userId: string, threadId: string): Promise<Sandbox> {
    return this.manager.getOrCreateSession({
      userId,
      threadId,
      timeoutMinutes: this.timeoutMinutes,
      config: this.sessionConfig,
    });
  }

  /**
   * Execute a bash command in the thread's sandbox. Resolves for any exit code (124 = timed out);
   * rejects with PERMISSION_DENIED when the command policy refuses the command (nothing runs).
   */
  async execute(command: string, userId: string, threadId: string, timeout = 30): Promise<BashResult> {
    const sandbox = await this.session(userId, threadId);
    const result = await sandbox.execute('bash', ['-c', command], { timeout });
    return {
      exitCode: result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr,
      executionTimeMs: result.durationMs,
    };
  }

  /** Upload a host file into the workspace (remoteName defaults to its basename). */
  async uploadFile(filePath: string, userId: string, threadId: string, remoteName?: string): Promise<UploadResult> {
    const sandbox = await this.session(userId, threadId);
    return sandbox.uploadFile(filePath, remoteName);
  }

  /** Download a workspace file to the host; resolves with the host path written. */
  async downloadFile(remoteName: string, userId: string, threadId: string, localPath?: string): Promise<string> {
    const sandbox = await this.session(userId, threadId);
    return sandbox.downloadFile(remoteName, localPath, { overwrite: true });
  }

  /** The workspace's files (recursively, without dotfiles), with sizes and totals. */
  async listFiles(userId: string, threadId: string): Promise<WorkspaceListing> {
    const sandbox = await this.session(userId, threadId);
    const entries = await sandbox.listFilesDetailed(undefined, { recursive: true });
    const files = entries
      .filter((e) => e.type === 'file')
      .map((e) => ({
        name: e.path,
        sizeBytes: e.size,
        modified: new Date(e.mtimeMs).toISOString(),
        permissions: e.permissions,
      }));
    return {
      sessionId: sandbox.id,
      workspaceDir: this.sessionConfig.workdir ?? this.manager.defaultConfig.workdir ?? '/workspace',
      files,
      totalFiles: files.length,
      totalSizeBytes: files.reduce((sum, f) => sum + f.sizeBytes, 0),
    };
  }

  /** Explicitly end a thread's session (optional: idle sessions expire by themselves). */
  cleanupSession(threadId: string): Promise<boolean> {
    return this.manager.closeSession(threadId);
  }
}

// ------------------------------------------------------------------ the demo

function check(ok: boolean, what: string) {
  console.log(`${ok ? '✅' : '❌'} ${what}`);
  if (!ok) process.exitCode = 1;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn`, expecting it to reject; resolves with the error (or undefined if it did not reject). */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return err;
  }
}

function show(label: string, r: BashResult) {
  const out = r.stdout.trimEnd() || r.stderr.trimEnd();
  console.log(`   $ ${label}  → exit ${r.exitCode} in ${Math.round(r.executionTimeMs)} ms${out ? `\n     ${out.replace(/\n/g, '\n     ')}` : ''}`);
}

async function main() {
  const manager = new SandboxManager({
    provider: 'docker',
    templates: TEMPLATES,
    // seed 003's limits (MAX_FILE_SIZE_MB, MAX_TOTAL_FILES, MAX_WORKSPACE_SIZE_MB), scaled down so the
    // demo can hit one of them; memory and CPU as in the seed's container resources
    limits: { memoryMB: 256, cpuCores: 0.5, timeoutSeconds: 60, maxFileSizeMB: 1, maxTotalFiles: 100, maxWorkspaceSizeMB: 10 },
  });
  const tool = new BashTool(manager, { template: 'python', networkMode: 'none', commandPolicy: COMMAND_POLICY });

  const userA = 'user123';
  const threadA = 'conversation_abc';
  const userB = 'user456';
  const threadB = 'conversation_xyz';
  const hostDir = await mkdtemp(path.join(os.tmpdir(), 'bash-tool-'));

  try {
    // 1. files persist across commands within a conversation
    console.log(`Conversation A (${userA} / ${threadA})`);
    const write = await tool.execute(`echo '{"data": [1,2,3]}' > input.json`, userA, threadA);
    show(`echo '{"data": [1,2,3]}' > input.json`, write);
    const add = await tool.execute(`jq '.data | add' input.json`, userA, threadA);
    show(`jq '.data | add' input.json`, add);
    const length = await tool.execute(`jq '.data | length' input.json`, userA, threadA);
    show(`jq '.data | length' input.json`, length);
    check(write.exitCode === 0, 'echo wrote input.json');
    check(add.exitCode === 0 && add.stdout.trim() === '6', `jq '.data | add' read the file of the earlier call: ${add.stdout.trim()}`);
    check(length.exitCode === 0 && length.stdout.trim() === '3', `jq '.data | length' gives ${length.stdout.trim()}`);

    // 2. another conversation is isolated
    console.log(`\nConversation B (${userB} / ${threadB})`);
    const lsB = await tool.execute('ls input.json', userB, threadB);
    show('ls input.json', lsB);
    check(lsB.exitCode !== 0 && /No such file/.test(lsB.stderr), 'conversation B does not see A\'s input.json');
    const sessions = manager.listSessions();
    const idA = sessions.find((s) => s.threadId === threadA)?.sandboxId;
    const idB = sessions.find((s) => s.threadId === threadB)?.sandboxId;
    console.log('   sessions:', sessions.map((s) => `${s.threadId} (${s.userId}) → ${s.sandboxId}`).join(', '));
    check(sessions.length === 2 && !!idA && !!idB && idA !== idB, 'two sessions, one sandbox each');

    // 3. a thread belongs to its user
    const stolen = await rejection(() => tool.execute('cat input.json', userB, threadA));
    check(errorCode(stolen) === 'PERMISSION_DENIED', `${userB} cannot use ${userA}'s thread: ${errorCode(stolen)}`);

    // 4. upload a host file, process it, download the result
    console.log('\nFile transfer');
    const csvPath = path.join(hostDir, 'sales.csv');
    const csv = 'region,amount\nnorth,120\nsouth,80\neast,45.5\n';
    await writeFile(csvPath, csv);
    const uploaded = await tool.uploadFile(csvPath, userA, threadA, 'input.csv');
    console.log('   uploaded:', uploaded);
    check(
      uploaded.status === 'uploaded' && uploaded.filename === 'input.csv' && uploaded.sizeBytes === Buffer.byteLength(csv),
      `uploaded ${path.basename(csvPath)} as ${uploaded.path} (${uploaded.sizeBytes} bytes)`,
    );
    const head = await tool.execute('head -5 input.csv', userA, threadA);
    show('head -5 input.csv', head);
    check(head.stdout === csv, 'the sandbox sees the uploaded content');
    const sum = await tool.execute(
      `awk -F, 'NR > 1 { total += $2; n++ } END { printf "{\\"rows\\": %d, \\"total\\": %s}\\n", n, total }' input.csv | tee summary.json`,
      userA,
      threadA,
    );
    show('awk ... input.csv | tee summary.json', sum);
    const downloaded = await tool.downloadFile('summary.json', userA, threadA, path.join(hostDir, 'summary.json'));
    const summary = JSON.parse(await readFile(downloaded, 'utf8')) as { rows: number; total: number };
    console.log(`   downloaded to ${downloaded}:`, summary);
    check(summary.rows === 3 && summary.total === 245.5, 'downloaded summary.json says 3 rows, total 245.5');

    const listing = await tool.listFiles(userA, threadA);
    console.log(`   workspace ${listing.workspaceDir} of ${listing.sessionId}: ${listing.totalFiles} files, ${listing.totalSizeBytes} bytes`);
    for (const f of listing.files) console.log(`     ${f.permissions}  ${String(f.sizeBytes).padStart(5)}  ${f.modified}  ${f.name}`);
    const names = listing.files.map((f) => f.name).sort();
    check(
      JSON.stringify(names) === JSON.stringify(['input.csv', 'input.json', 'summary.json']),
      `listFiles shows ${names.join(', ')}`,
    );

    // 5. command validation: refused before anything runs
    console.log('\nCommand validation');
    for (const command of ['curl -s http://127.0.0.1:9/data.json -o data.json', 'rm input.json', 'cat input.json && rm input.json', 'echo $(wget -qO- http://127.0.0.1:9/)']) {
      const err = await rejection(() => tool.execute(command, userA, threadA));
      const program = /\b(curl|rm|wget)\b/.exec(command)![1];
      console.log(`   $ ${command}  → ${errorCode(err)}: ${errorMessage(err)}`);
      check(
        errorCode(err) === 'PERMISSION_DENIED' && errorMessage(err).includes(program),
        `refused with PERMISSION_DENIED naming ${program}`,
      );
    }
    const still = await tool.execute('ls input.json', userA, threadA);
    check(still.exitCode === 0, 'input.json is still there (the refused scripts never ran)');

    // 6. resource limits: a file over maxFileSizeMB is refused and nothing is written
    console.log('\nResource limits');
    const bigPath = path.join(hostDir, 'big.bin');
    await writeFile(bigPath, Buffer.alloc(2 * 1024 * 1024, 0x61));
    const tooBig = await rejection(() => tool.uploadFile(bigPath, userA, threadA));
    console.log(`   upload of a 2 MB file → ${errorCode(tooBig)}: ${errorMessage(tooBig)}`);
    check(errorCode(tooBig) === 'QUOTA_EXCEEDED', 'an upload over maxFileSizeMB (1) fails with QUOTA_EXCEEDED');
    const noBig = await tool.execute('ls big.bin', userA, threadA);
    check(noBig.exitCode !== 0, 'big.bin was not written');

    // 7. cleanup
    console.log('\nCleanup');
    const closedA = await tool.cleanupSession(threadA);
    const closedB = await tool.cleanupSession(threadB);
    const again = await tool.cleanupSession(threadA);
    check(closedA && closedB && !again, `sessions closed (A: ${closedA}, B: ${closedB}; A again: ${again})`);
    check(manager.listSessions().length === 0 && manager.listSandboxes().length === 0, 'no sessions or sandboxes left');
  } finally {
    try {
      await manager.destroyAll(); // anything a failed step above left behind
    } catch (err) {
      console.error('❌ destroyAll failed:', err);
      process.exitCode = 1;
    }
    await rm(hostDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error('❌ Bash tool example failed:', err);
  process.exitCode = 1;
});
