import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChoiceDecoder, type ChoiceStats } from '../../src/pipeline/generate-choice.js';
import { tierSource } from '../helpers/tier-source.js';
import type { ChoiceEvent, GenerationRequest } from '../../src/pipeline/types.js';
import { ByteTokenizer } from '../../src/text/byte-tokenizer.js';
import { Cancellation } from '../../src/tiers/cancellation.js';
import type { TierEvent } from '../../src/tiers/tier.js';

const tokenizer = new ByteTokenizer();

/** A source that replays fixed events: tokens in batches of `sizes`, then a finish. */
function source(text: string, sizes: number[]) {
  const tokens = tokenizer.tokenize(text);
  return {
    name: 'fixed',
    async *generate(): AsyncGenerator<TierEvent> {
      let at = 0;
      for (const size of sizes) {
        const batch = tokens.slice(at, at + size);
        at += size;
        yield { kind: 'tokens', tokens: batch, logprobs: batch.map(() => -0.5) };
      }
      yield { kind: 'finish', reason: 'length' };
    },
  };
}

function request(stop: string[], logprobs = false): GenerationRequest {
  return {
    requestId: 'r',
    model: 'm',
    tier: 'fixed',
    promptTokens: [tokenizer.bos],
    maxTokens: 64,
    sampling: { temperature: 0, topP: 1, topK: 0 },
    stop,
    n: 1,
    logprobs,
    topLogprobs: 0,
    arrivedAt: performance.now(),
  };
}

async function run(text: string, sizes: number[], stop: string[], streamed: boolean, logprobs = false) {
  const stats: ChoiceStats = { completionTokens: 0, firstTokenAt: undefined, lastTokenAt: undefined };
  const events: ChoiceEvent[] = [];
  const decoder = new ChoiceDecoder(tokenizer, request(stop, logprobs), 0, stats, streamed);
  await tierSource(source(text, sizes)).run(
    decoder.tierRequest(undefined),
    new Cancellation().signal,
    (e) => {
      events.push(...decoder.push(e));
      return decoder.done ? 'stop' : undefined;
    },
  );
  return { events, stats };
}

const joined = (events: ChoiceEvent[]): string =>
  events.map((e) => (e.kind === 'delta' ? e.text : '')).join('');

test('a batch of tokens becomes one delta; batching does not change the text', async () => {
  const one = await run('hello world', [11], [], true);
  assert.equal(one.events.filter((e) => e.kind === 'delta').length, 1);
  assert.equal(joined(one.events), 'hello world');
  assert.equal(one.stats.completionTokens, 11);
  const single = await run('hello world', Array(11).fill(1), [], true);
  assert.equal(single.events.filter((e) => e.kind === 'delta').length, 11);
  assert.equal(joined(single.events), 'hello world');
  assert.deepEqual(one.events.at(-1), { kind: 'finish', index: 0, reason: 'length' });
});

test('a stop string inside a batch ends the choice there; later tokens of the batch are dropped', async () => {
  for (const streamed of [true, false]) {
    const { events, stats } = await run('abc STOP def', [4, 8], ['STOP'], streamed);
    assert.equal(joined(events), 'abc ', `streamed: ${streamed}`);
    assert.deepEqual(events.at(-1), { kind: 'finish', index: 0, reason: 'stop' });
    // Counted up to the token that completed the stop string ("P"), not the rest of the batch.
    assert.equal(stats.completionTokens, 8);
  }
});

test('logprobs: every token of a batch gets its own detail', async () => {
  const { events } = await run('hey', [3], [], false, true);
  const details = events.flatMap((e) => (e.kind === 'delta' ? e.tokens : []));
  assert.deepEqual(
    details.map((d) => [d.text, d.logprob]),
    [
      ['h', -0.5],
      ['e', -0.5],
      ['y', -0.5],
    ],
  );
});
