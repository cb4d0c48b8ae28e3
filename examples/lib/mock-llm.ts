/**
 * Scripted mock LLM servers that speak the Anthropic Messages and OpenAI Chat Completions wire
 * protocols, so an agent loop can be tested end to end (and examples run with `--mock`) without a
 * real model or any outside network traffic.
 *
 *   const mock = await startMockLlm({
 *     provider: 'anthropic',
 *     script: [{ toolCalls: [{ name: 'run', input: { cmd: 'ls' } }] }, { text: 'done' }],
 *   });
 *   // give the client mock.url as its base URL, and any API key
 *   await mock.close();
 *
 * Only node:http; listens on 127.0.0.1 on a free port. Each request to the model endpoint takes
 * the next turn of its conversation's script; when a script runs out the mock answers
 * "(mock: script exhausted)" with end_turn/stop, so a runaway loop ends.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ScriptedToolCall = { name: string; input: Record<string, unknown>; id?: string };

/** An HTTP error answer, in the provider's error body format. `type` overrides the error type. */
export type ScriptedError = { status: number; error?: string; headers?: Record<string, string>; type?: string };

/**
 * One answer of the model. A normal turn stops with tool_use/tool_calls when `toolCalls` is
 * non-empty, else end_turn/stop (an empty `text` is left out of the Anthropic content). Tool call
 * ids default to toolu_mockNNNN / call_mockNNNN. A function computes the turn from the request.
 */
export type ScriptedTurn =
  | { text?: string; toolCalls?: ScriptedToolCall[] }
  | ScriptedError
  | ((req: RecordedRequest) => ScriptedTurn);

export interface ToolResult {
  id: string;
  content: string;
  isError: boolean;
}

export interface RecordedRequest {
  provider: 'anthropic' | 'openai';
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** Anthropic `system` (string or text blocks), or the OpenAI system/developer messages, joined by '\n'. */
  system: string;
  /** Text of the first user message: the default conversation key. */
  firstUserText: string;
  /** Anthropic: tool_result blocks of the last user message. OpenAI: the trailing `role: "tool"` messages (isError always false). */
  lastToolResults: ToolResult[];
  toolNames: string[];
}

export interface MockLlmOptions {
  provider: 'anthropic' | 'openai';
  /** One shared queue of turns (also the fallback for keys missing from `scripts`). */
  script?: ScriptedTurn[];
  /** One queue per conversation key; `route` picks the key. */
  scripts?: Record<string, ScriptedTurn[]>;
  /** Conversation key of a request. @default the first user message text */
  route?: (req: RecordedRequest) => string;
  /** Model name put in responses. @default the request's `model` */
  model?: string;
  /** When set, the API key a request must carry, else 401. Anthropic: `x-api-key` or `Authorization: Bearer`; OpenAI: `Authorization: Bearer`. */
  requireKey?: string;
  /** Delay before each scripted answer, in milliseconds. @default 0 */
  delayMs?: number;
  /**
   * Reject requests the real API would reject with 400: missing fields, a tool_use/tool_calls
   * without its tool result right after, a tool result without its call, non-string arguments.
   * @default true
   */
  strict?: boolean;
}

export interface MockLlm {
  /** Base URL for clients: anthropic http://127.0.0.1:PORT, openai http://127.0.0.1:PORT/v1. */
  url: string;
  /** Every request to the model endpoint whose body parsed, in arrival order (also those rejected). */
  requests: RecordedRequest[];
  /** Turns not yet used: all queues, or the queue of one conversation key. */
  remaining(key?: string): number;
  close(): Promise<void>;
}

export const EXHAUSTED_TEXT = '(mock: script exhausted)';
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const ENDPOINT = { anthropic: '/v1/messages', openai: '/v1/chat/completions' } as const;

type Provider = MockLlmOptions['provider'];
type Reply = { status: number; body: unknown; headers?: Record<string, string> };

class Queue {
  next = 0;
  constructor(readonly turns: ScriptedTurn[]) {}
  get remaining() {
    return this.turns.length - this.next;
  }
  take(): ScriptedTurn | undefined {
    return this.next < this.turns.length ? this.turns[this.next++] : undefined;
  }
}

