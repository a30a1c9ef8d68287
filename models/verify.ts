/**
 * npm run models:verify [-- --family NAME | --dir DIR] [--perplexity]
 * Checks a built model family against its manifest (models/<id>/manifest.json):
 * - every variant's file (and an ONNX variant's external data file) exists with the recorded
 *   size and sha256; for a family that commits
 *   only its master, the master must match exactly, while a derived file that differs is
 *   reported and judged by the checks below (other library versions may serialise differently);
 * - the files git tracks for the family stay within the family file's commit_limit_mb;
 * - llama.cpp tokenises the golden samples like SentencePiece, and the golden chat's ids are
 *   what the family's chat template gives;
 * - ONNX FP32 and GGUF F32 reproduce the PyTorch FP32 golden logits within tolerance, and
 *   32-token greedy continuations agree across the three FP32 paths;
 * - with --perplexity: every variant's validation perplexity re-measured within 0.1% of the
 *   manifest's; for a family with a master, always for each derived file whose bytes differ from
 *   the manifest's (identical bytes have the recorded perplexity by construction).
 * --converted (the last stage of `tiergate convert`, models/convert.py): differing greedy
 * continuations are notes (a real model's near-tie may part frameworks whose logits agree),
 * logit tolerances scale with the logits' size (scaledTolerance), and the chat is tokenised the
 * gateway's way (gatewayChatIds), as the converted family's golden chat is. A reference GGUF in
 * F16 is checked with LOGIT_TOLERANCE.ggufF16.
 * Exit code 1 on any failure.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { LOGIT_TOLERANCE, maxAbsDiff, scaledTolerance } from './ts/compare.js';
import {
  familyDir,
  readEvalSlice,
  readFamilyFile,
  readGolden,
  readManifest,
  variantFiles,
} from './ts/family.js';
import { GgufRunner, sharedLlama } from './ts/gguf-runner.js';
import { TfjsRunner, tfjsPerplexity } from './ts/tfjs-runner.js';
import { OnnxDecoder } from './ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from './ts/perplexity.js';
import { gatewayChatIds } from './ts/chat-ids.js';

const { values } = parseArgs({
  options: {
    family: { type: 'string', default: 'tiny' },
    dir: { type: 'string' },
    perplexity: { type: 'boolean', default: false },
    converted: { type: 'boolean', default: false },
  },
});
const familyId = values.family;
const dir = values.dir ?? familyDir(familyId);
// A family built elsewhere (--dir) has no family file in models/families/ to take limits from.
const family = values.dir === undefined ? readFamilyFile(familyId) : undefined;
if (!existsSync(join(dir, 'manifest.json'))) {
  process.stderr.write(`no manifest in ${dir}: build the family first (npm run models:build -- --family ${familyId})\n`);
  process.exit(1);
}
const manifest = readManifest(dir);
const t0 = Date.now();
let failures = 0;
let warnings = 0;
function report(ok: boolean, what: string, detail = ''): void {
  if (!ok) failures++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `  (${detail})` : ''}\n`);
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const masterFile = manifest.master?.file;
const missing: string[] = [];
/** Variants whose file differs from the manifest's sha256: their perplexity must be re-measured. */
const differing = new Set<string>();
for (const v of manifest.variants) {
  for (const f of variantFiles(v)) {
    const path = join(dir, f.file);
    if (!existsSync(path)) {
      missing.push(f.file);
      report(false, `${v.id}: ${f.file}`, 'missing');
      continue;
    }
    const bytes = statSync(path).size;
    const same = bytes === f.bytes && (await sha256(path)) === f.sha256;
    if (!same) differing.add(v.id);
    if (masterFile !== undefined && f.file !== masterFile && !same) {
      warnings++;
      process.stdout.write(`note ${v.id}: ${f.file} differs from the manifest's sha256 (judged by agreement and perplexity)\n`);
    } else {
      report(same, `${v.id}: ${f.file} size and sha256${f.file === masterFile ? ' (the master)' : ''}`, `${bytes} bytes`);
    }
  }
}
if (missing.length > 0 && masterFile !== undefined) {
  process.stdout.write(`derive them: npm run models:build -- --family ${familyId} --from-master\n`);
}

// What git tracks of this family (work/ and derived files are gitignored).
if (family !== undefined) {
const tracked = execFileSync('git', ['ls-files', '-z', '--', relative(process.cwd(), dir) || '.'], { encoding: 'utf8' })
  .split('\0')
  .filter((f) => f !== '' && existsSync(f));
const trackedBytes = tracked.reduce((n, f) => n + statSync(f).size, 0);
report(
  trackedBytes <= family.commit_limit_mb * 1e6,
  'committed family size',
  `${tracked.length} tracked files, ${(trackedBytes / 1e6).toFixed(2)} MB; limit ${family.commit_limit_mb} MB`,
);
}
if (missing.length > 0) {
  process.stdout.write(`\nmodels:verify: ${failures} failed (files missing; nothing more to check)\n`);
  process.exit(1);
}

const golden = readGolden(dir);
const f32 =
  manifest.variants.find((v) => v.id === 'gguf-f32') ?? manifest.variants.find((v) => v.id === 'gguf-f16');
