import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { sdkBehaviourTests } from '../helpers/openai-behaviour.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { encodePrompt } from '../../src/text/tokenizer.js';
import {
  edgeConfig,
  FAMILY_DIR,
  metricValue,
  startGateway,
  type TestGateway,
} from '../helpers/start-gateway.js';

// The real gateway on the real llama.cpp edge tier, driven by the official openai SDK.
// Model outputs are never hard-coded: the model is retrained; expectations are derived from it.
const MODEL = 'tiergate-tiny';
const PROMPT = 'The county grand jury said';

describe('OpenAI API on the llama.cpp edge tier', () => {
  let gw: TestGateway;
  let tokenizer: LlamaTokenizer;

  before(async () => {
    gw = await startGateway(edgeConfig({ sequences: 4 }));
    tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
  });
  after(async () => {
    await gw.shutdown();
    await tokenizer.close();
  });

  test('completion: OpenAI shape, usage equals the tokenizer counts, max_tokens gives "length"', async () => {
    const res = await gw.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
    });
    assert.match(res.id, /^cmpl-/);
    assert.equal(res.object, 'text_completion');
    assert.equal(res.model, MODEL);
    assert.match(res.system_fingerprint ?? '', /^fp_/);
    assert.ok(Math.abs(res.created - Date.now() / 1000) < 60);
    const choice = res.choices[0]!;
    assert.equal(choice.index, 0);
    assert.equal(choice.logprobs, null);
    assert.equal(res.usage?.prompt_tokens, encodePrompt(tokenizer, PROMPT).length);
    if (choice.finish_reason === 'length') assert.equal(res.usage?.completion_tokens, 12);
    else assert.ok((res.usage?.completion_tokens ?? 99) <= 12);
    assert.equal(
      res.usage?.total_tokens,
      (res.usage?.prompt_tokens ?? 0) + (res.usage?.completion_tokens ?? 0),
    );
  });

  test('a token-array prompt is accepted and echo prepends the prompt text', async () => {
    const tokens = encodePrompt(tokenizer, PROMPT);
    const res = await gw.client.completions.create({
      model: MODEL,
      prompt: tokens,
      max_tokens: 4,
      temperature: 0,
      echo: true,
    });
    assert.ok(res.choices[0]!.text.startsWith(PROMPT), res.choices[0]!.text);
    assert.equal(res.usage?.prompt_tokens, tokens.length);
  });

  test('echo with logprobs scores the prompt tokens too (as eval harnesses use it)', async () => {
    const tokens = encodePrompt(tokenizer, PROMPT);
    const expected = await gw.gateway.tiers.get('edge')!.score(tokens);
    const body = { model: MODEL, prompt: PROMPT, echo: true, logprobs: 1, temperature: 0 };
    // max_tokens 0: score only, generate nothing.
    const scored = await gw.client.completions.create({ ...body, max_tokens: 0 });
    const lp = scored.choices[0]!.logprobs!;
    const echoed = tokens[0] === tokenizer.bos ? tokens.slice(1) : tokens;
    assert.equal(scored.choices[0]!.text, PROMPT);
    assert.equal(lp.tokens!.length, echoed.length);
    assert.equal(lp.tokens!.join(''), PROMPT);
    // With a BOS before it the first prompt token is scored too; each matches the tier's score().
    const offset = tokens.length - echoed.length;
    lp.token_logprobs!.forEach((v, i) => {
      const want = i + offset === 0 ? null : expected[i + offset - 1]!;
      if (want === null) assert.equal(v, null);
      else assert.ok(Math.abs(v! - want) < 1e-4, `token ${i}: ${v} vs ${want}`);
    });
    assert.deepEqual(lp.text_offset!.slice(0, 2), [0, lp.tokens![0]!.length]);
    // With generation: the prompt's entries come first, then one per generated token.
    const res = await gw.client.completions.create({ ...body, max_tokens: 3 });
    const all = res.choices[0]!.logprobs!;
    assert.equal(all.tokens!.length, echoed.length + (res.usage?.completion_tokens ?? 0));
    assert.equal(all.tokens!.join(''), res.choices[0]!.text);
    // Streamed: the opening chunk carries the prompt's entries.
    const stream = await gw.client.completions.create({ ...body, max_tokens: 3, stream: true });
    const streamed: (number | null)[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.token_logprobs ?? []));
    assert.deepEqual(streamed, all.token_logprobs);
  });

  sdkBehaviourTests(() => gw, MODEL, PROMPT);

  test('a stop sequence ends the text before it with finish_reason "stop"', async () => {
    const base = await gw.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0,
    });
    const full = base.choices[0]!.text;
    assert.ok(full.length >= 8, `greedy output too short to test stops: ${JSON.stringify(full)}`);
    const stop = full.slice(4, 7);
    const res = await gw.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(res.choices[0]!.text, full.slice(0, full.indexOf(stop)));
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    const streamed = await gw.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 40,
      temperature: 0,
      stop,
      stream: true,
    });
    let text = '';
    for await (const chunk of streamed) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, full.slice(0, full.indexOf(stop)));
  });

  test('chat: rendered with the chat template, OpenAI shapes, streaming equals non-streaming', async () => {
    const params = {
      model: MODEL,
      messages: [
        { role: 'system' as const, content: 'You are terse.' },
        { role: 'user' as const, content: 'Tell me about the jury.' },
      ],
      max_completion_tokens: 16,
      temperature: 0.7,
      seed: 99,
    };
    const res = await gw.client.chat.completions.create(params);
    assert.match(res.id, /^chatcmpl-/);
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0]!.message.role, 'assistant');
    assert.ok(['stop', 'length'].includes(res.choices[0]!.finish_reason));
    const stream = await gw.client.chat.completions.create({ ...params, stream: true });
    let text = '';
    let role: string | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    assert.equal(role, 'assistant');
    assert.equal(text, res.choices[0]!.message.content);
  });

  test('chat logprobs with top_logprobs', async () => {
    const res = await gw.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 4,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = res.choices[0]!.logprobs!.content!;
    assert.equal(content.length, res.usage?.completion_tokens);
    assert.ok(content.every((c) => c.top_logprobs.length <= 2 && c.logprob <= 0));
  });

  test('n = 3 choices come back with distinct indexes', async () => {
    const res = await gw.client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 6,
      n: 3,
      seed: 5,
    });
    assert.deepEqual(
      res.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(res.usage?.prompt_tokens, encodePrompt(tokenizer, PROMPT).length * 3);
  });

  test('20 concurrent streams all complete', async () => {
    const one = async (i: number): Promise<string | null> => {
      const stream = await gw.client.completions.create({
        model: MODEL,
        prompt: `${PROMPT} ${i}`,
        max_tokens: 16,
        seed: i,
        stream: true,
      });
      let finish: string | null = null;
      for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
      return finish;
    };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => one(i)));
    assert.ok(
      results.every((f) => f === 'length' || f === 'stop'),
      JSON.stringify(results),
    );
    assert.equal(await metricValue(gw.baseUrl, 'tiergate_tier_sequences_in_use{tier="edge"}'), 0);
  });

  test('/v1/models lists the served names; /readyz is ready', async () => {
    const models = await gw.client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [MODEL],
    );
    const one = await gw.client.models.retrieve(MODEL);
    assert.equal(one.object, 'model');
    const ready = await fetch(`${gw.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
  });
});

describe('client abort on the edge tier', () => {
  let gw: TestGateway;
  before(async () => {
    // One sequence only: a request after the aborted one could not start unless it was freed.
    gw = await startGateway(edgeConfig({ sequences: 1 }));
  });
  after(async () => gw.shutdown());

  test('aborting a stream frees its sequence at once', async () => {
    const controller = new AbortController();
    const stream = await gw.client.completions.create(
      { model: MODEL, prompt: PROMPT, max_tokens: 400, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const _chunk of stream) {
        // Several events can arrive in one read (SSE writes are coalesced): stop reading here.
        if (++chunks === 2) {
          controller.abort();
          break;
        }
      }
    } catch {
      // The SDK may end the iteration quietly or throw an abort error; either is fine.
    }
    assert.equal(chunks, 2);
    // The server notices the closed socket and aborts; poll the metric briefly.
    // The series appears (NaN until then) once the server has seen the disconnect.
    let aborted = Number.NaN;
    for (let i = 0; i < 100 && !(aborted >= 1); i++) {
      aborted = await metricValue(gw.baseUrl, 'tiergate_requests_aborted_total{tier="edge"}');
      if (!(aborted >= 1)) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(aborted, 1);
    assert.equal(await metricValue(gw.baseUrl, 'tiergate_tier_sequences_in_use{tier="edge"}'), 0);
    const output = await metricValue(gw.baseUrl, 'tiergate_tokens_total{tier="edge",type="output"}');
    assert.ok(output < 400, `the aborted generation ran on: ${output} tokens`);
    const next = await gw.client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 3 });
    assert.equal(next.choices.length, 1);
  });
});

describe('SSE write coalescing on the edge tier (server.sseCoalesceMs)', () => {
  // A window far longer than the generation: after the first write, everything waits for the end.
  let merged: TestGateway;
  let perEvent: TestGateway;
  before(async () => {
    merged = await startGateway(edgeConfig({}, { server: { sseCoalesceMs: 1000 } }));
    perEvent = await startGateway(edgeConfig({}, { server: { sseCoalesceMs: 0 } }));
  });
  after(async () => {
    await merged.shutdown();
    await perEvent.shutdown();
  });

  const body = { model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0, logprobs: 1 };

  test('waiting deltas leave as one chunk per write; joined, text and logprobs equal the whole answer', async () => {
    const whole = await merged.client.completions.create(body);
    const stream = await merged.client.completions.create({ ...body, stream: true });
    const texts: string[] = [];
    const tokens: string[] = [];
    const offsets: number[] = [];
    const logprobs: number[] = [];
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (c === undefined || c.text === '') continue;
      texts.push(c.text);
      tokens.push(...(c.logprobs?.tokens ?? []));
      offsets.push(...(c.logprobs?.text_offset ?? []));
      logprobs.push(...(c.logprobs?.token_logprobs ?? []));
    }
    // The first delta went at once; the rest waited together.
    assert.equal(texts.length, 2, JSON.stringify(texts));
    const expected = whole.choices[0]!;
    assert.equal(texts.join(''), expected.text);
    assert.deepEqual(tokens, expected.logprobs!.tokens);
    assert.deepEqual(offsets, expected.logprobs!.text_offset);
    const wholeLogprobs = expected.logprobs!.token_logprobs!;
    assert.equal(logprobs.length, wholeLogprobs.length);
    logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - wholeLogprobs[i]!) < 1e-3, `token ${i}`));
  });

  test('chat: a merged chunk carries the logprobs of all its tokens', async () => {
    const params = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Tell me about the jury.' }],
      max_tokens: 24,
      temperature: 0,
      logprobs: true,
    };
    const whole = await merged.client.chat.completions.create(params);
    const stream = await merged.client.chat.completions.create({ ...params, stream: true });
    let text = '';
    const content: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      content.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((c) => c.token));
    }
    assert.equal(text, whole.choices[0]!.message.content);
    assert.deepEqual(
      content,
      whole.choices[0]!.logprobs!.content!.map((c) => c.token),
    );
  });

  test('sseCoalesceMs 0 writes each delta as a chunk of its own', async () => {
    const stream = await perEvent.client.completions.create({ ...body, stream: true });
    let deltas = 0;
    let text = '';
    for await (const chunk of stream) {
      const t = chunk.choices[0]?.text ?? '';
      if (t !== '') deltas++;
      text += t;
    }
    const whole = await perEvent.client.completions.create(body);
    assert.equal(text, whole.choices[0]!.text);
    // One chunk per token that completed some text (a token can end inside a UTF-8 character).
    assert.ok(deltas > whole.usage!.completion_tokens / 2, `${deltas} chunks`);
  });
});

describe('edge tier at capacity', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(edgeConfig({ sequences: 1, maxQueue: 0 }));
  });
  after(async () => gw.shutdown());

  test('a request beyond sequences + queue gets 429 with Retry-After and OpenAI error JSON', async () => {
    const controller = new AbortController();
    const stream = await gw.client.completions.create(
      { model: MODEL, prompt: PROMPT, max_tokens: 400, stream: true },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // the only sequence is now generating
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: 2 }),
    });
    controller.abort();
    await iterator.return?.();
    assert.equal(res.status, 429);
    assert.ok(res.headers.get('retry-after'));
    const body = (await res.json()) as { error: { type: string; code: string } };
    assert.equal(body.error.type, 'rate_limit_error');
  });
});
