// Quantized variants stay within the documented perplexity bounds of their framework's FP32 variant,
// measured here in the serving framework on the first windows of the validation slice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PERPLEXITY_BOUNDS } from '../../models/ts/compare.js';
import {
  readEvalSlice,
  readGolden,
  readManifest,
  variantPath,
  type ManifestVariant,
} from '../../models/ts/family.js';
import { GgufRunner } from '../../models/ts/gguf-runner.js';
import { OnnxDecoder } from '../../models/ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from '../../models/ts/perplexity.js';

// 8 of the 32 slice windows (~2k tokens) keep the test short; the manifest has the full-slice values.
const windows = readEvalSlice().windows.slice(0, 8);
const vocab = readGolden().vocab_size;
const variants = readManifest().variants;

async function perplexity(v: ManifestVariant): Promise<number> {
  if (v.format === 'gguf') {
    const runner = await GgufRunner.load(variantPath(v));
    try {
      return (await ggufPerplexity(runner, windows, vocab)).perplexity;
    } finally {
      await runner.dispose();
    }
  }
  const decoder = await OnnxDecoder.load(variantPath(v));
  try {
    return (await onnxPerplexity(decoder, windows)).perplexity;
  } finally {
    await decoder.release();
  }
}

const measured = new Map<string, number>();
async function cached(id: string): Promise<number> {
  const v = variants.find((x) => x.id === id);
  assert.ok(v, `variant ${id} in manifest`);
  const known = measured.get(id);
  if (known !== undefined) return known;
  const ppl = await perplexity(v);
  measured.set(id, ppl);
  return ppl;
}

for (const [id, bound] of Object.entries(PERPLEXITY_BOUNDS)) {
  test(`${id} perplexity within +${bound.maxIncrease * 100}% of ${bound.base}`, async () => {
    const base = await cached(bound.base);
    const ppl = await cached(id);
    const increase = ppl / base - 1;
    assert.ok(
      increase <= bound.maxIncrease,
      `${id} ${ppl.toFixed(3)} vs ${bound.base} ${base.toFixed(3)}: +${(increase * 100).toFixed(2)}%`,
    );
  });
}
