/**
 * npm run bench:models [-- --windows N --tokens N --repeats N --threads N]
 * For every variant of the reference family, in one run and side by side: file size, load time,
 * validation perplexity (first N windows of the eval slice, in the serving framework) and
 * single-stream greedy decode tokens/s in its own framework (best of --repeats), with ratios to
 * the FP32 variant of the same framework. One thread per framework by default (docs/gateway.md,
 * edge tier options: on 2 shared cores llama.cpp with 2 threads can be far slower).
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  FAMILY_DIR,
  readEvalSlice,
  readGolden,
  readManifest,
  variantFiles,
  variantPath,
  type ManifestVariant,
} from '../models/ts/family.js';
import { GgufRunner, sharedLlama } from '../models/ts/gguf-runner.js';
import { OnnxDecoder } from '../models/ts/onnx-decoder.js';
import { ggufPerplexity, onnxPerplexity } from '../models/ts/perplexity.js';

const { values } = parseArgs({
  options: {
    windows: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '128' },
    repeats: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
  },
});
const windowCount = Number(values.windows);
const decodeTokens = Number(values.tokens);
const repeats = Number(values.repeats);
const threads = Number(values.threads);

interface Row {
  readonly id: string;
  readonly framework: string;
  readonly bytes: number;
  readonly loadMs: number;
  readonly perplexity: number;
  readonly tokensPerSecond: number;
}

const manifest = readManifest();

/** A variant's size on disk: its file and, for ONNX, its external weights file. */
const sizeOf = (v: ManifestVariant): number => variantFiles(v).reduce((n, f) => n + f.bytes, 0);
const golden = readGolden();
const windows = readEvalSlice().windows.slice(0, windowCount);
const prompt = golden.prompts[0]?.ids ?? [golden.bos_id];

/** Best tokens/s of `repeats` timed runs after one untimed warm-up run (first-run allocations). */
async function bestOf(run: () => Promise<number>): Promise<number> {
  await run();
  let best = 0;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const n = await run();
    best = Math.max(best, (n * 1000) / (performance.now() - t));
  }
  return best;
}

async function benchGguf(v: ManifestVariant): Promise<Row> {
  const t = performance.now();
  const runner = await GgufRunner.load(variantPath(v), { threads });
  const loadMs = performance.now() - t;
  const { perplexity } = await ggufPerplexity(runner, windows, golden.vocab_size);
  const tokensPerSecond = await bestOf(() => runner.decodeSpeed(prompt, decodeTokens));
  await runner.dispose();
  return { id: v.id, framework: v.framework, bytes: sizeOf(v), loadMs, perplexity, tokensPerSecond };
}

async function benchOnnx(v: ManifestVariant): Promise<Row> {
  const t = performance.now();
  const decoder = await OnnxDecoder.load(variantPath(v), threads);
  const loadMs = performance.now() - t;
  const { perplexity } = await onnxPerplexity(decoder, windows);
  const tokensPerSecond = await bestOf(async () => (await decoder.greedy(prompt, decodeTokens)).length);
  await decoder.release();
  return { id: v.id, framework: v.framework, bytes: sizeOf(v), loadMs, perplexity, tokensPerSecond };
}

function benchTorch(v: ManifestVariant): Row {
  const script = join(FAMILY_DIR, '..', 'scripts', 'bench_torch.py');
  const args = [script, '--windows', String(windowCount), '--tokens', String(decodeTokens)];
  args.push('--repeats', String(repeats), '--threads', String(threads));
  // The Python side reads the same family: its folder and its family file.
  const familyFile = join(FAMILY_DIR, '..', 'families', `${manifest.family ?? 'tiny'}.json`);
  const env = { ...process.env, TIERGATE_MODELS_OUT: resolve(FAMILY_DIR), TIERGATE_FAMILY_FILE: familyFile };
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`bench_torch.py failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    load_s: number;
    perplexity: number;
    decode_tps: number;
  };
  return {
    id: v.id,
    framework: v.framework,
    bytes: sizeOf(v),
    loadMs: out.load_s * 1000,
    perplexity: out.perplexity,
    tokensPerSecond: out.decode_tps,
  };
}

// Load the llama.cpp binding once up front so the first GGUF load time is the model's alone.
await sharedLlama();
const rows: Row[] = [];
for (const v of manifest.variants) {
  process.stderr.write(`benchmarking ${v.id}...\n`);
  if (v.format === 'gguf') rows.push(await benchGguf(v));
  else if (v.format === 'onnx') rows.push(await benchOnnx(v));
  else rows.push(benchTorch(v));
}

const FP32 = new Set(['fp32', 'f32']);
const baseOf = (r: Row): Row | undefined =>
  rows.find(
    (b) =>
      b.framework === r.framework && FP32.has(manifest.variants.find((v) => v.id === b.id)?.precision ?? ''),
  );

const tokenCount = windows.reduce((n, w) => n + w.length - 1, 0);
const header = ['variant', 'framework', 'size MB', 'x size', 'load ms', 'ppl', 'x ppl', 'tok/s', 'x tok/s'];
const table = rows.map((r) => {
  const b = baseOf(r) ?? r;
  return [
    r.id,
    r.framework,
    (r.bytes / 1e6).toFixed(2),
    (r.bytes / b.bytes).toFixed(2),
    r.loadMs.toFixed(0),
    r.perplexity.toFixed(2),
    (r.perplexity / b.perplexity).toFixed(4),
    r.tokensPerSecond.toFixed(0),
    (r.tokensPerSecond / b.tokensPerSecond).toFixed(2),
  ];
});
process.stdout.write(
  `bench:models — ${manifest.id}, perplexity on ${tokenCount} validation tokens, ` +
    `decode ${decodeTokens} greedy tokens single-stream (best of ${repeats}), ${threads} thread(s); ` +
    `ratios (x) against the FP32 variant of the same framework\n\n`,
);
process.stdout.write(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n`);
for (const r of table) process.stdout.write(`| ${r.join(' | ')} |\n`);
