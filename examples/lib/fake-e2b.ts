/**
 * A fake E2B that speaks the real wire protocol, for tests and examples that cannot reach the E2B
 * cloud: the control plane REST API on one listener and envd (Connect RPC + `/files`) on another,
 * both on 127.0.0.1. Every sandbox is a real local Docker container, so processes and files are
 * real; only the cloud around them is faked.
 *
 *   const fake = await startFakeE2b();
 *   const sbx = await Sandbox.create({ apiKey: fake.apiKey, apiUrl: fake.apiUrl, sandboxUrl: fake.sandboxUrl });
 *   await sbx.commands.run('echo hi');   // `docker exec` into the sandbox's container
 *   await fake.close();                  // removes every container it made
 *
 * Real: processes (`docker exec` as the envd user, output streamed as written, stdin, signals to
 * the pid inside the container, `Connect-Timeout-Ms` as the process lifetime), files and the
 * filesystem service (run inside the container as root and chowned to the user, like envd;
 * binary-safe), pause/resume (`docker pause`/`unpause`), lifetimes (the container is removed, or
 * paused with autoPause, when the timeout passes), metrics (`docker stats`, `df`). Containers run
 * with `--init --network none` and the label `agentic-sandbox.fake-e2b=1`; each gets a user `user`
 * (home `/home/user`), the default user of envd requests. All envd traffic arrives at one base
 * URL and is routed by `E2b-Sandbox-Id`/`E2b-Sandbox-Port` (or a `<port>-<id>.<domain>` Host);
 * an unknown, killed or paused sandbox gets the edge's 502.
 *
 * Network settings are accepted, validated and stored like E2B does, but NOT enforced: create's
 * `allow_internet_access` and `network: { allowOut, denyOut }`, and `PUT /sandboxes/{id}/network`
 * (which replaces them; 404 for an unknown sandbox, 409 for a paused one), are reported back by
 * `GET /sandboxes/{id}` (`allowInternetAccess`, `network`) and `sandboxes()`, while every container
 * has no network at all (`--network none`). Validation as E2B's: lists of strings; entries are
 * IPv4 addresses or CIDRs, or, in `allowOut` only, domains with an optional leading `*.` (400
 * otherwise, e.g. for a domain in `denyOut` or an entry with a port).
 *
 * Not implemented: PTY (`pty` in Start answers `unimplemented`), WatchDir and the watcher RPCs
 * (`unimplemented`), snapshots, fork, logs (always empty), Range requests on
 * `/files`, the binary (proto) Connect codec, Connect compression. envd's `/bin/bash` is mapped to
 * `/bin/sh` when the image has no bash. A process counts as killed by a signal (exitCode -1,
 * "signal: killed") only when the fake sent that signal; a process that dies of a signal on its own
 * reports exit status 128+N (docker exec cannot tell them apart).
 *
 * Only node:http and the docker CLI; never an outside address.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

// ---------------------------------------------------------------- public API

export type FaultPath = string | RegExp;

/**
 * Answer matching requests with an HTTP error instead of serving them. `path` is a substring of the
 * request path (or a RegExp tested against it). The default body is the plane's error format:
 * `{code, message}` on the API and envd REST, Connect error JSON on envd RPC paths, the edge's
 * "sandbox not found" body for 502 on envd. A string body is sent as is, `null` sends no body.
 */
export interface StatusFault {
  path: FaultPath;
  method?: string;
  plane?: 'api' | 'envd';
  status: number;
  /** How many requests get the error before normal service resumes. @default 1 */
  times?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Close the connection of the next process stream (Start or Connect) after it sent `n` events
 * (start/data/end, keepalives not counted), without the end-of-stream envelope. 0 cuts right after
 * the response headers.
 */
export interface CutStreamFault {
  cutStreamAfterEvents: number;
  path?: FaultPath;
  /** @default 1 */
  times?: number;
}

/** Hold matching requests for `delayMs` before serving them (a slow API or envd). */
export interface DelayFault {
  delayMs: number;
  path?: FaultPath;
  method?: string;
  plane?: 'api' | 'envd';
  /** @default 1 */
  times?: number;
}

export type Fault = StatusFault | CutStreamFault | DelayFault;

export interface FakeE2bOptions {
  /** The API key every control-plane request must carry in `X-API-Key`. @default any key starting with `e2b_` */
  requireKey?: string;
  /** Image of the sandbox containers. @default agentic-sandbox/busybox:1 */
  image?: string;
  /**
   * Interval of keepalive events on idle streams. 0 behaves like envd: the request's
   * `Keepalive-Ping-Interval` header in seconds, else 90 s. @default 1000
   */
  keepaliveMs?: number;
  /** Longest sandbox timeout accepted by create/connect/timeout, else 400. @default 3600 (the Hobby tier) */
  maxLifetimeSeconds?: number;
}

export interface RecordedRequest {
  plane: 'api' | 'envd';
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path with the query string. */
  url: string;
  headers: Record<string, any>;
  /** Parsed JSON, the messages of a Connect envelope stream, or `{contentType, bytes}`. */
  body?: any;
  /** HTTP status of the answer, once sent (streams: 200 even when they end with an error). */
  status?: number;
}

export interface FakeSandboxInfo {
  id: string;
  container: string;
  state: 'running' | 'paused';
  templateID: string;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  secure: boolean;
  envdAccessToken?: string;
  autoPause: boolean;
  startedAt: number;
  /** Expiry (epoch ms); meaningless while paused. */
  endAt: number;
  /** Pids (inside the container) of processes started through envd that still run. */
  processes: number[];
  /** `allow_internet_access` of the create or the last network update (null: not given). Not enforced. */
  allowInternetAccess: boolean | null;
  /** The egress lists of the create or the last network update, as sent. Not enforced. */
  network?: FakeNetwork;
}

/** E2B's egress lists (`network` on create and in `PUT /sandboxes/{id}/network`). */
export interface FakeNetwork {
  allowOut?: string[];
  denyOut?: string[];
}

export interface FakeE2b {
  /** Control plane base URL (the SDK's `apiUrl` / `E2B_API_URL`). */
  apiUrl: string;
  /** envd base URL for every sandbox (the SDK's `sandboxUrl` / `E2B_SANDBOX_URL`); routed by `E2b-Sandbox-Id`. */
  sandboxUrl: string;
  /** A key the control plane accepts (`requireKey` when given). */
  apiKey: string;
  /** Every request to either listener, in arrival order. */
  requests: RecordedRequest[];
  inject(fault: Fault): void;
  clearFaults(): void;
  sandboxes(): FakeSandboxInfo[];
  /** Removes every container it made and closes both listeners. */
  close(): Promise<void>;
}

export const FAKE_E2B_LABEL = 'agentic-sandbox.fake-e2b=1';
export const FAKE_ENVD_VERSION = '0.6.13';
export const ENVD_PORT = 49983;

export async function startFakeE2b(opts: FakeE2bOptions = {}): Promise<FakeE2b> {
  const fake = new Fake(opts);
  await fake.listen();
  return fake.handle();
}

// ---------------------------------------------------------------- constants

const DEFAULT_IMAGE = 'agentic-sandbox/busybox:1';
const LABEL_KEY = 'agentic-sandbox.fake-e2b';
const CLIENT_ID = '6532622b';
const DEFAULT_USER = 'user';
/** Default sandbox lifetime when create/resume omit `timeout`: v1 endpoints 15 s, v2 300 s (OpenAPI defaults). */
const V1_DEFAULT_TIMEOUT_S = 15;
const V2_DEFAULT_TIMEOUT_S = 300;
const ENVD_DEFAULT_KEEPALIVE_S = 90;
/** envd reads process output in chunks of at most this size. */
const OUTPUT_CHUNK_BYTES = 32 * 1024;
/** How long after the command's exit marker the fake still forwards output that was on its way. */
const EXIT_GRACE_MS = 100;
/** envd keeps the end event of an exited process this long for late `Connect` calls. */
const EXITED_RETENTION_MS = 30_000;
const MAX_BODY_BYTES = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;

const NOT_FOUND_TEXT = '404 page not found\n';
const ENVD_UNAUTHORIZED = 'unauthorized access, please provide a valid access token or method signing if supported';

type ConnectCode =
  | 'canceled' | 'unknown' | 'invalid_argument' | 'deadline_exceeded' | 'not_found' | 'already_exists'
  | 'permission_denied' | 'resource_exhausted' | 'failed_precondition' | 'aborted' | 'out_of_range'
  | 'unimplemented' | 'internal' | 'unavailable' | 'data_loss' | 'unauthenticated';

const CONNECT_HTTP_STATUS: Record<ConnectCode, number> = {
  canceled: 499, unknown: 500, invalid_argument: 400, deadline_exceeded: 504, not_found: 404, already_exists: 409,
  permission_denied: 403, resource_exhausted: 429, failed_precondition: 400, aborted: 409, out_of_range: 400,
  unimplemented: 501, internal: 500, unavailable: 503, data_loss: 500, unauthenticated: 401,
};

/** The Connect code a client infers from an HTTP status without a Connect body (for injected faults). */
function connectCodeForStatus(status: number): ConnectCode {
  const table: Record<number, ConnectCode> = {
    400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found', 409: 'already_exists',
    429: 'resource_exhausted', 499: 'canceled', 501: 'unimplemented', 502: 'unavailable', 503: 'unavailable', 504: 'deadline_exceeded',
  };
  return table[status] ?? (status >= 500 ? 'internal' : 'unknown');
}

class ConnectErr extends Error {
  constructor(readonly code: ConnectCode, message: string) {
    super(message);
  }
  toJSON() {
    return { code: this.code, message: this.message };
  }
}

type Json = Record<string, any>;

interface UserInfo { name: string; uid: number; gid: number; home: string }

interface ProcessConfig { cmd: string; args: string[]; envs: Record<string, string>; cwd?: string }

interface EndEvent { exitCode?: number; exited?: boolean; status: string; error?: string }

interface Proc {
  pid: number;
  config: ProcessConfig;
  tag?: string;
  child: ChildProcess;
  /** Open stdin of the process, or null when it was not requested or has been closed. */
  stdin: NodeJS.WritableStream | null;
  /** envd stops forwarding output once it sent SIGKILL/SIGTERM. */
  outputCancelled: boolean;
  /** Signal the fake delivered, to tell "killed" from a plain exit status. */
  signal?: number;
  subscribers: Set<ConnectStream>;
  end?: EndEvent;
}

interface SandboxMetric {
  timestamp: string; timestampUnix: number; cpuCount: number; cpuUsedPct: number;
  memUsed: number; memTotal: number; memCache: number; diskUsed: number; diskTotal: number;
}

interface Sandbox {
  id: string;
  container: string;
  templateID: string;
  alias: string;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  secure: boolean;
  accessToken?: string;
  autoPause: boolean;
  allowInternetAccess: boolean | null;
  network?: FakeNetwork;
  state: 'running' | 'paused';
  startedAt: Date;
  endAt: number;
  timer?: NodeJS.Timeout;
  users: Map<string, UserInfo>;
  procs: Map<number, Proc>;
  exited: Map<number, Proc>;
  /** Open envd streams; a pause or kill cuts them like the edge drops the connections. */
  streams: Set<ConnectStream>;
  metrics: SandboxMetric[];
  /** File metadata (envd keeps it in xattrs; BusyBox cannot set those). */
  fileMetadata: Map<string, Record<string, string>>;
}

// ---------------------------------------------------------------- the fake

class Fake {
  readonly requests: RecordedRequest[] = [];
  private readonly faults: Array<{ fault: Fault; left: number }> = [];
  private readonly boxes = new Map<string, Sandbox>();
  /** Every container made and not yet removed, including half-created ones. */
  private readonly containers = new Set<string>();
  private readonly image: string;
  private readonly keepaliveMs: number;
  private readonly maxLifetimeS: number;
  private readonly apiKey: string;
  private readonly marker = `__fake_e2b_${crypto.randomBytes(6).toString('hex')}__`;
  private readonly apiServer: http.Server;
  private readonly envdServer: http.Server;
  private apiUrl = '';
  private sandboxUrl = '';
  private closed = false;
  private readonly exitHook = () => {
    if (this.containers.size) {
      try {
        execFileSync('docker', ['rm', '-f', ...this.containers], { stdio: 'ignore' });
      } catch {
        /* best effort at process exit */
      }
    }
  };

