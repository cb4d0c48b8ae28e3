/**
 * E2B cloud execution (Example 2 of the guide's example-usage.ts, "example2_e2bCloudExecution"):
 * create an E2B sandbox from a Python template, write `analyze.py` (a small data analysis with
 * Python's standard library only: statistics over a list of numbers, JSON output), run
 * `python3 analyze.py`, parse its output on the host and destroy the sandbox.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/e2b-python-analysis.ts          # a local fake E2B (no key needed; needs Docker)
 *   E2B_API_KEY=e2b_... npx tsx examples/e2b-python-analysis.ts   # the real E2B cloud
 *
 * With `E2B_API_KEY` set it runs in E2B's cloud (template: E2B_TEMPLATE_ID, else 'base'; the
 * template must have python3; add `--fake` to use the fake anyway). Without a key it starts the
 * local fake E2B of `examples/lib/fake-e2b.ts` with sandboxes of 'agentic-sandbox/debian:12'
 * (built offline by `bash scripts/build-images.sh`; it ships python3), standing in for the guide's
 * template 'python3'.
 *
 * Exits 0 when the analysis produced the expected numbers, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';
import { e2bTarget, type E2bSandboxConfig } from './lib/e2b-target.js';

const FAKE_IMAGE = 'agentic-sandbox/debian:12'; // has python3, like the guide's 'python3' template

/** Response times (ms) of a service, the data the script analyses. */
const RESPONSE_TIMES_MS = [120, 95, 130, 87, 410, 101, 99, 143, 88, 105, 97, 1250];

const ANALYZE_PY = `
import json
import statistics

with open('data.json') as f:
    samples = json.load(f)['response_times_ms']

mean = statistics.mean(samples)
stdev = statistics.stdev(samples)
q = statistics.quantiles(samples, n=100, method='inclusive')

result = {
    'count': len(samples),
    'min': min(samples),
    'max': max(samples),
    'mean': round(mean, 2),
    'median': statistics.median(samples),
    'stdev': round(stdev, 2),
    'p90': round(q[89], 2),
    'p95': round(q[94], 2),
    # more than two standard deviations above the mean
    'outliers': [x for x in samples if x > mean + 2 * stdev],
}

print(json.dumps(result, indent=2))
`;

interface Analysis {
  count: number;
  min: number;
  max: number;
  mean: number;
  median: number;
  stdev: number;
  p90: number;
  p95: number;
  outliers: number[];
}

/** What the script must print, computed on the host. */
function expected(samples: number[]): Pick<Analysis, 'count' | 'min' | 'max' | 'mean' | 'median' | 'outliers'> {
  const n = samples.length;
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const sorted = [...samples].sort((a, b) => a - b);
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const stdev = Math.sqrt(samples.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  return {
    count: n,
    min: sorted[0],
    max: sorted[n - 1],
    mean: Math.round(mean * 100) / 100,
    median,
    outliers: samples.filter((x) => x > mean + 2 * stdev),
  };
}

async function example2_e2bCloudExecution() {
  const target = await e2bTarget('e2b-python-analysis.ts', { fakeImage: FAKE_IMAGE });
  const manager = new SandboxManager();
  let sandbox: Sandbox | undefined;

  try {
    const config: E2bSandboxConfig = {
      provider: 'e2b',
      e2b: target.e2b({
        templateId: 'python3',
        region: 'us-east-1',
      }),
      limits: { memoryMB: 512, cpuCores: 1, timeoutSeconds: 120 },
    };

    sandbox = await manager.createSandbox(config);
    await sandbox.start();
    console.log('✅ E2B sandbox started:', sandbox.id);

    // Write data and the analysis script (relative paths: the workdir, /home/user on E2B)
    const data = await sandbox.writeFile('data.json', JSON.stringify({ response_times_ms: RESPONSE_TIMES_MS }));
    if (!data.success) throw new Error(`writing data.json failed: ${data.error}`);
    const script = await sandbox.writeFile('analyze.py', ANALYZE_PY);
    if (!script.success) throw new Error(`writing analyze.py failed: ${script.error}`);
    console.log('📝 Wrote', data.path, 'and', script.path);

    // Execute analysis
    const result = await sandbox.execute('python3', ['analyze.py']);
    console.log('Exit code:', result.exitCode, `(${Math.round(result.durationMs)} ms)`);
    if (result.exitCode !== 0) {
      throw new Error(`python3 exited with ${result.exitCode}: ${result.stderr.trim()}`);
    }
    const analysis: Analysis = JSON.parse(result.stdout);
    console.log('Analysis results:', analysis);

    const want = expected(RESPONSE_TIMES_MS);
    const wrong = (Object.keys(want) as (keyof typeof want)[]).filter(
      (k) => JSON.stringify(analysis[k]) !== JSON.stringify(want[k]),
    );
    if (wrong.length) {
      console.error('❌ Unexpected analysis result for', wrong.map((k) => `${k} (expected ${JSON.stringify(want[k])})`).join(', '));
      process.exitCode = 1;
    } else {
      console.log(`✅ Analysis matches the host's numbers: mean ${analysis.mean} ms, p95 ${analysis.p95} ms, outliers ${JSON.stringify(analysis.outliers)}`);
    }

    await manager.destroySandbox(sandbox.id);
    sandbox = undefined;
    console.log('✅ Sandbox destroyed');
  } finally {
    // Only has work left when something above failed.
    if (sandbox) await manager.destroyAll().catch((err) => console.error('❌ cleanup failed:', err));
    await target.close();
  }
}

await example2_e2bCloudExecution().catch((err) => {
  console.error('❌ E2B cloud execution failed:', err);
  process.exitCode = 1;
});
