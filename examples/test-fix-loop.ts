/**
 * Write code, run its tests in a sandbox, fix, retry (seed 004, "Example 2: Bug Detection & Fix").
 * The request is "Build a function that calculates factorial": the first attempt has no guard for
 * negative numbers, the jest suite catches it (factorial(-1) overflows the stack), the second attempt
 * adds the guard, and the loop stops once every test passes (at most 3 attempts). The "fixes" are
 * scripted here; in the seed an LLM coder writes them from the failures.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/test-fix-loop.ts
 *
 * Needs a running Docker engine and the test images from `bash scripts/build-images.sh`.
 * The sandbox uses the 'node' template, which this example points at the offline image
 * 'agentic-sandbox/devtools:2' (node 18 with jest on PATH, so no `npm install` is needed). In
 * production leave `templates` out: the built-in table maps node → node:20-slim (python →
 * python:3.12-slim, go → golang:1.22-bookworm, base → debian:bookworm-slim), and
 * `installPackages: ['jest']` with networkMode 'bridge' installs jest at start.
 *
 * Exits 0 only when the first run failed exactly the negative-number test and the final run passed
 * with 0 failures; 1 otherwise.
 */
import { SandboxManager, type Sandbox, type TestRunResult } from '../index.js';

const TEMPLATES = {
  python: 'agentic-sandbox/devtools:2',
  node: 'agentic-sandbox/devtools:2',
  go: 'agentic-sandbox/devtools:2',
  base: 'agentic-sandbox/debian:12',
};

const MAX_ATTEMPTS = 3;

const PACKAGE_JSON = JSON.stringify(
  {
    name: 'factorial',
    version: '1.0.0',
    private: true,
    scripts: { test: 'jest' },
    devDependencies: { jest: '^29.7.0' },
  },
  null,
  2,
);

const TESTS = `const { factorial } = require('./factorial');

describe('factorial', () => {
  test('factorial(0) is 1', () => {
    expect(factorial(0)).toBe(1);
  });

  test('factorial(1) is 1', () => {
    expect(factorial(1)).toBe(1);
  });

  test('factorial(5) is 120', () => {
    expect(factorial(5)).toBe(120);
  });

  test('factorial(10) is 3628800', () => {
    expect(factorial(10)).toBe(3628800);
  });

  test('rejects negative numbers', () => {
    expect(() => factorial(-1)).toThrow('Negative numbers not allowed');
  });
});
`;

// The coder's attempts, in order (seed 004: attempt 1 has the bug, attempt 2 the fix).
const ATTEMPTS = [
  `function factorial(n) {
  if (n === 0) return 1;
  return n * factorial(n - 1);
}

module.exports = { factorial };
`,
  `function factorial(n) {
  if (n < 0) throw new Error('Negative numbers not allowed');
  if (n === 0) return 1;
  return n * factorial(n - 1);
}

module.exports = { factorial };
`,
];

function printSummary(result: TestRunResult) {
  const counts = `Total: ${result.total}, Passed: ${result.passed}, Failed: ${result.failed}`;
  if (result.success && result.failed === 0) {
    console.log(`✓ Tests passed!\n  ${counts}`);
  } else {
    console.log(`✗ Tests failed (exit code ${result.exitCode}${result.timedOut ? ', timed out' : ''})\n  ${counts}`);
    for (const f of result.failures) {
      const message = f.message.split('\n').filter((l) => l.trim()).slice(0, 3).map((l) => l.trim()).join('\n      ');
      console.log(`  ✗ ${f.name}\n      ${message}`);
    }
    if (!result.parsed) console.log(`  (no test summary found in the output)\n${result.output}`);
  }
  console.log(`  (${result.framework ?? 'unknown framework'}, ${Math.round(result.duration)} ms)`);
}

async function main() {
  const manager = new SandboxManager({ provider: 'docker', templates: TEMPLATES });

  let sandbox: Sandbox | undefined;
  try {
    console.log('Request: "Build a function that calculates factorial"');
    sandbox = await manager.createSandbox({
      template: 'node',
      name: 'code-on-fly-factorial',
      networkMode: 'none',
      limits: { memoryMB: 1024, cpuCores: 1, timeoutSeconds: 120 },
    });
    await sandbox.start();
    console.log(`✓ Sandbox created: ${sandbox.id}`);

    for (const [file, content] of [['package.json', PACKAGE_JSON], ['factorial.test.js', TESTS]]) {
      const op = await sandbox.writeFile(file, content);
      if (!op.success) throw new Error(`writing ${file} failed: ${op.error}`);
    }

    const results: TestRunResult[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const code = ATTEMPTS[Math.min(attempt, ATTEMPTS.length) - 1];
      const op = await sandbox.writeFile('factorial.js', code);
      if (!op.success) throw new Error(`writing factorial.js failed: ${op.error}`);
      console.log(`\nAttempt ${attempt}/${MAX_ATTEMPTS}: factorial.js written, running the tests`);

      const result = await sandbox.runTests({ timeout: 120 });
      results.push(result);
      printSummary(result);
      if (result.success && result.failed === 0) break;
      if (attempt < MAX_ATTEMPTS) console.log('→ Analyzing the failures and fixing the code ...');
    }

    // ------------------------------------------------------------ verdict
    const first = results[0];
    const last = results[results.length - 1];
    const problems: string[] = [];
    if (first.framework !== 'jest') problems.push(`the framework was detected as ${first.framework}, not jest`);
    if (!first.parsed) problems.push('the first run had no parsable test summary');
    if (first.success || first.total !== 5 || first.passed !== 4 || first.failed !== 1) {
      problems.push(`the first run should fail exactly 1 of 5 tests (got total ${first.total}, passed ${first.passed}, failed ${first.failed})`);
    }
    const failure = first.failures[0];
    if (first.failures.length !== 1 || !/negative/i.test(failure?.name ?? '')) {
      problems.push(`the first run's failure should be the negative-number test (got ${JSON.stringify(first.failures.map((f) => f.name))})`);
    } else if (!/Maximum call stack size exceeded/.test(failure.message)) {
      problems.push(`the failure message should show the stack overflow (got ${JSON.stringify(failure.message)})`);
    }
    if (!(last.success && last.exitCode === 0 && last.failed === 0 && last.total === 5 && last.passed === 5)) {
      problems.push(`the final run should pass 5 of 5 (got exit ${last.exitCode}, total ${last.total}, passed ${last.passed}, failed ${last.failed})`);
    }

    console.log('');
    if (problems.length === 0) {
      console.log(`✅ Feature complete after ${results.length} attempts: all ${last.total} tests pass`);
    } else {
      for (const p of problems) console.error(`❌ ${p}`);
      process.exitCode = 1;
    }
  } finally {
    if (sandbox) {
      try {
        await manager.destroySandbox(sandbox.id);
        console.log('✓ Sandbox cleaned up');
      } catch (err) {
        console.error('❌ destroySandbox failed:', err);
        process.exitCode = 1;
      }
    }
  }
}

main().catch((err) => {
  console.error('❌ Test-fix loop failed:', err);
  process.exitCode = 1;
});