  constructor(private readonly opts: FakeE2bOptions) {
    this.image = opts.image ?? DEFAULT_IMAGE;
    this.keepaliveMs = opts.keepaliveMs ?? 1000;
    this.maxLifetimeS = opts.maxLifetimeSeconds ?? 3600;
    this.apiKey = opts.requireKey ?? `e2b_${crypto.randomBytes(20).toString('hex')}`;
    const wrap = (plane: 'api' | 'envd') => (req: http.IncomingMessage, res: http.ServerResponse) => {
      const handler = plane === 'api' ? this.handleApi(req, res) : this.handleEnvd(req, res);
      handler.catch((e) => {
        if (!res.headersSent) sendJson(res, 500, { code: 500, message: `fake-e2b: internal error: ${errText(e)}` });
        else res.destroy();
      });
    };
    this.apiServer = http.createServer(wrap('api'));
    this.envdServer = http.createServer(wrap('envd'));
  }

  async listen() {
    await reapStaleContainers();
    const listen = (server: http.Server) =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
      });
    this.apiUrl = `http://127.0.0.1:${await listen(this.apiServer)}`;
    this.sandboxUrl = `http://127.0.0.1:${await listen(this.envdServer)}`;
    process.on('exit', this.exitHook);
  }

  handle(): FakeE2b {
    return {
      apiUrl: this.apiUrl,
      sandboxUrl: this.sandboxUrl,
      apiKey: this.apiKey,
      requests: this.requests,
      inject: (fault) => {
        const times = fault.times ?? 1;
        if (!(times > 0)) throw new Error(`fake-e2b: fault.times must be > 0, got ${times}`);
        this.faults.push({ fault, left: times });
      },
      clearFaults: () => {
        this.faults.length = 0;
      },
      sandboxes: () =>
        [...this.boxes.values()].map((sb) => ({
          id: sb.id, container: sb.container, state: sb.state, templateID: sb.alias, metadata: { ...sb.metadata },
          envVars: { ...sb.envVars }, secure: sb.secure, envdAccessToken: sb.accessToken, autoPause: sb.autoPause,
          startedAt: sb.startedAt.getTime(), endAt: sb.endAt, processes: [...sb.procs.keys()],
          allowInternetAccess: sb.allowInternetAccess, network: copyNetwork(sb.network),
        })),
      close: () => this.close(),
    };
  }

  private async close() {
    if (this.closed) return;
    this.closed = true;
    for (const sb of this.boxes.values()) {
      clearTimeout(sb.timer);
      for (const s of [...sb.streams]) s.cut();
    }
    this.boxes.clear();
    const closeServer = (server: http.Server) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SDK clients keep connections alive; do not wait for them to go idle.
        server.closeAllConnections();
      });
    await Promise.all([closeServer(this.apiServer), closeServer(this.envdServer)]);
    if (this.containers.size) await docker(['rm', '-f', ...this.containers]);
    this.containers.clear();
    process.off('exit', this.exitHook);
  }

  // ------------------------------------------------------------ request plumbing

  private record(plane: 'api' | 'envd', req: http.IncomingMessage, res: http.ServerResponse, url: URL, body?: Buffer): RecordedRequest {
    const rec: RecordedRequest = {
      plane, method: req.method ?? 'GET', path: url.pathname, url: url.pathname + url.search, headers: { ...req.headers },
      body: summarizeBody(String(req.headers['content-type'] ?? ''), body),
    };
    this.requests.push(rec);
    res.once('finish', () => (rec.status = res.statusCode));
    res.once('close', () => (rec.status ??= res.headersSent ? res.statusCode : undefined));
    return rec;
  }

  private takeFault<K extends 'status' | 'delayMs' | 'cutStreamAfterEvents'>(kind: K, plane: 'api' | 'envd', method: string, pathname: string) {
    for (const [i, entry] of this.faults.entries()) {
      const f = entry.fault as any;
      if (!(kind in f)) continue;
      if (f.plane && f.plane !== plane) continue;
      if (f.method && String(f.method).toUpperCase() !== method.toUpperCase()) continue;
      if (f.path !== undefined && !(typeof f.path === 'string' ? pathname.includes(f.path) : f.path.test(pathname))) continue;
      if (--entry.left <= 0) this.faults.splice(i, 1);
      return f as Fault;
    }
    return undefined;
  }

  /** Applies delay and status faults; true when the request was answered by a fault. */
  private async applyFaults(plane: 'api' | 'envd', req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<boolean> {
    const method = req.method ?? 'GET';
    const delay = this.takeFault('delayMs', plane, method, pathname) as DelayFault | undefined;
    if (delay) await sleep(delay.delayMs);
    const fault = this.takeFault('status', plane, method, pathname) as StatusFault | undefined;
    if (!fault) return false;
    const message = `fake-e2b: injected ${fault.status}`;
    let body = fault.body;
    if (body === undefined) {
      if (plane === 'api') body = { code: fault.status, message };
      else if (isRpcPath(pathname)) body = { code: connectCodeForStatus(fault.status), message };
      else if (fault.status === 502) body = { sandboxId: String(req.headers['e2b-sandbox-id'] ?? ''), message: 'The sandbox was not found', code: 502 };
      else body = { code: fault.status, message };
    }
    const headers = { ...(fault.headers ?? {}) };
    if (body === null) {
      res.writeHead(fault.status, headers);
      res.end();
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      res.writeHead(fault.status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(body);
    } else {
      sendJson(res, fault.status, body, headers);
    }
    return true;
  }

  // ------------------------------------------------------------ control plane

  private async handleApi(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake-e2b');
    const raw = await readBody(req);
    this.record('api', req, res, url, raw);
    if (raw === undefined) return apiError(res, 413, 'request body too large');
    if (await this.applyFaults('api', req, res, url.pathname)) return;
    const method = req.method ?? 'GET';
    const p = url.pathname.replace(/\/+$/, '') || '/';
    if (p === '/health' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end('Health check successful');
    }

    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || !key) return apiError(res, 401, 'You are not authenticated');
    const keyOk = this.opts.requireKey !== undefined ? key === this.opts.requireKey : key.startsWith('e2b_');
    if (!keyOk) return apiError(res, 401, 'Invalid API key, please visit https://e2b.dev/docs/api-key for more information.');

    let body: Json = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        return apiError(res, 400, `Error when parsing request: ${errText(e)}`);
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return apiError(res, 400, 'Error when parsing request: body must be a JSON object');
    }

    const m = /^\/(v2\/)?sandboxes(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(p);
    if (!m) return notFoundText(res);
    const v2 = Boolean(m[1]);
    const [, , rawId, action] = m;
    if (rawId === undefined) {
      if (method === 'POST') return this.create(res, body, v2);
      if (method === 'GET') return this.list(res, url, v2);
      return notFoundText(res);
    }
    if (!v2 && rawId === 'metrics' && action === undefined && method === 'GET') return this.multiMetrics(res, url);
    const id = rawId.split('-')[0];
    if (!/^[a-z0-9]+$/.test(id)) return apiError(res, 400, 'Invalid sandbox ID');
    const sb = this.boxes.get(id);
    const route = `${method} ${v2 ? 'v2/' : ''}${action ?? ''}`;
    switch (route) {
      case 'GET ':
        return sb ? sendJson(res, 200, this.detailJson(sb)) : sandboxNotFound(res, id);
      case 'DELETE ':
        if (!sb) return sandboxNotFound(res, id);
        await this.destroy(sb);
        return noContent(res);
      case 'POST timeout':
        return this.setTimeoutRoute(res, sb, id, body);
      case 'POST refreshes':
        return this.refresh(res, sb, id, body);
      case 'POST pause':
        if (!sb) return sandboxNotFound(res, id);
        if (sb.state === 'paused') return apiError(res, 409, `Error pausing sandbox - sandbox '${id}' is already paused`);
        await this.pause(sb);
        return noContent(res);
      case 'POST connect':
      case 'POST v2/connect':
        return this.connect(res, sb, id, body, v2);
      case 'POST resume':
        return this.resume(res, sb, id, body);
      case 'GET metrics':
        return this.metricsRoute(res, sb, id, url);
      case 'PUT network':
        return this.updateNetwork(res, sb, id, body);
      case 'GET logs':
      case 'GET v2/logs':
        return sb ? sendJson(res, 200, { logs: [], logEntries: [] }) : sandboxNotFound(res, id);
      default:
        return notFoundText(res);
    }
  }

  private checkTimeout(res: http.ServerResponse, timeout: unknown): number | undefined {
    if (typeof timeout !== 'number' || !Number.isInteger(timeout)) {
      apiError(res, 400, `validation error: timeout must be an integer number of seconds, got ${JSON.stringify(timeout)}`);
      return undefined;
    }
    if (timeout <= 0) {
      apiError(res, 400, 'Timeout must be greater than 0');
      return undefined;
    }
    if (timeout > this.maxLifetimeS) {
      const limit = this.maxLifetimeS % 3600 === 0 ? `${this.maxLifetimeS / 3600} hours` : `${this.maxLifetimeS} seconds`;
      apiError(res, 400, `Timeout cannot be greater than ${limit}`);
      return undefined;
    }
    return timeout;
  }

  private async create(res: http.ServerResponse, body: Json, v2: boolean) {
    if (typeof body.templateID !== 'string' || !body.templateID) {
      return apiError(res, 400, 'validation error: request body has an error: doesn\'t match schema: property "templateID" is missing');
    }
    const timeout = this.checkTimeout(res, body.timeout ?? (v2 ? V2_DEFAULT_TIMEOUT_S : V1_DEFAULT_TIMEOUT_S));
    if (timeout === undefined) return;
    for (const field of ['metadata', 'envVars'] as const) {
      const v = body[field];
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))) {
        return apiError(res, 400, `validation error: ${field} must be an object of strings`);
      }
    }
    if (body.allow_internet_access !== undefined && body.allow_internet_access !== null && typeof body.allow_internet_access !== 'boolean') {
      return apiError(res, 400, 'validation error: allow_internet_access must be a boolean');
    }
    let network: FakeNetwork | undefined;
    if (body.network !== undefined && body.network !== null) {
      const checked = checkNetwork(body.network);
      if (typeof checked === 'string') return apiError(res, 400, checked);
      network = checked;
    }
    const id = randomId(20);
    let container: string;
    let users: Map<string, UserInfo>;
    try {
      ({ container, users } = await this.startContainer(id));
    } catch (e) {
      return apiError(res, 500, `Failed to create sandbox: ${errText(e)}`, { error_code: 'sandbox_create_failed' });
    }
    // v2 create always secures envd; v1 only when asked (OpenAPI: NewSandboxV2 vs NewSandbox.secure).
    const secure = v2 || body.secure === true;
    const sb: Sandbox = {
      id, container, templateID: templateIdOf(body.templateID), alias: body.templateID,
      metadata: { ...(body.metadata ?? {}) }, envVars: { ...(body.envVars ?? {}) },
      secure, accessToken: secure ? crypto.randomBytes(16).toString('hex') : undefined,
      autoPause: body.autoPause === true,
      allowInternetAccess: typeof body.allow_internet_access === 'boolean' ? body.allow_internet_access : null,
      network,
      state: 'running', startedAt: new Date(), endAt: 0, users,
      procs: new Map(), exited: new Map(), streams: new Set(), metrics: [], fileMetadata: new Map(),
    };
    this.boxes.set(id, sb);
    this.arm(sb, timeout);
    sendJson(res, 201, this.sandboxJson(sb));
  }

  private async startContainer(id: string) {
    const run = await docker([
      'run', '-d', '--init', '--network', 'none', '--name', `fake-e2b-${id}`,
      '--label', FAKE_E2B_LABEL, '--label', `${LABEL_KEY}.sandbox-id=${id}`,
      '--label', `${LABEL_KEY}.owner-pid=${process.pid}`, '--label', `${LABEL_KEY}.owner-host=${os.hostname()}`,
      this.image, 'sleep', '2147483647',
    ]);
    if (run.code !== 0) throw new Error(`docker run ${this.image} failed: ${run.stderr.trim()}`);
    const container = run.stdout.toString().trim();
    this.containers.add(container);
    if (this.closed) {
      await this.removeContainer(container);
      throw new Error('fake-e2b is closed');
    }
    const setup = await docker(['exec', container, '/bin/sh', '-c', SETUP_SCRIPT]);
    if (setup.code !== 0) {
      await this.removeContainer(container);
      throw new Error(`setting up user 'user' in the container failed: ${setup.stderr.trim()}`);
    }
    return { container, users: parsePasswd(setup.stdout.toString()) };
  }

  private async removeContainer(container: string) {
    await docker(['rm', '-f', container]);
    this.containers.delete(container);
  }

  /** Sets the expiry to now + seconds (the /timeout semantics: may shorten). */
  private arm(sb: Sandbox, seconds: number) {
    clearTimeout(sb.timer);
    sb.endAt = Date.now() + seconds * 1000;
    sb.timer = setTimeout(() => {
      const gone = sb.autoPause ? this.pause(sb) : this.destroy(sb);
      gone.catch((e) => console.warn(`fake-e2b: ending sandbox ${sb.id} failed: ${errText(e)}`));
    }, seconds * 1000);
    sb.timer.unref();
  }

  /** Extends the expiry to at least now + seconds (connect/refresh semantics: never shortens). */
  private extend(sb: Sandbox, seconds: number) {
    if (Date.now() + seconds * 1000 > sb.endAt) this.arm(sb, seconds);
  }

  private async destroy(sb: Sandbox) {
    if (this.boxes.get(sb.id) !== sb) return;
    this.boxes.delete(sb.id);
    clearTimeout(sb.timer);
    for (const s of [...sb.streams]) s.cut();
    await this.removeContainer(sb.container);
  }

  private async pause(sb: Sandbox) {
    if (sb.state === 'paused' || this.boxes.get(sb.id) !== sb) return;
    clearTimeout(sb.timer);
    sb.state = 'paused';
    for (const s of [...sb.streams]) s.cut();
    const r = await docker(['pause', sb.container]);
    if (r.code !== 0) throw new Error(`docker pause failed: ${r.stderr.trim()}`);
  }

  private async unpause(sb: Sandbox, seconds: number) {
    const r = await docker(['unpause', sb.container]);
    if (r.code !== 0) throw new Error(`docker unpause failed: ${r.stderr.trim()}`);
    sb.state = 'running';
    this.arm(sb, seconds);
  }

  /** `PUT /sandboxes/{id}/network`: replaces the whole egress config (what the body leaves out is cleared). */
  private updateNetwork(res: http.ServerResponse, sb: Sandbox | undefined, id: string, body: Json) {
    if (!sb) return sandboxNotFound(res, id);
    const { allow_internet_access: internet, ...lists } = body;
    if (internet !== undefined && internet !== null && typeof internet !== 'boolean') {
      return apiError(res, 400, 'validation error: allow_internet_access must be a boolean');
    }
    const checked = checkNetwork(lists);
    if (typeof checked === 'string') return apiError(res, 400, checked);
    // the real API cannot reach a paused sandbox's VM (the status is documented, the message is ours)
    if (sb.state !== 'running') return apiError(res, 409, `Sandbox "${id}" is not running (state: ${sb.state})`);
    sb.network = Object.keys(checked).length ? checked : undefined;
    sb.allowInternetAccess = typeof internet === 'boolean' ? internet : null;
    noContent(res);
  }

  private setTimeoutRoute(res: http.ServerResponse, sb: Sandbox | undefined, id: string, body: Json) {
    // Paused sandboxes are not in the orchestrator's store: the real API answers 404 too.
    if (!sb || sb.state !== 'running') return sandboxNotFound(res, id);
    const timeout = this.checkTimeout(res, body.timeout);
    if (timeout === undefined) return;
    this.arm(sb, timeout);
    noContent(res);
  }

  private refresh(res: http.ServerResponse, sb: Sandbox | undefined, id: string, body: Json) {
    if (!sb || sb.state !== 'running') return sandboxNotFound(res, id);
    let duration = V1_DEFAULT_TIMEOUT_S;
    if (body.duration !== undefined) {
      const d = this.checkTimeout(res, body.duration);
      if (d === undefined) return;
      duration = Math.max(d, V1_DEFAULT_TIMEOUT_S);
    }
    this.extend(sb, duration);
    noContent(res);
  }

  private async connect(res: http.ServerResponse, sb: Sandbox | undefined, id: string, body: Json, v2: boolean) {
    if (body.timeout === undefined && !v2) return apiError(res, 400, 'validation error: request body has an error: doesn\'t match schema: property "timeout" is missing');
    const timeout = this.checkTimeout(res, body.timeout ?? V2_DEFAULT_TIMEOUT_S);
    if (timeout === undefined) return;
    if (!sb) return sandboxNotFound(res, id);
    if (sb.state === 'running') {
      this.extend(sb, timeout);
      return sendJson(res, 200, this.sandboxJson(sb));
    }
    await this.unpause(sb, timeout);
    sendJson(res, 201, this.sandboxJson(sb));
  }

  private async resume(res: http.ServerResponse, sb: Sandbox | undefined, id: string, body: Json) {
    const timeout = this.checkTimeout(res, body.timeout ?? V1_DEFAULT_TIMEOUT_S);
    if (timeout === undefined) return;
    if (!sb) return sandboxNotFound(res, id);
    if (sb.state === 'running') return apiError(res, 409, `Sandbox ${id} is already running`);
    if (typeof body.autoPause === 'boolean') sb.autoPause = body.autoPause;
    await this.unpause(sb, timeout);
    sendJson(res, 201, this.sandboxJson(sb));
  }

  private list(res: http.ServerResponse, url: URL, v2: boolean) {
    const q = url.searchParams;
    let filter: Record<string, string> = {};
    const meta = q.get('metadata');
    if (meta) {
      try {
        // The SDK encodes keys and values, joins them as a query string and the query encodes that again.
        filter = Object.fromEntries([...new URLSearchParams(meta)].map(([k, v]) => [decodeURIComponent(k), decodeURIComponent(v)]));
      } catch {
        return apiError(res, 400, 'Invalid metadata filter');
      }
    }
    const states = v2 ? (q.get('state') ?? 'running,paused').split(',').map((s) => s.trim()).filter(Boolean) : ['running'];
    if (states.some((s) => s !== 'running' && s !== 'paused')) return apiError(res, 400, `validation error: invalid state ${q.get('state')}`);
    const template = q.get('template');
    const startedAfter = q.get('startedAfter') ? Date.parse(q.get('startedAfter')!) : undefined;
    let all = [...this.boxes.values()].filter(
      (sb) =>
        states.includes(sb.state) &&
        Object.entries(filter).every(([k, v]) => sb.metadata[k] === v) &&
        (!template || template === sb.templateID || template === sb.alias) &&
        (startedAfter === undefined || sb.startedAt.getTime() > startedAfter),
    );
    const asc = q.get('order') === 'asc';
    all.sort((a, b) => (a.startedAt.getTime() - b.startedAt.getTime()) * (asc ? 1 : -1));
    const headers: Record<string, string> = {};
    if (states.includes('running')) headers['X-Total-Running'] = String(all.filter((sb) => sb.state === 'running').length);
    if (v2) {
      const limit = q.get('limit') ? Number(q.get('limit')) : 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) return apiError(res, 400, 'validation error: limit must be between 1 and 100');
      const offset = q.get('nextToken') ? Number(Buffer.from(q.get('nextToken')!, 'base64url').toString()) : 0;
      if (!Number.isInteger(offset) || offset < 0) return apiError(res, 400, 'Invalid next token');
      if (offset + limit < all.length) headers['X-Next-Token'] = Buffer.from(String(offset + limit)).toString('base64url');
      all = all.slice(offset, offset + limit);
    }
    sendJson(res, 200, all.map((sb) => this.listedJson(sb)), headers);
  }

  private sandboxJson(sb: Sandbox) {
    return {
      templateID: sb.templateID, sandboxID: sb.id, alias: sb.alias, clientID: CLIENT_ID, envdVersion: FAKE_ENVD_VERSION,
      ...(sb.accessToken ? { envdAccessToken: sb.accessToken } : {}), trafficAccessToken: null, domain: null,
    };
  }

  private listedJson(sb: Sandbox) {
    return {
      templateID: sb.templateID, alias: sb.alias, sandboxID: sb.id, clientID: CLIENT_ID,
      startedAt: sb.startedAt.toISOString(), endAt: new Date(sb.endAt).toISOString(),
      cpuCount: os.cpus().length, memoryMB: Math.round(os.totalmem() / MIB), diskSizeMB: hostDiskMB(),
      metadata: sb.metadata, state: sb.state, envdVersion: FAKE_ENVD_VERSION,
    };
  }

  private detailJson(sb: Sandbox) {
    return {
      ...this.listedJson(sb),
      ...(sb.accessToken ? { envdAccessToken: sb.accessToken } : {}),
      domain: null, allowInternetAccess: sb.allowInternetAccess,
      ...(sb.network ? { network: copyNetwork(sb.network) } : {}),
      lifecycle: { autoResume: false, onTimeout: sb.autoPause ? 'pause' : 'kill' },
    };
  }

  private async metricsRoute(res: http.ServerResponse, sb: Sandbox | undefined, id: string, url: URL) {
    if (!sb) return sandboxNotFound(res, id);
    if (sb.state === 'running') sb.metrics.push(await this.sample(sb));
    const start = url.searchParams.get('start');
    const end = url.searchParams.get('end');
    const inRange = (m: SandboxMetric) => (!start || m.timestampUnix >= Number(start)) && (!end || m.timestampUnix <= Number(end));
    sendJson(res, 200, sb.metrics.filter(inRange));
  }

  private async multiMetrics(res: http.ServerResponse, url: URL) {
    const ids = (url.searchParams.get('sandbox_ids') ?? '').split(',').filter(Boolean);
    if (ids.length > 100) return apiError(res, 400, 'too many sandbox IDs (max 100)');
    const out: Record<string, SandboxMetric> = {};
    for (const id of ids) {
      const sb = this.boxes.get(id);
      if (sb?.state === 'running') {
        const m = await this.sample(sb);
        sb.metrics.push(m);
        out[id] = m;
      }
    }
    sendJson(res, 200, { sandboxes: out });
  }

  /** One sample of the container's usage: docker stats for CPU/memory, df inside for disk. */
  private async sample(sb: Sandbox): Promise<SandboxMetric> {
    const [stats, df] = await Promise.all([
      docker(['stats', '--no-stream', '--format', '{{json .}}', sb.container]),
      docker(['exec', sb.container, 'df', '-P', '-k', '/']),
    ]);
    let cpuUsedPct = 0;
    let memUsed = 0;
    let memTotal = os.totalmem();
    try {
      const s = JSON.parse(stats.stdout.toString().trim().split('\n')[0]);
      cpuUsedPct = parseFloat(String(s.CPUPerc)) || 0;
      const [used, total] = String(s.MemUsage).split('/');
      memUsed = parseSize(used);
      memTotal = parseSize(total) || memTotal;
    } catch {
      /* a stopped container has no stats: report zeros */
    }
    let diskUsed = 0;
    let diskTotal = 0;
    const row = df.stdout.toString().trim().split('\n').pop()?.split(/\s+/);
    if (df.code === 0 && row && row.length >= 4) {
      diskTotal = Number(row[1]) * 1024;
      diskUsed = Number(row[2]) * 1024;
    }
    const now = new Date();
    return {
      timestamp: now.toISOString(), timestampUnix: Math.floor(now.getTime() / 1000), cpuCount: os.cpus().length,
      cpuUsedPct, memUsed, memTotal, memCache: 0, diskUsed, diskTotal,
    };
  }

  // ------------------------------------------------------------ envd

  private async handleEnvd(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake-e2b');
    const pathname = url.pathname;
    // StreamInput is client-streaming: its body is consumed incrementally by the handler.
    const streamingBody = pathname === '/process.Process/StreamInput';
    const body = streamingBody ? Buffer.alloc(0) : await readBody(req);
    const rec = this.record('envd', req, res, url, streamingBody ? undefined : body);
    if (body === undefined) return envdError(res, 413, 'request body too large');
    if (await this.applyFaults('envd', req, res, pathname)) return;

    const routed = this.routeEnvd(req, res);
    if (!routed) return;
    const sb = routed;
    const method = req.method ?? 'GET';

    if (pathname === '/health') {
      if (method !== 'GET') return methodNotAllowed(res);
      res.writeHead(204, { 'cache-control': 'no-store' });
      return res.end();
    }
    if (pathname === '/files') {
      if (method === 'GET') return this.download(req, res, url, sb);
      if (method === 'POST') return this.upload(req, res, url, sb, body);
      return methodNotAllowed(res);
    }
    if (sb.accessToken && req.headers['x-access-token'] !== sb.accessToken) return envdError(res, 401, ENVD_UNAUTHORIZED);
    if (pathname === '/envs') {
      if (method !== 'GET') return methodNotAllowed(res);
      return sendJson(res, 200, sb.envVars);
    }
    if (pathname === '/metrics') {
      if (method !== 'GET') return methodNotAllowed(res);
      const m = await this.sample(sb);
      return sendJson(res, 200, {
        ts: m.timestampUnix, cpu_count: m.cpuCount, cpu_used_pct: m.cpuUsedPct, mem_total: m.memTotal, mem_used: m.memUsed,
        mem_cache: m.memCache, mem_total_mib: Math.round(m.memTotal / MIB), mem_used_mib: Math.round(m.memUsed / MIB),
        disk_used: m.diskUsed, disk_total: m.diskTotal,
      });
    }
    const rpc = RPCS[pathname];
    if (!rpc) return notFoundText(res);
    if (method !== 'POST') return methodNotAllowed(res);
    return this.serveRpc(req, res, sb, rpc, body, rec);
  }

  /** The sandbox addressed by the routing headers (or a `<port>-<id>.<domain>` Host); answers the request itself when there is none. */
  private routeEnvd(req: http.IncomingMessage, res: http.ServerResponse): Sandbox | undefined {
    let id = req.headers['e2b-sandbox-id'] as string | undefined;
    let port = req.headers['e2b-sandbox-port'] as string | undefined;
    if (id === undefined && port === undefined) {
      const host = /^(\d+)-([a-z0-9]+)\./.exec(String(req.headers.host ?? ''));
      if (host) [, port, id] = host;
    }
    if (id === undefined || port === undefined) {
      envdError(res, 400, 'missing sandbox routing: send both E2b-Sandbox-Id and E2b-Sandbox-Port headers (or use a <port>-<sandboxID>.<domain> Host)');
      return undefined;
    }
    if (!/^\d+$/.test(port)) {
      envdError(res, 400, `invalid E2b-Sandbox-Port header: ${JSON.stringify(port)}`);
      return undefined;
    }
    const sb = this.boxes.get(id);
    if (!sb || sb.state !== 'running') {
      sendJson(res, 502, { sandboxId: id, message: 'The sandbox was not found', code: 502 });
      return undefined;
    }
    if (Number(port) !== ENVD_PORT) {
      sendJson(res, 502, { sandboxId: id, message: 'The sandbox is running but port is not open', port: Number(port), code: 502 });
      return undefined;
    }
    return sb;
  }

  /** The OS user of an envd request: `Authorization: Basic base64(<name>:)`, else the default user. */
  private authUser(req: http.IncomingMessage, sb: Sandbox): UserInfo {
    const auth = String(req.headers.authorization ?? '');
    const m = /^Basic\s+(.+)$/i.exec(auth);
    if (!m) return this.lookupUser(sb, DEFAULT_USER, true);
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const name = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
    return this.lookupUser(sb, name, false);
  }

  private lookupUser(sb: Sandbox, name: string, isDefault: boolean): UserInfo {
    const u = sb.users.get(name);
    if (!u) throw new ConnectErr('unauthenticated', isDefault ? `invalid default user: '${name}'` : `invalid username: '${name}'`);
    return u;
  }

  // ------------------------------------------------------------ envd /files

  /** envd's signed-URL check for /files: the header token, else a valid `signature` query. */
  private signingError(req: http.IncomingMessage, url: URL, sb: Sandbox, op: 'read' | 'write'): string | undefined {
    if (!sb.accessToken) return undefined;
    const header = req.headers['x-access-token'];
    if (header !== undefined) return header === sb.accessToken ? undefined : 'access token present in header but does not match';
    const q = url.searchParams;
    const signature = q.get('signature');
    if (!signature) return 'missing signature query parameter';
    const expiration = q.get('signature_expiration');
    const raw = `${q.get('path') ?? ''}:${op}:${q.get('username') ?? ''}:${sb.accessToken}${expiration ? `:${expiration}` : ''}`;
    const expected = 'v1_' + crypto.createHash('sha256').update(raw).digest('base64').replace(/=+$/, '');
    if (signature !== expected) return 'invalid signature';
    if (expiration && Number(expiration) < Date.now() / 1000) return 'signature is already expired';
    return undefined;
  }

  private fileUser(url: URL, sb: Sandbox): UserInfo | string {
    const name = url.searchParams.get('username') || DEFAULT_USER;
    return sb.users.get(name) ?? `error looking up user '${name}': user: unknown user ${name}`;
  }

  private async download(req: http.IncomingMessage, res: http.ServerResponse, url: URL, sb: Sandbox) {
    const denied = this.signingError(req, url, sb, 'read');
    if (denied) return envdError(res, 401, denied);
    const user = this.fileUser(url, sb);
    if (typeof user === 'string') return envdError(res, 401, user);
    const rawPath = url.searchParams.get('path') ?? '';
    let p: string;
    try {
      p = resolvePath(rawPath, user);
    } catch (e) {
      return envdError(res, 400, `error expanding and resolving path '${rawPath}': ${errText(e)}`);
    }
    const encoding = negotiateEncoding(String(req.headers['accept-encoding'] ?? ''));
    if (!encoding) return envdError(res, 406, 'no acceptable encoding found, supported: [identity, gzip]');
    const r = await docker(['exec', sb.container, '/bin/sh', '-c', READ_SCRIPT, '--', p], { maxStdout: MAX_BODY_BYTES });
    if (r.code === 3) return envdError(res, 404, `path '${p}' does not exist`);
    if (r.code === 4) return envdError(res, 400, `path '${p}' is a directory`);
    if (r.code !== 0) return envdError(res, 500, `error opening file '${p}': ${r.stderr.trim()}`);
    const headers: Record<string, string> = {
      'content-type': contentTypeFor(rawPath, r.stdout),
      'content-disposition': `inline; filename="${posix.basename(p)}"`,
      vary: 'Accept-Encoding',
    };
    if (encoding === 'gzip') {
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip' });
      return res.end(zlib.gzipSync(r.stdout));
    }
    res.writeHead(200, { ...headers, 'content-length': String(r.stdout.length) });
    res.end(r.stdout);
  }

  private async upload(req: http.IncomingMessage, res: http.ServerResponse, url: URL, sb: Sandbox, raw: Buffer) {
    const denied = this.signingError(req, url, sb, 'write');
    if (denied) return envdError(res, 401, denied);
    const user = this.fileUser(url, sb);
    if (typeof user === 'string') return envdError(res, 401, user);
    let body = raw;
    if (String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
      try {
        body = zlib.gunzipSync(raw);
      } catch (e) {
        return envdError(res, 400, `error decompressing request body: ${errText(e)}`);
      }
    }
    const contentType = String(req.headers['content-type'] ?? '');
    const mediaType = contentType.split(';')[0].trim().toLowerCase();
    const pathParam = url.searchParams.get('path');
    const metadata = metadataHeaders(req);
    const files: Array<{ target: string; data: Buffer }> = [];
    if (mediaType === 'application/octet-stream') {
      if (pathParam === null) return envdError(res, 400, 'path query parameter is required for raw body upload');
      files.push({ target: pathParam, data: body });
    } else if (mediaType.startsWith('multipart/')) {
      const parts = parseMultipart(body, contentType);
      if (!parts) return envdError(res, 500, 'error parsing multipart form: malformed multipart body');
      for (const part of parts) if (part.name === 'file') files.push({ target: pathParam ?? part.filename ?? '', data: part.data });
    } else {
      return envdError(res, 400, `unsupported content type: ${contentType}, expected multipart/form-data or application/octet-stream`);
    }
    const written: Array<{ path: string; name: string; type: 'file'; metadata?: Record<string, string> }> = [];
    for (const f of files) {
      let p: string;
      try {
        p = resolvePath(f.target, user);
      } catch (e) {
        return envdError(res, 400, `error resolving path: ${errText(e)}`);
      }
      if (written.some((w) => w.path === p)) {
        return envdError(res, 400, `you cannot upload multiple files to the same path '${p}' in one upload request, only the first specified file was uploaded`);
      }
      const r = await docker(['exec', '-i', sb.container, '/bin/sh', '-c', WRITE_SCRIPT, '--', p, `${user.uid}:${user.gid}`], { input: f.data });
      if (r.code === 4) return envdError(res, 400, `path is a directory: ${p}`);
      if (r.code === 5) return envdError(res, 500, `error ensuring directories: ${r.stderr.trim()}`);
      if (r.code !== 0) {
        if (/no space left/i.test(r.stderr)) return envdError(res, 507, `attempted to write ${f.data.length} bytes: not enough disk space available`);
        return envdError(res, 500, `error writing file: ${r.stderr.trim()}`);
      }
      if (metadata) sb.fileMetadata.set(p, metadata);
      const meta = sb.fileMetadata.get(p);
      written.push({ path: p, name: posix.basename(p), type: 'file', ...(meta ? { metadata: meta } : {}) });
    }
    // Real envd does not set a content type here, so Go sniffs text/plain.
    const payload = JSON.stringify(written);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(payload)) });
    res.end(payload);
  }

  // ------------------------------------------------------------ envd Connect RPC

  private async serveRpc(req: http.IncomingMessage, res: http.ServerResponse, sb: Sandbox, rpc: Rpc, body: Buffer, rec: RecordedRequest) {
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const expected = rpc.kind === 'unary' ? 'application/json' : 'application/connect+json';
    if (contentType !== expected) {
      res.writeHead(415, { 'accept-post': expected });
      return res.end();
    }
    const fail = (err: ConnectErr) => {
      if (rpc.kind === 'unary') return sendJson(res, CONNECT_HTTP_STATUS[err.code], err.toJSON());
      const s = new ConnectStream(res, {}, 0);
      s.end(err);
    };
    const version = req.headers['connect-protocol-version'];
    if (version !== undefined && version !== '1') return fail(new ConnectErr('invalid_argument', `connect-protocol-version must be "1": got "${version}"`));
    const timeoutHeader = req.headers['connect-timeout-ms'];
    if (timeoutHeader !== undefined && !/^\d{1,10}$/.test(String(timeoutHeader))) {
      return fail(new ConnectErr('invalid_argument', `protocol error: invalid connect timeout value: ${timeoutHeader}`));
    }
    const timeoutMs = timeoutHeader === undefined ? 0 : Number(timeoutHeader);
    let user: UserInfo;
    try {
      user = this.authUser(req, sb);
    } catch (e) {
      return fail(asConnectErr(e));
    }
    const ctx: RpcCtx = { fake: this, req, sb, user, timeoutMs, keepaliveMs: this.keepaliveFor(req) };

    if (rpc.kind === 'unary') {
      let msg: Json = {};
      if (body.length) {
        try {
          msg = JSON.parse(body.toString('utf8'));
        } catch (e) {
          return fail(new ConnectErr('invalid_argument', `unmarshal into ${rpc.input}: ${errText(e)}`));
        }
      }
      try {
        return sendJson(res, 200, await rpc.run!(ctx, msg));
      } catch (e) {
        return fail(asConnectErr(e));
      }
    }

    if (rpc.kind === 'client') return this.streamInput(ctx, res, rec);

    let msg: Json;
    try {
      msg = decodeSingleEnvelope(body, rpc.input);
    } catch (e) {
      return fail(asConnectErr(e));
    }
    const pathname = new URL(req.url ?? '/', 'http://fake-e2b').pathname;
    const cut = rpc.processStream ? (this.takeFault('cutStreamAfterEvents', 'envd', 'POST', pathname) as CutStreamFault | undefined) : undefined;
    const stream = new ConnectStream(res, rpc.keepalive, ctx.keepaliveMs, cut?.cutStreamAfterEvents);
    sb.streams.add(stream);
    stream.onClose(() => sb.streams.delete(stream));
    try {
      await rpc.stream!(ctx, stream, msg);
    } catch (e) {
      stream.end(asConnectErr(e));
    }
  }

  private keepaliveFor(req: http.IncomingMessage): number {
    if (this.keepaliveMs > 0) return this.keepaliveMs;
    const s = Number(req.headers['keepalive-ping-interval']);
    return (Number.isInteger(s) && s > 0 ? s : ENVD_DEFAULT_KEEPALIVE_S) * 1000;
  }

  /** process.Process/StreamInput: envelopes arrive as the client writes them; each is applied at once. */
  private streamInput(ctx: RpcCtx, res: http.ServerResponse, rec: RecordedRequest) {
    const messages: Json[] = [];
    rec.body = messages;
    let buf = Buffer.alloc(0);
    let proc: Proc | undefined;
    let failed: ConnectErr | undefined;
    const finish = () => {
      const s = new ConnectStream(res, {}, 0);
      if (failed) return s.end(failed);
      s.send({});
      s.end();
    };
    ctx.req.on('data', (chunk: Buffer) => {
      if (failed) return;
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && !failed) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 5 + len) break;
        const flags = buf[0];
        const data = buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
        try {
          if (flags & 1) throw new ConnectErr('internal', 'protocol error: received compressed message without negotiated compression');
          const msg = JSON.parse(data.toString('utf8'));
          messages.push(msg);
          if (msg.start) proc = this.findProc(ctx.sb, msg.start.process, false);
          else if (msg.data) {
            if (!proc) throw new ConnectErr('failed_precondition', 'the first StreamInput message must be a start event selecting the process');
            writeInput(proc, msg.data.input);
          } else if (!msg.keepalive) throw new ConnectErr('unimplemented', 'invalid event type <nil>');
        } catch (e) {
          failed = asConnectErr(e);
        }
      }
    });
    ctx.req.on('end', finish);
    ctx.req.on('error', () => res.destroy());
  }

  findProc(sb: Sandbox, selector: any, includeExited: boolean): Proc {
    if (selector && selector.pid !== undefined) {
      const pid = Number(selector.pid);
      const p = sb.procs.get(pid) ?? (includeExited ? sb.exited.get(pid) : undefined);
      if (!p) throw new ConnectErr('not_found', `process with pid ${selector.pid} not found`);
      return p;
    }
    if (selector && typeof selector.tag === 'string') {
      const all = [...sb.procs.values(), ...(includeExited ? sb.exited.values() : [])];
      const p = all.find((x) => x.tag === selector.tag);
      if (!p) throw new ConnectErr('not_found', `process with tag ${selector.tag} not found`);
      return p;
    }
    throw new ConnectErr('unimplemented', 'invalid input type <nil>');
  }

  /**
   * Starts a process in the sandbox: `docker exec` of a /bin/sh wrapper that checks the cwd, runs the
   * command as its child and reports the child's pid and exit status in marker lines on stderr
   * (which the fake strips), so the pid is the command's pid inside the container and the end event
   * follows the command's exit even when orphaned grandchildren keep the output pipes open (envd
   * closes them at exit too). Resolves once the pid is known, after `first` got the start event and
   * any output written meanwhile.
   */
  launch(sb: Sandbox, user: UserInfo, config: ProcessConfig, tag: string | undefined, stdinEnabled: boolean, cwd: string, first: ConnectStream): Promise<Proc> {
    const env: Record<string, string> = { HOME: user.home, USER: user.name, LOGNAME: user.name, ...sb.envVars, ...config.envs };
    const args = ['exec', ...(stdinEnabled ? ['-i'] : []), '-u', user.name];
    for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
    args.push(sb.container, '/bin/sh', '-c', PROCESS_WRAPPER, 'sh', this.marker, cwd, config.cmd, ...config.args);
    const child = spawn('docker', args, { stdio: [stdinEnabled ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => {
      /* EPIPE after the process exited: like envd, input to a dead process is dropped */
    });
    const proc: Proc = { pid: 0, config, tag, child, stdin: child.stdin, outputCancelled: false, subscribers: new Set() };
    const marker = Buffer.from(this.marker);
    return new Promise<Proc>((resolve, reject) => {
      let started = false;
      let failure: string | undefined;
      let exitStatus: number | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      let pending = Buffer.alloc(0);
      let early: Array<['stdout' | 'stderr', Buffer]> = [];
      const output = (kind: 'stdout' | 'stderr', chunk: Buffer) => {
        if (!chunk.length) return;
        if (started) this.emitOutput(proc, kind, chunk);
        else early.push([kind, chunk]);
      };
      const finish = () => {
        clearTimeout(graceTimer);
        if (!proc.end) this.finishProc(sb, proc, exitStatus ?? child.exitCode);
      };
      const control = (line: string) => {
        if (line.startsWith('PID=')) {
          proc.pid = Number(line.slice(4));
          started = true;
          sb.procs.set(proc.pid, proc);
          proc.subscribers.add(first);
          first.onClose(() => proc.subscribers.delete(first));
          first.send({ event: { start: { pid: proc.pid } } });
          for (const [kind, chunk] of early) this.emitOutput(proc, kind, chunk);
          early = [];
          resolve(proc);
        } else if (line.startsWith('EXIT=')) {
          exitStatus = Number(line.slice(5));
          // Output the command wrote just before exiting may still be on its way through the other pipe.
          graceTimer = setTimeout(finish, EXIT_GRACE_MS);
        } else {
          failure = line;
        }
      };
      child.stdout!.on('data', (c: Buffer) => output('stdout', c));
      child.stderr!.on('data', (c: Buffer) => {
        // Marker lines are written atomically but may follow a partial line of the command's stderr.
        let buf = Buffer.concat([pending, c]);
        for (;;) {
          const at = buf.indexOf(marker);
          if (at < 0) {
            const keep = partialPrefixLength(buf, marker);
            output('stderr', buf.subarray(0, buf.length - keep));
            pending = buf.subarray(buf.length - keep);
            return;
          }
          const nl = buf.indexOf(10, at);
          if (nl < 0) {
            output('stderr', buf.subarray(0, at));
            pending = buf.subarray(at);
            return;
          }
          output('stderr', buf.subarray(0, at));
          control(buf.subarray(at + marker.length, nl).toString('utf8'));
          buf = buf.subarray(nl + 1);
        }
      });
      child.on('error', (e) => {
        if (!started) reject(new ConnectErr('internal', `error starting process '${config.cmd}': ${e.message}`));
      });
      child.on('close', () => {
        if (started) return finish();
        if (failure === 'NOCWD') return reject(new ConnectErr('invalid_argument', `cwd '${cwd}' does not exist`));
        if (failure === 'NOTDIR' || failure === 'NOACCESS') {
          const why = failure === 'NOTDIR' ? 'not a directory' : 'permission denied';
          return reject(new ConnectErr('invalid_argument', `error starting process '${[config.cmd, ...config.args].join(' ')}': chdir ${cwd}: ${why}`));
        }
        const said = Buffer.concat([...early.map(([, c]) => c), pending]).toString('utf8').trim();
        reject(new ConnectErr('internal', `error starting process '${config.cmd}': ${said || `docker exec exited with ${child.exitCode}`}`));
      });
    });
  }

  private emitOutput(proc: Proc, kind: 'stdout' | 'stderr', chunk: Buffer) {
    if (proc.outputCancelled || proc.end) return;
    for (let off = 0; off < chunk.length; off += OUTPUT_CHUNK_BYTES) {
      const msg = { event: { data: { [kind]: chunk.subarray(off, off + OUTPUT_CHUNK_BYTES).toString('base64') } } };
      for (const s of [...proc.subscribers]) s.send(msg);
    }
  }

  private finishProc(sb: Sandbox, proc: Proc, code: number | null) {
    let end: EndEvent;
    if (code === null || (proc.signal !== undefined && code === 128 + proc.signal)) {
      const name = SIGNAL_TEXT[proc.signal ?? 9] ?? `signal ${proc.signal}`;
      end = { exitCode: -1, status: `signal: ${name}`, error: `signal: ${name}` };
    } else if (code === 0) {
      end = { exited: true, status: 'exit status 0' };
    } else {
      end = { exitCode: code, exited: true, status: `exit status ${code}`, error: `exit status ${code}` };
    }
    proc.end = end;
    if (sb.procs.get(proc.pid) === proc) sb.procs.delete(proc.pid);
    sb.exited.set(proc.pid, proc);
    setTimeout(() => {
      if (sb.exited.get(proc.pid) === proc) sb.exited.delete(proc.pid);
    }, EXITED_RETENTION_MS).unref();
    for (const s of [...proc.subscribers]) {
      s.send({ event: { end } });
      s.end();
    }
    proc.subscribers.clear();
  }

  async signal(sb: Sandbox, proc: Proc, sig: number) {
    if (sig === 9 || sig === 15) proc.outputCancelled = true;
    proc.signal = sig;
    const r = await docker(['exec', sb.container, '/bin/sh', '-c', 'kill -"$1" "$2"', '--', String(sig), String(proc.pid)]);
    if (r.code !== 0 && !proc.end) throw new ConnectErr('internal', `error sending signal: ${r.stderr.trim() || `kill exited with ${r.code}`}`);
  }

  async exec(sb: Sandbox, script: string, args: string[]) {
    return docker(['exec', sb.container, '/bin/sh', '-c', script, '--', ...args]);
  }
}

// ---------------------------------------------------------------- envd RPC table

interface RpcCtx {
  fake: Fake;
  req: http.IncomingMessage;
  sb: Sandbox;
  user: UserInfo;
  /** Connect-Timeout-Ms of the request; 0 = none. */
  timeoutMs: number;
  keepaliveMs: number;
}

interface Rpc {
  kind: 'unary' | 'server' | 'client';
  /** Request message name, for error texts. */
  input: string;
  /** Unary handler: the response message, or throws a ConnectErr. */
  run?: (ctx: RpcCtx, msg: Json) => Promise<Json>;
  /** Server-streaming handler: sends on `stream` and ends it (or throws before/while streaming). */
  stream?: (ctx: RpcCtx, stream: ConnectStream, msg: Json) => Promise<void>;
  /** The keepalive message of a server stream. */
  keepalive?: Json;
  /** Process streams (Start, Connect) are the ones `cutStreamAfterEvents` applies to. */
  processStream?: boolean;
}

const unary = (input: string, run: Rpc['run']): Rpc => ({ kind: 'unary', input, run });
const notImplemented = (name: string) => async (): Promise<Json> => {
  throw new ConnectErr('unimplemented', `fake-e2b: ${name} is not implemented`);
};

const RPCS: Record<string, Rpc> = {
  '/process.Process/Start': {
    kind: 'server', input: 'process.StartRequest', keepalive: { event: { keepalive: {} } }, processStream: true,
    stream: async ({ fake, sb, user, timeoutMs }, stream, msg) => {
      const p = msg.process;
      if (!p || typeof p !== 'object' || typeof p.cmd !== 'string' || !p.cmd) throw new ConnectErr('invalid_argument', 'process.cmd is required');
      if (msg.pty) throw new ConnectErr('unimplemented', 'fake-e2b: PTY processes are not implemented');
      const config: ProcessConfig = { cmd: p.cmd, args: stringArray(p.args, 'process.args'), envs: stringMap(p.envs, 'process.envs') };
      if (typeof p.cwd === 'string') config.cwd = p.cwd;
      let cwd: string;
      try {
        cwd = resolvePath(config.cwd ?? '', user);
      } catch (e) {
        throw new ConnectErr('invalid_argument', errText(e));
      }
      // The process lifetime is the request deadline; a client that merely disconnects does not kill it.
      let proc: Proc | undefined;
      let expired = false;
      if (timeoutMs > 0) {
        // The kill has its own timer: the stream's deadline timer goes when the client disconnects
        // (a client whose own timeout fires first), and the process must die at the deadline anyway.
        const kill = setTimeout(() => {
          expired = true;
          if (proc && !proc.end) fake.signal(sb, proc, 9).catch(() => undefined);
        }, timeoutMs);
        kill.unref();
        stream.setDeadline(timeoutMs);
      }
      const stdinEnabled = msg.stdin === undefined || msg.stdin === null ? true : Boolean(msg.stdin);
      proc = await fake.launch(sb, user, config, typeof msg.tag === 'string' ? msg.tag : undefined, stdinEnabled, cwd, stream);
      if (expired && !proc.end) await fake.signal(sb, proc, 9).catch(() => undefined);
    },
  },
  '/process.Process/Connect': {
    kind: 'server', input: 'process.ConnectRequest', keepalive: { event: { keepalive: {} } }, processStream: true,
    stream: async ({ fake, sb, timeoutMs }, stream, msg) => {
      const proc = fake.findProc(sb, msg.process, true);
      if (timeoutMs > 0) stream.setDeadline(timeoutMs);
      stream.send({ event: { start: { pid: proc.pid } } });
      if (proc.end) {
        stream.send({ event: { end: proc.end } });
        return stream.end();
      }
      proc.subscribers.add(stream);
      stream.onClose(() => proc.subscribers.delete(stream));
    },
  },
  '/process.Process/List': unary('process.ListRequest', async ({ sb }) => ({
    processes: [...sb.procs.values()].map((p) => ({
      config: {
        cmd: p.config.cmd,
        ...(p.config.args.length ? { args: p.config.args } : {}),
        ...(Object.keys(p.config.envs).length ? { envs: p.config.envs } : {}),
        ...(p.config.cwd !== undefined ? { cwd: p.config.cwd } : {}),
      },
      pid: p.pid,
      ...(p.tag !== undefined ? { tag: p.tag } : {}),
    })),
  })),
  '/process.Process/SendInput': unary('process.SendInputRequest', async ({ fake, sb }, msg) => {
    writeInput(fake.findProc(sb, msg.process, false), msg.input);
    return {};
  }),
  '/process.Process/StreamInput': { kind: 'client', input: 'process.StreamInputRequest' },
  '/process.Process/SendSignal': unary('process.SendSignalRequest', async ({ fake, sb }, msg) => {
    const proc = fake.findProc(sb, msg.process, false);
    const sig = msg.signal === 'SIGNAL_SIGKILL' || msg.signal === 9 ? 9 : msg.signal === 'SIGNAL_SIGTERM' || msg.signal === 15 ? 15 : undefined;
    if (sig === undefined) throw new ConnectErr('unimplemented', `invalid signal: ${msg.signal ?? 'SIGNAL_UNSPECIFIED'}`);
    await fake.signal(sb, proc, sig);
    return {};
  }),
  '/process.Process/CloseStdin': unary('process.CloseStdinRequest', async ({ fake, sb }, msg) => {
    const proc = fake.findProc(sb, msg.process, false);
    proc.stdin?.end();
    proc.stdin = null;
    return {};
  }),
  '/process.Process/Update': unary('process.UpdateRequest', async ({ fake, sb }, msg) => {
    fake.findProc(sb, msg.process, false);
    if (msg.pty) throw new ConnectErr('internal', 'error resizing tty: tty not assigned to process');
    return {};
  }),

  '/filesystem.Filesystem/Stat': unary('filesystem.StatRequest', async ({ fake, sb, user }, msg) => {
    const p = fsPath(msg.path, user);
    const entries = await entryInfos(fake, sb, [p]);
    if (!entries.length) throw new ConnectErr('not_found', `file not found: lstat ${p}: no such file or directory`);
    return { entry: entries[0] };
  }),
  '/filesystem.Filesystem/MakeDir': unary('filesystem.MakeDirRequest', async ({ fake, sb, user }, msg) => {
    const p = fsPath(msg.path, user);
    const r = await fake.exec(sb, MKDIR_SCRIPT, [p, `${user.uid}:${user.gid}`]);
    if (r.code === 3) throw new ConnectErr('already_exists', `directory already exists: ${p}`);
    if (r.code === 4) throw new ConnectErr('invalid_argument', `path already exists but it is not a directory: ${p}`);
    if (r.code !== 0) throw new ConnectErr('internal', r.stderr.trim() || `mkdir exited with ${r.code}`);
    return { entry: { name: baseName(p), type: 'FILE_TYPE_DIRECTORY', path: p } };
  }),
  '/filesystem.Filesystem/Move': unary('filesystem.MoveRequest', async ({ fake, sb, user }, msg) => {
    const src = fsPath(msg.source, user);
    const dst = fsPath(msg.destination, user);
    const r = await fake.exec(sb, MOVE_SCRIPT, [src, dst, `${user.uid}:${user.gid}`]);
    if (r.code === 3) throw new ConnectErr('not_found', `source file not found: rename ${src} ${dst}: no such file or directory`);
    if (r.code === 5) throw new ConnectErr('internal', r.stderr.trim());
    if (r.code !== 0) throw new ConnectErr('internal', `error renaming: ${r.stderr.trim()}`);
    for (const [k, v] of [...sb.fileMetadata]) {
      if (k === src || k.startsWith(src + '/')) {
        sb.fileMetadata.delete(k);
        sb.fileMetadata.set(dst + k.slice(src.length), v);
      }
    }
    const entries = await entryInfos(fake, sb, [dst]);
    if (!entries.length) throw new ConnectErr('not_found', `file not found: lstat ${dst}: no such file or directory`);
    return { entry: entries[0] };
  }),
  '/filesystem.Filesystem/ListDir': unary('filesystem.ListDirRequest', async ({ fake, sb, user }, msg) => {
    const p = fsPath(msg.path, user);
    const depth = msg.depth === undefined ? 1 : Number(msg.depth);
    if (!Number.isInteger(depth) || depth < 0) throw new ConnectErr('invalid_argument', `invalid depth ${JSON.stringify(msg.depth)}`);
    const r = await fake.exec(sb, LISTDIR_SCRIPT, [p, String(depth || 1), INFO_LOOP]);
    if (r.code === 3) throw new ConnectErr('not_found', `path not found: lstat ${p}: no such file or directory`);
    if (r.code === 4) throw new ConnectErr('invalid_argument', `path is not a directory: ${p}`);
    if (r.code !== 0) throw new ConnectErr('internal', `error reading directory ${p}: ${r.stderr.trim()}`);
    const entries = parseInfos(r.stdout, sb);
    entries.sort((a, b) => comparePaths(a.path, b.path));
    return entries.length ? { entries } : {};
  }),
  '/filesystem.Filesystem/Remove': unary('filesystem.RemoveRequest', async ({ fake, sb, user }, msg) => {
    const p = fsPath(msg.path, user);
    const r = await fake.exec(sb, 'rm -rf -- "$1"', [p]);
    if (r.code !== 0) throw new ConnectErr('internal', `error removing file or directory: ${r.stderr.trim()}`);
    for (const k of [...sb.fileMetadata.keys()]) if (k === p || k.startsWith(p + '/')) sb.fileMetadata.delete(k);
    return {};
  }),
  '/filesystem.Filesystem/WatchDir': {
    kind: 'server', input: 'filesystem.WatchDirRequest', keepalive: { keepalive: {} },
    stream: async () => {
      throw new ConnectErr('unimplemented', 'fake-e2b: WatchDir is not implemented');
    },
  },
  '/filesystem.Filesystem/CreateWatcher': unary('filesystem.CreateWatcherRequest', notImplemented('CreateWatcher')),
  '/filesystem.Filesystem/GetWatcherEvents': unary('filesystem.GetWatcherEventsRequest', notImplemented('GetWatcherEvents')),
  '/filesystem.Filesystem/RemoveWatcher': unary('filesystem.RemoveWatcherRequest', notImplemented('RemoveWatcher')),
};

function isRpcPath(p: string) {
  return p.startsWith('/process.Process/') || p.startsWith('/filesystem.Filesystem/');
}

function writeInput(proc: Proc, input: any) {
  if (input && typeof input.pty === 'string') {
    throw new ConnectErr('internal', 'error writing to tty: tty not assigned to process — input should be written to the stdin, not the tty');
  }
  if (!input || typeof input.stdin !== 'string') throw new ConnectErr('unimplemented', 'invalid input type <nil>');
  if (!proc.stdin) throw new ConnectErr('internal', 'error writing to stdin: stdin not enabled or closed');
  proc.stdin.write(Buffer.from(input.stdin, 'base64'));
}

function fsPath(p: unknown, user: UserInfo): string {
  if (p !== undefined && typeof p !== 'string') throw new ConnectErr('invalid_argument', `path must be a string, got ${JSON.stringify(p)}`);
  try {
    return resolvePath(p ?? '', user);
  } catch (e) {
    throw new ConnectErr('invalid_argument', errText(e));
  }
}

async function entryInfos(fake: Fake, sb: Sandbox, paths: string[]) {
  const r = await fake.exec(sb, INFO_LOOP, paths);
  if (r.code !== 0) throw new ConnectErr('internal', `error getting file info: ${r.stderr.trim()}`);
  return parseInfos(r.stdout, sb);
}

// ---------------------------------------------------------------- shell scripts run in the container

/** Creates user `user` (first free uid/gid >= 1000) and its home when the image lacks them, then prints /etc/passwd. */
const SETUP_SCRIPT = `
set -e
if ! grep -q '^user:' /etc/passwd; then
  uid=1000; while grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd; do uid=$((uid+1)); done
  gid=$uid; while grep -q "^[^:]*:[^:]*:$gid:" /etc/group 2>/dev/null; do gid=$((gid+1)); done
  echo "user:x:$uid:$gid:user:/home/user:/bin/sh" >> /etc/passwd
  echo "user:x:$gid:" >> /etc/group
fi
home=$(grep '^user:' /etc/passwd | cut -d: -f6)
mkdir -p "$home"
chown "$(id -u user):$(id -g user)" "$home"
cat /etc/passwd
`;

/**
 * $1 marker, $2 cwd, $3 cmd, $4... args. The command runs as a child of this wrapper, its stdin via
 * fd 3 (an asynchronous list would otherwise get /dev/null), its output through two FIFOs that `cat`
 * relays to docker's pipes. When the command exits the relays get 100 ms to drain and are then
 * stopped, so children it left behind do not hold docker's pipes (which would delay the exit and
 * stall every later `docker exec` on the container for seconds); they get EPIPE on their next write,
 * as under envd, which closes the pipes at exit. The wrapper's own stderr is /dev/null, so the
 * shell's job notices ("Killed") do not reach the client.
 */
const PROCESS_WRAPPER = `m=$1; d=$2; shift 2
if [ ! -d "$d" ]; then if [ -e "$d" ]; then printf '%sNOTDIR\\n' "$m" >&2; else printf '%sNOCWD\\n' "$m" >&2; fi; exit 1; fi
cd -- "$d" 2>/dev/null || { printf '%sNOACCESS\\n' "$m" >&2; exit 1; }
c=$1; shift
if [ "$c" = /bin/bash ] && [ ! -x /bin/bash ]; then c=/bin/sh; fi
exec 3<&0 4>&2 2>/dev/null
t=$(mktemp -d) && mkfifo "$t/o" "$t/e" || t=
if [ -n "$t" ]; then
  cat "$t/o" </dev/null 3<&- 4>&- &
  co=$!
  cat "$t/e" </dev/null >&4 3<&- 4>&- &
  ce=$!
  "$c" "$@" <&3 >"$t/o" 2>"$t/e" 3<&- 4>&- &
else
  "$c" "$@" <&3 2>&4 3<&- 4>&- &
fi
p=$!
exec 3<&-
printf '%sPID=%s\\n' "$m" "$p" >&4
wait "$p"; s=$?
if [ -n "$t" ]; then
  ( sleep 0.1; kill $co $ce ) </dev/null >/dev/null 4>&- &
  wait $co $ce
  rm -rf "$t"
fi
printf '%sEXIT=%s\\n' "$m" "$s" >&4
exit "$s"`;

const READ_SCRIPT = `[ -e "$1" ] || exit 3; [ -d "$1" ] && exit 4; exec cat -- "$1"`;

/** envd's EnsureDirs: create each missing parent, owned by the user ($2 = uid:gid). */
const ENSURE_FN = `ensure() {
  [ -d "$1" ] && return 0
  if [ -e "$1" ] || [ -L "$1" ]; then echo "path is a file: $1" >&2; return 1; fi
  ensure "$(dirname -- "$1")" || return 1
  mkdir -- "$1" 2>/dev/null || [ -d "$1" ] || { echo "failed to create directory: $1" >&2; return 1; }
  chown "$o" "$1"
}`;

const WRITE_SCRIPT = `p=$1; o=$2
${ENSURE_FN}
ensure "$(dirname -- "$p")" || exit 5
[ -d "$p" ] && exit 4
cat > "$p" || exit 6
chown "$o" "$p"`;

const MKDIR_SCRIPT = `p=$1; o=$2
${ENSURE_FN}
[ -d "$p" ] && exit 3
if [ -e "$p" ] || [ -L "$p" ]; then exit 4; fi
ensure "$p" || exit 5`;

const MOVE_SCRIPT = `s=$1; d=$2; o=$3
${ENSURE_FN}
[ -e "$s" ] || [ -L "$s" ] || exit 3
ensure "$(dirname -- "$d")" || exit 5
mv -f -T -- "$s" "$d"`;

/** For each path: path, lstat fields, resolved symlink target, target's raw mode; all NUL-terminated. */
const INFO_LOOP = `for p do
  s=$(stat -c '%f|%s|%u|%g|%U|%G|%Y|%y' -- "$p" 2>/dev/null) || continue
  t=; tm=
  if [ -L "$p" ]; then
    t=$(readlink -f -- "$p" 2>/dev/null); [ -n "$t" ] || t=$p
    tm=$(stat -L -c '%f' -- "$p" 2>/dev/null)
  fi
  printf '%s\\0%s\\0%s\\0%s\\0' "$p" "$s" "$t" "$tm"
done`;

/** $1 dir, $2 depth, $3 INFO_LOOP. */
const LISTDIR_SCRIPT = `r=$(readlink -f -- "$1" 2>/dev/null) && [ -e "$r" ] || exit 3
[ -d "$r" ] || exit 4
find "$r" -mindepth 1 -maxdepth "$2" -exec sh -c "$3" sh {} +`;

// ---------------------------------------------------------------- entry info

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

function parseInfos(out: Buffer, sb: Sandbox): Json[] {
  const fields = out.toString('utf8').split('\0');
  const entries: Json[] = [];
  for (let i = 0; i + 3 < fields.length; i += 4) {
    const [p, stat, target, targetMode] = fields.slice(i, i + 4);
    entries.push(entryJson(p, stat, target, targetMode, sb.fileMetadata.get(p)));
  }
  return entries;
}

/** proto3 JSON of filesystem.EntryInfo, zero values left out as protojson does. */
function entryJson(p: string, stat: string, target: string, targetMode: string, metadata?: Record<string, string>): Json {
  const [modeHex, size, uid, gid, uname, gname, mtimeS, mtimeHuman] = stat.split('|');
  const mode = parseInt(modeHex, 16);
  const isLink = (mode & S_IFMT) === S_IFLNK;
  const typeMode = isLink ? (targetMode ? parseInt(targetMode, 16) : undefined) : mode;
  let type: string | undefined;
  if (typeMode !== undefined) {
    const fmt = typeMode & S_IFMT;
    type = fmt === S_IFREG ? 'FILE_TYPE_FILE' : fmt === S_IFDIR ? 'FILE_TYPE_DIRECTORY' : undefined;
  }
  const perm = typeMode === undefined ? 0 : typeMode & 0o777;
  const nanos = Number((/\.(\d+)/.exec(mtimeHuman ?? '')?.[1] ?? '0').padEnd(9, '0').slice(0, 9));
  const entry: Json = { name: baseName(p) };
  if (type) entry.type = type;
  entry.path = p;
  if (size && size !== '0') entry.size = size;
  if (perm) entry.mode = perm;
  entry.permissions = goFileMode(mode);
  entry.owner = uname && uname !== 'UNKNOWN' ? uname : uid;
  entry.group = gname && gname !== 'UNKNOWN' ? gname : gid;
  entry.modifiedTime = rfc3339(Number(mtimeS), nanos);
  if (isLink) entry.symlinkTarget = target;
  if (metadata && Object.keys(metadata).length) entry.metadata = metadata;
  return entry;
}

/** Go's os.FileMode.String() of a raw st_mode: type letters from "dalTLDpSugct?", then rwxrwxrwx. */
function goFileMode(mode: number): string {
  const fmt = mode & S_IFMT;
  let s = '';
  if (fmt === S_IFDIR) s += 'd';
  if (fmt === S_IFLNK) s += 'L';
  if (fmt === S_IFBLK || fmt === S_IFCHR) s += 'D';
  if (fmt === S_IFIFO) s += 'p';
  if (fmt === S_IFSOCK) s += 'S';
  if (mode & 0o4000) s += 'u';
  if (mode & 0o2000) s += 'g';
  if (fmt === S_IFCHR) s += 'c';
  if (mode & 0o1000) s += 't';
  if (!s) s = '-';
  const rwx = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? rwx[i] : '-';
  return s;
}

/** RFC 3339 UTC with 0, 3, 6 or 9 fraction digits, like protojson's Timestamp. */
function rfc3339(seconds: number, nanos: number): string {
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (!nanos) return `${base}Z`;
  let frac = String(nanos).padStart(9, '0');
  if (nanos % 1_000_000 === 0) frac = frac.slice(0, 3);
  else if (nanos % 1000 === 0) frac = frac.slice(0, 6);
  return `${base}.${frac}Z`;
}

/** Length of the longest suffix of buf that is a proper prefix of marker (a marker split across chunks). */
function partialPrefixLength(buf: Buffer, marker: Buffer): number {
  for (let n = Math.min(marker.length - 1, buf.length); n > 0; n--) {
    if (buf.subarray(buf.length - n).equals(marker.subarray(0, n))) return n;
  }
  return 0;
}

function baseName(p: string) {
  const b = posix.basename(p);
  return b || '/';
}

/** filepath.WalkDir order: depth first, names sorted within each directory. */
function comparePaths(a: string, b: string) {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return x.length - y.length;
}

// ---------------------------------------------------------------- Connect wire format

/** A Connect server-streaming response: 5-byte envelopes, 0x02 end-of-stream last. */
class ConnectStream {
  private sent = 0;
  private closed = false;
  /** a cut is pending: nothing more is written */
  private cutting = false;
  private keepaliveTimer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(
    private readonly res: http.ServerResponse,
    private readonly keepaliveMsg: Json | undefined,
    private readonly keepaliveMs: number,
    private readonly cutAfter?: number,
  ) {
    res.writeHead(200, { 'content-type': 'application/connect+json' });
    res.flushHeaders();
    res.on('close', () => this.finish());
    if (cutAfter === 0) setImmediate(() => this.cut());
  }

  onClose(fn: () => void) {
    if (this.closed) fn();
    else this.closeHandlers.push(fn);
  }

  /** Sends one message; any non-keepalive message restarts the keepalive timer (envd resets its ticker on data). */
  send(msg: Json, keepalive = false) {
    if (this.closed || this.cutting) return;
    const cutNow = !keepalive && this.cutAfter !== undefined && this.sent + 1 >= this.cutAfter;
    // a cut drops the connection only once what was written before it has reached the socket
    this.res.write(envelope(0, msg), cutNow ? () => this.cut() : undefined);
    if (keepalive) return;
    this.sent++;
    if (cutNow) {
      this.cutting = true;
      return;
    }
    this.armKeepalive();
  }

  /** Ends the stream with `deadline_exceeded` after ms (the Connect-Timeout-Ms of the request). */
  setDeadline(ms: number, onExpire?: () => void) {
    this.deadlineTimer = setTimeout(() => {
      onExpire?.();
      this.end(new ConnectErr('deadline_exceeded', 'context deadline exceeded'));
    }, ms);
    this.deadlineTimer.unref();
  }

  end(err?: ConnectErr) {
    if (this.closed || this.cutting) return;
    this.res.end(envelope(2, err ? { error: err.toJSON() } : {}));
    this.finish();
  }

  /** Drops the connection without the end-of-stream envelope. */
  cut() {
    if (this.closed) return;
    this.finish();
    this.res.destroy();
  }

  private armKeepalive() {
    clearTimeout(this.keepaliveTimer);
    if (this.closed || !this.keepaliveMsg || this.keepaliveMs <= 0) return;
    this.keepaliveTimer = setTimeout(() => {
      this.send(this.keepaliveMsg!, true);
      this.armKeepalive();
    }, this.keepaliveMs);
    this.keepaliveTimer.unref();
  }

  private finish() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.deadlineTimer);
    for (const fn of this.closeHandlers.splice(0)) fn();
  }
}

