import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { echoConfig, startGateway, type TestGateway } from '../helpers/start-gateway.js';

// Every malformed request gets the right 4xx and OpenAI's error JSON — never a 5xx or a crash.
interface Case {
  readonly name: string;
  readonly path?: string;
  readonly method?: string;
  readonly body?: string;
  readonly contentType?: string;
  readonly status: number;
  readonly param?: string | null;
  readonly code?: string | null;
  /** What the message must say (the field's rule, not just "invalid"). */
  readonly message?: RegExp;
}

const ok = { model: 'tiergate-echo', prompt: 'hi', max_tokens: 2 };
const chatOk = { model: 'tiergate-echo', messages: [{ role: 'user', content: 'hi' }] };
const json = (v: unknown): string => JSON.stringify(v);

const cases: Case[] = [
  {
    name: 'max_tokens of the wrong type',
    body: json({ ...ok, max_tokens: '5' }),
    status: 400,
    param: 'max_tokens',
    message: /expected integer or null \(got "5"\)/,
  },
  {
    name: 'negative max_tokens',
    body: json({ ...ok, max_tokens: -1 }),
    status: 400,
    param: 'max_tokens',
    message: /greater or equal to 0 \(got -1\)/,
  },
  {
    name: 'temperature out of range',
    body: json({ ...ok, temperature: 3 }),
    status: 400,
    param: 'temperature',
  },
  { name: 'top_p of zero', body: json({ ...ok, top_p: 0 }), status: 400, param: 'top_p' },
  { name: 'stream not a boolean', body: json({ ...ok, stream: 'yes' }), status: 400, param: 'stream' },
  { name: 'n too large', body: json({ ...ok, n: 50 }), status: 400, param: 'n' },
  {
    name: 'too many stop sequences',
    body: json({ ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }),
    status: 400,
    param: 'stop',
  },
  { name: 'missing prompt', body: json({ model: 'tiergate-echo' }), status: 400, param: 'prompt' },
  { name: 'missing model', body: json({ prompt: 'hi' }), status: 400, param: 'model' },
  { name: 'body is an array', body: json([ok]), status: 400 },
  { name: 'not JSON', body: '{"model": ', status: 400, code: 'invalid_json' },
  { name: 'empty JSON body', body: '', status: 400 },
  {
    name: 'unknown model',
    body: json({ ...ok, model: 'gpt-9' }),
    status: 404,
    param: 'model',
    code: 'model_not_found',
  },
  {
    name: 'prompt longer than the context',
    body: json({ ...ok, prompt: 'x'.repeat(300) }),
    status: 400,
    code: 'context_length_exceeded',
  },
  {
    name: 'prompt + max_tokens over the context',
    body: json({ ...ok, prompt: 'hello', max_tokens: 255 }),
    status: 400,
    param: 'max_tokens',
    code: 'context_length_exceeded',
  },
  {
    name: 'token id outside the vocabulary',
    body: json({ ...ok, prompt: [1, 99999] }),
    status: 400,
    param: 'prompt',
  },
  { name: 'body too large', body: json({ ...ok, prompt: 'x'.repeat(2_000_000) }), status: 413 },
  { name: 'wrong content type', body: 'hello', contentType: 'text/plain', status: 415 },
  {
    name: 'chat without messages',
    path: '/v1/chat/completions',
    body: json({ model: 'tiergate-echo' }),
    status: 400,
    param: 'messages',
  },
  {
    name: 'chat with empty messages',
    path: '/v1/chat/completions',
    body: json({ model: 'tiergate-echo', messages: [] }),
    status: 400,
    param: 'messages',
  },
  {
    name: 'chat message with a bad role',
    path: '/v1/chat/completions',
    body: json({ ...chatOk, messages: [{ role: 'wizard', content: 'x' }] }),
    message: /expected 'system' or 'developer' or 'user' or 'assistant' or 'tool' \(got "wizard"\)/,
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: 'chat with top_logprobs too large',
    path: '/v1/chat/completions',
    body: json({ ...chatOk, logprobs: true, top_logprobs: 50 }),
    status: 400,
    param: 'top_logprobs',
  },
  { name: 'unknown route', path: '/v1/nothing', body: '{}', status: 404, code: 'unknown_url' },
  { name: 'wrong method', path: '/v1/completions', method: 'GET', status: 404 },
  { name: 'unknown model id', path: '/v1/models/gpt-9', method: 'GET', status: 404, code: 'model_not_found' },
  { name: 'unknown tier header', body: json(ok), status: 400 },
];

describe('bad requests', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(echoConfig());
  });
  after(async () => gw.shutdown());

  for (const c of cases) {
    test(`${c.name} → ${c.status}`, async () => {
      const method = c.method ?? 'POST';
      const headers: Record<string, string> = {};
      if (method === 'POST') headers['content-type'] = c.contentType ?? 'application/json';
      if (c.name === 'unknown tier header') headers['x-tiergate-tier'] = 'nope';
      const res = await fetch(`${gw.baseUrl}${c.path ?? '/v1/completions'}`, {
        method,
        headers,
        body: method === 'POST' ? (c.body ?? '') : undefined,
      });
      const body = (await res.json()) as {
        error: { message: string; type: string; param: unknown; code: unknown };
      };
      assert.equal(res.status, c.status, JSON.stringify(body));
      assert.deepEqual(Object.keys(body), ['error']);
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(typeof body.error.message, 'string');
      assert.ok(body.error.message.length > 0);
      assert.equal(body.error.type, 'invalid_request_error');
      if (c.param !== undefined) assert.equal(body.error.param, c.param);
      if (c.code !== undefined) assert.equal(body.error.code, c.code);
      if (c.message !== undefined) assert.match(body.error.message, c.message);
    });
  }

  test('unknown fields are ignored, as OpenAI does', async () => {
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: json({ ...ok, frobnicate: true, logit_bias: { '5': 1 } }),
    });
    assert.equal(res.status, 200);
  });

  test('the gateway is still healthy after the table', async () => {
    const res = await fetch(`${gw.baseUrl}/readyz`);
    assert.equal(res.status, 200);
    const metrics = await (await fetch(`${gw.baseUrl}/metrics`)).text();
    assert.doesNotMatch(metrics, /tiergate_requests_total\{[^}]*status="5\d\d"/);
  });
});
