/**
 * Build step: validation perplexity of every GGUF variant in node-llama-cpp and every ONNX variant
 * in onnxruntime-node, on models/tiny/eval-slice.json. Prints one line per variant and writes
 * models/tiny/work/ppl-node.json for the manifest.
 * Usage: node --import tsx models/measure-ppl.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILY_DIR, WORK_DIR, readEvalSlice, readGolden } from './ts/family.js';
import { GgufRunner } from './ts/gguf-runner.js';
import { OnnxDecoder } from './ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from './ts/perplexity.js';

const GGUF = ['f32', 'q8_0', 'q4_k_m', 'q3_k_s', 'q2_k'];
const ONNX = ['fp32', 'int8', 'int4'];

const windows = readEvalSlice().windows;
const vocab = readGolden().vocab_size;
const result: Record<string, number> = {};
for (const q of GGUF) {
  const runner = await GgufRunner.load(join(FAMILY_DIR, `tiny-${q}.gguf`));
  const r = await ggufPerplexity(runner, windows, vocab);
  await runner.dispose();
  result[`gguf-${q}`] = r.perplexity;
  process.stdout.write(`[models] gguf-${q}: perplexity ${r.perplexity.toFixed(3)} (${r.tokens} tokens)\n`);
}
for (const p of ONNX) {
  const decoder = await OnnxDecoder.load(join(FAMILY_DIR, `tiny-${p}.onnx`));
  const r = await onnxPerplexity(decoder, windows);
  await decoder.release();
  result[`onnx-${p}`] = r.perplexity;
  process.stdout.write(`[models] onnx-${p}: perplexity ${r.perplexity.toFixed(3)} (${r.tokens} tokens)\n`);
}
mkdirSync(WORK_DIR, { recursive: true });
writeFileSync(join(WORK_DIR, 'ppl-node.json'), JSON.stringify(result, null, 1) + '\n');
