import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { collect, makeTier, readGolden, request } from './helpers.js';
import { flat } from '../../helpers/tier-events.js';

const golden = readGolden();
const batchSizes: number[] = [];
let tier: OnnxTier;

before(async () => {
  // Batch sizes are observed through the same hook the gateway's metrics use.
  tier = makeTier(
    'tiny-fp32.onnx',
    { maxBatchSize: 8, maxQueueDelayMs: 20 },
    { observer: { observeBatchSize: (_tier, n) => batchSizes.push(n) } },
  );
  await tier.start();
});
after(() => tier.close());

/** Eight prompts of different lengths (golden prompts and their extensions). */
function prompts(): number[][] {
  const base = golden.prompts.map((p) => p.ids);
  const out: number[][] = [];
  for (let i = 0; i < 8; i++) {
    const p = base[i % base.length]!;
    out.push(i < base.length ? p : [...p, ...golden.prompts[0]!.greedy.slice(0, i * 3)]);
  }
  return out;
}

test('each sequence of a batch of 8 of different lengths equals its decoding alone', async () => {
  const ps = prompts();
  assert.equal(new Set(ps.map((p) => p.length)).size >= 5, true);
  const seeded = (i: number) =>
    i % 2 === 0
      ? request(ps[i]!, 24)
      : request(ps[i]!, 24, { sampling: { temperature: 0.8, topK: 40, topP: 0.95, seed: 1000 + i } });
  const alone: number[][] = [];
  for (let i = 0; i < ps.length; i++) alone.push((await collect(tier, seeded(i))).tokens);
  batchSizes.length = 0;
  const together = await Promise.all(ps.map((_, i) => collect(tier, seeded(i))));
  together.forEach((r, i) => assert.deepEqual(r.tokens, alone[i], `sequence ${i}`));
  // They really ran together: some decoder steps had all eight.
  assert.equal(Math.max(...batchSizes), 8);
});

test('sequences joining a running batch at different times still equal their decoding alone', async () => {
  const ps = prompts().slice(0, 4);
  const alone: number[][] = [];
  for (const p of ps) alone.push((await collect(tier, request(p, 30))).tokens);
  const runs = ps.map(async (p, i) => {
    await new Promise((r) => setTimeout(r, i * 15));
    return collect(tier, request(p, 30 - i * 5));
  });
  const results = await Promise.all(runs);
  results.forEach((r, i) => assert.deepEqual(r.tokens, alone[i]!.slice(0, 30 - i * 5), `sequence ${i}`));
});

test('cancelling one sequence mid-batch removes it without disturbing the others', async () => {
  const ps = prompts().slice(0, 6);
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
});

test('a consumer that stops iterating early frees its slot', async () => {
  const p = golden.prompts[1]!.ids;
  for await (const e of tier.generate(request(p, 100), new AbortController().signal)) {
    if (e.kind === 'tokens') break;
  }
  // The tier keeps serving normally afterwards.
  const { tokens } = await collect(tier, request(p, 4));
  assert.deepEqual(tokens, golden.prompts[1]!.greedy.slice(0, 4));
});