function envelope(flags: number, msg: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(msg), 'utf8');
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function decodeEnvelopes(buf: Buffer): Array<{ flags: number; data: Buffer }> | undefined {
  const out: Array<{ flags: number; data: Buffer }> = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 5) return undefined;
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - 5 < len) return undefined;
    out.push({ flags: buf[off], data: buf.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return out;
}

function decodeSingleEnvelope(body: Buffer, input: string): Json {
  const envs = decodeEnvelopes(body);
  if (!envs || envs.length !== 1) throw new ConnectErr('invalid_argument', `protocol error: expected exactly one enveloped ${input} message`);
  if (envs[0].flags & 1) throw new ConnectErr('internal', 'protocol error: received compressed message without negotiated compression');
  try {
    const msg = JSON.parse(envs[0].data.toString('utf8'));
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not a JSON object');
    return msg;
  } catch (e) {
    throw new ConnectErr('invalid_argument', `unmarshal into ${input}: ${errText(e)}`);
  }
}

function asConnectErr(e: unknown): ConnectErr {
  return e instanceof ConnectErr ? e : new ConnectErr('internal', `fake-e2b: ${errText(e)}`);
}

// ---------------------------------------------------------------- HTTP helpers

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers });
  res.end(payload);
}

function apiError(res: http.ServerResponse, status: number, message: string, extra: Json = {}) {
  sendJson(res, status, { code: status, message, ...extra });
}

