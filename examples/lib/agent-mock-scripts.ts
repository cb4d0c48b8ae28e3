/**
 * Shared helpers and scripted model turns for the agent examples (`examples/agent-*.ts`).
 *
 * With `--mock`, an example starts the scripted mock server of `./mock-llm.ts` and points the
 * executor at it. The mock only stands in for the model: every tool call it scripts (Write, Bash,
 * Read, ...) really runs in a real Docker sandbox, and the later turns read the real tool results
 * (a turn that is a function sees `req.lastToolResults`). Each scripted turn first checks the
 * results of the previous tool calls; when they are not what the script expected it ends the
 * conversation with a final answer starting with MOCK_CHECK_FAILED, which the examples treat as a
 * failure (so CI catches a broken tool, not just a crash).
 *
 * Without `--mock`, the examples use a real model configured by the environment.
 */
import type { SandboxedExecutionResult } from '../../index.js';
import type { MockLlm, RecordedRequest, ScriptedToolCall, ScriptedTurn, ToolResult } from './mock-llm.js';

// ---------------------------------------------------------------- run mode

export type RunMode = 'mock' | 'real';

/**
 * 'mock' with `--mock`; 'real' when a model is configured in the environment (a key or an
 * endpoint); otherwise prints how to run the example and returns undefined (the caller exits 0).
 */
export function runMode(example: string): RunMode | undefined {
  if (process.argv.slice(2).includes('--mock')) return 'mock';
  const env = process.env;
  if (env.ANTHROPIC_API_KEY || env.ANTHROPIC_BASE_URL || env.OPENAI_API_KEY || env.OPENAI_BASE_URL) return 'real';
  console.log(
    `Nothing to run against: use \`npx tsx examples/${example} --mock\` (scripted model, tools still run in real sandboxes), ` +
      'or set ANTHROPIC_API_KEY (or OPENAI_API_KEY / OPENAI_BASE_URL) for a real model.',
  );
  return undefined;
}

// ---------------------------------------------------------------- checks

/** How a final answer starts when a scripted turn found an unexpected tool result. */
export const MOCK_CHECK_FAILED = 'MOCK CHECK FAILED';

/** What the script expects of one tool result of the previous turn. */
export interface Expect {
  /** Whether the result must be an error result (default false). */
  error?: boolean;
  /** The result must match this. */
  match?: RegExp;
  /** The result must not match this. */
  notMatch?: RegExp;
}

type Turn = { text?: string; toolCalls?: ScriptedToolCall[] };

/**
 * A turn that first checks the results of the previous turn's tool calls (one `Expect` per call,
 * in order), then answers `next` (or what `next` computes from the results).
 */
export function after(expect: Expect[], next: Turn | ((results: ToolResult[]) => Turn)): ScriptedTurn {
  return (req: RecordedRequest) => {
    const results = req.lastToolResults;
    const problem = checkResults(results, expect);
    if (problem) return { text: `${MOCK_CHECK_FAILED}: ${problem}` };
    return typeof next === 'function' ? next(results) : next;
  };
}

function checkResults(results: ToolResult[], expect: Expect[]): string | undefined {
  if (results.length !== expect.length) return `expected ${expect.length} tool result(s), got ${results.length}`;
  for (const [i, e] of expect.entries()) {
    const r = results[i];
    const show = JSON.stringify(r.content.slice(0, 300));
    if (r.isError !== (e.error ?? false)) return `tool result ${i + 1} ${r.isError ? 'is' : 'is not'} an error: ${show}`;
    if (e.match && !e.match.test(r.content)) return `tool result ${i + 1} does not match ${e.match}: ${show}`;
    if (e.notMatch && e.notMatch.test(r.content)) return `tool result ${i + 1} matches ${e.notMatch}: ${show}`;
  }
  return undefined;
}

const OK: Expect = {};
/** `n` successful tool results. */
const ok = (n: number): Expect[] => Array.from({ length: n }, () => OK);