export async function startMockLlm(opts: MockLlmOptions): Promise<MockLlm> {
  const { provider } = opts;
  const strict = opts.strict ?? true;
  const shared = opts.script ? new Queue([...opts.script]) : undefined;
  const keyed = new Map(Object.entries(opts.scripts ?? {}).map(([k, v]) => [k, new Queue([...v])]));
  const route = opts.route ?? ((req: RecordedRequest) => req.firstUserText);
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;
  const nextId = () => String(++seq).padStart(4, '0');

  const pickTurn = (req: RecordedRequest): ScriptedTurn => {
    if (opts.scripts) {
      const key = route(req);
      const queue = keyed.get(key) ?? shared;
      if (!queue) return { text: `(mock: no script for conversation ${JSON.stringify(key)})` };
      return queue.take() ?? { text: EXHAUSTED_TEXT };
    }
    return shared?.take() ?? { text: EXHAUSTED_TEXT };
  };

  const answer = (req: RecordedRequest): Reply => {
    let turn = pickTurn(req);
    try {
      for (let depth = 0; typeof turn === 'function'; depth++) {
        if (depth > 10) throw new Error('script functions nested more than 10 deep');
        turn = turn(req);
      }
    } catch (e) {
      return mockFault(provider, `script function threw: ${e instanceof Error ? e.message : String(e)}`);
    }
    if ('status' in turn) {
      if (!(turn.status >= 400 && turn.status <= 599)) return mockFault(provider, `scripted status ${turn.status} is not 4xx/5xx`);
      return { status: turn.status, body: errorBody(provider, turn.status, turn.error, turn.type), headers: turn.headers };
    }
    const model = opts.model ?? (typeof req.body.model === 'string' ? req.body.model : 'mock-model');
    const calls = (turn.toolCalls ?? []).map((c) => ({ ...c, id: c.id ?? `${provider === 'anthropic' ? 'toolu' : 'call'}_mock${nextId()}` }));
    const inputTokens = estimateTokens(JSON.stringify([req.body.system, req.body.messages, req.body.tools]));
    const outputTokens = Math.max(1, estimateTokens((turn.text ?? '') + JSON.stringify(calls.map((c) => c.input))));
    const body = provider === 'anthropic'
      ? anthropicMessage(`msg_mock${nextId()}`, model, turn.text, calls, inputTokens, outputTokens)
      : openaiCompletion(`chatcmpl-mock${nextId()}`, model, turn.text, calls, inputTokens, outputTokens);
    return { status: 200, body };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== ENDPOINT[provider]) return send(res, provider, { status: 404, body: errorBody(provider, 404, `mock-llm: no route for ${req.method} ${path}`) });
    if (req.method !== 'POST') return send(res, provider, { status: 405, body: errorBody(provider, 405, `mock-llm: ${req.method} not allowed on ${path}; use POST`) });

    const raw = await readBody(req);
    if (raw === undefined) return send(res, provider, { status: 413, body: errorBody(provider, 413, `request body exceeds ${MAX_BODY_BYTES} bytes`) });
    let body: any;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      return send(res, provider, { status: 400, body: errorBody(provider, 400, `mock-llm: request body is not valid JSON: ${(e as Error).message}`) });
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return send(res, provider, { status: 400, body: errorBody(provider, 400, 'mock-llm: request body must be a JSON object') });
    }
    const recorded = record(provider, path, req.headers, body);
    requests.push(recorded);

    const rejected = checkAuth(provider, req.headers, opts.requireKey) ?? checkBody(provider, body, strict);
    if (rejected) return send(res, provider, rejected);

    const reply = answer(recorded);
    if (!opts.delayMs) return send(res, provider, reply);
    const timer = setTimeout(() => {
      timers.delete(timer);
      send(res, provider, reply);
    }, opts.delayMs);
    timers.add(timer);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => send(res, provider, mockFault(provider, `internal error: ${(e as Error).message}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: provider === 'anthropic' ? `http://127.0.0.1:${port}` : `http://127.0.0.1:${port}/v1`,
    requests,
    remaining(key?: string) {
      if (key !== undefined) return (keyed.get(key) ?? shared)?.remaining ?? 0;
      return (shared?.remaining ?? 0) + [...keyed.values()].reduce((n, q) => n + q.remaining, 0);
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SDK clients keep connections alive; do not wait for them to go idle.
        server.closeAllConnections();
      });
    },
  };
}

