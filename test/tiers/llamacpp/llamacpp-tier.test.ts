import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MetricsService } from '../../../src/observability/metrics.js';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { TierEvent } from '../../../src/tiers/tier.js';
import { FAMILY_DIR } from '../../helpers/start-gateway.js';
import { startLlamaTier, type StartedLlamaTier } from '../../helpers/llama-tier.js';
import { flat, type FlatEvent } from '../../helpers/tier-events.js';

interface GoldenPrompt {
  readonly text: string;
  readonly ids: number[];
  readonly next_token_logits: number[];
  readonly greedy: number[];
}
const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
  prompts: GoldenPrompt[];
};
const greedy = { temperature: 0, topP: 1, topK: 0 };

async function collect(events: AsyncIterable<TierEvent>): Promise<FlatEvent[]> {
  const out: FlatEvent[] = [];
  for await (const e of flat(events)) out.push(e);
  return out;
}

describe('llama.cpp edge tier on the F32 GGUF', () => {
  let tier: LlamaCppTier;
  let metrics: MetricsService;
  let started: StartedLlamaTier;

  before(async () => {
    started = await startLlamaTier();
    ({ tier, metrics } = started);
  });
  after(() => started.close());

  test('info and health describe the loaded variant', () => {
    const info = tier.info();
    assert.equal(info.framework, 'llama.cpp');
    assert.ok(info.contextLength > 0);
    assert.equal(info.vocabSize, 2048);
    assert.deepEqual(tier.health(), { ready: true });
  });

  test('greedy generation reproduces the PyTorch FP32 continuation stored in golden.json', async () => {
    for (const p of golden.prompts.slice(0, 3)) {
      const events = await collect(
        tier.generate(
          { tokens: p.ids, sampling: greedy, maxTokens: p.greedy.length, stopTokens: [], topLogprobs: 0 },
          new AbortController().signal,
        ),
      );
      const tokens = events.flatMap((e) => (e.kind === 'token' ? [e.token] : []));
      assert.deepEqual(tokens, p.greedy.slice(0, tokens.length), p.text);
      assert.equal(events.at(-1)?.kind, 'finish');
    }
  });

  test('sampling with top_p 1 and no top_k draws from the whole distribution; top_k 40 truncates', async () => {
    // On this prompt the 40 likeliest first tokens hold 26% of the mass (golden.json logits):
    // node-llama-cpp's own defaults (top-k 40, top-p 0.95) would never leave them.
    const p = golden.prompts[1]!;
    const top40 = new Set(
      p.next_token_logits
        .map((l, token) => ({ l, token }))
        .sort((a, b) => b.l - a.l)
        .slice(0, 40)
        .map((e) => e.token),
    );
    const outside = async (topK: number): Promise<number> => {
      let n = 0;
      for (let seed = 1; seed <= 100; seed++) {
        const events = await collect(
          tier.generate(
            {
              tokens: p.ids,
              sampling: { temperature: 1, topP: 1, topK, seed },
              maxTokens: 1,
              stopTokens: [],
              topLogprobs: 0,
            },
            new AbortController().signal,
          ),
        );
        const first = events[0];
        if (first?.kind === 'token' && !top40.has(first.token)) n++;
      }
      return n;
    };
    const whole = await outside(0);
    assert.ok(whole >= 50, `${whole} of 100 samples outside the top 40 (expected about 74)`);
    assert.equal(await outside(40), 0);
  });

  test('logprobs match the reference logits (log-softmax)', async () => {
    const p = golden.prompts[0]!;
    const max = Math.max(...p.next_token_logits);
    const logZ = max + Math.log(p.next_token_logits.reduce((s, l) => s + Math.exp(l - max), 0));
    const events = await collect(
      tier.generate(
        { tokens: p.ids, sampling: greedy, maxTokens: 1, stopTokens: [], topLogprobs: 3 },
        new AbortController().signal,
      ),
    );
    const first = events[0];
    assert.ok(first?.kind === 'token');
    assert.ok(Math.abs(first.logprob - (p.next_token_logits[first.token]! - logZ)) < 1e-3);
    assert.equal(first.top?.[0]?.token, first.token);
    const scored = await tier.score([...p.ids, first.token]);
    assert.equal(scored.length, p.ids.length);
    assert.ok(Math.abs(scored.at(-1)! - first.logprob) < 1e-3);
  });

  test('logprobs: false skips the per-token confidence (NaN) without changing the tokens', async () => {
    const p = golden.prompts[0]!;
    const run = (logprobs: boolean | undefined) =>
      collect(
        tier.generate(
          { tokens: p.ids, sampling: greedy, maxTokens: 8, stopTokens: [], topLogprobs: 0, logprobs },
          new AbortController().signal,
        ),
      );
    const [skipped, computed] = [await run(false), await run(undefined)];
    const tokens = (events: typeof skipped) => events.flatMap((e) => (e.kind === 'token' ? [e.token] : []));
    assert.deepEqual(tokens(skipped), tokens(computed));
    for (const e of skipped) if (e.kind === 'token') assert.ok(Number.isNaN(e.logprob));
    for (const e of computed) if (e.kind === 'token') assert.ok(Number.isFinite(e.logprob));
  });

  test('maxTokens ends with "length"; the context limit is respected', async () => {
    const p = golden.prompts[1]!;
    const events = await collect(
      tier.generate(
        { tokens: p.ids, sampling: greedy, maxTokens: 3, stopTokens: [], topLogprobs: 0 },
        new AbortController().signal,
      ),
    );
    assert.equal(events.filter((e) => e.kind === 'token').length, 3);
    assert.deepEqual(events.at(-1), { kind: 'finish', reason: 'length' });
  });

  test('abort stops generation and frees the sequence for waiting requests', async () => {
    const p = golden.prompts[0]!;
    const controllers = [new AbortController(), new AbortController()];
    const long = { tokens: p.ids, sampling: { ...greedy, temperature: 1, seed: 1 }, maxTokens: 10_000 };
    const streams = controllers.map((c) => {
      const events = tier.generate({ ...long, stopTokens: [], topLogprobs: 0 }, c.signal);
      return events[Symbol.asyncIterator]();
    });
    await Promise.all(streams.map((s) => s.next()));
    // Both sequences are busy: a third request waits until one is freed.
    const third = collect(
      tier.generate(
        { tokens: p.ids, sampling: greedy, maxTokens: 2, stopTokens: [], topLogprobs: 0 },
        new AbortController().signal,
      ),
    );
    controllers[0]!.abort(new Error('client gone'));
    await assert.rejects(streams[0]!.next(), /client gone/);
    const events = await third;
    assert.deepEqual(events.at(-1), { kind: 'finish', reason: 'length' });
    controllers[1]!.abort(new Error('done'));
    await assert.rejects(streams[1]!.next());
    const inUse = (await metrics.registry.getSingleMetric('tiergate_tier_sequences_in_use')?.get())?.values[0]
      ?.value;
    assert.equal(inUse, 0);
  });
});

