// The committed family matches its manifest: files, sizes, hashes, I/O contract, perplexities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  FAMILY_DIR,
  FAMILY_ID,
  readEvalSlice,
  readFamilyFile,
  readManifest,
  variantFiles,
  variantPath,
} from '../../models/ts/family.js';

const manifest = readManifest();
const family = readFamilyFile(FAMILY_ID);

test('the manifest lists exactly the variants of the family file', () => {
  assert.deepEqual(
    manifest.variants.map((v) => v.id),
    family.variants,
  );
});

test('every variant file exists with the recorded size and sha256', () => {
  for (const v of manifest.variants) {
    for (const f of variantFiles(v)) {
      const path = join(FAMILY_DIR, f.file);
      assert.equal(statSync(path).size, f.bytes, `${v.id} ${f.file} size`);
      assert.equal(
        createHash('sha256').update(readFileSync(path)).digest('hex'),
        f.sha256,
        `${v.id} ${f.file} sha256`,
      );
    }
  }
});

test('ONNX variants keep their weights in one external data file beside the graph', () => {
  for (const v of manifest.variants.filter((x) => x.format === 'onnx')) {
    assert.equal(v.external_data?.file, `${v.file}.data`, v.id);
    // The graph alone is small: every weight is external (models/lib/tiergate_model/onnx_writer.py).
    assert.ok(v.bytes < (v.external_data?.bytes ?? 0) / 10, `${v.id}: graph ${v.bytes} bytes`);
  }
});

test("the committed family stays within its family file's limit", () => {
  // A family with a master commits only it (and small metadata); the rest is derived.
  const files = new Set(
    family.master === null
      ? manifest.variants.flatMap((v) => variantFiles(v).map((f) => f.file))
      : [manifest.master?.file ?? ''],
  );
  files.add(manifest.tokenizer.file);
  let total = 0;
  for (const f of files) total += statSync(join(FAMILY_DIR, f)).size;
  assert.ok(total < family.commit_limit_mb * 1e6, `${total} bytes, limit ${family.commit_limit_mb} MB`);
});

test('every variant beats the unigram baseline by far', () => {
  const unigram = (manifest.evaluation as unknown as { unigram_perplexity: number }).unigram_perplexity;
  for (const v of manifest.variants) {
    assert.ok(
      v.perplexity > 1 && v.perplexity < unigram / 2,
      `${v.id}: ${v.perplexity} vs unigram ${unigram}`,
    );
  }
});

test('the eval slice matches the manifest', () => {
  const slice = readEvalSlice();
  assert.equal(slice.windows.length, manifest.evaluation.windows);
  const tokens = slice.windows.reduce((n, w) => n + w.length - 1, 0);
  assert.equal(tokens, manifest.evaluation.tokens);
});

test('ONNX variants take the optimum decoder inputs and output only the new positions', async () => {
  const layers = Number(manifest.architecture['n_layers']);
  const past = Array.from({ length: layers }, (_, i) => [
    `past_key_values.${i}.key`,
    `past_key_values.${i}.value`,
  ]);
  const added = Array.from({ length: layers }, (_, i) => [
    `new_key_values.${i}.key`,
    `new_key_values.${i}.value`,
  ]);
  for (const v of manifest.variants.filter((x) => x.format === 'onnx')) {
    const session = await ort.InferenceSession.create(variantPath(v));
    try {
      assert.deepEqual(
        session.inputNames,
        ['input_ids', 'attention_mask', 'position_ids', ...past.flat()],
        v.id,
      );
      assert.deepEqual(session.outputNames, ['logits', ...added.flat()], v.id);
    } finally {
      await session.release();
    }
  }
});
