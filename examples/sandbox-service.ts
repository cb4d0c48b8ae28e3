/**
 * A sandbox service (seed 002, "Sandbox Execution"): sandboxes from templates with a name, env and
 * metadata; code run by language; logs, a live log stream, status, a filtered list; the seed's error
 * handling by `err.code`; stop and delete.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/sandbox-service.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * This example points the templates at offline images: python, node and go at
 * 'agentic-sandbox/devtools:2' (python3 with numpy and pandas, node 18 with tsx, go) and base at
 * 'agentic-sandbox/debian:12'. In production leave `templates` out: the built-in table maps
 * python → python:3.12-slim, node → node:20-slim, go → golang:1.22-bookworm and
 * base → debian:bookworm-slim (and `installPackages: ['pandas', 'numpy']` with networkMode 'bridge'
 * would install the seed's data-science packages at start).
 *
 * Exits 0 when every result matched what the seed describes, 1 otherwise.
 */
import {
  SandboxManager,
  type CodeExecutionResult,
  type LogEntry,
  type RunCodeOptions,
  type Sandbox,
} from '../index.js';

const TEMPLATES = {
  python: 'agentic-sandbox/devtools:2',
  node: 'agentic-sandbox/devtools:2',
  go: 'agentic-sandbox/devtools:2',
  base: 'agentic-sandbox/debian:12',
};

// The seed's analysis, with a seeded generator so the run is reproducible.
const ANALYSIS = `
import pandas as pd
import numpy as np

# Generate sample data
rng = np.random.default_rng(42)
data = rng.standard_normal((1000, 3))
df = pd.DataFrame(data, columns=['A', 'B', 'C'])

# Basic statistics
stats = df.describe()
print("Dataset shape:", df.shape)
print("Summary statistics:")
print(stats)

# Calculate correlations
correlations = df.corr()
print("\\nCorrelations:")
print(correlations)
`;

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

/** The seed's "Error Handling" switch. */
function describeError(err: unknown): string {
  switch (errorCode(err)) {
    case 'SANDBOX_NOT_FOUND':
      return 'Specified sandbox does not exist';
    case 'SANDBOX_NOT_RUNNING':
      return 'Sandbox is stopped or crashed';
    case 'SANDBOX_DESTROYED':
      return 'Sandbox was deleted';
    case 'EXECUTION_TIMEOUT':
      return 'Code execution timed out';
    case 'EXECUTION_ERROR':
      return `Code execution failed: ${errorMessage(err)}`;
    case 'INSUFFICIENT_RESOURCES':
      return 'Sandbox out of memory or CPU';
    case 'PERMISSION_DENIED':
      return 'Insufficient permissions for operation';
    case 'QUOTA_EXCEEDED':
      return 'Sandbox usage quota exceeded';
    case 'INVALID_ARGUMENT':
      return `Invalid request: ${errorMessage(err)}`;
    default:
      return `Sandbox error: ${errorMessage(err)}`;
  }
}

function showRun(label: string, r: CodeExecutionResult) {
  console.log(`   [${label}] ${r.status}, exit ${r.exitCode}, ${Math.round(r.duration)} ms`);
  const out = r.output.trimEnd();
  if (out) console.log(`     ${out.replace(/\n/g, '\n     ')}`);
  if (r.error) console.log(`     stderr: ${r.error.trimEnd().replace(/\n/g, '\n     ')}`);
}

