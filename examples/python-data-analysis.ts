/**
 * Python data analysis (Example 2 of the integration guide): put a CSV file and a Python script
 * into the sandbox, run the analysis with the sandbox's python3 and parse its JSON output on the host.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/python-data-analysis.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`
 * (this example uses 'agentic-sandbox/debian:12', which ships python3).
 *
 * Exits 0 when the analysis produced the expected numbers, 1 otherwise.
 */
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/debian:12';

interface Analysis {
  total: number;
  avg_age: number;
  cities: string[];
}

async function dataAnalysis() {
  const manager = new SandboxManager({ provider: 'docker' });

  let sandbox: Sandbox | undefined;
  try {
    sandbox = await manager.createSandbox({
      image: IMAGE,
      limits: { memoryMB: 512, cpuCores: 1 }
    });

    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id, `(${IMAGE})`);

    // Write data
    const csvData = 'name,age,city\nAlice,30,NYC\nBob,25,LA';
    const csv = await sandbox.writeFile('/workspace/data.csv', csvData);
    if (!csv.success) throw new Error(`writing data.csv failed: ${csv.error}`);

    // Write analysis script
    const script = await sandbox.writeFile('/workspace/analyze.py', `
import csv
import json

with open('/workspace/data.csv', 'r') as f:
    reader = csv.DictReader(f)
    data = list(reader)

    avg_age = sum(int(row['age']) for row in data) / len(data)

    result = {
        'total': len(data),
        'avg_age': avg_age,
        'cities': [row['city'] for row in data]
    }

    print(json.dumps(result, indent=2))
`);
    if (!script.success) throw new Error(`writing analyze.py failed: ${script.error}`);

    // Execute analysis
    const result = await sandbox.execute('python3', ['/workspace/analyze.py']);
    if (result.exitCode !== 0) {
      throw new Error(`python3 exited with ${result.exitCode}: ${result.stderr.trim()}`);
    }
    const analysis: Analysis = JSON.parse(result.stdout);

    console.log('Analysis results:', analysis);

    const ok =
      analysis.total === 2 &&
      analysis.avg_age === 27.5 &&
      JSON.stringify(analysis.cities) === JSON.stringify(['NYC', 'LA']);
    if (ok) {
      console.log(`✅ Analysis done in ${result.durationMs} ms`);
    } else {
      console.error('❌ Unexpected analysis result');
      process.exitCode = 1;
    }
  } finally {
    if (sandbox) {
      try {
        await manager.destroySandbox(sandbox.id);
        console.log('✅ Sandbox destroyed');
      } catch (err) {
        console.error('❌ destroySandbox failed:', err);
        process.exitCode = 1;
      }
    }
  }
}

await dataAnalysis().catch((err) => {
  console.error('❌ Data analysis example failed:', err);
  process.exitCode = 1;
});
