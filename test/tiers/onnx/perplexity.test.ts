import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { scorePerplexity } from '../../helpers/score-perplexity.js';
import { FAMILY_DIR, makeTier } from './helpers.js';

// score() is the tier's perplexity primitive: over the family's evaluation slice it must
// reproduce the perplexity the model build measured for each ONNX variant (manifest.json).
const family = loadModelFamily(FAMILY_DIR);
const slice = JSON.parse(readFileSync(resolve(FAMILY_DIR, 'eval-slice.json'), 'utf8')) as {
  windows: number[][];
};

for (const id of ['onnx-fp32', 'onnx-int8', 'onnx-int4']) {
  test(`${id}: perplexity from score() equals the manifest's`, async () => {
    const variant = family.variants.find((v) => v.id === id);
    assert.ok(variant?.perplexity !== undefined, `${id} has a perplexity in the manifest`);
    const tier = makeTier(variant.file);
    await tier.start();
    try {
      const ppl = await scorePerplexity(tier, slice.windows);
      assert.ok(Math.abs(ppl / variant.perplexity - 1) < 1e-3, `${ppl} vs manifest ${variant.perplexity}`);
    } finally {
      await tier.close();
    }
  });
}