function formatEntry(e: LogEntry): string {
  return `[${e.timestamp ?? '-'}] ${e.level.padEnd(5)} ${e.source.padEnd(9)} ${e.message}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const manager = new SandboxManager({
    provider: 'docker',
    templates: TEMPLATES,
    networkMode: 'none',
    limits: { memoryMB: 1024, cpuCores: 1, timeoutSeconds: 60 },
  });

  let sandbox: Sandbox | undefined;
  let scratch: Sandbox | undefined;
  const ran: CodeExecutionResult[] = []; // foreground runCode calls that ran (getStatus counts them)
  try {
    // ------------------------------------------------------------ create (seed: "Basic Sandbox Setup")
    sandbox = await manager.createSandbox({
      template: 'python',
      name: 'data-analysis-env',
      env: { API_KEY: 'demo_api_key', DEBUG: 'true' },
      metadata: { project: 'seed-002', team: 'data', environment: 'development' },
    });
    await sandbox.start();
    console.log(`✅ Sandbox created: ${sandbox.id} (template python, name data-analysis-env, ${sandbox.execEngine} engine)`);

    // ------------------------------------------------------------ Python data analysis
    console.log('\nPython data analysis');
    const analysis = await sandbox.runCode(ANALYSIS, { language: 'python', timeout: 60 });
    ran.push(analysis);
    showRun('python', analysis);
    check(
      analysis.success && analysis.status === 'completed' && analysis.exitCode === 0 && analysis.language === 'python',
      'the analysis completed',
    );
    check(analysis.output.includes('Dataset shape: (1000, 3)'), 'Dataset shape: (1000, 3)');
    check(/count\s+1000\.0+\s+1000\.0+\s+1000\.0+/.test(analysis.output), 'describe() counted 1000 rows per column');
    check(
      /mean\s+-0\.008271\s+-0\.030624\s+-0\.037673/.test(analysis.output),
      'the seeded generator gave the expected column means (-0.008271, -0.030624, -0.037673)',
    );
    check(/Correlations:\n\s+A\s+B\s+C\nA\s+1\.0+\s/.test(analysis.output), 'correlation matrix printed (A with A = 1.0)');
    check(analysis.error === undefined || analysis.error === null, 'nothing on stderr');

    // ------------------------------------------------------------ multi-language in the same sandbox
    console.log('\nMulti-language (in parallel, same sandbox)');
    const [py, sh, js, ts, go] = await Promise.all([
      sandbox.runCode('import os\nprint("Hello from Python, DEBUG=" + os.environ["DEBUG"])', { language: 'python' }),
      sandbox.runCode('echo "Hello from Bash" && ls -la', { language: 'bash' }),
      sandbox.runCode('console.log("Hello from Node.js " + process.version)', { language: 'javascript' }),
      sandbox.runCode('const greet = (who: string): string => `Hello from ${who}`;\nconsole.log(greet("TypeScript"));', {
        language: 'typescript',
      }),
      sandbox.runCode('package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("Hello from Go")\n}\n', {
        language: 'go',
        timeout: 180,
      }),
    ]);
    ran.push(py, sh, js, ts, go);
    for (const [label, r] of [['python', py], ['bash', sh], ['javascript', js], ['typescript', ts], ['go', go]] as const) {
      showRun(label, r);
    }
    check(py.success && py.output.trim() === 'Hello from Python, DEBUG=true', 'python saw the sandbox env (DEBUG=true)');
    check(sh.success && sh.output.startsWith('Hello from Bash\n') && sh.output.includes('total'), 'bash ran echo && ls -la');
    check(js.success && /^Hello from Node\.js v\d+/.test(js.output), 'javascript ran on node');
    check(ts.success && ts.output.trim() === 'Hello from TypeScript', 'typescript ran (tsx)');
    check(go.success && go.output.trim() === 'Hello from Go', 'go ran (go run)');
    check(
      [py, sh, js, ts, go].map((r) => r.language).join(',') === 'python,bash,javascript,typescript,go',
      'each result names its language',
    );

    // ------------------------------------------------------------ real-time log streaming
    console.log('\nstreamLogs');
    const streamed: LogEntry[] = [];
    const stream = sandbox.streamLogs((entry) => {
      streamed.push(entry);
      console.log(`   [stream] ${formatEntry(entry)}`);
      if (entry.level === 'error') console.log('   (an error entry: a real service would alert here)');
    });
    const ticking = await sandbox.runCode('for i in 1 2 3; do echo "tick $i"; sleep 0.2; done; echo "warning: almost done" >&2', {
      language: 'bash',
    });
    ran.push(ticking);
    await sleep(500); // let the last entries arrive
    stream.stop();
    const seenAtStop = streamed.length;
    ran.push(await sandbox.runCode('echo "after stop"', { language: 'bash' }));
    await sleep(500);
    const ticks = streamed.filter((e) => e.source === 'stdout' && /^tick \d$/.test(e.message)).map((e) => e.message);
    check(ticks.join(',') === 'tick 1,tick 2,tick 3', `the stream delivered the stdout lines (${ticks.join(', ')})`);
    check(
      streamed.some((e) => e.source === 'stderr' && e.level === 'error' && e.message === 'warning: almost done'),
      'the stderr line came as an error entry',
    );
    check(streamed.some((e) => e.source === 'execution' && e.message.startsWith('Running:')), 'an execution entry announced the run');
    check(streamed.every((e) => typeof e.timestamp === 'string' && !Number.isNaN(Date.parse(e.timestamp))), 'streamed entries carry ISO timestamps');
    check(streamed.length === seenAtStop && !streamed.some((e) => e.message.includes('after stop')), 'nothing arrived after stop()');

    // ------------------------------------------------------------ error handling
    console.log('\nError handling');
    const slow = await sandbox.runCode('import time\ntime.sleep(30)\nprint("never")', { language: 'python', timeout: 2 });
    ran.push(slow);
    showRun('python, timeout 2 s', slow);
    check(
      slow.status === 'timeout' && !slow.success && slow.exitCode === 124 && slow.duration < 15000,
      `an execution timeout resolves with status 'timeout' (exit ${slow.exitCode} after ${Math.round(slow.duration)} ms)`,
    );

    const crash = await sandbox.runCode('print(1 / 0)', { language: 'python' });
    ran.push(crash);
    showRun('python, 1 / 0', crash);
    check(
      crash.status === 'failed' && !crash.success && crash.exitCode === 1 && !!crash.error?.includes('ZeroDivisionError'),
      "an exception: status 'failed', the traceback in error",
    );

    const cobol = 'cobol' as string as RunCodeOptions['language'];
    try {
      await sandbox.runCode('DISPLAY "HELLO".', { language: cobol });
      check(false, 'an unknown language is refused');
    } catch (err) {
      console.log(`   [cobol] ${errorCode(err)} → ${describeError(err)}`);
      check(errorCode(err) === 'INVALID_ARGUMENT', 'an unknown language is refused with INVALID_ARGUMENT');
    }

    // ------------------------------------------------------------ logs
    console.log('\ngetLogs({ lines: 20, level: "all" })');
    const logs = sandbox.getLogs({ lines: 20, level: 'all' });
    for (const e of logs.logs) console.log(`   ${formatEntry(e)}`);
    console.log(`   totalLines: ${logs.totalLines}, dropped: ${logs.dropped}, oldestEntry: ${logs.oldestEntry}`);
    check(logs.logs.length === 20 && logs.totalLines > 20, `the newest 20 of ${logs.totalLines} entries`);
    check(
      logs.logs.some((e) => e.source === 'execution' && e.level === 'error' && /timed out/.test(e.message)),
      'the timeout is logged as an execution error',
    );
    const all = sandbox.getLogs({ lines: 1000 });
    check(
      all.logs.some((e) => e.source === 'stdout' && e.message === 'Dataset shape: (1000, 3)'),
      'the analysis output is in the log',
    );
    check(all.logs.some((e) => e.source === 'system' && e.level === 'info'), 'lifecycle entries come from system');
    const errors = sandbox.getLogs({ lines: 1000, level: 'error', includeTimestamps: false });
    check(
      errors.logs.length > 0 && errors.logs.every((e) => e.level === 'error' && e.timestamp === undefined),
      `level 'error' keeps only errors (${errors.logs.length}), includeTimestamps: false drops timestamps`,
    );
    check(
      errors.logs.some((e) => e.source === 'stderr' && e.message.includes('ZeroDivisionError')),
      'the traceback is among the error entries',
    );

    // ------------------------------------------------------------ status
    console.log('\ngetStatus()');
    const status = await sandbox.getStatus();
    console.log(status);
    check(
      status.id === sandbox.id && status.name === 'data-analysis-env' && status.template === 'python' && status.state === 'running',
      `status: ${status.name}, template ${status.template}, state ${status.state}, image ${status.image}`,
    );
    check(status.metadata?.project === 'seed-002' && status.metadata?.team === 'data', 'metadata is kept');
    const failedRuns = ran.filter((r) => !r.success).length;
    check(
      status.executions.total === ran.length &&
        status.executions.failed === failedRuns &&
        status.executions.successful === ran.length - failedRuns,
      `executions: ${status.executions.total} total, ${status.executions.successful} successful, ${status.executions.failed} failed ` +
        `(expected ${ran.length}/${ran.length - failedRuns}/${failedRuns}), average ${Math.round(status.executions.averageDuration)} ms`,
    );
    check(status.uptime >= 0 && status.resourceUsage.memoryLimitMB === 1024, `uptime ${status.uptime} s, memory limit ${status.resourceUsage.memoryLimitMB} MB`);

    // ------------------------------------------------------------ list with filters
    console.log("\nmanager.list({ status: 'running', template: 'python' })");
    scratch = await manager.createSandbox({ template: 'base', name: 'scratch-env' });
    await scratch.start();
    const listed = await manager.list({ status: 'running', template: 'python', sortBy: 'createdAt', order: 'desc' });
    for (const s of listed) {
      console.log(`   ${s.id}  ${s.name ?? '-'}  ${s.template ?? '-'}  ${s.status}  up ${s.uptime} s  ${s.resourceUsage.memoryUsedMB.toFixed(1)} MB`);
    }
    check(listed.length === 1 && listed[0].id === sandbox.id, 'only the python sandbox is listed (not the base one)');
    const everything = await manager.list({ status: 'all' });
    check(everything.length === 2, `status 'all' lists both sandboxes (${everything.length})`);

    // a call on a deleted sandbox, through the seed's switch
    await manager.destroySandbox(scratch.id);
    const deleted = scratch;
    scratch = undefined;
    try {
      await deleted.runCode('echo hello', { language: 'bash' });
      check(false, 'a deleted sandbox refuses to run code');
    } catch (err) {
      console.log(`   runCode on ${deleted.id} after delete: ${errorCode(err)} → ${describeError(err)}`);
      check(
        ['SANDBOX_NOT_FOUND', 'SANDBOX_NOT_RUNNING', 'SANDBOX_DESTROYED'].includes(errorCode(err) ?? ''),
        'a deleted sandbox refuses to run code with a sandbox error code',
      );
    }

    // ------------------------------------------------------------ stop and delete
    console.log('\nStop and delete');
    await sandbox.stop();
    const stopped = await sandbox.getStatus();
    check(stopped.state === 'stopped', `stopped (state ${stopped.state}, ${stopped.executions.total} executions in total)`);
    await manager.destroySandbox(sandbox.id);
    sandbox = undefined;
    check(manager.listSandboxes().length === 0, 'deleted');
  } finally {
    for (const sb of [sandbox, scratch]) {
      if (!sb) continue;
      try {
        await manager.destroySandbox(sb.id);
      } catch (err) {
        console.error(`❌ destroySandbox(${sb.id}) failed:`, err);
        process.exitCode = 1;
      }
    }
  }
}

main().catch((err) => {
  console.error(`❌ Sandbox service example failed: ${describeError(err)}`);
  console.error(err);
  process.exitCode = 1;
});
