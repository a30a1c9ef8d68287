import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { pino } from 'pino';
import { buildConfig } from '../../../src/config/index.js';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { MetricsService } from '../../../src/observability/metrics.js';
import { LlamaTokenizer } from '../../../src/text/llama-tokenizer.js';
import { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { GenerateRequest, TierEvent } from '../../../src/tiers/tier.js';
import { FAMILY_DIR } from '../../helpers/start-gateway.js';

const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
  prompts: { ids: number[]; greedy: number[] }[];
};
const prompt = golden.prompts[0]!;
const greedy = { temperature: 0, topP: 1, topK: 0 };
const request = (extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  tokens: prompt.ids,
  sampling: greedy,
  maxTokens: 4,
  stopTokens: [],
  topLogprobs: 0,
  ...extra,
});
/** The sampler buffer node-llama-cpp keeps per evaluation until a GC: vocabulary x 12 bytes. */
const SAMPLER_BYTES = 2048 * 12;

/** A generation held open by the test: pulled one event at a time. */
function open(tier: LlamaCppTier, req: GenerateRequest, signal = new AbortController().signal) {
  return tier.generate(req, signal)[Symbol.asyncIterator]();
}

async function drain(events: AsyncIterable<TierEvent>): Promise<TierEvent[]> {
  const out: TierEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('llama.cpp edge tier: what a request holds is released when it ends', () => {
  let tokenizer: LlamaTokenizer;
  const tiers: LlamaCppTier[] = [];
  const start = async (reclaimEveryMiB: number): Promise<LlamaCppTier> => {
    const config = buildConfig(
      {
        tiers: { edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', sequences: 2, reclaimEveryMiB } },
        models: { m: { tier: 'edge' } },
      },
      { env: {} },
    );
    const options = config.tiers.edge;
    assert.ok(options?.kind === 'llamacpp');
    const tier = new LlamaCppTier('edge', options, {
      logger: pino({ level: 'silent' }),
      metrics: new MetricsService({ defaultMetrics: false }),
      family: loadModelFamily(FAMILY_DIR),
      tokenizer,
    });
    await tier.start();
    tiers.push(tier);
    return tier;
  };
  const assertReleased = (tier: LlamaCppTier, how: string): void => {
    const s = tier.nativeState();
    assert.deepEqual(
      {
        sequences: s.sequences,
        inUse: s.sequencesInUse,
        withHistory: s.idleSequencesWithHistory,
        live: s.evaluationsLive,
      },
      { sequences: 2, inUse: 0, withHistory: 0, live: 0 },
      how,
    );
  };

  before(async () => {
    tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
  });
  after(async () => {
    for (const t of tiers) await t.close();
    await tokenizer.close();
  });

  test('finish, stop, abort, an early return, an error, a queued abort and score each end clean', async () => {
    const tier = await start(16);
    await drain(tier.generate(request(), new AbortController().signal));
    assertReleased(tier, 'finish (length)');

    const stop = prompt.greedy[1]!;
    const stopped = await drain(tier.generate(request({ stopTokens: [stop] }), new AbortController().signal));
    assert.deepEqual(stopped.at(-1), { kind: 'finish', reason: 'stop' });
    assertReleased(tier, 'finish (stop token)');

    const ac = new AbortController();
    const aborted = open(tier, request({ maxTokens: 10_000 }), ac.signal);
    await aborted.next();
    ac.abort(new Error('client gone'));
    await assert.rejects(aborted.next(), /client gone/);
    assertReleased(tier, 'abort mid-stream');

    for await (const e of tier.generate(request({ maxTokens: 10_000 }), new AbortController().signal)) {
      if (e.kind === 'tokens') break;
    }
    assertReleased(tier, 'the caller returning early');

    const failing = open(tier, request({ maxTokens: 10_000 }));
    await failing.next();
    await assert.rejects(
      failing.throw?.(new Error('pipeline failed')) ?? Promise.resolve(),
      /pipeline failed/,
    );
    assertReleased(tier, 'an error thrown into the stream');

    // Both sequences busy: a third request waits, and is aborted while it waits.
    const held = [0, 1].map(() => open(tier, request({ maxTokens: 10_000 })));
    await Promise.all(held.map((h) => h.next()));
    const waiting = new AbortController();
    const queued = drain(tier.generate(request(), waiting.signal));
    waiting.abort(new Error('deadline'));
    await assert.rejects(queued, /deadline/);
    await Promise.all(held.map((h) => h.return?.()));
    assertReleased(tier, 'abort while queued');

    const scored = await tier.score([...prompt.ids, prompt.greedy[0]!]);
    assert.equal(scored.length, prompt.ids.length);
    assertReleased(tier, 'score');
    // Every generation that reached llama.cpp and the score: one evaluation each (the queued
    // request never got a sequence).
    assert.equal(tier.nativeState().evaluations, 8);
  });

  test('ended evaluations are collected when their native buffers reach the budget', async () => {
    // 0.25 MiB: a collection every ~10 evaluations of the tiny model (2,048-token vocabulary).
    const tier = await start(0.25);
    for (let i = 0; i < 40; i++)
      await drain(tier.generate(request({ maxTokens: 2 }), new AbortController().signal));
    await tick();
    const s = tier.nativeState();
    assert.equal(s.evaluations, 40);
    assert.ok(
      s.reclaims >= Math.floor((40 * SAMPLER_BYTES) / (0.25 * 1024 * 1024)),
      `reclaims ${s.reclaims}`,
    );
    assert.ok(s.pendingBytes < 0.25 * 1024 * 1024, `pending ${s.pendingBytes}`);
    assertReleased(tier, 'after 40 requests');
  });

  test('reclaimEveryMiB: 0 leaves them to V8: the pending estimate only grows', async () => {
    const tier = await start(0);
    for (let i = 0; i < 20; i++)
      await drain(tier.generate(request({ maxTokens: 2 }), new AbortController().signal));
    await tick();
    const s = tier.nativeState();
    assert.equal(s.reclaims, 0);
    assert.equal(s.pendingBytes, 20 * SAMPLER_BYTES);
  });
});
