// The TensorFlow.js tier gives the same answers as the other FP32 tiers on the tiny family.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { MetricsService } from '../../../src/observability/metrics.js';
import { LlamaTokenizer } from '../../../src/text/llama-tokenizer.js';
import { logSoftmax } from '../../../src/text/sampling.js';
import { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { Tier } from '../../../src/tiers/tier.js';
import type { TfjsTier } from '../../../src/tiers/tfjs/tfjs-tier.js';
import { makeTier } from '../onnx/helpers.js';
import { FAMILY_DIR, collect, makeTfjsTier, readGolden, request } from './helpers.js';

const golden = readGolden();
let tf: TfjsTier;
let onnx: Tier;
let gguf: Tier;
let tokenizer: LlamaTokenizer;

before(async () => {
  tf = makeTfjsTier();
  onnx = makeTier('tiny-fp32.onnx');
  tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-f32.gguf'));
  const options = {
    kind: 'llamacpp' as const,
    model: 'tiny-f32.gguf',
    threads: 1,
    sequences: 2,
    contextSize: 0,
    batchSize: 512,
    flashAttention: false as const,
    maxQueue: 8,
    batchSpeedup: 1,
  };
  gguf = new LlamaCppTier('edge', options, {
    logger: pino({ level: 'silent' }),
    metrics: new MetricsService({ defaultMetrics: false }),
    family: loadModelFamily(FAMILY_DIR),
    tokenizer,
  });
  await Promise.all([tf.start(), onnx.start(), gguf.start()]);
});
after(async () => {
  await Promise.all([tf.close(), onnx.close(), gguf.close()]);
  await tokenizer.close();
});

test('info() states the framework, variant and capacity; the tier is ready', () => {
  const info = tf.info();
  assert.equal(info.framework, 'tensorflow');
  assert.equal(info.variant, 'tensorflow-fp32');
  assert.equal(info.precision, 'fp32');
  assert.equal(info.vocabSize, golden.vocab_size);
  assert.equal(info.capacity, 16);
  assert.equal(tf.health().ready, true);
});

test('32-token greedy continuations equal ONNX FP32, GGUF F32 and the PyTorch golden ones', async () => {
  for (const p of golden.prompts) {
    const mine = await collect(tf, request(p.ids, 32));
    const ort = await collect(onnx, request(p.ids, 32));
    const cpp = await collect(gguf, request(p.ids, 32));
    assert.equal(mine.tokens.length, 32);
    assert.deepEqual(mine.tokens, ort.tokens, `vs ONNX FP32: ${JSON.stringify(p.text)}`);
    assert.deepEqual(mine.tokens, cpp.tokens, `vs GGUF F32: ${JSON.stringify(p.text)}`);
    assert.deepEqual(mine.tokens, p.greedy.slice(0, 32), `vs PyTorch: ${JSON.stringify(p.text)}`);
  }
});

test('next-token logprobs are within 1e-4 of the PyTorch reference logits', async () => {
  for (const p of golden.prompts) {
    const expected = logSoftmax(p.next_token_logits);
    const { events } = await collect(tf, request(p.ids, 1, { topLogprobs: 5 }));
    const first = events[0];
    assert.ok(first?.kind === 'token');
    assert.ok(Math.abs(first.logprob - (expected[first.token] as number)) < 1e-4);
    assert.equal(first.top?.length, 5);
    for (const alt of first.top ?? []) {
      assert.ok(Math.abs(alt.logprob - (expected[alt.token] as number)) < 1e-4, `token ${alt.token}`);
    }
  }
});

test('score() agrees with ONNX FP32 and with the logprobs of its own generation', async () => {
  const p = golden.prompts[0]!;
  const { events } = await collect(tf, request(p.ids, 12));
  const generated = events.flatMap((e) => (e.kind === 'token' ? [e] : []));
  const tokens = [...p.ids, ...generated.map((e) => e.token)];
  const mine = await tf.score(tokens);
  const ort = await onnx.score(tokens);
  assert.equal(mine.length, tokens.length - 1);
  mine.forEach((s, i) => assert.ok(Math.abs(s - (ort[i] as number)) < 1e-4, `position ${i}`));
  generated.forEach((e, i) => {
    const s = mine[p.ids.length - 1 + i] as number;
    assert.ok(Math.abs(s - e.logprob) < 1e-4, `position ${i}: ${s} vs ${e.logprob}`);
  });
});

test('mid-stream continuation: tokens from another tier continue exactly here, and back', async () => {
  const p = golden.prompts[2]!;
  // ONNX generates 10 tokens, the TensorFlow tier continues from prompt + those, and ONNX takes
  // over again after 10 more: the concatenation is the 30-token greedy continuation.
  const first = await collect(onnx, request(p.ids, 10));
  const second = await collect(tf, request([...p.ids, ...first.tokens], 10));
  const third = await collect(onnx, request([...p.ids, ...first.tokens, ...second.tokens], 10));
  assert.deepEqual([...first.tokens, ...second.tokens, ...third.tokens], p.greedy.slice(0, 30));
});

test('stop tokens end a sequence without emitting them; bad requests are refused as bad_request', async () => {
  const p = golden.prompts[0]!;
  const stopAt = p.greedy[3]!;
  const stopped = await collect(tf, request(p.ids, 32, { stopTokens: [stopAt] }));
  assert.deepEqual(stopped.tokens, p.greedy.slice(0, p.greedy.indexOf(stopAt)));
  assert.equal(stopped.reason, 'stop');
  await assert.rejects(collect(tf, request([golden.vocab_size], 2)), { kind: 'bad_request' });
  await assert.rejects(collect(tf, request(new Array<number>(512).fill(1), 2)), { kind: 'bad_request' });
});
