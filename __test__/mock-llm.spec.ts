// Fidelity of examples/lib/mock-llm.ts: drive each mock with the official SDK and check that its
// answers parse, its errors map to the SDK's error classes, and the SDK's own retries work against it.
// No Docker and no outside network: every request goes to a listener on 127.0.0.1.
import Anthropic, { AuthenticationError as AnthropicAuthError, BadRequestError as AnthropicBadRequest } from '@anthropic-ai/sdk'
import OpenAI, { AuthenticationError as OpenAIAuthError, BadRequestError as OpenAIBadRequest } from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { EXHAUSTED_TEXT, startMockLlm, type MockLlm, type MockLlmOptions } from '../examples/lib/mock-llm.js'

const KEY = 'sk-mock-test-key'

let mocks: MockLlm[] = []
afterEach(async () => {
  await Promise.all(mocks.map((m) => m.close()))
  mocks = []
})

async function mock(opts: MockLlmOptions): Promise<MockLlm> {
  const m = await startMockLlm(opts)
  mocks.push(m)
  return m
}

const anthropic = (m: MockLlm, apiKey = KEY) => new Anthropic({ apiKey, baseURL: m.url, maxRetries: 2 })
const openai = (m: MockLlm, apiKey = KEY) => new OpenAI({ apiKey, baseURL: m.url, maxRetries: 2 })

const ANTHROPIC_TOOLS: Anthropic.Tool[] = [
  { name: 'run_command', description: 'run a shell command', input_schema: { type: 'object', properties: { cmd: { type: 'string' } } } },
  { name: 'write_file', description: 'write a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } },
]
const OPENAI_TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'run_command', parameters: { type: 'object', properties: { cmd: { type: 'string' } } } } },
  { type: 'function', function: { name: 'write_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } },
]

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })

