/**
 * The PyTorch sidecar against the model family's references (models/tiny): greedy output equals
 * golden.json's FP32 continuations, and Score agrees with the ONNX FP32 export.
 */
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { logSoftmax } from '../../../src/text/sampling.js';
import {
  collect,
  family,
  FAMILY_DIR,
  hasFamily,
  makeTier,
  readJson,
  request,
  type TierHarness,
} from './helpers.js';
import { onnxScore } from './onnx-reference.js';

interface Golden {
  prompts: { text: string; ids: number[]; next_token_logits: number[]; greedy: number[] }[];
}

describe(
  'sidecar serving the family FP32 model',
  { skip: hasFamily() ? false : 'models/tiny not built (npm run models:build)' },
  () => {
    let h: TierHarness;
    let golden: Golden;

    before(async () => {
      golden = readJson<Golden>(join(FAMILY_DIR, 'golden.json'));
      h = makeTier({ spawn: true, model: 'pytorch-fp32', required: true }, family());
      await h.tier.start();
    });

    after(async () => {
      await h.tier.close();
    });

    it('reports the family model', () => {
      const info = h.tier.info();
      const manifest = readJson<{ id: string; context_length: number; tokenizer: { vocab_size: number } }>(
        join(FAMILY_DIR, 'manifest.json'),
      );
      assert.equal(info.framework, 'pytorch');
      assert.equal(info.modelId, manifest.id);
      assert.equal(info.variant, 'pytorch-fp32');
      assert.equal(info.contextLength, manifest.context_length);
      assert.equal(info.vocabSize, manifest.tokenizer.vocab_size);
    });

    it('greedy output equals the golden FP32 continuation for every prompt', async () => {
      for (const p of golden.prompts) {
        const r = await collect(
          h.tier.generate(request(p.ids, p.greedy.length), new AbortController().signal),
        );
        assert.deepEqual(r.tokens, p.greedy, `prompt ${JSON.stringify(p.text)}`);
        // The first token's logprob is the golden next-token distribution's.
        const ref = logSoftmax(p.next_token_logits)[p.greedy[0] as number] as number;
        assert.ok(
          Math.abs((r.logprobs[0] as number) - ref) < 1e-3,
          `first logprob ${r.logprobs[0]} vs ${ref}`,
        );
      }
    });

    it('Score agrees with the ONNX FP32 export within 1e-3 nats', async () => {
      const onnx = join(FAMILY_DIR, 'tiny-fp32.onnx');
      for (const p of golden.prompts.slice(0, 3)) {
        const tokens = [...p.ids, ...p.greedy];
        const [mine, ref] = await Promise.all([h.tier.score(tokens), onnxScore(onnx, tokens)]);
        assert.equal(mine.length, tokens.length - 1);
        let worst = 0;
        mine.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - (ref[i] as number)))));
        assert.ok(worst < 1e-3, `largest difference ${worst}`);
      }
    });
  },
);
