/**
 * A notebook-style data analysis with a code context: a CSV is loaded into pandas once, then
 * several follow-up questions run as cells that reuse the loaded DataFrame (variables persist
 * between runCode calls, as in Jupyter), and a matplotlib chart comes back as a PNG result that is
 * saved on the host.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/data-analysis-notebook.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`
 * (this example uses 'agentic-sandbox/devtools:2', which ships python3, pandas and matplotlib).
 *
 * Exits 0 when every answer is the expected one and the chart is a PNG, 1 otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/devtools:2';

const SALES = `region,month,product,units,price
north,2026-01,widget,120,2.5
north,2026-02,widget,135,2.5
north,2026-02,gadget,40,10.0
south,2026-01,widget,80,2.5
south,2026-01,gadget,55,10.0
south,2026-02,gadget,70,10.0
east,2026-01,widget,60,2.5
east,2026-02,gadget,30,10.0
`;

/** The value of a cell's last expression, as JSON. */
function answer(r: any): any {
  if (r.exception) throw new Error(`${r.exception.name}: ${r.exception.value}\n${r.exception.traceback}`);
  return r.results.find((x: any) => x.isMainResult)?.json;
}

function expectEqual(actual: unknown, expected: unknown, what: string) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

async function notebook() {
  const manager = new SandboxManager({ provider: 'docker' });
  let sandbox: Sandbox | undefined;
  try {
    sandbox = await manager.createSandbox({ image: IMAGE, limits: { memoryMB: 1024, cpuCores: 1 } });
    await sandbox.start();
    console.log('✅ Sandbox started:', sandbox.id, `(${IMAGE})`);

    const written = await sandbox.writeFile('sales.csv', SALES);
    if (!written.success) throw new Error(`writing sales.csv failed: ${written.error}`);

    // one long-lived Python interpreter: what a cell defines, the next cells see
    const ctx = await sandbox.createCodeContext({ language: 'python' });
    console.log(`✅ Code context ${ctx.id} (${ctx.language}, in ${ctx.cwd})`);

    const load = await sandbox.runCode(
      "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf['revenue'] = df.units * df.price\nprint(f'loaded {len(df)} rows')",
      { context: ctx },
    );
    answer(load);
    console.log('📥', load.stdout.trim());

    const questions: Array<[string, string, unknown]> = [
      ['Total revenue?', 'float(df.revenue.sum())', 2937.5],
      ['Revenue by region?', "df.groupby('region').revenue.sum().round(1).to_dict()", { east: 450.0, north: 1037.5, south: 1450.0 }],
      ['Best-selling product by units?', "df.groupby('product').units.sum().idxmax()", 'widget'],
      ['Month-over-month revenue change (%)?', "m = df.groupby('month').revenue.sum()\nround(float((m.iloc[1] - m.iloc[0]) / m.iloc[0] * 100), 1)", 44.8],
    ];
    for (const [q, code, expected] of questions) {
      const a = answer(await sandbox.runCode(code, { context: ctx }));
      console.log(`❓ ${q} → ${JSON.stringify(a)}`);
      expectEqual(a, expected, q);
    }

    // a DataFrame comes back as html (for a UI) and as text (for a model)
    const table = await sandbox.runCode("df.pivot_table(index='region', columns='month', values='revenue', aggfunc='sum')", { context: ctx });
    const main = table.results?.find((x: any) => x.isMainResult);
    if (!main?.html?.includes('<table')) throw new Error('the pivot table has no html representation');
    console.log('📊 Pivot table (text):\n' + main.text);

    // figures open at the end of a cell come back as PNG results (and are closed, as in Jupyter)
    const chart = await sandbox.runCode(
      "import matplotlib.pyplot as plt\nax = df.groupby('region').revenue.sum().plot.bar(title='Revenue by region')\nax.set_ylabel('revenue')\nplt.tight_layout()",
      { context: ctx },
    );
    answer(chart);
    const png = chart.results?.find((x: any) => x.png)?.png;
    if (!png) throw new Error('the chart cell returned no PNG');
    const bytes = Buffer.from(png, 'base64');
    if (!bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('the chart is not a PNG');
    const out = path.join(os.tmpdir(), `revenue-by-region-${process.pid}.png`);
    fs.writeFileSync(out, bytes);
    console.log(`🖼️  Chart saved to ${out} (${bytes.length} bytes)`);

    await sandbox.removeCodeContext(ctx);
    console.log('✅ Done');
    return true;
  } catch (e) {
    console.error('❌', e);
    return false;
  } finally {
    await manager.destroyAll();
  }
}

notebook().then((ok) => process.exit(ok ? 0 : 1));