// ---------------------------------------------------------------- responses

function anthropicMessage(id: string, model: string, text: string | undefined, calls: Required<ScriptedToolCall>[], inTok: number, outTok: number) {
  const content: unknown[] = [];
  if (text) content.push({ type: 'text', text });
  for (const c of calls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: c.input });
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: calls.length ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: inTok, output_tokens: outTok },
  };
}

function openaiCompletion(id: string, model: string, text: string | undefined, calls: Required<ScriptedToolCall>[], inTok: number, outTok: number) {
  const message: Record<string, unknown> = { role: 'assistant', content: text ?? null, refusal: null };
  if (calls.length) {
    message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input) } }));
  }
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: calls.length ? 'tool_calls' : 'stop' }],
    usage: { prompt_tokens: inTok, completion_tokens: outTok, total_tokens: inTok + outTok },
  };
}

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error',
  405: 'invalid_request_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 529: 'overloaded_error',
};
const OPENAI_ERRORS: Record<number, [type: string, code: string | null]> = {
  400: ['invalid_request_error', null], 401: ['invalid_request_error', 'invalid_api_key'], 403: ['invalid_request_error', 'unsupported_country_region_territory'],
  404: ['invalid_request_error', 'unknown_url'], 405: ['invalid_request_error', null], 413: ['invalid_request_error', null],
  429: ['requests', 'rate_limit_exceeded'],
};

function errorBody(provider: Provider, status: number, message?: string, type?: string) {
  const msg = message ?? `mock: HTTP ${status}`;
  if (provider === 'anthropic') {
    return { type: 'error', error: { type: type ?? ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message: msg } };
  }
  const [defType, code] = OPENAI_ERRORS[status] ?? [status >= 500 ? 'server_error' : 'invalid_request_error', null];
  return { error: { message: msg, type: type ?? defType, param: null, code } };
}

/** A fault in the mock or its script: 500, and tell SDKs not to retry it (a retry would eat the next turn). */
function mockFault(provider: Provider, message: string): Reply {
  return { status: 500, body: errorBody(provider, 500, `mock-llm: ${message}`), headers: { 'x-should-retry': 'false' } };
}

function send(res: http.ServerResponse, provider: Provider, reply: Reply) {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    [provider === 'anthropic' ? 'request-id' : 'x-request-id']: `req_mock${Date.now().toString(36)}`,
    ...reply.headers,
  });
  res.end(payload);
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

const estimateTokens = (s: string) => Math.ceil(s.length / 4);

// ---------------------------------------------------------------- request checks

function checkAuth(provider: Provider, headers: http.IncomingHttpHeaders, requireKey: string | undefined): Reply | undefined {
  if (provider === 'anthropic') {
    if (!headers['anthropic-version']) return { status: 400, body: errorBody(provider, 400, 'anthropic-version: header is required') };
    // @anthropic-ai/sdk >= 1.0 sends the key as `Authorization: Bearer`; raw clients send `x-api-key`.
    const ok = headers['x-api-key'] === requireKey || headers.authorization === `Bearer ${requireKey}`;
    if (requireKey !== undefined && !ok) return { status: 401, body: errorBody(provider, 401, 'invalid x-api-key') };
    return undefined;
  }
  if (requireKey !== undefined && headers.authorization !== `Bearer ${requireKey}`) {
    return { status: 401, body: errorBody(provider, 401, 'Incorrect API key provided.') };
  }
  return undefined;
}

function checkBody(provider: Provider, body: any, strict: boolean): Reply | undefined {
  const bad = (message: string): Reply => ({ status: 400, body: errorBody(provider, 400, message) });
  if (body.stream === true) return bad('mock-llm: streaming is not supported (stream: true); send a non-streaming request');
  if (!strict) return undefined;
  const problem = provider === 'anthropic' ? anthropicProblem(body) : openaiProblem(body);
  return problem ? bad(problem) : undefined;
}

