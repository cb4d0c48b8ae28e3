/**
 * The guide's "Production Security Configuration" for a microservice: an E2B sandbox (VM
 * isolation) with limits, timeouts, no network and audit metadata, plus the guide's advice to
 * fall back to local Docker when E2B fails ("Implement Graceful Degradation"), expressed as
 * `fallbackProviders: ['docker']`. A tiny request handler (a shell script) serves a few requests
 * inside the sandbox, each with its own timeout.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/e2b-production.ts          # a local fake E2B (no key needed; needs Docker)
 *   E2B_API_KEY=e2b_... npx tsx examples/e2b-production.ts   # the real E2B cloud
 *
 * Against the local fake (no `E2B_API_KEY`, or `--fake`) it runs twice:
 *   1. with E2B unavailable (the API URL points at a closed local port): `start()` falls back to
 *      Docker, and the handler runs in a local container ('agentic-sandbox/busybox:1', network
 *      'none'), checked with `docker inspect`;
 *   2. with the fake E2B of `examples/lib/fake-e2b.ts` reachable: the handler runs in E2B.
 * Against the real E2B (template: E2B_TEMPLATE_ID, else 'base') it runs step 2 only, which still
 * falls back to Docker if E2B cannot be reached.
 *
 * Needs the test images from `bash scripts/build-images.sh` (the Docker fallback and the fake's
 * sandboxes use 'agentic-sandbox/busybox:1').
 *
 * Differences from the guide's config, because of what runs here:
 * - `image` is set for the Docker fallback (E2B ignores it: the template decides);
 * - `docker.securityOpt` keeps 'no-new-privileges' only: 'seccomp=default.json' names a file the
 *   Docker CLI would read (the engine API wants the profile's JSON) and AppArmor is not on every
 *   host; Docker's default seccomp profile applies anyway;
 * - `docker.user` is 'nobody' (65534) instead of 'agent:agent', which the image does not have;
 * - on E2B, memoryMB, cpuCores, diskMB, networkMbps and networkMode are the template's business
 *   (only `timeoutSeconds` applies, as the sandbox's lifetime); metadata values become strings.
 *
 * Exits 0 when every request got the expected answer (and, against the fake, the fallback
 * happened as expected), 1 otherwise.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { SandboxManager, type Sandbox } from '../index.js';
import { e2bTarget, type E2bSandboxConfig, type E2bTarget } from './lib/e2b-target.js';

const FALLBACK_IMAGE = 'agentic-sandbox/busybox:1';

/** The request handler: one request per run, "METHOD PATH" on stdin, a JSON response on stdout. */
const HANDLER_SH = `#!/bin/sh
read -r method target || exit 2
route=\${target%%\\?*}
query=\${target#"$route"}
query=\${query#?}

respond() {
  printf '{"status":%s,"service":"%s","body":%s}\\n' "$1" "\${SERVICE_NAME:-handler}" "$2"
}

case "$method $route" in
  "GET /health")
    respond 200 '{"ok":true}' ;;
  "GET /sum")
    values=\${query#values=}
    case "$values" in
      ''|*[!0-9,]*|,*|*,|*,,*) respond 400 '{"error":"values must be comma-separated integers"}'; exit 0 ;;
    esac
    set -- $(echo "$values" | tr ',' ' ')
    sum=0
    for v in "$@"; do sum=$((sum + v)); done
    respond 200 "{\\"count\\":$#,\\"sum\\":$sum}" ;;
  "GET /slow")
    sleep 30
    respond 200 '{"slow":true}' ;;
  *)
    respond 404 "{\\"error\\":\\"no route for $method $route\\"}" ;;
esac
`;

interface Request {
  line: string;
  /** Expected HTTP-ish status, or 'timeout' when the per-request timeout must stop it. */
  expect: number | 'timeout';
  /** Expected body fields. */
  body?: Record<string, unknown>;
}

const REQUESTS: Request[] = [
  { line: 'GET /health', expect: 200, body: { ok: true } },
  { line: 'GET /sum?values=3,4,5', expect: 200, body: { count: 3, sum: 12 } },
  { line: 'GET /sum?values=1,x', expect: 400 },
  { line: 'POST /admin', expect: 404 },
  { line: 'GET /slow', expect: 'timeout' },
];

