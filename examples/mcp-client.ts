/**
 * An MCP client driving `agentic-sandbox mcp` (seed 002's sandbox tools), the way Claude Code,
 * Claude Desktop or Cursor do: the official MCP client SDK starts the server over stdio, lists its
 * tools, and runs a small data workflow in a python sandbox — create it, upload a CSV, analyse it
 * with pandas (output lines arrive as progress notifications), configure an env var, read the
 * report the code wrote, look at the logs, and delete the sandbox.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/mcp-client.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`: the
 * server is given a configuration file that points the python template at the offline image
 * 'agentic-sandbox/devtools:2' (python3 with pandas). In production leave that out (python →
 * python:3.12-slim) and let sandbox_create install what the code needs with install_packages.
 *
 * Exits 0 when every step gave what it should, 1 otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', 'bin', 'agentic-sandbox.js');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-example-'));
const config = path.join(dir, 'sandboxrc.json');
fs.writeFileSync(config, JSON.stringify({ templates: { python: 'agentic-sandbox/devtools:2' } }));

const CSV = 'city,temp\nOslo,4\nLisbon,19\nCairo,28\nOslo,6\nLisbon,21\n';
const ANALYSIS = `
import os, pandas as pd
df = pd.read_csv('weather.csv')
means = df.groupby('city')['temp'].mean().sort_values()
for city, t in means.items():
    print(f'{city}: {t:.1f}')
with open('report.txt', 'w') as f:
    f.write(f"{os.environ['REPORT_TITLE']}: warmest is {means.idxmax()}\\n")
`;

let failures = 0;
function check(what: string, ok: boolean, detail = '') {
  console.log(`${ok ? '✅' : '❌'} ${what}${detail ? ` — ${detail}` : ''}`);
  if (!ok) failures++;
}

type Structured = Record<string, any>;

async function main() {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [bin, 'mcp', '--config', config],
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    stderr: 'inherit',
  });
  const client = new Client({ name: 'mcp-example', version: '1.0.0' });
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown>, onprogress?: (p: { message?: string }) => void) => {
    const r: any = await client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress } : undefined);
    if (r.isError) throw new Error(`${name}: ${r.content[0].text}`);
    return r.structuredContent as Structured;
  };

  try {
    const { tools } = await client.listTools();
    console.log(`🔧 ${tools.length} tools: ${tools.map((t) => t.name).join(', ')}`);
    check('the seed\'s nine tools are there', ['create', 'execute', 'list', 'status', 'configure', 'upload', 'logs', 'stop', 'delete'].every((t) => tools.some((x) => x.name === `sandbox_${t}`)));

    const sb = await call('sandbox_create', { template: 'python', name: 'weather', timeout: 600, metadata: { example: 'mcp-client' } });
    console.log(`📦 created ${sb.sandbox_id} (${sb.template}), expires ${sb.expires_at}`);
    const id = sb.sandbox_id;

    const up = await call('sandbox_upload', { sandbox_id: id, file_path: 'weather.csv', content: CSV });
    check('uploaded the CSV', up.size_bytes === CSV.length, `${up.size_bytes} bytes, ${up.checksum.slice(0, 20)}…`);

    await call('sandbox_configure', { sandbox_id: id, env_vars: { REPORT_TITLE: 'Weather' } });

    const lines: string[] = [];
    const run = await call('sandbox_execute', { sandbox_id: id, code: ANALYSIS, language: 'python' }, (p) => {
      if (p.message) lines.push(p.message);
    });
    console.log(`🐍 exit ${run.exit_code} in ${run.duration_ms} ms; progress: ${lines.join(' | ')}`);
    check('the analysis ran', run.status === 'completed' && run.stdout === 'Oslo: 5.0\nLisbon: 20.0\nCairo: 28.0\n', run.stderr);
    check('its output lines arrived as progress', lines.includes('stdout: Cairo: 28.0'));

    const report = await call('sandbox_read_file', { sandbox_id: id, file_path: 'report.txt' });
    check('the report uses the configured env var', report.content === 'Weather: warmest is Cairo\n', JSON.stringify(report.content));

    const status = await call('sandbox_status', { sandbox_id: id });
    check('status counts the executions', status.executions.total >= 1, `${status.executions.total} executions, ${status.resource_usage.memory_used_mb} MB used`);
    const logs = await call('sandbox_logs', { sandbox_id: id, lines: 5 });
    console.log(`📜 last log lines:\n${logs.logs.map((l: Structured) => `   ${l.level} ${l.source}: ${l.message}`).join('\n')}`);

    const missing: any = await client.callTool({ name: 'sandbox_execute', arguments: { sandbox_id: 'docker-0000000000000000', code: '1' } });
    check('an unknown sandbox is a coded tool error', missing.isError === true && missing.content[0].text.startsWith('SANDBOX_NOT_FOUND'));

    await call('sandbox_delete', { sandbox_id: id });
    const list = await call('sandbox_list', {});
    check('the sandbox is gone', list.total_count === 0);
  } finally {
    // closing the client ends the server, which destroys whatever is left
    await client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => {
    console.log(failures ? `\n${failures} check(s) failed` : '\nAll checks passed');
    process.exit(failures ? 1 : 0);
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
