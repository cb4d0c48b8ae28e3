/**
 * Network isolation (Example 8 of the integration guide, adapted so that nothing leaves this machine):
 * this process starts a small TCP server on all of the host's interfaces, and sandboxes in the three
 * network modes try to connect to it through the Docker bridge gateway (the host's address on the
 * default `docker0` bridge):
 *
 *   networkMode 'none'      no network at all              -> must NOT connect
 *   networkMode 'isolated'  private network, no way out    -> must NOT connect
 *   networkMode 'bridge'    Docker's default bridge        -> connects
 *
 * The 'isolated' sandbox also tries the host's address on its own private network (that network's
 * gateway, found through the sandbox-id label the addon puts on it): "no access to the host" must
 * hold there too.
 *
 * No outside address (public DNS, GitHub, ...) is ever contacted.
 *
 * Run it from the repository root:
 *
 *   npx tsx examples/network-isolation.ts
 *
 * Needs a running Docker engine on this machine and the test images from
 * `bash scripts/build-images.sh` (this example uses 'agentic-sandbox/busybox:1' and its `nc`).
 *
 * Exits 0 when every mode behaved as listed above, 1 otherwise.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { SandboxManager, type Sandbox } from '../index.js';

const IMAGE = 'agentic-sandbox/busybox:1';
const GREETING = 'hello-from-the-host';

type Mode = 'none' | 'isolated' | 'bridge';

/** The host's address on Docker's default bridge network (usually 172.17.0.1). */
function dockerBridgeGateway(): string {
  try {
    const gw = execFileSync('docker', ['network', 'inspect', 'bridge', '-f', '{{(index .IPAM.Config 0).Gateway}}'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore']
    }).trim();
    if (/^\d+\.\d+\.\d+\.\d+$/.test(gw)) return gw;
  } catch {
    // fall through to Docker's usual default
  }
  return '172.17.0.1';
}

/** The host's IPv4 addresses on the Docker networks of one sandbox (found by the addon's labels). */
function sandboxNetworkGateways(sandboxId: string): string[] {
  try {
    const docker = (args: string[]) =>
      execFileSync('docker', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    const nets = docker(['network', 'ls', '-q', '--filter', `label=agentic-sandbox.sandbox-id=${sandboxId}`])
      .split('\n')
      .filter(Boolean);
    return nets.flatMap((n) =>
      docker(['network', 'inspect', n, '-f', '{{range .IPAM.Config}}{{.Gateway}} {{end}}'])
        .split(/\s+/)
        .filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a))
    );
  } catch {
    return [];
  }
}

/** True when `addr` belongs to this machine: only then can a socket be bound to it (no traffic is sent). */
function isLocalAddress(addr: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(0, addr, () => probe.close(() => resolve(true)));
  });
}

async function networkIsolationTest() {
  // A TCP server in this process, on every interface and a random port: it greets and hangs up.
  const connections: string[] = [];
  const server = createServer((socket) => {
    connections.push(socket.remoteAddress ?? '?');
    socket.end(`${GREETING}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '0.0.0.0', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const gateway = dockerBridgeGateway();
  const local = await isLocalAddress(gateway);
  console.log(`Host server listening on 0.0.0.0:${port}; sandboxes will dial ${gateway}:${port}`);
  if (!local) {
    console.warn(`⚠️  ${gateway} is not an address of this machine (remote Docker engine?); the bridge test will fail`);
  }

  const manager = new SandboxManager({ provider: 'docker' });
  const created: Sandbox[] = [];
  let failures = 0;

  const cases: Array<{ mode: Mode; shouldConnect: boolean }> = [
    { mode: 'none', shouldConnect: false },
    { mode: 'isolated', shouldConnect: false },
    { mode: 'bridge', shouldConnect: true }
  ];

  try {
    console.log('Testing network isolation...\n');
    for (const { mode, shouldConnect } of cases) {
      const sandbox = await manager.createSandbox({
        image: IMAGE,
        networkMode: mode,
        limits: { memoryMB: 128 }
      });
      created.push(sandbox);
      await sandbox.start();

      const addrs = await sandbox.execute('ip', ['-o', '-4', 'addr']);
      const ifaces = addrs.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length > 3)
        .map((f) => `${f[1]} ${f[3]}`);
      console.log(`[${mode}] sandbox ${sandbox.id}, interfaces: ${ifaces.join(', ') || '(none)'}`);

      // The host's address on the default bridge, plus (isolated only) its address on the sandbox's own network.
      const targets = [gateway];
      if (mode === 'isolated') {
        for (const own of sandboxNetworkGateways(sandbox.id)) {
          if (targets.includes(own)) continue;
          // only addresses of this machine are ever dialled
          if (await isLocalAddress(own)) targets.push(own);
          else console.log(`   (its network's gateway ${own} is not an address of this host: nothing there to dial)`);
        }
      }

      for (const host of targets) {
        // BusyBox nc has no -z: connect, send nothing (stdin is /dev/null), print what the server says.
        const before = connections.length;
        const probe = await sandbox.execute('sh', ['-c', `nc -w 2 ${host} ${port} </dev/null`], { timeout: 10 });
        const connected = probe.exitCode === 0 && probe.stdout.includes(GREETING);
        const detail = connected
          ? `got "${GREETING}"; the host saw a connection from ${connections.slice(before).join(', ') || '?'}`
          : probe.stderr.trim() || (probe.timedOut ? 'timed out' : `exit code ${probe.exitCode}`);
        const what = host === gateway ? `the host server at ${host}:${port}` : `the host server via its own network's gateway ${host}:${port}`;

        if (connected === shouldConnect) {
          console.log(
            shouldConnect
              ? `✅ '${mode}' sandbox reached ${what} as expected (${detail})`
              : `✅ '${mode}' sandbox is isolated: cannot reach ${what} (${detail})`
          );
        } else {
          failures++;
          console.error(
            shouldConnect
              ? `❌ '${mode}' sandbox could NOT reach ${what} (${detail})`
              : `❌ Network isolation failed: '${mode}' sandbox reached ${what} (${detail})`
          );
        }
      }

      await manager.destroySandbox(sandbox.id);
      created.splice(created.indexOf(sandbox), 1);
      console.log();
    }
  } finally {
    for (const sandbox of created) {
      await manager.destroySandbox(sandbox.id).catch((err) => {
        console.error('❌ destroySandbox failed:', err);
        failures++;
      });
    }
    server.close();
  }

  if (failures > 0) {
    console.error(`❌ ${failures} network check(s) did not hold`);
    process.exitCode = 1;
  } else {
    console.log('✅ Network isolation test completed');
  }
}

await networkIsolationTest().catch((err) => {
  console.error('❌ Network isolation example failed:', err);
  process.exitCode = 1;
});