/** Indents tool output for a final answer. */
const indent = (s: string) => s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

/**
 * What is wrong with a run, for the example's exit code: a non-zero `exitCode`, and in mock mode
 * a failed script check or unused scripted turns (`turnsLeft`: how many turns of the
 * conversation's queue should be left after this run; default 0).
 */
export function runProblems(
  result: SandboxedExecutionResult,
  mock?: MockLlm,
  opts: { conversation?: string; turnsLeft?: number } = {},
): string[] {
  const problems: string[] = [];
  const who = result.agentName;
  if (result.exitCode !== 0) {
    problems.push(`${who}: exit code ${result.exitCode}${result.error ? ` (${result.error.code}: ${result.error.message})` : ''}`);
  }
  if (mock) {
    if (result.output.startsWith(MOCK_CHECK_FAILED)) problems.push(`${who}: ${result.output}`);
    const left = mock.remaining(opts.conversation) - (opts.turnsLeft ?? 0);
    if (left !== 0 && result.exitCode === 0) problems.push(`${who}: ${left} scripted turn(s) were not used`);
  }
  return problems;
}

// ---------------------------------------------------------------- Level 2: fibonacci

const FIBONACCI_JS = `// Fibonacci numbers, exact for any n (BigInt).
function fibonacci(n) {
  if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

function sequence(count) {
  return Array.from({ length: count }, (_, i) => fibonacci(i));
}

module.exports = { fibonacci, sequence };

if (require.main === module) {
  const count = Number(process.argv[2] ?? 10);
  console.log(\`First \${count} Fibonacci numbers: \${sequence(count).join(', ')}\`);
  console.log(\`fibonacci(90) = \${fibonacci(90)}\`);
}
`;

const FIBONACCI_PACKAGE_JSON = `${JSON.stringify(
  { name: 'fibonacci', version: '1.0.0', description: 'Fibonacci numbers', main: 'fibonacci.js', scripts: { start: 'node fibonacci.js 10' }, license: 'MIT' },
  null,
  2,
)}\n`;

/** Level 2, step 1 (no interceptors): write fibonacci.js + package.json, run it with the sandbox's node. */
export const level2Step1Script: ScriptedTurn[] = [
  {
    text: "I'll write fibonacci.js and a package.json, then run the script.",
    toolCalls: [
      { name: 'Write', input: { file_path: '/workspace/fibonacci.js', content: FIBONACCI_JS } },
      { name: 'Write', input: { file_path: '/workspace/package.json', content: FIBONACCI_PACKAGE_JSON } },
    ],
  },
  after(ok(2), { toolCalls: [{ name: 'Bash', input: { command: 'node --version && node fibonacci.js 12', description: 'Run the script' } }] }),
  after([{ match: /First 12 Fibonacci numbers: 0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89\n.*fibonacci\(90\) = 2880067194370816120/s }], ([run]) => ({
    text: `Created fibonacci.js (fibonacci(n) with BigInt, so results stay exact, and sequence(count)) and package.json. Running \`node fibonacci.js 12\` in the sandbox printed:\n${indent(run.content)}`,
  })),
];

/** Level 2, step 2 (logging Write + guarding Bash interceptors): includes an `rm -rf` the Bash interceptor blocks. */
export const level2Step2Script: ScriptedTurn[] = [
  { toolCalls: [{ name: 'Write', input: { file: 'fibonacci.js', content: FIBONACCI_JS } }] },
  after(ok(1), { toolCalls: [{ name: 'Bash', input: { command: 'node fibonacci.js 15' } }] }),
  after([{ match: /First 15 Fibonacci numbers: .*, 233, 377\n/ }], { text: 'Works. Cleaning up build leftovers.', toolCalls: [{ name: 'Bash', input: { command: 'rm -rf /workspace/node_modules' } }] }),
  after([{ error: true, match: /blocked by policy/ }], {
    text: 'fibonacci.js is written and prints the first 15 numbers (0 … 377). My cleanup command (`rm -rf`) was blocked by policy, so I left the workspace as it is.',
  }),
];