function envdError(res: http.ServerResponse, status: number, message: string) {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify({ code: status, message });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(payload)) });
  res.end(payload);
}

function sandboxNotFound(res: http.ServerResponse, id: string) {
  apiError(res, 404, `Sandbox "${id}" doesn't exist or you don't have access to it`);
}

function noContent(res: http.ServerResponse) {
  res.writeHead(204);
  res.end();
}

function notFoundText(res: http.ServerResponse) {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(NOT_FOUND_TEXT);
}

function methodNotAllowed(res: http.ServerResponse) {
  res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('Method Not Allowed\n');
}

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function summarizeBody(contentType: string, body: Buffer | undefined): any {
  if (!body || body.length === 0) return undefined;
  const ct = contentType.split(';')[0].trim().toLowerCase();
  try {
    if (ct === 'application/json') return JSON.parse(body.toString('utf8'));
    if (ct === 'application/connect+json') {
      const msgs = decodeEnvelopes(body)?.map((e) => JSON.parse(e.data.toString('utf8')));
      if (msgs) return msgs.length === 1 ? msgs[0] : msgs;
    }
  } catch {
    /* fall through to the summary */
  }
  return { contentType: ct, bytes: body.length };
}

/** `X-Metadata-<key>: <value>` upload headers, keys as the client spelled them. */
function metadataHeaders(req: http.IncomingMessage): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const m = /^x-metadata-(.+)$/i.exec(req.rawHeaders[i]);
    if (m) out[m[1]] = req.rawHeaders[i + 1];
  }
  return Object.keys(out).length ? out : undefined;
}

