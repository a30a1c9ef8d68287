import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import { loadModelFamily } from '../../src/family/manifest.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';

test("a variant's bytes are what serving it reads: an ONNX graph and its external data file", () => {
  const family = loadModelFamily(FAMILY_DIR);
  for (const v of family.variants) {
    const onDisk = statSync(v.file).size + (v.format === 'onnx' ? statSync(`${v.file}.data`).size : 0);
    assert.equal(v.bytes, onDisk, v.id);
  }
  const onnx = family.variants.find((v) => v.id === 'onnx-fp32');
  const gguf = family.variants.find((v) => v.id === 'gguf-f32');
  // Same weights in FP32: the ONNX variant is no longer counted as its graph alone.
  assert.ok(onnx?.bytes !== undefined && gguf?.bytes !== undefined && onnx.bytes > 0.9 * gguf.bytes);
});