// ---------------------------------------------------------------- single agent: binary search tree

const BST_JS = `// A binary search tree with insert, has, delete, min/max, in-order iteration and height.
class Node {
  constructor(key) {
    this.key = key;
    this.left = null;
    this.right = null;
  }
}

class BinarySearchTree {
  constructor(compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0)) {
    this.root = null;
    this.size = 0;
    this.compare = compare;
  }

  /** Adds key; false when it was already there. */
  insert(key) {
    if (this.root === null) {
      this.root = new Node(key);
      this.size++;
      return true;
    }
    let node = this.root;
    for (;;) {
      const c = this.compare(key, node.key);
      if (c === 0) return false;
      const side = c < 0 ? 'left' : 'right';
      if (node[side] === null) {
        node[side] = new Node(key);
        this.size++;
        return true;
      }
      node = node[side];
    }
  }

  has(key) {
    let node = this.root;
    while (node !== null) {
      const c = this.compare(key, node.key);
      if (c === 0) return true;
      node = c < 0 ? node.left : node.right;
    }
    return false;
  }

  /** Removes key; false when it was not there. */
  delete(key) {
    const before = this.size;
    this.root = this.#remove(this.root, key);
    return this.size < before;
  }

  #remove(node, key) {
    if (node === null) return null;
    const c = this.compare(key, node.key);
    if (c < 0) node.left = this.#remove(node.left, key);
    else if (c > 0) node.right = this.#remove(node.right, key);
    else {
      if (node.left === null) { this.size--; return node.right; }
      if (node.right === null) { this.size--; return node.left; }
      let successor = node.right;
      while (successor.left !== null) successor = successor.left;
      node.key = successor.key;
      node.right = this.#remove(node.right, successor.key);
    }
    return node;
  }

  min() {
    let node = this.root;
    while (node?.left) node = node.left;
    return node?.key;
  }

  max() {
    let node = this.root;
    while (node?.right) node = node.right;
    return node?.key;
  }

  *inOrder(node = this.root) {
    if (node === null) return;
    yield* this.inOrder(node.left);
    yield node.key;
    yield* this.inOrder(node.right);
  }

  height(node = this.root) {
    return node === null ? 0 : 1 + Math.max(this.height(node.left), this.height(node.right));
  }
}

module.exports = { BinarySearchTree };
`;

const BST_TEST_JS = `const test = require('node:test');
const assert = require('node:assert/strict');
const { BinarySearchTree } = require('./bst');

const build = (keys) => {
  const t = new BinarySearchTree();
  for (const k of keys) t.insert(k);
  return t;
};

test('insert keeps keys sorted and ignores duplicates', () => {
  const t = build([50, 30, 70, 20, 40, 60, 80, 30]);
  assert.deepEqual([...t.inOrder()], [20, 30, 40, 50, 60, 70, 80]);
  assert.equal(t.size, 7);
  assert.equal(t.insert(40), false);
});

test('has finds present keys only', () => {
  const t = build([5, 3, 8]);
  assert.ok(t.has(3) && t.has(8));
  assert.ok(!t.has(4));
  assert.ok(!new BinarySearchTree().has(1));
});

test('delete handles leaves, one child and two children', () => {
  const t = build([50, 30, 70, 20, 40, 60, 80, 65]);
  assert.ok(t.delete(20)); // leaf
  assert.ok(t.delete(60)); // one child (65)
  assert.ok(t.delete(50)); // two children: the root
  assert.ok(!t.delete(999));
  assert.deepEqual([...t.inOrder()], [30, 40, 65, 70, 80]);
  assert.equal(t.size, 5);
});

test('min, max and height', () => {
  const t = build([4, 2, 6, 1, 3, 5, 7]);
  assert.equal(t.min(), 1);
  assert.equal(t.max(), 7);
  assert.equal(t.height(), 3);
  assert.equal(new BinarySearchTree().min(), undefined);
});

test('custom comparator (strings, case-insensitive)', () => {
  const t = new BinarySearchTree((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' }));
  for (const w of ['pear', 'Apple', 'banana', 'APPLE']) t.insert(w);
  assert.deepEqual([...t.inOrder()], ['Apple', 'banana', 'pear']);
});
`;

