// agentic-sandbox code-context driver (JavaScript). Embedded in the addon; passed with `node -e`.
// The launcher moved the protocol off the user's fds: requests arrive on fd 3 (one JSON line
// {"nonce", "code", "max"}), fd 0 is /dev/null, and fds 4 and 5 are the original stdout and
// stderr. At the end of a cell the marker \x1e<nonce>\x1e goes to fd 5, then the marker and one
// JSON line {"results": [...], "error": {...} | null} to fd 4.
(function agenticSandboxDriver() {
  const fs = require('fs');
  const vm = require('vm');
  const util = require('util');
  const path = require('path');
  const Module = require('module');
  globalThis.require = Module.createRequire(path.join(process.cwd(), '[code-context]'));
  globalThis.module = { exports: {}, require: globalThis.require };
  globalThis.exports = globalThis.module.exports;
  globalThis.__dirname = process.cwd();
  // TypeScript contexts (`node -e <driver> typescript`): each cell is transpiled (types removed,
  // nothing type-checked) with the `typescript` package resolvable from the cwd, else esbuild
  // (from the cwd, or the one tsx on PATH ships with)
  let transpile = null;
  if (process.argv[1] === 'typescript') transpile = typescriptTranspiler();
  let interrupt = null;
  let outputs = null;
  let max = 1 << 24;
  process.on('SIGINT', () => {
    if (interrupt) interrupt(new Error('Script execution was interrupted by `SIGINT`'));
  });
  // a stray rejection or exception between or after cells must not end the context
  process.on('unhandledRejection', (e) => {
    try { process.stderr.write('Unhandled rejection: ' + util.inspect(e) + '\n'); } catch (_) {}
  });
  process.on('uncaughtException', (e) => {
    try { process.stderr.write('Uncaught exception: ' + (e && e.stack ? e.stack : util.inspect(e)) + '\n'); } catch (_) {}
  });
  function writeAll(fd, buf) {
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(fd, buf, off, buf.length - off);
      } catch (e) {
        if (e.code === 'EAGAIN') continue;
        throw e;
      }
    }
  }
  function bundle(v, main) {
    const r = { isMainResult: main };
    let text;
    try { text = typeof v === 'string' ? util.inspect(v) : util.inspect(v, { depth: 4 }); } catch (e) { text = '<inspect failed>'; }
    if (text.length > max) text = text.slice(0, max) + '... (truncated)';
    r.text = text;
    const t = typeof v;
    if (v === null || t === 'number' || t === 'boolean' || t === 'string' || (t === 'object' && !(v instanceof Promise))) {
      try {
        const j = JSON.stringify(v);
        if (j !== undefined && j.length <= max) r.json = JSON.parse(j);
      } catch (_) {}
    }
    return r;
  }
  globalThis.display = function display(...objs) {
    for (const o of objs) if (outputs) outputs.push(bundle(o, false));
  };
  function describe(e) {
    if (e instanceof Error || (e && typeof e === 'object' && 'stack' in e)) {
      const stack = String(e.stack || '').split('\n').filter((l) => !l.includes('agenticSandboxDriver') && !l.includes('[eval]') && !l.includes('node:vm')).join('\n');
      return { name: String(e.name || 'Error'), value: String(e.message || ''), traceback: stack.slice(-max) };
    }
    let value;
    try { value = util.inspect(e); } catch (_) { value = '<uninspectable>'; }
    return { name: 'Error', value: 'Uncaught ' + value, traceback: '' };
  }
  // Top-level await: the cell runs as the body of an async function. Declarations at the start of
  // a line (`const|let|var name =`) become assignments to globals, so they persist; the value of
  // a last line that is an expression is returned.
  function awaitScript(code, filename) {
    const body = code.replace(/^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=/gm, '$1 =');
    const lines = body.replace(/\s+$/, '').split('\n');
    const last = lines.pop() || '';
    const tries = [
      '(async () => {\n' + lines.join('\n') + '\nreturn (' + last.replace(/;\s*$/, '') + '\n)})()',
      '(async () => {\n' + body + '\n})()',
    ];
    let err;
    for (const src of tries) {
      try {
        return new vm.Script(src, { filename });
      } catch (e) {
        err = err || e;
      }
    }
    throw err;
  }
  function typescriptTranspiler() {
    const attempt = (f) => { try { return f(); } catch (_) { return null; } };
    const ts = attempt(() => globalThis.require('typescript'));
    if (ts) {
      return async (code) => ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
    }
    let esbuild = attempt(() => globalThis.require('esbuild'));
    if (!esbuild) {
      for (const dir of String(process.env.PATH || '').split(':')) {
        const tsx = attempt(() => fs.realpathSync(path.join(dir || '.', 'tsx')));
        esbuild = tsx && attempt(() => Module.createRequire(tsx)('esbuild'));
        if (esbuild) break;
      }
    }
    if (esbuild) {
      return async (code) => {
        try {
          return (await esbuild.transform(code, { loader: 'ts', target: 'es2022' })).code;
        } catch (e) {
          const err = new SyntaxError(((e.errors && e.errors[0] && e.errors[0].text) || e.message).toString());
          throw err;
        }
      };
    }
    process.stderr.write("code context: typescript needs the 'typescript' or 'esbuild' package resolvable from the context's cwd, or tsx on PATH\n");
    process.exit(127);
  }
  async function runCell(code, filename) {
    if (transpile) code = await transpile(code);
    let script;
    try {
      script = new vm.Script(code, { filename });
    } catch (e) {
      if (!(e instanceof SyntaxError) || !/await/.test(e.message)) throw e;
      script = awaitScript(code, filename);
    }
    let v = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (v && typeof v.then === 'function') {
      v = await new Promise((resolve, reject) => {
        interrupt = reject;
        v.then(resolve, reject);
      });
    }
    return v;
  }
  let cell = 0;
  let queue = Promise.resolve();
  let pending = '';
  // a libuv pipe, not fs.createReadStream: a blocking read in the thread pool would keep a cell's
  // process.exit() from ending the process
  const requests = new (require('net').Socket)({ fd: 3, readable: true, writable: false });
  requests.setEncoding('utf8');
  requests.on('end', () => process.exit(0));
  requests.on('error', () => process.exit(0));
  requests.on('data', (chunk) => {
    pending += chunk;
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      queue = queue.then(() => handle(line));
    }
  });
  async function handle(line) {
    let req;
    try {
      req = JSON.parse(line);
    } catch (_) {
      writeAll(5, Buffer.from('agentic-sandbox driver: bad request\n'));
      process.exit(3);
    }
    cell += 1;
    max = Number(req.max) || (1 << 24);
    outputs = [];
    let error = null;
    let main;
    try {
      main = await runCell(req.code, '<cell-' + cell + '>');
    } catch (e) {
      error = describe(e);
    }
    interrupt = null;
    let body;
    try {
      const results = outputs.slice();
      if (main !== undefined) results.push(bundle(main, true));
      body = Buffer.from(JSON.stringify({ results, error }));
      if (body.length > max) {
        body = Buffer.from(JSON.stringify({ results: [], error: { name: 'ResultTooLarge', value: `the cell's results are ${body.length} bytes, over the ${max}-byte limit`, traceback: '' } }));
      }
    } catch (e) {
      body = Buffer.from(JSON.stringify({ results: [], error: { name: 'Error', value: "could not report the cell's results", traceback: '' } }));
    }
    outputs = null;
    const marker = Buffer.from('\x1e' + req.nonce + '\x1e');
    writeAll(5, marker);
    writeAll(4, Buffer.concat([marker, body, Buffer.from('\n')]));
  }
})();