/** envd's choice for GET /files: gzip when accepted, else identity unless refused; undefined = 406. */
function negotiateEncoding(header: string): 'gzip' | 'identity' | undefined {
  if (!header.trim()) return 'identity';
  const q: Record<string, number> = {};
  for (const item of header.split(',')) {
    const [name, ...params] = item.trim().toLowerCase().split(';');
    const qp = params.map((s) => s.trim()).find((s) => s.startsWith('q='));
    q[name.trim()] = qp ? Number(qp.slice(2)) : 1;
  }
  if ((q.gzip ?? q['*'] ?? 0) > 0) return 'gzip';
  if ((q.identity ?? q['*'] ?? 1) > 0) return 'identity';
  return undefined;
}

const EXTENSION_TYPES: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8', '.json': 'application/json', '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.pdf': 'application/pdf',
  '.xml': 'text/xml; charset=utf-8', '.csv': 'text/csv; charset=utf-8', '.zip': 'application/zip', '.gz': 'application/gzip',
};

/** Like Go's http.ServeContent: by extension, else sniff the first 512 bytes. */
function contentTypeFor(p: string, data: Buffer): string {
  const byExt = EXTENSION_TYPES[posix.extname(p).toLowerCase()];
  if (byExt) return byExt;
  const head = data.subarray(0, 512);
  if (head.includes(0)) return 'application/octet-stream';
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head.length === 512 ? head.subarray(0, 508) : head);
    return 'text/plain; charset=utf-8';
  } catch {
    return 'application/octet-stream';
  }
}