/** Single agent: write bst.js and its node:test suite in one turn (two tool calls), run the tests, try it out. */
export const singleAgentScript: ScriptedTurn[] = [
  {
    text: "I'll implement the tree in bst.js and cover it with node:test tests.",
    toolCalls: [
      { name: 'Write', input: { file: 'bst.js', content: BST_JS } },
      { name: 'Write', input: { file: 'bst.test.js', content: BST_TEST_JS } },
    ],
  },
  after(ok(2), {
    toolCalls: [
      { name: 'Bash', input: { command: 'node --test bst.test.js', description: 'Run the test suite' } },
      {
        name: 'Bash',
        input: {
          command: `node -e "const { BinarySearchTree } = require('./bst'); const t = new BinarySearchTree(); [8, 3, 10, 1, 6, 14, 4, 7, 13].forEach((k) => t.insert(k)); console.log('in order:', [...t.inOrder()].join(' '), '| height:', t.height(), '| min/max:', t.min(), t.max())"`,
          description: 'Try the tree',
        },
      },
    ],
  }),
  after([{ match: /# tests 5\n# (suites 0\n# )?pass 5\n# fail 0/ }, { match: /in order: 1 3 4 6 7 8 10 13 14 \| height: 4 \| min\/max: 1 14/ }], ([tests, demo]) => ({
    text: `Implemented BinarySearchTree in bst.js (insert, has, delete with the in-order successor, min/max, in-order generator, height, custom comparator) with 5 node:test tests in bst.test.js. \`node --test\`:\n${indent(tests.content.split('\n').filter((l) => /^(not )?ok |^# (tests|pass|fail)/.test(l)).join('\n'))}\nDemo:\n${indent(demo.content)}`,
  })),
];

// ---------------------------------------------------------------- swarm: backend-dev, tester, documenter

const TODO_API_JS = `// An in-memory todo service with a REST-style request handler (no HTTP server needed to test it).
function createTodoApi() {
  const todos = new Map();
  let nextId = 1;
  const json = (status, body) => ({ status, body });

  return function handle(method, path, body = {}) {
    const match = path.match(/^\\/todos(?:\\/(\\d+))?$/);
    if (!match) return json(404, { error: 'not found' });
    const id = match[1] && Number(match[1]);
    if (method === 'GET' && !id) return json(200, [...todos.values()]);
    if (method === 'POST' && !id) {
      if (typeof body.title !== 'string' || !body.title.trim()) return json(400, { error: 'title is required' });
      const todo = { id: nextId++, title: body.title.trim(), done: false };
      todos.set(todo.id, todo);
      return json(201, todo);
    }
    if (!todos.has(id)) return json(404, { error: \`todo \${id} not found\` });
    if (method === 'GET') return json(200, todos.get(id));
    if (method === 'PATCH') return json(200, Object.assign(todos.get(id), { done: Boolean(body.done) }));
    if (method === 'DELETE') { todos.delete(id); return json(204, null); }
    return json(405, { error: \`\${method} not allowed\` });
  };
}

module.exports = { createTodoApi };
`;

const TODO_DEMO_JS = `const { createTodoApi } = require('./todo-api');

const api = createTodoApi();
const show = (method, path, body) => {
  const r = api(method, path, body);
  console.log(\`\${method} \${path} -> \${r.status} \${JSON.stringify(r.body)}\`);
  return r;
};

show('POST', '/todos', { title: 'Write the API' });
show('POST', '/todos', { title: 'Document it' });
show('POST', '/todos', { title: '  ' });
show('PATCH', '/todos/1', { done: true });
show('DELETE', '/todos/2');
show('GET', '/todos');
show('GET', '/todos/9');
`;

