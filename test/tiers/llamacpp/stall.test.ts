// The edge tier's liveness rule (src/tiers/llamacpp/step-watch.ts): a step stuck past its limit
// fails the stream with a retryable error, the tier is not ready until a step completes again,
// and the stuck sequence is released once its step returns.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../../../src/errors/gateway-error.js';
import type { MetricsService } from '../../../src/observability/metrics.js';
import type { LlamaTokenizer } from '../../../src/text/llama-tokenizer.js';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import { StepWatch } from '../../../src/tiers/llamacpp/step-watch.js';
import { Cancellation } from '../../../src/tiers/cancellation.js';
import type { GenerateRequest } from '../../../src/tiers/tier.js';
import { startLlamaTier, type StartedLlamaTier } from '../../helpers/llama-tier.js';

const STALL_MS = 1_500;

describe('StepWatch', () => {
  test('a step past factor x expected + margin is reported once; a completed step clears it', () => {
    let now = 0;
    const stalled: string[] = [];
    const watch = new StepWatch({ checkMs: 1_000, runStallFactor: 2, runStallMs: 100 }, () => now);
    const reported: string[] = [];
    // Learn a decode step of ~10 ms.
    for (let i = 0; i < 50; i++) {
      const id = watch.begin(0, () => reported.push('early'));
      now += 10;
      watch.completed(id, 0);
    }
    const id = watch.begin(0, (reason) => stalled.push(reason));
    now += 120; // limit: 2 x ~10 + 100
    watch.check();
    assert.equal(stalled.length, 0, 'within the limit');
    now += 20;
    watch.check();
    watch.check();
    assert.equal(stalled.length, 1, 'reported once');
    assert.match(stalled[0]!, /has taken 140 ms \(expected \d+ ms, limit 1\d\d ms\)/);
    assert.equal(watch.stall, stalled[0]);
    now += 5_000;
    watch.completed(id, 0); // the stuck step returned: a sign of life, but not a duration to learn
    assert.equal(watch.stall, undefined);
    const next = watch.begin(0, (reason) => stalled.push(reason));
    now += 110;
    watch.check();
    assert.equal(stalled.length, 1, 'the late step did not raise the expected step time... nor lower it');
    watch.completed(next, 0);
    assert.deepEqual(reported, []);
    watch.close();
  });

  test('a first step is expected to take the prefill of its prompt', () => {
    let now = 0;
    const stalled: string[] = [];
    const watch = new StepWatch({ checkMs: 1_000, runStallFactor: 1, runStallMs: 50 }, () => now);
    watch.begin(1_000, (reason) => stalled.push(reason)); // prior: 1 ms per prompt token
    now += 900;
    watch.check();
    assert.equal(stalled.length, 0);
    now += 200;
    watch.check();
    assert.equal(stalled.length, 1);
    watch.close();
  });
});

describe('llama.cpp edge tier: a stalled step', () => {
  let started: StartedLlamaTier;
  let tier: LlamaCppTier;
  let tokenizer: LlamaTokenizer;
  let metrics: MetricsService;

  before(async () => {
    started = await startLlamaTier({ liveness: { checkMs: 20, runStallFactor: 2, runStallMs: 300 } });
    ({ tier, tokenizer, metrics } = started);
  });
  after(() => started.close());

  const request = (maxTokens: number): GenerateRequest => ({
    tokens: tokenizer.tokenize('Once upon a time'),
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens,
    stopTokens: [],
    topLogprobs: 0,
  });

  async function tokensOf(maxTokens: number): Promise<number[]> {
    const out: number[] = [];
    for await (const e of tier.generate(request(maxTokens), new AbortController().signal)) {
      if (e.kind === 'tokens') out.push(...e.tokens);
    }
    return out;
  }

  test('fails the stream as upstream_broken, takes the tier out of service, and comes back', async () => {
    const expected = await tokensOf(40); // also teaches the watch this machine's step time
    const got: number[] = [];
    let failure: unknown;
    try {
      for await (const e of tier.generate(request(40), new AbortController().signal)) {
        if (e.kind !== 'tokens') continue;
        got.push(...e.tokens);
        if (got.length === 5) tier.injectStall(STALL_MS);
      }
    } catch (err) {
      failure = err;
    }
    assert.ok(failure instanceof GatewayError, `the stream failed (got ${got.length} tokens)`);
    assert.equal(failure.kind, 'upstream_broken');
    assert.equal(failure.code, 'TIERGATE_ERR_TIER_STALLED');
    assert.ok(failure.retryable, 'another tier may continue it');
    assert.deepEqual(got, expected.slice(0, got.length), 'tokens before the stall were the greedy ones');
    const health = tier.health();
    assert.equal(health.ready, false);
    assert.match(health.detail ?? '', /^stalled: a llama\.cpp step has taken/);
    const text = await metrics.registry.getSingleMetricAsString('tiergate_tier_stalls_total');
    assert.match(text, /tiergate_tier_stalls_total\{tier="edge"\} 1/);
    assert.equal(tier.nativeState().sequencesInUse, 1, 'the stuck step still holds its sequence');

    // The stuck step returns when the stall ends: the tier is ready, its sequence free again.
    const deadline = Date.now() + 30_000;
    while ((!tier.health().ready || tier.nativeState().sequencesInUse > 0) && Date.now() < deadline) {
      await sleep(25);
    }
    assert.deepEqual(tier.health(), { ready: true });
    assert.equal(tier.nativeState().sequencesInUse, 0);
    assert.deepEqual(await tokensOf(40), expected, 'it serves the same greedy tokens afterwards');
  });

  test("a kept sequence's stalled draft or verify call fails with the stall error; its sequence returns once the call does", async () => {
    const prompt = tokenizer.tokenize('Once upon a time');
    const greedy = {
      sampling: { temperature: 0, topP: 1, topK: 0 },
      seed: 1,
      topLogprobs: 0,
      logprobs: false,
    };
    for (const kind of ['verify', 'draft'] as const) {
      const seq = await tier.openSequence({ stopTokens: [] }, new Cancellation());
      const first = await seq.draft({ keep: 0, append: prompt }, 3); // teaches the watch, holds a prefix
      assert.equal(first.tokens.length, 3);
      tier.injectStall(STALL_MS);
      const edit = { keep: first.held, append: [first.tokens[2]!] };
      const call = kind === 'verify' ? seq.verify(edit, [1, 2, 3], greedy) : seq.draft(edit, 4);
      const failure = await call.then(
        () => assert.fail(`the stalled ${kind} completed`),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof GatewayError, String(failure));
      assert.equal(failure.code, 'TIERGATE_ERR_TIER_STALLED');
      assert.equal(tier.health().ready, false);
      seq.close();
      assert.equal(tier.nativeState().sequencesInUse, 1, `the stuck ${kind} still holds its sequence`);
      const deadline = Date.now() + 30_000;
      while ((!tier.health().ready || tier.nativeState().sequencesInUse > 0) && Date.now() < deadline) {
        await sleep(25);
      }
      assert.deepEqual(tier.health(), { ready: true });
      assert.equal(tier.nativeState().sequencesInUse, 0);
    }
  });
});
