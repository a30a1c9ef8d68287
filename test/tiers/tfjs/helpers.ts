/**
 * Shared set-up for the TensorFlow.js tier tests: the tiny family's F32 GGUF, expectations from
 * its golden.json (PyTorch FP32), never hard-coded outputs.
 */
import { resolve } from 'node:path';
import { TfjsTier, type TfjsTierDeps, type TfjsTierOptions } from '../../../src/tiers/tfjs/tfjs-tier.js';
import { FAMILY_DIR, readGolden } from '../onnx/helpers.js';

export { collect, request, GREEDY } from '../onnx/helpers.js';
export { FAMILY_DIR, readGolden };

export function makeTfjsTier(overrides: Partial<TfjsTierOptions> = {}, deps: TfjsTierDeps = {}): TfjsTier {
  return new TfjsTier(
    {
      name: 'tf',
      model: {
        path: resolve(FAMILY_DIR, 'tiny-f32.gguf'),
        modelId: 'tiny',
        variant: 'tensorflow-fp32',
        contextLength: 512,
      },
      workers: 1,
      threads: 1,
      maxBatchSize: 16,
      maxQueueDelayMs: 2,
      ...overrides,
    },
    deps,
  );
}