const PRICING_PY = `"""Shopping-cart pricing: subtotal, percentage discount codes and VAT, in integer cents."""

DISCOUNTS = {"SAVE10": 10, "HALF": 50}


def subtotal(items):
    """items: list of (unit_price_cents, quantity)."""
    if any(q < 0 or p < 0 for p, q in items):
        raise ValueError("prices and quantities must not be negative")
    return sum(p * q for p, q in items)


def total(items, code=None, vat_percent=20):
    cents = subtotal(items)
    if code is not None:
        if code not in DISCOUNTS:
            raise KeyError(f"unknown discount code {code}")
        cents -= cents * DISCOUNTS[code] // 100
    return cents + round(cents * vat_percent / 100)
`;

const TEST_PRICING_PY = `import unittest

from pricing import subtotal, total


class PricingTest(unittest.TestCase):
    def test_subtotal(self):
        self.assertEqual(subtotal([(250, 2), (100, 3)]), 800)

    def test_empty_cart(self):
        self.assertEqual(total([]), 0)

    def test_vat(self):
        self.assertEqual(total([(1000, 1)]), 1200)

    def test_discount_then_vat(self):
        self.assertEqual(total([(1000, 2)], code="SAVE10"), 2160)

    def test_unknown_code(self):
        with self.assertRaises(KeyError):
            total([(100, 1)], code="BOGUS")

    def test_negative_quantity(self):
        with self.assertRaises(ValueError):
            subtotal([(100, -1)])


if __name__ == "__main__":
    unittest.main()
`;

const TODO_README_MD = `# Todo service

A small in-memory todo service with a REST-style request handler.

## Usage

\`\`\`js
const { createTodoApi } = require('./todo-api');
const api = createTodoApi();
api('POST', '/todos', { title: 'Write docs' }); // -> { status: 201, body: { id: 1, ... } }
\`\`\`

## Endpoints

| method | path | result |
|---|---|---|
| GET | /todos | 200, all todos |
| POST | /todos | 201, the new todo (400 without a title) |
| GET | /todos/:id | 200, one todo (404 if missing) |
| PATCH | /todos/:id | 200, sets \`done\` |
| DELETE | /todos/:id | 204 |

## Testing

Run \`node demo.js\` to exercise every endpoint.
`;

/** The swarm's scripts, by agent name (the example keys them by task text for the mock's routing). */
export const swarmScripts: Record<'backend-dev' | 'tester' | 'documenter', ScriptedTurn[]> = {
  'backend-dev': [
    {
      toolCalls: [
        { name: 'Write', input: { file: 'todo-api.js', content: TODO_API_JS } },
        { name: 'Write', input: { file: 'demo.js', content: TODO_DEMO_JS } },
      ],
    },
    after(ok(2), { toolCalls: [{ name: 'Bash', input: { command: 'node demo.js' } }] }),
    after([{ match: /POST \/todos -> 201 .*PATCH \/todos\/1 -> 200 \{"id":1,"title":"Write the API","done":true\}.*GET \/todos\/9 -> 404/s }], (r) => ({
      text: `Implemented todo-api.js (GET/POST /todos, GET/PATCH/DELETE /todos/:id, input validation) and demo.js. \`node demo.js\`:\n${indent(r[0].content)}`,
    })),
  ],
  tester: [
    {
      toolCalls: [
        { name: 'Write', input: { file: 'pricing.py', content: PRICING_PY } },
        { name: 'Write', input: { file: 'test_pricing.py', content: TEST_PRICING_PY } },
      ],
    },
    after(ok(2), { toolCalls: [{ name: 'Bash', input: { command: 'python3 --version && python3 -m unittest -v test_pricing 2>&1' } }] }),
    after([{ match: /Ran 6 tests in .*\n\nOK/s }], (r) => ({
      text: `Wrote pricing.py and test_pricing.py (6 unittest cases: subtotal, empty cart, VAT, discount then VAT, unknown code, negative quantity); all pass:\n${indent(r[0].content.split('\n').filter((l) => /ok$|^Ran|^OK|^Python/.test(l)).join('\n'))}`,
    })),
  ],
  documenter: [
    { toolCalls: [{ name: 'Write', input: { file: 'README.md', content: TODO_README_MD } }] },
    after(ok(1), { toolCalls: [{ name: 'Bash', input: { command: "wc -l README.md && grep -n '^#' README.md" } }] }),
    after([{ match: /README\.md\n.*1:# Todo service.*## Endpoints.*## Testing/s }], (r) => ({
      text: `Wrote README.md (usage, endpoint table, testing). Structure check:\n${indent(r[0].content)}`,
    })),
  ],
};