describe('anthropic mock via @anthropic-ai/sdk', () => {
  const ask = (client: Anthropic, messages: Anthropic.MessageParam[], system: Anthropic.MessageCreateParamsNonStreaming['system'] = 'be brief') =>
    client.messages.create({ model: 'claude-test', max_tokens: 256, system, tools: ANTHROPIC_TOOLS, messages })

  it('a tool-use turn parses, the tool result is recorded, and a final text turn ends the loop', async () => {
    const m = await mock({
      provider: 'anthropic',
      requireKey: KEY,
      script: [
        { text: 'Listing.', toolCalls: [{ name: 'run_command', input: { cmd: 'ls -la' } }] },
        (req) => ({ text: `saw: ${req.lastToolResults[0]?.content}` }),
      ],
    })
    const client = anthropic(m)
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'list the files' }]

    const first = await ask(client, messages, [{ type: 'text', text: 'you are' }, { type: 'text', text: 'an agent' }])
    expect(first.type).toBe('message')
    expect(first.role).toBe('assistant')
    expect(first.model).toBe('claude-test')
    expect(first.stop_reason).toBe('tool_use')
    expect(first.usage.input_tokens).toBeGreaterThan(0)
    const [text, use] = first.content
    expect(text).toEqual({ type: 'text', text: 'Listing.' })
    if (use.type !== 'tool_use') throw new Error(`expected tool_use, got ${use.type}`)
    expect(use.id).toMatch(/^toolu_/)
    expect(use.name).toBe('run_command')
    expect(use.input).toEqual({ cmd: 'ls -la' })
    expect(m.remaining()).toBe(1)

    messages.push({ role: 'assistant', content: first.content })
    messages.push({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'a.txt' }, { type: 'text', text: 'b.txt' }], is_error: true }],
    })
    const second = await ask(client, messages)
    expect(second.stop_reason).toBe('end_turn')
    expect(second.content).toEqual([{ type: 'text', text: 'saw: a.txt\nb.txt' }])
    expect(m.remaining()).toBe(0)

    expect(m.requests).toHaveLength(2)
    const [r1, r2] = m.requests
    expect(r1.provider).toBe('anthropic')
    expect(r1.path).toBe('/v1/messages')
    // @anthropic-ai/sdk 1.x sends the key as a bearer token, not x-api-key
    expect(r1.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(r1.headers['anthropic-version']).toBeTruthy()
    expect(r1.system).toBe('you are\nan agent')
    expect(r1.toolNames).toEqual(['run_command', 'write_file'])
    expect(r1.lastToolResults).toEqual([])
    expect(r2.system).toBe('be brief')
    expect(r2.firstUserText).toBe('list the files')
    expect(r2.lastToolResults).toEqual([{ id: use.id, content: 'a.txt\nb.txt', isError: true }])
  })

  it('answers "(mock: script exhausted)" with end_turn once the script runs out', async () => {
    const m = await mock({ provider: 'anthropic', script: [{ text: 'only turn' }] })
    const client = anthropic(m)
    expect(m.remaining()).toBe(1)
    expect((await ask(client, [{ role: 'user', content: 'hi' }])).content).toEqual([{ type: 'text', text: 'only turn' }])
    expect(m.remaining()).toBe(0)
    const after = await ask(client, [{ role: 'user', content: 'hi' }])
    expect(after.stop_reason).toBe('end_turn')
    expect(after.content).toEqual([{ type: 'text', text: EXHAUSTED_TEXT }])
  })

  it('a 500 then ok succeeds through the SDK retry', async () => {
    const m = await mock({ provider: 'anthropic', script: [{ status: 500, error: 'boom' }, { text: 'recovered' }] })
    const res = await ask(anthropic(m), [{ role: 'user', content: 'go' }])
    expect(res.content).toEqual([{ type: 'text', text: 'recovered' }])
    expect(m.requests).toHaveLength(2)
  })

  it('a 429 with retry-after: 0 is retried', async () => {
    const m = await mock({
      provider: 'anthropic',
      script: [{ status: 429, error: 'slow down', headers: { 'retry-after': '0' } }, { text: 'ok' }],
    })
    const res = await ask(anthropic(m), [{ role: 'user', content: 'go' }])
    expect(res.content).toEqual([{ type: 'text', text: 'ok' }])
    expect(m.requests).toHaveLength(2)
  })

  it('a wrong key surfaces as AuthenticationError with the mock message, and is not retried', async () => {
    const m = await mock({ provider: 'anthropic', requireKey: KEY, script: [{ text: 'never' }] })
    const err = await ask(anthropic(m, 'sk-wrong'), [{ role: 'user', content: 'go' }]).catch((e) => e)
    expect(err).toBeInstanceOf(AnthropicAuthError)
    expect(err.status).toBe(401)
    expect(err.apiMessage).toBe('invalid x-api-key')
    expect(err.type).toBe('authentication_error')
    expect(m.requests).toHaveLength(1)
    expect(m.remaining()).toBe(1)
  })

  it('accepts the key as x-api-key too, as raw HTTP clients send it', async () => {
    const m = await mock({ provider: 'anthropic', requireKey: KEY, script: [{ text: 'raw ok' }] })
    const body = JSON.stringify({ model: 'claude-test', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
    const wrong = await post(`${m.url}/v1/messages`, body, { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-wrong' })
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } })
    const right = await post(`${m.url}/v1/messages`, body, { 'anthropic-version': '2023-06-01', 'x-api-key': KEY })
    expect(right.status).toBe(200)
    expect(await right.json()).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'raw ok' }], stop_reason: 'end_turn', stop_sequence: null })
  })

  it('a scripted 401 surfaces as AuthenticationError', async () => {
    const m = await mock({ provider: 'anthropic', script: [{ status: 401, error: 'key revoked' }] })
    const err = await ask(anthropic(m), [{ role: 'user', content: 'go' }]).catch((e) => e)
    expect(err).toBeInstanceOf(AnthropicAuthError)
    expect(err.apiMessage).toBe('key revoked')
  })

  it('concurrent conversations routed by first user message get their own scripts', async () => {
    const m = await mock({
      provider: 'anthropic',
      delayMs: 5,
      scripts: {
        'task A': [{ toolCalls: [{ name: 'run_command', input: { cmd: 'a' }, id: 'toolu_A' }] }, { text: 'A done' }],
        'task B': [{ toolCalls: [{ name: 'write_file', input: { path: 'b' }, id: 'toolu_B' }] }, { text: 'B done' }],
      },
    })
    const client = anthropic(m)
    const run = async (task: string) => {
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: task }]
      for (;;) {
        const res = await ask(client, messages)
        messages.push({ role: 'assistant', content: res.content })
        const uses = res.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')
        if (res.stop_reason !== 'tool_use') return { res, uses: messages }
        messages.push({ role: 'user', content: uses.map((u) => ({ type: 'tool_result' as const, tool_use_id: u.id, content: `${u.name} ok` })) })
      }
    }
    expect(m.remaining()).toBe(4)
    expect(m.remaining('task A')).toBe(2)
    const [a, b] = await Promise.all([run('task A'), run('task B')])
    expect(a.res.content).toEqual([{ type: 'text', text: 'A done' }])
    expect(b.res.content).toEqual([{ type: 'text', text: 'B done' }])
    expect(m.remaining()).toBe(0)
    const aResults = m.requests.filter((r) => r.firstUserText === 'task A').flatMap((r) => r.lastToolResults)
    expect(aResults).toEqual([{ id: 'toolu_A', content: 'run_command ok', isError: false }])
  })

  it('rejects what the real API rejects: stream, missing tool_result, missing version header, bad JSON, unknown path', async () => {
    const m = await mock({ provider: 'anthropic', script: [{ text: 'unused' }] })
    const client = anthropic(m)
    const streamErr = await client.messages
      .create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], stream: true })
      .catch((e) => e)
    expect(streamErr).toBeInstanceOf(AnthropicBadRequest)
    expect(streamErr.apiMessage).toMatch(/streaming is not supported/)

    const pairErr = await ask(client, [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_x', name: 'run_command', input: {} }] },
      { role: 'user', content: 'forgot the result' },
    ]).catch((e) => e)
    expect(pairErr).toBeInstanceOf(AnthropicBadRequest)
    expect(pairErr.apiMessage).toMatch(/tool_use` ids were found without `tool_result` blocks.*toolu_x/)

    const noVersion = await post(`${m.url}/v1/messages`, JSON.stringify({ model: 'x', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }))
    expect(noVersion.status).toBe(400)
    expect(await noVersion.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } })

    const badJson = await post(`${m.url}/v1/messages`, '{nope', { 'anthropic-version': '2023-06-01' })
    expect(badJson.status).toBe(400)
    expect((await badJson.json()).error.type).toBe('invalid_request_error')

    const unknown = await post(`${m.url}/v1/complete`, '{}')
    expect(unknown.status).toBe(404)
    expect((await unknown.json()).error.type).toBe('not_found_error')
    expect(m.remaining()).toBe(1)
  })
})

describe('openai mock via openai', () => {
  const ask = (client: OpenAI, messages: OpenAI.Chat.ChatCompletionMessageParam[]) =>
    client.chat.completions.create({ model: 'gpt-test', tools: OPENAI_TOOLS, messages })

  it('a tool-calls turn parses, the tool results are recorded, and a final text turn ends the loop', async () => {
    const m = await mock({
      provider: 'openai',
      requireKey: KEY,
      script: [
        { toolCalls: [{ name: 'run_command', input: { cmd: 'ls' } }, { name: 'write_file', input: { path: '/tmp/x' } }] },
        (req) => ({ text: `saw: ${req.lastToolResults.map((r) => r.content).join(' + ')}` }),
      ],
    })
    const client = openai(m)
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'list the files' },
    ]
    const first = await ask(client, messages)
    expect(first.object).toBe('chat.completion')
    expect(first.model).toBe('gpt-test')
    expect(first.usage?.total_tokens).toBe((first.usage?.prompt_tokens ?? 0) + (first.usage?.completion_tokens ?? 0))
    const choice = first.choices[0]
    expect(choice.finish_reason).toBe('tool_calls')
    expect(choice.message.content).toBeNull()
    const calls = choice.message.tool_calls ?? []
    expect(calls).toHaveLength(2)
    const [c1, c2] = calls
    if (c1.type !== 'function' || c2.type !== 'function') throw new Error('expected function tool calls')
    expect(c1.id).toMatch(/^call_/)
    expect(c1.function.name).toBe('run_command')
    expect(JSON.parse(c1.function.arguments)).toEqual({ cmd: 'ls' })
    expect(JSON.parse(c2.function.arguments)).toEqual({ path: '/tmp/x' })

    messages.push(choice.message)
    messages.push({ role: 'tool', tool_call_id: c1.id, content: 'a.txt' })
    messages.push({ role: 'tool', tool_call_id: c2.id, content: [{ type: 'text', text: 'written' }] })
    const second = await ask(client, messages)
    expect(second.choices[0].finish_reason).toBe('stop')
    expect(second.choices[0].message.content).toBe('saw: a.txt + written')
    expect(second.choices[0].message.tool_calls).toBeUndefined()

    const [r1, r2] = m.requests
    expect(r1.path).toBe('/v1/chat/completions')
    expect(r1.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(r1.system).toBe('be brief')
    expect(r1.toolNames).toEqual(['run_command', 'write_file'])
    expect(r1.lastToolResults).toEqual([])
    expect(r2.lastToolResults).toEqual([
      { id: c1.id, content: 'a.txt', isError: false },
      { id: c2.id, content: 'written', isError: false },
    ])
  })

  it('answers "(mock: script exhausted)" with stop once the script runs out', async () => {
    const m = await mock({ provider: 'openai', script: [] })
    const res = await ask(openai(m), [{ role: 'user', content: 'hi' }])
    expect(res.choices[0].finish_reason).toBe('stop')
    expect(res.choices[0].message.content).toBe(EXHAUSTED_TEXT)
  })

  it('a 500 then ok succeeds through the SDK retry', async () => {
    const m = await mock({ provider: 'openai', script: [{ status: 500 }, { text: 'recovered' }] })
    const res = await ask(openai(m), [{ role: 'user', content: 'go' }])
    expect(res.choices[0].message.content).toBe('recovered')
    expect(m.requests).toHaveLength(2)
  })

  it('a 429 with retry-after: 0 is retried', async () => {
    const m = await mock({ provider: 'openai', script: [{ status: 429, headers: { 'retry-after': '0' } }, { text: 'ok' }] })
    const res = await ask(openai(m), [{ role: 'user', content: 'go' }])
    expect(res.choices[0].message.content).toBe('ok')
    expect(m.requests).toHaveLength(2)
  })

  it('a wrong key surfaces as AuthenticationError with the mock message, and is not retried', async () => {
    const m = await mock({ provider: 'openai', requireKey: KEY, script: [{ text: 'never' }] })
    const err = await ask(openai(m, 'sk-wrong'), [{ role: 'user', content: 'go' }]).catch((e) => e)
    expect(err).toBeInstanceOf(OpenAIAuthError)
    expect(err.status).toBe(401)
    expect(err.message).toBe('401 Incorrect API key provided.')
    expect(err.code).toBe('invalid_api_key')
    expect(m.requests).toHaveLength(1)
    expect(m.remaining()).toBe(1)
  })

  it('concurrent conversations routed by a custom route get their own scripts', async () => {
    const m = await mock({
      provider: 'openai',
      delayMs: 5,
      route: (req) => req.firstUserText.split(':')[0],
      scripts: { A: [{ text: 'for A' }, { text: 'A again' }], B: [{ text: 'for B' }] },
    })
    const client = openai(m)
    const said = async (task: string) => (await ask(client, [{ role: 'user', content: task }])).choices[0].message.content
    expect(await Promise.all([said('A: one'), said('B: two'), said('A: three')])).toEqual(['for A', 'for B', 'A again'])
    expect(m.remaining()).toBe(0)
  })

  it('rejects what the real API rejects: stream, unanswered tool_calls, object arguments, unknown path', async () => {
    const m = await mock({ provider: 'openai', script: [{ text: 'unused' }] })
    const client = openai(m)
    const streamErr = await client.chat.completions
      .create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], stream: true })
      .catch((e) => e)
    expect(streamErr).toBeInstanceOf(OpenAIBadRequest)
    expect(streamErr.message).toMatch(/streaming is not supported/)

    const assistant: OpenAI.Chat.ChatCompletionAssistantMessageParam = {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_x', type: 'function', function: { name: 'run_command', arguments: '{}' } }],
    }
    const pairErr = await ask(client, [{ role: 'user', content: 'hi' }, assistant, { role: 'user', content: 'no result' }]).catch((e) => e)
    expect(pairErr).toBeInstanceOf(OpenAIBadRequest)
    expect(pairErr.message).toMatch(/did not have response messages: call_x/)

    const objectArgs = { ...assistant, tool_calls: [{ id: 'call_y', type: 'function', function: { name: 'run_command', arguments: { cmd: 'ls' } } }] }
    const res = await post(`${m.url}/chat/completions`, JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }, objectArgs] }))
    expect(res.status).toBe(400)
    expect((await res.json()).error.message).toMatch(/expected a string, but got object/)

    const unknown = await post(`${m.url}/responses`, '{}')
    expect(unknown.status).toBe(404)
    expect((await unknown.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'unknown_url' })
    expect(m.remaining()).toBe(1)
  })
})
