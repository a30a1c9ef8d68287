// Continuous batching on the TensorFlow.js tier: a batch equals its sequences alone, cancelling
// frees a sequence, and the event loop stays free while the worker decodes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TfjsTier } from '../../../src/tiers/tfjs/tfjs-tier.js';
import { flat } from '../../helpers/tier-events.js';
import { collect, makeTfjsTier, readGolden, request } from './helpers.js';

const golden = readGolden();
const batchSizes: number[] = [];
let tier: TfjsTier;

before(async () => {
  tier = makeTfjsTier(
    { maxBatchSize: 8, maxQueueDelayMs: 20 },
    { observer: { observeBatchSize: (_tier, n) => batchSizes.push(n) } },
  );
  await tier.start();
});
after(() => tier.close());

/** Eight prompts of different lengths (golden prompts and their extensions). */
function prompts(): number[][] {
  const base = golden.prompts.map((p) => p.ids);
  return Array.from({ length: 8 }, (_, i) => {
    const p = base[i % base.length]!;
    return i < base.length ? p : [...p, ...golden.prompts[0]!.greedy.slice(0, i * 3)];
  });
}

const seeded = (ps: number[][], i: number, maxTokens: number) =>
  i % 2 === 0
    ? request(ps[i]!, maxTokens)
    : request(ps[i]!, maxTokens, { sampling: { temperature: 0.8, topK: 40, topP: 0.95, seed: 1000 + i } });

test('each sequence of a batch of 8 of different lengths equals its decoding alone', async () => {
  const ps = prompts();
  assert.ok(new Set(ps.map((p) => p.length)).size >= 5);
  const alone: number[][] = [];
  for (let i = 0; i < ps.length; i++) alone.push((await collect(tier, seeded(ps, i, 24))).tokens);
  batchSizes.length = 0;
  const together = await Promise.all(ps.map((_, i) => collect(tier, seeded(ps, i, 24))));
  together.forEach((r, i) => assert.deepEqual(r.tokens, alone[i], `sequence ${i}`));
  // They really ran together: some decode steps had all eight.
  assert.equal(Math.max(...batchSizes), 8);
});

test('sequences joining a running batch at different times still equal their decoding alone', async () => {
  const ps = prompts().slice(0, 4);
  const alone: number[][] = [];
  for (const p of ps) alone.push((await collect(tier, request(p, 30))).tokens);
  const results = await Promise.all(
    ps.map(async (p, i) => {
      await new Promise((r) => setTimeout(r, i * 15));
      return collect(tier, request(p, 30 - i * 5));
    }),
  );
  results.forEach((r, i) => assert.deepEqual(r.tokens, alone[i]!.slice(0, 30 - i * 5), `sequence ${i}`));
});

test('cancelling one sequence mid-batch frees it without disturbing the others', async () => {
  const ps = prompts();
  const alone: number[][] = [];
  for (const p of ps) alone.push((await collect(tier, request(p, 40))).tokens);
  const victim = new AbortController();
  const reason = new Error('client went away');
  const victimTokens: number[] = [];
  const victimRun = (async () => {
    for await (const e of flat(tier.generate(request(ps[2]!, 40), victim.signal))) {
      if (e.kind === 'token') victimTokens.push(e.token);
      if (victimTokens.length === 5) victim.abort(reason);
    }
  })();
  const others = ps.map((p, i) => (i === 2 ? undefined : collect(tier, request(p, 40))));
  await assert.rejects(victimRun, (err) => err === reason);
  assert.deepEqual(victimTokens, alone[2]!.slice(0, 5));
  const results = await Promise.all(others);
  results.forEach((r, i) => {
    if (r) assert.deepEqual(r.tokens, alone[i], `sequence ${i}`);
  });
  // The freed slot is reused: a batch of 8 runs again right after.
  batchSizes.length = 0;
  await Promise.all(ps.map((p) => collect(tier, request(p, 4))));
  assert.equal(Math.max(...batchSizes), 8);
});

test('the event loop stays responsive while the worker decodes 8 long sequences', async (t) => {
  // ~400-token prompts: one prefill on the main thread would stall the loop for its whole time.
  const long: number[] = [golden.bos_id];
  while (long.length < 400) long.push(...golden.prompts[4]!.ids.slice(1));
  const t0 = performance.now();
  await collect(tier, request(long, 1));
  const prefillMs = performance.now() - t0;
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const busy0 = performance.now();
  const runs = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      collect(tier, request([...long, golden.prompts[i % 5]!.ids[1]!], 48)),
    ),
  );
  const busyMs = performance.now() - busy0;
  clearInterval(timer);
  histogram.disable();
  assert.ok(runs.every((r) => r.tokens.length === 48));
  const maxMs = histogram.max / 1e6;
  t.diagnostic(
    `one ~400-token prefill ${prefillMs.toFixed(0)} ms; 8 × (prefill + 48 tokens) in ${busyMs.toFixed(0)} ms; ` +
      `largest event-loop gap ${maxMs.toFixed(1)} ms, ${ticks} timer ticks`,
  );
  // The decoding itself takes 8 prefills plus 48 batched steps; a loop that waited on it would
  // show a gap of at least the 8 prefills' admission round. Allowed: under 3 prefills' time.
  assert.ok(
    maxMs < Math.max(3 * prefillMs, 50),
    `largest gap ${maxMs.toFixed(1)} ms vs prefill ${prefillMs.toFixed(0)} ms`,
  );
  assert.ok(ticks >= 5, `only ${ticks} timer ticks in ${busyMs.toFixed(0)} ms`);
});