// ---------------------------------------------------------------- custom interceptors

const AUTH_JS = `// Password authentication with scrypt hashes and random session tokens (Node built-ins only).
const crypto = require('node:crypto');

const users = new Map();
const sessions = new Map();

function register(username, password) {
  if (users.has(username)) throw new Error('user exists');
  const salt = crypto.randomBytes(16);
  users.set(username, { salt, hash: crypto.scryptSync(password, salt, 32) });
}

function login(username, password) {
  const user = users.get(username);
  if (!user) return null;
  const hash = crypto.scryptSync(password, user.salt, 32);
  if (!crypto.timingSafeEqual(hash, user.hash)) return null;
  const token = crypto.randomBytes(24).toString('hex');
  sessions.set(token, username);
  return token;
}

const authenticate = (token) => sessions.get(token) ?? null;

module.exports = { register, login, authenticate };

if (require.main === module) {
  register('alice', 'correct horse battery staple');
  const token = login('alice', 'correct horse battery staple');
  console.log('login ok:', token !== null);
  console.log('wrong password rejected:', login('alice', 'guess') === null);
  console.log('token authenticates:', authenticate(token));
}
`;

/**
 * Custom interceptors: a Write (logged + counted against the quota), a blacklisted Bash (blocked by
 * securityFilter), allowed Bash commands (one whitelisted, one not: warned about, still run), a
 * Read (perfMonitor), a Write beyond the quota (blocked by quotaEnforcer) and an `ls` showing the
 * blocked file was never written.
 */
export function interceptorsScript(quotaBytes: number): ScriptedTurn[] {
  const bundle = `// generated bundle\n${'/* padding */\n'.repeat(Math.ceil(quotaBytes / 14) + 10)}`;
  return [
    { text: "I'll start with the authentication module.", toolCalls: [{ name: 'Write', input: { file: 'auth.js', content: AUTH_JS } }] },
    after(ok(1), { toolCalls: [{ name: 'Bash', input: { command: 'rm -rf /tmp/build-cache' } }] }),
    after([{ error: true, match: /blocked by security policy/ }], {
      text: 'Cleanup is not allowed; running the module instead.',
      toolCalls: [
        { name: 'Bash', input: { command: 'node auth.js' } },
        { name: 'Bash', input: { command: 'wc -c auth.js' } },
      ],
    }),
    after([{ match: /login ok: true\nwrong password rejected: true\ntoken authenticates: alice/ }, { match: /^\s*\d+ auth\.js/ }], {
      toolCalls: [{ name: 'Read', input: { file_path: '/workspace/auth.js' } }],
    }),
    after([{ match: /crypto\.scryptSync\(password, salt, 32\)/ }], { toolCalls: [{ name: 'Write', input: { file: 'bundle.js', content: bundle } }] }),
    after([{ error: true, match: /blocked by policy/ }], { toolCalls: [{ name: 'Bash', input: { command: 'ls -la' } }] }),
    after([{ match: /auth\.js/, notMatch: /bundle\.js/ }], {
      text: 'auth.js implements register/login/authenticate with scrypt password hashes and session tokens, and its self-check passes. Two calls were refused by policy: a cleanup with `rm -rf /...` (security filter) and writing bundle.js (disk quota); bundle.js was never written.',
    }),
  ];
}