/** Per-request timeout (s); the sandbox's `limits.timeoutSeconds` is the default for everything else. */
const REQUEST_TIMEOUT_S = 2;

function productionConfig(target: E2bTarget): E2bSandboxConfig {
  return {
    provider: 'e2b', // VM isolation
    fallbackProviders: ['docker'], // E2B unreachable, 5xx, quota: start() tries local Docker
    image: FALLBACK_IMAGE, // for the Docker fallback; E2B uses the template

    limits: {
      memoryMB: 512,
      cpuCores: 1,
      diskMB: 1024,
      timeoutSeconds: 300,
      networkMbps: 10, // Limit bandwidth (accepted, not enforced)
    },

    networkMode: 'none', // No network by default

    docker: {
      readOnlyRoot: true,
      capDrop: ['ALL'],
      securityOpt: ['no-new-privileges'],
      user: 'nobody', // Non-root
      tmpfs: ['/tmp:rw,noexec,nosuid,size=100m'],
    },

    e2b: target.e2b({
      templateId: 'secure-node',
      region: 'us-east-1',
    }),

    env: { SERVICE_NAME: 'orders-api' },

    metadata: {
      environment: 'production',
      securityLevel: 'high',
      auditEnabled: true,
    },
  };
}

/** Writes the handler and serves every request; returns the problems found. */
async function serve(sandbox: Sandbox): Promise<string[]> {
  const problems: string[] = [];
  const written = await sandbox.writeFile('handler.sh', HANDLER_SH);
  if (!written.success) return [`writing handler.sh failed: ${written.error}`];
  console.log('📝 Handler written to', written.path);

  for (const req of REQUESTS) {
    const result = await sandbox.execute('sh', ['handler.sh'], { stdin: req.line + '\n', timeout: REQUEST_TIMEOUT_S });
    const took = `${Math.round(result.durationMs)} ms`;
    if (result.timedOut) {
      console.log(`  ${req.line.padEnd(22)} → ⏱️  timed out after ${REQUEST_TIMEOUT_S} s (exit ${result.exitCode}, ${took})`);
      if (req.expect !== 'timeout') problems.push(`${req.line}: timed out`);
      continue;
    }
    if (result.exitCode !== 0) {
      console.log(`  ${req.line.padEnd(22)} → ❌ exit ${result.exitCode}: ${result.stderr.trim()}`);
      problems.push(`${req.line}: handler exited with ${result.exitCode}: ${result.stderr.trim()}`);
      continue;
    }
    let response: { status: number; service: string; body: Record<string, unknown> };
    try {
      response = JSON.parse(result.stdout);
    } catch {
      problems.push(`${req.line}: not JSON: ${JSON.stringify(result.stdout)}`);
      continue;
    }
    console.log(`  ${req.line.padEnd(22)} → ${response.status} ${JSON.stringify(response.body)} (${response.service}, ${took})`);
    if (response.status !== req.expect) problems.push(`${req.line}: status ${response.status}, expected ${req.expect}`);
    if (response.service !== 'orders-api') problems.push(`${req.line}: SERVICE_NAME not set in the sandbox (got ${response.service})`);
    for (const [k, v] of Object.entries(req.body ?? {})) {
      if (JSON.stringify(response.body[k]) !== JSON.stringify(v)) problems.push(`${req.line}: body.${k} = ${JSON.stringify(response.body[k])}, expected ${JSON.stringify(v)}`);
    }
  }

  // Monitor resource usage
  const stats = await sandbox.getStats();
  console.log(`📊 Stats: memory ${stats.memoryUsageMB.toFixed(1)} MB, CPU ${stats.cpuPercent.toFixed(1)} %, disk ${stats.diskUsageMB.toFixed(1)} MB`);
  const health = await sandbox.healthCheck();
  console.log('💓 Health:', health.healthy ? 'healthy' : `unhealthy (${health.message})`);
  if (!health.healthy) problems.push(`healthCheck: ${health.message}`);
  return problems;
}

