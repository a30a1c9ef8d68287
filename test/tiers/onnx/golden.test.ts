import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { logSoftmax } from '../../../src/text/sampling.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { collect, makeTier, readGolden, request } from './helpers.js';

const golden = readGolden();
let tier: OnnxTier;

before(async () => {
  tier = makeTier('tiny-fp32.onnx');
  await tier.start();
});
after(() => tier.close());

test('the decoder shape is read from the model itself', () => {
  const spec = tier.decoderSpec();
  assert.ok(spec && spec.layers > 0 && spec.kvHeads > 0 && spec.headDim > 0);
  assert.equal(spec.vocabSize, golden.vocab_size);
  assert.equal(tier.info().framework, 'onnxruntime');
  assert.equal(tier.health().ready, true);
});

test('FP32 greedy continuations equal the PyTorch FP32 golden ones', async () => {
  for (const p of golden.prompts) {
    const { tokens, reason } = await collect(tier, request(p.ids, p.greedy.length));
    assert.deepEqual(tokens, p.greedy, `prompt ${JSON.stringify(p.text)}`);
    assert.equal(reason, 'length');
  }
});

test('first-token logprobs and top alternatives match the golden logits', async () => {
  for (const p of golden.prompts) {
    const expected = logSoftmax(p.next_token_logits);
    const { events } = await collect(tier, request(p.ids, 1, { topLogprobs: 5 }));
    const first = events[0];
    assert.ok(first?.kind === 'token');
    assert.ok(Math.abs(first.logprob - (expected[first.token] as number)) < 1e-3);
    assert.equal(first.top?.length, 5);
    for (const alt of first.top ?? []) {
      assert.ok(Math.abs(alt.logprob - (expected[alt.token] as number)) < 1e-3);
    }
  }
});

test('score(tokens) agrees with the logprobs of a greedy generation', async () => {
  const p = golden.prompts[0]!;
  const { events } = await collect(tier, request(p.ids, 12));
  const generated = events.flatMap((e) => (e.kind === 'token' ? [e] : []));
  const scores = await tier.score([...p.ids, ...generated.map((e) => e.token)]);
  assert.equal(scores.length, p.ids.length + generated.length - 1);
  generated.forEach((e, i) => {
    const s = scores[p.ids.length - 1 + i] as number;
    assert.ok(Math.abs(s - e.logprob) < 1e-3, `position ${i}: ${s} vs ${e.logprob}`);
  });
});

test('stop tokens end a sequence without emitting them; maxTokens ends with length', async () => {
  const p = golden.prompts[0]!;
  const stopAt = p.greedy[3]!;
  const firstIndex = p.greedy.indexOf(stopAt);
  const stopped = await collect(tier, request(p.ids, 32, { stopTokens: [stopAt] }));
  assert.deepEqual(stopped.tokens, p.greedy.slice(0, firstIndex));
  assert.equal(stopped.reason, 'stop');
  const limited = await collect(tier, request(p.ids, 3));
  assert.deepEqual(limited.tokens, p.greedy.slice(0, 3));
  assert.equal(limited.reason, 'length');
});

test('INT8 and INT4 variants load and generate', async () => {
  for (const file of ['tiny-int8.onnx', 'tiny-int4.onnx']) {
    const q = makeTier(file);
    await q.start();
    try {
      const p = golden.prompts[0]!;
      const { tokens, reason } = await collect(q, request(p.ids, 8));
      assert.equal(tokens.length, 8);
      assert.equal(reason, 'length');
      assert.ok(tokens.every((t) => t >= 0 && t < golden.vocab_size));
    } finally {
      await q.close();
    }
  }
});
