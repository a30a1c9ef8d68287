import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { scorePerplexity } from '../../helpers/score-perplexity.js';
import { FAMILY_DIR, makeTfjsTier } from './helpers.js';

// score() over the family's evaluation slice reproduces the perplexity the model build measured
// for the tensorflow-fp32 variant (models/measure-ppl.ts, a plain TensorFlow.js forward on one
// thread), and stays within 1e-3 of the PyTorch FP32 reference's.
const family = loadModelFamily(FAMILY_DIR);
const slice = JSON.parse(readFileSync(resolve(FAMILY_DIR, 'eval-slice.json'), 'utf8')) as {
  windows: number[][];
};

test("tensorflow-fp32: perplexity from score() equals the manifest's and PyTorch FP32's", async () => {
  const variant = family.variants.find((v) => v.id === 'tensorflow-fp32');
  const torch = family.variants.find((v) => v.id === 'pytorch-fp32');
  assert.ok(variant?.perplexity !== undefined && torch?.perplexity !== undefined);
  const tier = makeTfjsTier();
  await tier.start();
  try {
    const ppl = await scorePerplexity(tier, slice.windows);
    assert.ok(Math.abs(ppl / variant.perplexity - 1) < 1e-4, `${ppl} vs manifest ${variant.perplexity}`);
    assert.ok(Math.abs(ppl / torch.perplexity - 1) < 1e-3, `${ppl} vs PyTorch ${torch.perplexity}`);
  } finally {
    await tier.close();
  }
});
