import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EchoTierConfig } from '../../../src/config/index.js';
import { Cancellation } from '../../../src/tiers/cancellation.js';
import { EchoTier } from '../../../src/tiers/echo/echo-tier.js';
import type { TierDeps } from '../../../src/tiers/registry.js';
import type { GenerateRequest, TierEvent } from '../../../src/tiers/tier.js';

const BOS = 1;
// The echo tier reads only the tokenizer's BOS id from its dependencies.
const deps = { tokenizer: { bos: BOS } } as unknown as TierDeps;

function tier(options: Partial<EchoTierConfig> = {}): EchoTier {
  return new EchoTier(
    'echo',
    { kind: 'echo', contextLength: 2048, tokenDelayMs: 0, batchTokens: 32, ...options },
    deps,
  );
}

function request(tokens: number[], more: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    tokens,
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens: 16,
    stopTokens: [],
    topLogprobs: 0,
    ...more,
  };
}

async function events(stream: AsyncIterable<TierEvent>): Promise<TierEvent[]> {
  const out: TierEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

describe('echo tier', () => {
  test('replays the prompt after BOS, cycling, in batches of batchTokens, then finishes', async () => {
    const got = await events(
      tier({ batchTokens: 4 }).generate(request([BOS, 5, 6, 7], { maxTokens: 7 }), new Cancellation()),
    );
    assert.deepEqual(got, [
      { kind: 'tokens', tokens: [5, 6, 7, 5], logprobs: [0, 0, 0, 0], top: undefined },
      { kind: 'tokens', tokens: [6, 7, 5], logprobs: [0, 0, 0], top: undefined },
      { kind: 'finish', reason: 'length' },
    ]);
  });

  test('a stop token ends the stream: the tokens before it, then finish "stop"', async () => {
    const t = tier();
    const mid = await events(t.generate(request([5, 6, 9, 7], { stopTokens: [9] }), new Cancellation()));
    assert.deepEqual(mid, [
      { kind: 'tokens', tokens: [5, 6], logprobs: [0, 0], top: undefined },
      { kind: 'finish', reason: 'stop' },
    ]);
    const first = await events(t.generate(request([9, 6], { stopTokens: [9] }), new Cancellation()));
    assert.deepEqual(first, [{ kind: 'finish', reason: 'stop' }]);
  });

  test('the context length and maxTokens 0 bound the output; alternatives when asked', async () => {
    const t = tier({ contextLength: 5 });
    assert.deepEqual(await events(t.generate(request([5, 6, 7]), new Cancellation())), [
      { kind: 'tokens', tokens: [5, 6], logprobs: [0, 0], top: undefined },
      { kind: 'finish', reason: 'length' },
    ]);
    assert.deepEqual(await events(t.generate(request([5], { maxTokens: 0 }), new Cancellation())), [
      { kind: 'finish', reason: 'length' },
    ]);
    const withTop = await events(
      tier().generate(request([5], { maxTokens: 1, topLogprobs: 2 }), new Cancellation()),
    );
    assert.deepEqual(withTop[0], {
      kind: 'tokens',
      tokens: [5],
      logprobs: [0],
      top: [[{ token: 5, logprob: 0 }]],
    });
  });

  test('with a delay, one token per event; an abort during the delay rejects with its reason', async () => {
    const t = tier({ tokenDelayMs: 5 });
    const got = await events(t.generate(request([5, 6], { maxTokens: 3 }), new Cancellation()));
    assert.deepEqual(
      got.map((e) => (e.kind === 'tokens' ? e.tokens : e.reason)),
      [[5], [6], [5], 'length'],
    );
    const c = new Cancellation();
    const it = t.generate(request([5, 6]), c)[Symbol.asyncIterator]();
    const pending = it.next();
    const reason = new Error('client gone');
    c.abort(reason);
    await assert.rejects(pending, reason);
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test('an already aborted signal fails before any token; return() ends the stream', async () => {
    const c = new Cancellation();
    c.abort(new Error('gone'));
    await assert.rejects(events(tier().generate(request([5]), c)), /gone/);
    const stream = tier({ batchTokens: 1 }).generate(request([5, 6]), new Cancellation());
    const it = stream[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    await it.return?.();
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
});
