// The ONNX decoder's KV cache: decoding token by token with past_key_values gives the same logits
// as one full forward pass; a left-padded row in a batch gives the same logits as the row alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readGolden, variantFileById } from '../../models/ts/family.js';
import { OnnxDecoder } from '../../models/ts/onnx-decoder.js';
import { maxAbsDiff } from '../../models/ts/compare.js';

// Same graph, same kernels: only the order of a few reductions differs between the two paths.
const TOLERANCE = 1e-4;
let decoder: OnnxDecoder;
const golden = readGolden();
const prompt = golden.prompts[0];
const tokens = prompt === undefined ? [] : [...prompt.ids, ...prompt.greedy.slice(0, 20)];

before(async () => {
  decoder = await OnnxDecoder.load(variantFileById('onnx-fp32'));
});
after(async () => {
  await decoder.release();
});

test('token-by-token decoding with past_key_values equals one full forward pass', async () => {
  assert.ok(tokens.length > 8);
  const full = await decoder.step([tokens]);
  let res = await decoder.step([tokens.slice(0, 1)]);
  for (let t = 0; t < tokens.length; t++) {
    if (t > 0) res = await decoder.step([[tokens[t] as number]], res.presents);
    const stepLogits = res.logits.subarray(0, res.vocab);
    const fullLogits = full.logits.subarray(t * full.vocab, (t + 1) * full.vocab);
    const diff = maxAbsDiff(stepLogits, fullLogits);
    assert.ok(diff <= TOLERANCE, `position ${t}: max |diff| ${diff}`);
  }
  assert.equal(res.presents[0]?.dims[2], tokens.length);
});

test('a prefilled chunk followed by cached steps equals the full pass', async () => {
  const split = 7;
  const full = await decoder.step([tokens]);
  const first = await decoder.step([tokens.slice(0, split)]);
  const rest = await decoder.step([tokens.slice(split)], first.presents);
  const diff = maxAbsDiff(rest.logits, full.logits.subarray(split * full.vocab));
  assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
});

test('left padding with attention_mask 0 does not change a row', async () => {
  const pad = 5;
  const short = tokens.slice(0, tokens.length - pad);
  const alone = await decoder.step([short]);
  const padded = await decoder.step([Array(pad).fill(0).concat(short), tokens], undefined, {
    attentionMask: [
      Array(pad)
        .fill(0)
        .concat(short.map(() => 1)),
      tokens.map(() => 1),
    ],
    positionIds: [
      Array(pad)
        .fill(0)
        .concat(short.map((_, i) => i)),
      tokens.map((_, i) => i),
    ],
  });
  const row0 = padded.logits.subarray(pad * padded.vocab, tokens.length * padded.vocab);
  const diff = maxAbsDiff(row0, alone.logits);
  assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
});
