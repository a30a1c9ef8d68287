/**
 * npm run models:verify [-- --perplexity]
 * Checks the committed model family: every manifest variant's file exists with the recorded size
 * and sha256; llama.cpp tokenises the golden samples like SentencePiece; ONNX FP32 and GGUF F32
 * reproduce the PyTorch FP32 golden logits within the stated tolerance; 32-token greedy
 * continuations agree across the three FP32 paths. With --perplexity it also re-measures every
 * variant's validation perplexity and compares it with the manifest. Exit code 1 on any failure.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LOGIT_TOLERANCE, maxAbsDiff } from './ts/compare.js';
import { FAMILY_DIR, readEvalSlice, readGolden, readManifest, variantPath } from './ts/family.js';
import { GgufRunner, sharedLlama } from './ts/gguf-runner.js';
import { OnnxDecoder } from './ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from './ts/perplexity.js';

let failures = 0;
function report(ok: boolean, what: string, detail = ''): void {
  if (!ok) failures++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `  (${detail})` : ''}\n`);
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const manifest = readManifest();
const golden = readGolden();

for (const v of manifest.variants) {
  const path = variantPath(v);
  if (!existsSync(path)) {
    report(false, `${v.id}: ${v.file}`, 'missing');
    continue;
  }
  const bytes = statSync(path).size;
  const hash = await sha256(path);
  report(bytes === v.bytes && hash === v.sha256, `${v.id}: ${v.file} size and sha256`, `${bytes} bytes`);
}

// Everything committed in models/tiny/ (the work/ folder is scratch and not committed).
const committed = readdirSync(FAMILY_DIR).filter((f) => f !== 'work');
const totalBytes = committed.reduce((n, f) => n + statSync(join(FAMILY_DIR, f)).size, 0);
report(
  totalBytes < 40e6,
  `committed family size`,
  `${committed.length} files, ${(totalBytes / 1e6).toFixed(2)} MB`,
);

const llama = await sharedLlama();
const vocabModel = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-f32.gguf'), vocabOnly: true });
for (const [i, s] of golden.tokenizer_samples.entries()) {
  const ids = Array.from(vocabModel.tokenize(s.text));
  report(
    JSON.stringify(ids) === JSON.stringify(s.ids),
    `tokenizer sample ${i}: llama.cpp ids == SentencePiece ids`,
  );
}
await vocabModel.dispose();

const onnx = await OnnxDecoder.load(join(FAMILY_DIR, 'tiny-fp32.onnx'));
const gguf = await GgufRunner.load(join(FAMILY_DIR, 'tiny-f32.gguf'));
for (const p of golden.prompts) {
  const name = JSON.stringify(p.text);
  const res = await onnx.step([p.ids]);
  const onnxDiff = maxAbsDiff(res.logits.subarray((res.seq - 1) * res.vocab), p.next_token_logits);
  report(
    onnxDiff <= LOGIT_TOLERANCE.onnx,
    `${name}: ONNX FP32 logits vs PyTorch`,
    `max |diff| ${onnxDiff.toExponential(2)}`,
  );
  const [last] = await gguf.logits(p.ids, golden.vocab_size, new Set([p.ids.length - 1]));
  const ggufDiff = last === undefined ? Infinity : maxAbsDiff(last, p.next_token_logits);
  report(
    ggufDiff <= LOGIT_TOLERANCE.gguf,
    `${name}: GGUF F32 logits vs PyTorch`,
    `max |diff| ${ggufDiff.toExponential(2)}`,
  );
  const same = (a: readonly number[]): boolean => JSON.stringify(a) === JSON.stringify(p.greedy);
  report(same(await onnx.greedy(p.ids, 32)), `${name}: ONNX FP32 greedy 32 == PyTorch`);
  report(same(await gguf.greedy(p.ids, 32, golden.vocab_size)), `${name}: GGUF F32 greedy 32 == PyTorch`);
}
await onnx.release();
await gguf.dispose();

if (process.argv.includes('--perplexity')) {
  const windows = readEvalSlice().windows;
  for (const v of manifest.variants) {
    if (v.framework === 'pytorch') continue;
    let ppl: number;
    if (v.format === 'gguf') {
      const r = await GgufRunner.load(variantPath(v));
      ppl = (await ggufPerplexity(r, windows, golden.vocab_size)).perplexity;
      await r.dispose();
    } else {
      const d = await OnnxDecoder.load(variantPath(v));
      ppl = (await onnxPerplexity(d, windows)).perplexity;
      await d.release();
    }
    const rel = Math.abs(ppl - v.perplexity) / v.perplexity;
    report(rel < 1e-3, `${v.id}: perplexity ${ppl.toFixed(3)} vs manifest ${v.perplexity}`);
  }
}

process.stdout.write(
  failures === 0 ? '\nmodels:verify: all checks passed\n' : `\nmodels:verify: ${failures} failed\n`,
);
process.exitCode = failures === 0 ? 0 : 1;
