import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/index.js';
import { makeTier } from './helpers.js';

test("batchSpeedup: what the tier's concurrent streams are worth, for the router's queue model", () => {
  // Unset: the engine plans every stream at full speed (its behaviour before the option).
  assert.equal(makeTier('tiny-fp32.onnx').info().batchSpeedup, undefined);
  assert.equal(makeTier('tiny-fp32.onnx', { batchSpeedup: 4.3 }).info().batchSpeedup, 4.3);
  // Never more than the streams the tier runs at once.
  assert.equal(makeTier('tiny-fp32.onnx', { batchSpeedup: 100, maxBatchSize: 8 }).info().batchSpeedup, 8);
  const config = (batchSpeedup: number): unknown =>
    buildConfig(
      {
        tokenizer: { kind: 'bytes' },
        family: { dir: 'models/tiny' },
        tiers: { main: { kind: 'onnx', model: 'onnx-fp32', batchSpeedup } },
        models: { m: { tier: 'main' } },
      },
      { env: {} },
    );
  assert.doesNotThrow(() => config(4.3));
  assert.throws(() => config(0.5), /batchSpeedup/);
});
