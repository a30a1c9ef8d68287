/**
 * Build step: validation perplexity of every GGUF variant in node-llama-cpp, every ONNX variant
 * in onnxruntime-node and the TensorFlow variant in TensorFlow.js (wasm backend), on the family's
 * eval-slice.json. The variants are the build's plan
 * (work/variants.json); prints one line per variant and writes work/ppl-node.json for the manifest.
 * When the folder already holds a manifest (a --from-master derivation re-creating a recorded
 * family), a variant whose files (an ONNX graph and its external data) are byte-identical to the
 * ones the manifest records keeps its recorded perplexity:
 * the same bytes give the same figure, and measuring it again costs minutes.
 * Usage (models/build.py runs it): node --import tsx models/measure-ppl.ts
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FAMILY_DIR,
  WORK_DIR,
  readEvalSlice,
  readGolden,
  readManifest,
  readPlannedVariants,
  variantFiles,
  type ManifestVariant,
} from './ts/family.js';
import { GgufRunner } from './ts/gguf-runner.js';
import { OnnxDecoder } from './ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from './ts/perplexity.js';
import { TfjsRunner, tfjsPerplexity } from './ts/tfjs-runner.js';

const windows = readEvalSlice().windows;
const vocab = readGolden().vocab_size;
const result: Record<string, number> = {};
const planned = readPlannedVariants().filter((v) => v.format !== 'pytorch');
const recorded = existsSync(join(FAMILY_DIR, 'manifest.json')) ? readManifest().variants : [];

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every file of the recorded variant is on disk with the recorded sha256. */
async function identical(known: ManifestVariant): Promise<boolean> {
  for (const f of variantFiles(known)) {
    const path = join(FAMILY_DIR, f.file);
    if (!existsSync(path) || (await sha256(path)) !== f.sha256) return false;
  }
  return true;
}

for (const [i, v] of planned.entries()) {
  const path = join(FAMILY_DIR, v.file);
  const known = recorded.find((x) => x.id === v.id);
  if (known !== undefined && (await identical(known))) {
    result[v.id] = known.perplexity;
    process.stdout.write(
      `[models] (${i + 1}/${planned.length}) ${v.id}: identical to the manifest's file, perplexity ${known.perplexity}\n`,
    );
    continue;
  }
  let r: { perplexity: number; tokens: number };
  if (v.format === 'gguf') {
    const runner = await GgufRunner.load(path);
    r = await ggufPerplexity(runner, windows, vocab);
    await runner.dispose();
  } else if (v.format === 'tensorflow') {
    const runner = await TfjsRunner.load(path);
    r = tfjsPerplexity(runner, windows);
    runner.dispose();
  } else {
    const decoder = await OnnxDecoder.load(path);
    r = await onnxPerplexity(decoder, windows);
    await decoder.release();
  }
  result[v.id] = r.perplexity;
  process.stdout.write(
    `[models] (${i + 1}/${planned.length}) ${v.id}: perplexity ${r.perplexity.toFixed(3)} (${r.tokens} tokens)\n`,
  );
}
mkdirSync(WORK_DIR, { recursive: true });
writeFileSync(join(WORK_DIR, 'ppl-node.json'), JSON.stringify(result, null, 1) + '\n');
