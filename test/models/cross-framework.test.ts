// The three FP32 paths agree: ONNX FP32 (onnxruntime-node) and GGUF F32 (node-llama-cpp) reproduce
// the PyTorch FP32 next-token logits stored in golden.json, and 32-token greedy continuations are
// identical across all three.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readGolden, variantFileById } from '../../models/ts/family.js';
import { GgufRunner } from '../../models/ts/gguf-runner.js';
import { OnnxDecoder } from '../../models/ts/onnx-decoder.js';
import { maxAbsDiff, LOGIT_TOLERANCE } from '../../models/ts/compare.js';

const golden = readGolden();
let onnx: OnnxDecoder;
let gguf: GgufRunner;

before(async () => {
  onnx = await OnnxDecoder.load(variantFileById('onnx-fp32'));
  gguf = await GgufRunner.load(variantFileById('gguf-f32'));
});
after(async () => {
  await onnx.release();
  await gguf.dispose();
});

test('ONNX FP32 next-token logits match PyTorch FP32', async () => {
  for (const p of golden.prompts) {
    const res = await onnx.step([p.ids]);
    const last = res.logits.subarray((res.seq - 1) * res.vocab, res.seq * res.vocab);
    const diff = maxAbsDiff(last, p.next_token_logits);
    assert.ok(diff <= LOGIT_TOLERANCE.onnx, `${JSON.stringify(p.text)}: max |diff| ${diff}`);
  }
});

test('GGUF F32 next-token logits match PyTorch FP32', async () => {
  for (const p of golden.prompts) {
    const [last] = await gguf.logits(p.ids, golden.vocab_size, new Set([p.ids.length - 1]));
    assert.ok(last !== undefined);
    const diff = maxAbsDiff(last, p.next_token_logits);
    assert.ok(diff <= LOGIT_TOLERANCE.gguf, `${JSON.stringify(p.text)}: max |diff| ${diff}`);
  }
});

test('32-token greedy continuations are identical in PyTorch, ONNX Runtime and llama.cpp', async () => {
  for (const p of golden.prompts) {
    assert.equal(p.greedy.length, 32);
    assert.deepEqual(await onnx.greedy(p.ids, 32), p.greedy, `onnx, prompt ${JSON.stringify(p.text)}`);
    assert.deepEqual(
      await gguf.greedy(p.ids, 32, golden.vocab_size),
      p.greedy,
      `gguf, ${JSON.stringify(p.text)}`,
    );
  }
});