/** multipart/form-data parts (Go's multipart reader semantics for what envd uses: name, filename, body). */
function parseMultipart(body: Buffer, contentType: string): Array<{ name?: string; filename?: string; data: Buffer }> | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!m) return undefined;
  const boundary = Buffer.from(`--${(m[1] ?? m[2]).trim()}`);
  const delimiter = Buffer.concat([Buffer.from('\r\n'), boundary]);
  const parts: Array<{ name?: string; filename?: string; data: Buffer }> = [];
  let pos = body.indexOf(boundary);
  if (pos < 0) return undefined;
  for (;;) {
    pos += boundary.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) return undefined;
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const next = body.indexOf(delimiter, headerEnd + 4);
    if (next < 0) return undefined;
    const disposition = /^content-disposition:(.*)$/im.exec(headers)?.[1] ?? '';
    parts.push({ name: dispositionParam(disposition, 'name'), filename: dispositionParam(disposition, 'filename'), data: body.subarray(headerEnd + 4, next) });
    pos = next + 2;
  }
}

function dispositionParam(disposition: string, key: string): string | undefined {
  const re = new RegExp(`(?:^|;)\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, 'i');
  const m = re.exec(disposition);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2].trim();
}

// ---------------------------------------------------------------- misc

const posix = path.posix;

const SIGNAL_TEXT: Record<number, string> = { 9: 'killed', 15: 'terminated' };

function sleep(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

function errText(e: unknown) {
  return e instanceof Error ? e.message : String(e);
}

function randomId(n: number) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.randomBytes(n), (b) => alphabet[b % alphabet.length]).join('');
}

/** A stable template ID for a template name, shaped like the real ones (the name comes back as `alias`). */
function templateIdOf(name: string) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.createHash('sha256').update(name).digest().subarray(0, 20), (b) => alphabet[b % alphabet.length]).join('');
}

const IPV4 = String.raw`(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`;
const IP_OR_CIDR = new RegExp(String.raw`^${IPV4}(?:/(?:3[0-2]|[12]?\d))?$`);
const DOMAIN = /^(?:\*\.)?(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$/i;

/**
 * E2B's egress lists, validated: `{ allowOut?, denyOut? }` of strings; addresses and CIDRs in both,
 * domains (optionally `*.`) only in allowOut; no ports. Other SandboxNetworkConfig fields
 * (allowPublicTraffic, rules, egressProxy, ...) are accepted and dropped. The error message otherwise.
 */
function checkNetwork(v: unknown): FakeNetwork | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'validation error: network must be an object';
  const out: FakeNetwork = {};
  for (const field of ['allowOut', 'denyOut'] as const) {
    const list = (v as Json)[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) return `validation error: network.${field} must be an array of strings`;
    for (const entry of list as string[]) {
      if (IP_OR_CIDR.test(entry)) continue;
      if (field === 'allowOut' && DOMAIN.test(entry)) continue;
      if (field === 'denyOut' && DOMAIN.test(entry)) return `invalid denied CIDR ${entry}: domains are only supported in allowOut`;
      return `invalid ${field === 'allowOut' ? 'allowed' : 'denied'} entry ${JSON.stringify(entry)}: expected an IP address or CIDR${field === 'allowOut' ? ' or a domain' : ''}`;
    }
    out[field] = [...list];
  }
  return out;
}

function copyNetwork(n: FakeNetwork | undefined): FakeNetwork | undefined {
  if (!n) return undefined;
  return { ...(n.allowOut ? { allowOut: [...n.allowOut] } : {}), ...(n.denyOut ? { denyOut: [...n.denyOut] } : {}) };
}

function stringArray(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ConnectErr('invalid_argument', `${field} must be a list of strings`);
  return v;
}

function stringMap(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
    throw new ConnectErr('invalid_argument', `${field} must be a map of strings`);
  }
  return { ...(v as Record<string, string>) };
}

/** envd's ExpandAndResolve: `~` is the user's home, relative paths are under it, absolute ones are kept. */
function resolvePath(p: string, user: UserInfo): string {
  if (p.startsWith('~')) {
    if (p.length > 1 && p[1] !== '/') throw new Error(`failed to expand path '${p}' for user '${user.name}': cannot expand user-specific home dir`);
    p = posix.join(user.home, p.slice(1));
  }
  if (posix.isAbsolute(p)) return p;
  return posix.resolve(user.home, p);
}

function parsePasswd(text: string): Map<string, UserInfo> {
  const users = new Map<string, UserInfo>();
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (name && uid !== undefined && home !== undefined) users.set(name, { name, uid: Number(uid), gid: Number(gid), home });
  }
  return users;
}

/** docker stats sizes: "1.1MiB", "7.7GiB", "12kB", "0B". */
function parseSize(s: string | undefined): number {
  const m = /^\s*([\d.]+)\s*([kKMGTP]?i?B)\s*$/.exec(s ?? '');
  if (!m) return 0;
  const units: Record<string, number> = {
    B: 1, kB: 1e3, KB: 1e3, KiB: 1024, MB: 1e6, MiB: MIB, GB: 1e9, GiB: 1024 * MIB, TB: 1e12, TiB: 1024 * 1024 * MIB,
  };
  return Math.round(Number(m[1]) * (units[m[2]] ?? 1));
}

let diskMB: number | undefined;
function hostDiskMB(): number {
  if (diskMB === undefined) {
    try {
      const s = fs.statfsSync('/');
      diskMB = Math.round((s.blocks * s.bsize) / MIB);
    } catch {
      diskMB = 0;
    }
  }
  return diskMB;
}

interface DockerResult { code: number; stdout: Buffer; stderr: string }

/** Runs the docker CLI; never rejects (a missing CLI is exit code 127). */
function docker(args: string[], opts: { input?: Buffer; maxStdout?: number } = {}): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let size = 0;
    child.stdout!.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= (opts.maxStdout ?? 64 * MIB)) out.push(c);
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', (e) => resolve({ code: 127, stdout: Buffer.alloc(0), stderr: e.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }));
    if (opts.input) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
  });
}

/** Removes fake-e2b containers left by processes of this host that no longer run (a SIGKILLed test run). */
async function reapStaleContainers() {
  const r = await docker([
    'ps', '-a', '--filter', `label=${FAKE_E2B_LABEL}`,
    '--format', `{{.ID}} {{.Label "${LABEL_KEY}.owner-pid"}} {{.Label "${LABEL_KEY}.owner-host"}}`,
  ]);
  if (r.code !== 0) return;
  const stale: string[] = [];
  for (const line of r.stdout.toString().split('\n')) {
    const [id, pid, host] = line.trim().split(' ');
    if (!id || !pid || host !== os.hostname()) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') stale.push(id);
    }
  }
  if (stale.length) await docker(['rm', '-f', ...stale]);
}
