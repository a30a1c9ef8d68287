import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDecoderSpec } from '../../../src/tiers/onnx/decoder-spec.js';
import { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { OnnxTierError } from '../../../src/tiers/onnx/onnx-tier-error.js';
import { writeIdentityModel } from './onnx-file.js';

function tierFor(path: string): OnnxTier {
  return new OnnxTier({
    name: 'main',
    model: { path, modelId: 't', variant: 'x', precision: 'fp32', contextLength: 64 },
    workers: 1,
    intraOpThreads: 1,
    maxBatchSize: 4,
    maxQueueDelayMs: 0,
  });
}

test('a missing model file fails start with TG_ONNX_MODEL_MISSING naming the path', async () => {
  const tier = tierFor('/nonexistent/model.onnx');
  await assert.rejects(tier.start(), (err: unknown) => {
    assert.ok(err instanceof OnnxTierError);
    assert.equal(err.code, 'TG_ONNX_MODEL_MISSING');
    assert.match(err.message, /\/nonexistent\/model\.onnx/);
    return true;
  });
  assert.equal(tier.health().ready, false);
});

test('a real ONNX file that is not a KV-cache decoder fails start naming the missing inputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-onnx-'));
  try {
    const path = join(dir, 'identity.onnx');
    writeIdentityModel(path, ['input_ids']);
    const tier = tierFor(path);
    await assert.rejects(tier.start(), (err: unknown) => {
      assert.ok(err instanceof OnnxTierError);
      assert.equal(err.code, 'TG_ONNX_NOT_A_DECODER');
      assert.match(err.message, /attention_mask/);
      assert.match(err.message, /past_key_values\.0\.key/);
      return true;
    });
    assert.equal(tier.health().ready, false);
    await tier.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readDecoderSpec reads layers, kv heads and head size from the metadata', () => {
  const past = (n: string) => ({ name: n, isTensor: true, type: 'float32', shape: ['b', 4, 'p', 32] });
  const inputs = [
    { name: 'input_ids', isTensor: true, type: 'int64', shape: ['b', 's'] },
    { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['b', 't'] },
    ...[0, 1, 2].flatMap((i) => [past(`past_key_values.${i}.key`), past(`past_key_values.${i}.value`)]),
  ];
  const outputs = [
    { name: 'logits', isTensor: true, type: 'float32', shape: ['b', 's', 2048] },
    ...[0, 1, 2].flatMap((i) => [
      { name: `present.${i}.key`, isTensor: true },
      { name: `present.${i}.value`, isTensor: true },
    ]),
  ];
  const spec = readDecoderSpec(inputs, outputs, 'm.onnx');
  assert.deepEqual(spec, {
    layers: 3,
    kvHeads: 4,
    headDim: 32,
    vocabSize: 2048,
    inputIdsType: 'int64',
    attentionMaskType: 'int64',
    positionIds: undefined,
    kvOutputs: 'present',
  });
  // A decoder whose KV outputs are only the new positions (models/lib/tiergate_model/onnx_writer.py).
  const appended = outputs.map((m) => ({ ...m, name: m.name.replace('present.', 'new_key_values.') }));
  assert.equal(readDecoderSpec(inputs, appended, 'm.onnx').kvOutputs, 'append');
  // Missing inputs and outputs are named precisely, in either form.
  const without = <T extends { name: string }>(list: readonly T[], name: string): T[] =>
    list.filter((m) => m.name !== name);
  const cases: [typeof inputs, typeof outputs, RegExp][] = [
    [inputs, without(appended, 'new_key_values.1.value'), /missing new_key_values\.1\.value \(output\)/],
    [
      without(inputs, 'past_key_values.1.value'),
      without(outputs, 'present.2.key'),
      /missing past_key_values\.1\.value, present\.2\.key \(output\)/,
    ],
  ];
  for (const [ins, outs, message] of cases)
    assert.throws(() => readDecoderSpec(ins, outs, 'm.onnx'), message);
});