/** A local port with nothing listening on it (a server is started on a free port and closed again). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Image and network mode of this process's Docker sandbox containers (`docker inspect`). */
function dockerContainers(): { name: string; image: string; network: string; user: string; readOnly: boolean }[] {
  const ids = execFileSync('docker', ['ps', '-q', '--filter', 'label=agentic-sandbox.managed=true', '--filter', `label=agentic-sandbox.owner-pid=${process.pid}`], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  if (!ids.length) return [];
  const format = '{{json .Name}} {{json .Config.Image}} {{json .HostConfig.NetworkMode}} {{json .Config.User}} {{json .HostConfig.ReadonlyRootfs}}';
  return execFileSync('docker', ['inspect', '--format', format, ...ids], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, image, network, user, readOnly] = line.split(' ').map((f) => JSON.parse(f));
      return { name: name.replace(/^\//, ''), image, network, user, readOnly };
    });
}

async function main() {
  const target = await e2bTarget('e2b-production.ts');
  const manager = new SandboxManager();
  const problems: string[] = [];

  try {
    const config = productionConfig(target);

    if (target.kind === 'fake') {
      // 1. E2B unavailable: its API URL points at a port nobody listens on.
      const port = await closedPort();
      console.log(`\n━━━ 1. E2B unavailable (API at http://127.0.0.1:${port}, closed) ━━━`);
      const unavailable: E2bSandboxConfig = { ...config, e2b: { ...config.e2b, apiUrl: `http://127.0.0.1:${port}` } };
      const started = Date.now();
      const sandbox = await manager.createSandbox(unavailable);
      await sandbox.start();
      console.log(`✅ Sandbox started: ${sandbox.id} on provider '${sandbox.provider}' (${Date.now() - started} ms)`);
      if (sandbox.provider !== 'docker') problems.push(`fallback: provider is '${sandbox.provider}', expected 'docker'`);

      const containers = dockerContainers();
      for (const c of containers) {
        console.log(`🐳 Container ${c.name}: image ${c.image}, network ${c.network}, user ${c.user}, read-only root ${c.readOnly}`);
      }
      if (containers.length !== 1) problems.push(`fallback: expected 1 Docker container of this process, found ${containers.length}`);
      else {
        if (containers[0].image !== FALLBACK_IMAGE) problems.push(`fallback: image ${containers[0].image}, expected ${FALLBACK_IMAGE}`);
        if (containers[0].network !== 'none') problems.push(`fallback: network ${containers[0].network}, expected none`);
      }

      problems.push(...(await serve(sandbox)).map((p) => `fallback: ${p}`));
      await manager.destroySandbox(sandbox.id);
      console.log('✅ Sandbox destroyed', `(Docker containers left: ${dockerContainers().length})`);
    }

    // 2. E2B available (the fake, or the real E2B)
    console.log(`\n━━━ ${target.kind === 'fake' ? '2. E2B available (local fake)' : 'E2B'} ━━━`);
    const started = Date.now();
    const sandbox = await manager.createSandbox(config);
    await sandbox.start();
    console.log(`✅ Sandbox started: ${sandbox.id} on provider '${sandbox.provider}' (${Date.now() - started} ms)`);
    if (sandbox.provider !== 'e2b') {
      const msg = `provider is '${sandbox.provider}': E2B could not be used, the sandbox fell back to Docker`;
      if (target.kind === 'fake') problems.push(msg);
      else console.warn('⚠️ ', msg);
    }
    if (target.fake) {
      const info = target.fake.sandboxes()[0];
      console.log(`☁️  E2B sandbox ${info?.id}: template '${info?.templateID}', metadata ${JSON.stringify(info?.metadata)}, envVars ${JSON.stringify(info?.envVars)}`);
      if (info?.metadata.auditEnabled !== 'true') problems.push(`metadata did not reach E2B: ${JSON.stringify(info?.metadata)}`);
    }

    problems.push(...(await serve(sandbox)));
    await manager.destroySandbox(sandbox.id);
    console.log('✅ Sandbox destroyed', target.fake ? `(E2B sandboxes left: ${target.fake.sandboxes().length})` : '');
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
  } else {
    console.log('\n✅ All requests answered as expected');
  }
}

main().catch((err) => {
  console.error('❌ Production example failed:', err);
  process.exitCode = 1;
});