const ggufTolerance = f32?.id === 'gguf-f16' ? LOGIT_TOLERANCE.ggufF16 : LOGIT_TOLERANCE.gguf;
const ggufLabel = f32?.id === 'gguf-f16' ? 'GGUF F16' : 'GGUF F32';
const onnxFp32 = manifest.variants.find((v) => v.id === 'onnx-fp32');
if (f32 === undefined) throw new Error('manifest has no gguf-f32 variant');
const llama = await sharedLlama();
const vocabModel = await llama.loadModel({ modelPath: join(dir, f32.file), vocabOnly: true });
for (const [i, s] of golden.tokenizer_samples.entries()) {
  const ids = Array.from(vocabModel.tokenize(s.text));
  report(JSON.stringify(ids) === JSON.stringify(s.ids), `tokenizer sample ${i}: llama.cpp ids == SentencePiece ids`);
}
if (golden.chat !== undefined) {
  const ids = gatewayChatIds(vocabModel, golden.chat.messages);
  report(
    JSON.stringify(ids) === JSON.stringify(golden.chat.ids),
    `chat template (${golden.chat.template}): llama.cpp ids == the template's ids`,
    `${ids.length} vs ${golden.chat.ids.length} tokens`,
  );
}
await vocabModel.dispose();

const onnx = onnxFp32 === undefined ? undefined : await OnnxDecoder.load(join(dir, onnxFp32.file));
const ctx = Math.max(...golden.prompts.map((p) => p.ids.length)) + 64;
const gguf = await GgufRunner.load(join(dir, f32.file), { contextSize: Math.max(512, ctx) });
for (const p of golden.prompts) {
  const name = JSON.stringify(p.text.length > 40 ? p.text.slice(0, 40) + '…' : p.text);
  if (onnx !== undefined) {
    const res = await onnx.step([p.ids]);
    const onnxDiff = maxAbsDiff(res.logits.subarray((res.seq - 1) * res.vocab), p.next_token_logits);
    const tol = values.converted ? scaledTolerance(LOGIT_TOLERANCE.onnx, p.next_token_logits) : LOGIT_TOLERANCE.onnx;
    report(onnxDiff <= tol, `${name}: ONNX FP32 logits vs PyTorch`, `max |diff| ${onnxDiff.toExponential(2)}`);
  }
  const [last] = await gguf.logits(p.ids, golden.vocab_size, new Set([p.ids.length - 1]));
  const ggufDiff = last === undefined ? Infinity : maxAbsDiff(last, p.next_token_logits);
  const tol = values.converted ? scaledTolerance(ggufTolerance, p.next_token_logits) : ggufTolerance;
  report(ggufDiff <= tol, `${name}: ${ggufLabel} logits vs PyTorch`, `max |diff| ${ggufDiff.toExponential(2)}`);
  const same = (a: readonly number[]): boolean => JSON.stringify(a) === JSON.stringify(p.greedy);
  const greedy = (ok: boolean, what: string): void => {
    if (ok || !values.converted) report(ok, what);
    else {
      warnings++;
      process.stdout.write(`note ${what}: differs (a near-tie; logits agree within tolerance)\n`);
    }
  };
  if (onnx !== undefined) greedy(same(await onnx.greedy(p.ids, 32)), `${name}: ONNX FP32 greedy 32 == PyTorch`);
  greedy(same(await gguf.greedy(p.ids, 32, golden.vocab_size)), `${name}: ${ggufLabel} greedy 32 == PyTorch`);
}
await onnx?.release();
await gguf.dispose();

if (values.perplexity || (masterFile !== undefined && differing.size > 0)) {
  const windows = readEvalSlice(dir).windows;
  for (const v of manifest.variants) {
    if (v.framework === 'pytorch' || !(values.perplexity || differing.has(v.id))) continue;
    let ppl: number;
    if (v.format === 'gguf') {
      const r = await GgufRunner.load(join(dir, v.file));
      ppl = (await ggufPerplexity(r, windows, golden.vocab_size)).perplexity;
      await r.dispose();
    } else if (v.format === 'tensorflow') {
      const r = await TfjsRunner.load(join(dir, v.file));
      ppl = tfjsPerplexity(r, windows).perplexity;
      r.dispose();
    } else {
      const d = await OnnxDecoder.load(join(dir, v.file));
      ppl = (await onnxPerplexity(d, windows)).perplexity;
      await d.release();
    }
    const rel = Math.abs(ppl - v.perplexity) / v.perplexity;
    report(rel < 1e-3, `${v.id}: perplexity ${ppl.toFixed(3)} vs manifest ${v.perplexity}`);
  }
}

const secs = ((Date.now() - t0) / 1000).toFixed(0);
process.stdout.write(
  failures === 0
    ? `\nmodels:verify ${manifest.family ?? familyId}: all checks passed in ${secs} s${warnings ? ` (${warnings} notes)` : ''}\n`
    : `\nmodels:verify ${manifest.family ?? familyId}: ${failures} failed\n`,
);
process.exitCode = failures === 0 ? 0 : 1;