function anthropicProblem(body: any): string | undefined {
  if (typeof body.model !== 'string') return 'model: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: at least one message is required';
  let sawTools = false;
  for (const [i, m] of body.messages.entries()) {
    if (m?.role !== 'user' && m?.role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) return `messages.${i}.content: Input should be a valid string or list`;
    const blocks: any[] = Array.isArray(m.content) ? m.content : [];
    const uses = blocks.filter((b) => b?.type === 'tool_use').map((b) => String(b.id));
    const results = blocks.filter((b) => b?.type === 'tool_result').map((b) => String(b.tool_use_id));
    sawTools ||= uses.length > 0 || results.length > 0;
    if (uses.length && i + 1 < body.messages.length) {
      const next = body.messages[i + 1];
      const answered = new Set((Array.isArray(next?.content) ? next.content : []).filter((b: any) => b?.type === 'tool_result').map((b: any) => String(b.tool_use_id)));
      const missing = uses.filter((id) => !answered.has(id));
      if (missing.length) return `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
    }
    if (results.length) {
      const prev = i > 0 ? body.messages[i - 1] : undefined;
      const called = new Set((Array.isArray(prev?.content) ? prev.content : []).filter((b: any) => b?.type === 'tool_use').map((b: any) => String(b.id)));
      const stray = results.filter((id) => !called.has(id));
      if (stray.length) return `messages.${i}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${stray.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
    }
  }
  if (sawTools && !Array.isArray(body.tools)) return 'Requests which include `tool_use` or `tool_result` blocks must define tools.';
  return undefined;
}

function openaiProblem(body: any): string | undefined {
  if (typeof body.model !== 'string') return "Missing required parameter: 'model'.";
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "Invalid 'messages': empty array. Expected an array with minimum length 1.";
  const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
  let pending: Set<string> | undefined;
  for (const [i, m] of body.messages.entries()) {
    if (!roles.includes(m?.role)) return `Invalid value for 'messages[${i}].role': ${JSON.stringify(m?.role)}.`;
    if (m.role === 'tool') {
      if (!pending) return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
      pending.delete(String(m.tool_call_id));
      continue;
    }
    if (pending?.size) {
      return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(', ')}`;
    }
    pending = undefined;
    if (m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length) {
      for (const [j, c] of m.tool_calls.entries()) {
        if (typeof c?.function?.arguments !== 'string') {
          return `Invalid type for 'messages[${i}].tool_calls[${j}].function.arguments': expected a string, but got ${typeof c?.function?.arguments} instead.`;
        }
      }
      pending = new Set(m.tool_calls.map((c: any) => String(c.id)));
    }
  }
  if (pending?.size) {
    return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(', ')}`;
  }
  return undefined;
}

// ---------------------------------------------------------------- normalized view

/** Text of a string or of the text blocks/parts in an array; other blocks are skipped. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((b) => b?.type === 'text' && typeof b.text === 'string').map((b) => b.text).join('\n');
}

function record(provider: Provider, path: string, headers: http.IncomingHttpHeaders, body: any): RecordedRequest {
  const messages: any[] = Array.isArray(body.messages) ? body.messages : [];
  const tools: any[] = Array.isArray(body.tools) ? body.tools : [];
  const firstUserText = textOf(messages.find((m) => m?.role === 'user')?.content);
  if (provider === 'anthropic') {
    const last = messages[messages.length - 1];
    const blocks: any[] = last?.role === 'user' && Array.isArray(last.content) ? last.content : [];
    return {
      provider, path, headers: { ...headers }, body, firstUserText,
      system: textOf(body.system),
      lastToolResults: blocks
        .filter((b) => b?.type === 'tool_result')
        .map((b) => ({ id: String(b.tool_use_id), content: textOf(b.content), isError: b.is_error === true })),
      toolNames: tools.map((t) => t?.name).filter((n): n is string => typeof n === 'string'),
    };
  }
  let start = messages.length;
  while (start > 0 && messages[start - 1]?.role === 'tool') start--;
  return {
    provider, path, headers: { ...headers }, body, firstUserText,
    system: messages.filter((m) => m?.role === 'system' || m?.role === 'developer').map((m) => textOf(m.content)).join('\n'),
    lastToolResults: messages.slice(start).map((m) => ({ id: String(m.tool_call_id), content: textOf(m.content), isError: false })),
    toolNames: tools.map((t) => t?.function?.name ?? t?.custom?.name).filter((n): n is string => typeof n === 'string'),
  };
}