describe('llama.cpp edge tier: attention kernel', () => {
  test('plain attention by default; flash attention gives the same greedy tokens and logprobs', async () => {
    const start = async (flashAttention: boolean | undefined): Promise<StartedLlamaTier> => {
      const started = await startLlamaTier({
        model: 'tiny-q4_k_m.gguf',
        sequences: 1,
        ...(flashAttention === undefined ? {} : { flashAttention }),
      });
      if (flashAttention === undefined) assert.equal(started.options.flashAttention, false);
      return started;
    };
    const started = [await start(undefined), await start(true)];
    const tiers = started.map((s) => s.tier);
    try {
      const p = golden.prompts[0]!;
      const runs = await Promise.all(
        tiers.map((t) =>
          collect(
            t.generate(
              { tokens: p.ids, sampling: greedy, maxTokens: 24, stopTokens: [], topLogprobs: 0 },
              new AbortController().signal,
            ),
          ),
        ),
      );
      const tokens = runs.map((events) => events.flatMap((e) => (e.kind === 'token' ? [e.token] : [])));
      assert.equal(tokens[0]!.length, 24);
      assert.deepEqual(tokens[1], tokens[0]);
      const logprobs = runs.map((events) => events.flatMap((e) => (e.kind === 'token' ? [e.logprob] : [])));
      // Flash attention accumulates in f16 on CPU: its logprobs differ in the second decimal.
      logprobs[0]!.forEach((l, i) =>
        assert.ok(Math.abs(l - logprobs[1]![i]!) < 0.05, `position ${i}: ${l} vs ${logprobs[1]![i]}`),
      );
    } finally {
      for (const s of started) await s.close();
    }
  });
});
