/**
 * npm run bench:baselines — each tier beside its framework's own plain loop, in the same run:
 *
 * 1. Tier overhead: single-stream greedy decode through the Tier interface vs a plain loop of the
 *    framework on the same variant (node-llama-cpp's `sequence.evaluate`; onnxruntime-node
 *    `session.run` with the KV cache on this thread; torch eager with the KV cache in a Python
 *    process of its own, like the sidecar; TensorFlow.js: the same forward on this thread with
 *    the KV cache kept as tensors, models/ts/tfjs-runner.ts).
 * 2. Batching: aggregate tokens/s of N concurrent streams through the tier vs its single stream,
 *    beside the framework's plain batched form (ONNX: one `run` over N rows; llama.cpp: N
 *    sequences of one context evaluated concurrently; PyTorch: N rows in one forward() of the
 *    shared model, sidecar/bench_batching.py), and for llama.cpp the ceiling ggml's CPU
 *    path allows: k tokens of one sequence in one evaluation vs k evaluations of one token.
 *
 *   npm run bench:baselines -- [--family models/small] [--tokens 128] [--rounds 3]
 *     [--parts llamacpp,onnx,pytorch,tfjs] [--batch 16] [--sequences 8] [--torch-streams 8]
 *
 * Rounds alternate loop and tier so machine noise hits both; every ratio is the median of the
 * rounds' ratios (these machines are shared: quote medians of several runs). Decode rates are
 * measured after the first token (prefill excluded) on both sides.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import { sharedLlama } from '../models/ts/gguf-runner.js';
import ort from 'onnxruntime-node';
import { loadModelFamily, resolveVariant, type ModelFamily } from '../src/family/manifest.js';
import { LlamaTokenizer } from '../src/text/llama-tokenizer.js';
import { encodePrompt } from '../src/text/tokenizer.js';
import type { Tier } from '../src/tiers/tier.js';
import { median } from './lib/median.js';
import { aggregate, decodeTps, greedyRequest, timeStream } from './tiers/measure.js';
import type { BenchContext, TierRunner } from './tiers/runner.js';
import { runner as llamaRunner } from './tiers/llamacpp.js';
import { runner as onnxRunner } from './tiers/onnx.js';
import { plainLoop } from './tiers/onnx-loop.js';
import { runner as remoteRunner } from './tiers/remote.js';
import { runner as tfjsRunner } from './tiers/tfjs.js';
import { TfjsRunner } from '../models/ts/tfjs-runner.js';

const { values } = parseArgs({
  options: {
    family: { type: 'string', default: fileURLToPath(new URL('../models/tiny', import.meta.url)) },
    tokens: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '3' },
    parts: { type: 'string', default: 'llamacpp,onnx,pytorch,tfjs' },
    batch: { type: 'string', default: '16' },
    sequences: { type: 'string', default: '8' },
    'torch-streams': { type: 'string', default: '8' },
    'llama-variants': { type: 'string', default: 'gguf-f32,gguf-q4_k_m' },
    'onnx-variants': { type: 'string', default: 'onnx-fp32,onnx-int8' },
  },
});
const TOKENS = Number(values.tokens);
const ROUNDS = Number(values.rounds);
const parts = new Set(values.parts.split(','));
const PROMPT = 'The government of the United States';

const family = loadModelFamily(values.family);
const tokenizer = await LlamaTokenizer.load(resolveVariant(family, 'gguf-f32', '.gguf').file);
const prompt = encodePrompt(tokenizer, PROMPT);
const out: string[] = [];
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const fmt = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : '—');

interface Pair {
  readonly label: string;
  readonly loop: number[];
  readonly tier: number[];
}
const overhead: Pair[] = [];
const batching: string[] = [];

function ctxFor(concurrency: number): BenchContext {
  return { family, tokenizer, maxConcurrency: concurrency, threads: 1 };
}

function target(runnerOf: TierRunner, variant: string, concurrency: number): Tier {
  const t = runnerOf.targets(ctxFor(concurrency)).find((x) => x.variant === variant);
  if (t === undefined) throw new Error(`${variant}: not in ${family.dir} (build or derive the family)`);
  return t.create();
}

async function tierSingle(tier: Tier): Promise<number> {
  return decodeTps(await timeStream(tier, greedyRequest(prompt, TOKENS)));
}

// ---- llama.cpp ---------------------------------------------------------------------------------

/** Greedy tokens/s of node-llama-cpp's own loop on one sequence, after the first token. */
async function llamaLoop(seq: LlamaContextSequence): Promise<number> {
  await seq.clearHistory();
  let first = 0;
  let n = 0;
  for await (const _t of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
    if (n === 0) first = performance.now();
    if (++n >= TOKENS) break;
  }
  return ((n - 1) * 1000) / (performance.now() - first);
}

/** Total tokens/s of `seqs` sequences of one context generating concurrently. */
async function llamaLoopMany(seqs: readonly LlamaContextSequence[]): Promise<number> {
  await Promise.all(seqs.map((s) => s.clearHistory()));
  const t0 = performance.now();
  const counts = await Promise.all(
    seqs.map(async (s) => {
      let n = 0;
      for await (const _t of s.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
        if (++n >= TOKENS) break;
      }
      return n;
    }),
  );
  return (counts.reduce((a, b) => a + b, 0) * 1000) / (performance.now() - t0);
}

/**
 * ggml's own batching ceiling on this machine: evaluating k tokens of one sequence in one call
 * (one k-row pass through every weight matrix) vs k single-token calls. Returns the speed-up.
 */
async function ggmlRows(seq: LlamaContextSequence, k: number): Promise<number> {
  const extra = Array.from({ length: k }, (_, i) => prompt[(i % (prompt.length - 1)) + 1] as Token);
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt as Token[]);
  let t = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(extra);
  const together = performance.now() - t;
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt as Token[]);
  t = performance.now();
  for (const tok of extra) await seq.evaluateWithoutGeneratingNewTokens([tok]);
  const oneByOne = performance.now() - t;
  return oneByOne / together;
}

async function benchLlama(variant: string): Promise<void> {
  const file = resolveVariant(family, variant, '.gguf').file;
  const S = Number(values.sequences);
  const llama = await sharedLlama();
  const model = await llama.loadModel({ modelPath: file });
  const single = await model.createContext({
    contextSize: 1024,
    sequences: 1,
    threads: 1,
    flashAttention: false,
  });
  const many = await model.createContext({
    contextSize: 1024 * S,
    sequences: S,
    threads: 1,
    flashAttention: false,
  });
  const seqs = Array.from({ length: S }, () => many.getSequence());
  const tier = target(llamaRunner, variant, S);
  await tier.start();
  const pair: Pair = { label: `llama.cpp ${variant}`, loop: [], tier: [] };
  const agg = {
    loop1: [] as number[],
    loopS: [] as number[],
    tier1: [] as number[],
    tierS: [] as number[],
    ggml: [] as number[],
  };
  try {
    const seq1 = single.getSequence();
    await llamaLoop(seq1);
    await tierSingle(tier);
    for (let r = 0; r < ROUNDS; r++) {
      say(`llama.cpp ${variant}: round ${r + 1}/${ROUNDS}`);
      pair.loop.push(await llamaLoop(seq1));
      pair.tier.push(await tierSingle(tier));
      agg.loop1.push(pair.loop.at(-1) as number);
      agg.tier1.push(pair.tier.at(-1) as number);
      agg.loopS.push(await llamaLoopMany(seqs));
      agg.tierS.push(await aggregate(tier, [prompt], TOKENS, S));
      agg.ggml.push(await ggmlRows(seq1, S));
    }
  } finally {
    await tier.close();
    await many.dispose();
    await single.dispose();
    await model.dispose();
  }
  overhead.push(pair);
  const ratio = (a: number[], b: number[]): number => median(a.map((x, i) => x / (b[i] as number)));
  batching.push(
    `| llama.cpp ${variant} | ${S} sequences | ${fmt(median(agg.tier1))} | ${fmt(median(agg.tierS))} | ` +
      `${fmt(ratio(agg.tierS, agg.tier1), 2)}× | plain loop ${fmt(median(agg.loopS))} tok/s = ` +
      `${fmt(ratio(agg.loopS, agg.loop1), 2)}× its single stream; ggml ${S} rows in one pass ` +
      `${fmt(median(agg.ggml), 2)}× ${S} one-row passes | ${fmt(ratio(agg.tierS, agg.loopS), 2)} |`,
  );
}

// ---- ONNX Runtime ------------------------------------------------------------------------------

/**
 * Plain greedy loop on this thread (bench/tiers/onnx-loop.ts: outputs in reused buffers, the
 * cache kept as the tier keeps it); rows > 1 decode `rows` copies of the prompt in one batch.
 */
async function onnxLoop(session: ort.InferenceSession, file: string, rows: number): Promise<number> {
  return (await plainLoop(session, file, prompt, rows, TOKENS)).wall;
}

async function benchOnnx(variant: string): Promise<void> {
  const B = Number(values.batch);
  const file = resolveVariant(family, variant, '.onnx').file;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const tier = target(onnxRunner, variant, B);
  await tier.start();
  const pair: Pair = { label: `onnxruntime ${variant}`, loop: [], tier: [] };
  const loopB: number[] = [];
  const tierB: number[] = [];
  try {
    await onnxLoop(session, file, 1);
    await tierSingle(tier);
    for (let r = 0; r < ROUNDS; r++) {
      say(`onnxruntime ${variant}: round ${r + 1}/${ROUNDS}`);
      pair.loop.push(await onnxLoop(session, file, 1));
      pair.tier.push(await tierSingle(tier));
      loopB.push(await onnxLoop(session, file, B));
      tierB.push(await aggregate(tier, [prompt], TOKENS, B));
    }
  } finally {
    await tier.close();
    await session.release();
  }
  overhead.push(pair);
  const tier1 = pair.tier;
  batching.push(
    `| onnxruntime ${variant} | ${B} streams | ${fmt(median(tier1))} | ${fmt(median(tierB))} | ` +
      `${fmt(median(tierB.map((x, i) => x / (tier1[i] as number))), 2)}× | plain batched loop (${B} rows per run) ` +
      `${fmt(median(loopB))} tok/s | ${fmt(median(tierB.map((x, i) => x / (loopB[i] as number))), 2)} |`,
  );
}

// ---- PyTorch -----------------------------------------------------------------------------------

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** torch eager greedy loop in its own Python process (models/scripts/bench_torch.py). */
function torchLoop(fam: ModelFamily): number {
  const r = spawnSync(
    '/usr/bin/python3',
    [
      join(REPO, 'models/scripts/bench_torch.py'),
      '--windows',
      '0',
      '--tokens',
      String(TOKENS),
      '--repeats',
      '1',
    ],
    {
      cwd: join(REPO, 'models/scripts'),
      encoding: 'utf8',
      env: { ...process.env, TIERGATE_MODELS_OUT: resolve(fam.dir), TIERGATE_FAMILY_FILE: familyFile(fam) },
    },
  );
  if (r.status !== 0) throw new Error(`bench_torch.py failed: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { decode_tps: number }).decode_tps;
}

function familyFile(fam: ModelFamily): string {
  const id = typeof fam.manifest?.['family'] === 'string' ? (fam.manifest['family'] as string) : 'tiny';
  const path = join(REPO, 'models/families', `${id}.json`);
  if (!existsSync(path)) throw new Error(`no family file ${path}`);
  return path;
}

interface TorchBatched {
  readonly form: string;
  readonly single_tps: number;
  readonly aggregate_tps: number;
  readonly ratio: number;
}

/** sidecar/bench_batching.py in its own Python process (threads 1 like the sidecar), one round:
 * `plain`, the plain batched torch loop (`rows` greedy rows in one forward() per step vs one
 * row); `grpc`, a sidecar process of its own serving 1 vs `rows` streams to a Python client
 * (the sidecar over gRPC without the gateway's side). */
function torchBatched(rows: number): TorchBatched[] {
  const r = spawnSync(
    '/usr/bin/python3',
    [
      join(REPO, 'sidecar/bench_batching.py'),
      '--model',
      resolveVariant(family, 'pytorch-fp32', '.gguf').file,
      '--rows',
      String(rows),
      '--tokens',
      String(TOKENS),
      '--rounds',
      '1',
      '--forms',
      'plain,grpc',
      '--blas-threads',
      '1',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`bench_batching.py failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as TorchBatched);
}

async function benchTorch(): Promise<void> {
  const S = Number(values['torch-streams']);
  const tier = target(remoteRunner, 'pytorch-fp32', S);
  await tier.start();
  const pair: Pair = { label: 'pytorch pytorch-fp32 (sidecar, gRPC)', loop: [], tier: [] };
  const tierS: number[] = [];
  const plain: TorchBatched[] = [];
  const viaPython: TorchBatched[] = [];
  try {
    await tierSingle(tier);
    for (let r = 0; r < ROUNDS; r++) {
      say(`pytorch: round ${r + 1}/${ROUNDS}`);
      pair.loop.push(torchLoop(family));
      pair.tier.push(await tierSingle(tier));
      tierS.push(await aggregate(tier, [prompt], TOKENS, S));
      const forms = torchBatched(S);
      plain.push(forms.find((f) => f.form === 'plain') as TorchBatched);
      viaPython.push(forms.find((f) => f.form === 'grpc') as TorchBatched);
    }
  } finally {
    await tier.close();
  }
  overhead.push(pair);
  const plainAgg = median(plain.map((p) => p.aggregate_tps));
  batching.push(
    `| pytorch-fp32 sidecar | ${S} streams | ${fmt(median(pair.tier))} | ${fmt(median(tierS))} | ` +
      `${fmt(median(tierS.map((x, i) => x / (pair.tier[i] as number))), 2)}× | ` +
      `plain torch loop, ${S} rows in one forward(): ${fmt(plainAgg)} tok/s, ` +
      `${fmt(median(plain.map((p) => p.ratio)), 2)}× its 1 row (${fmt(median(plain.map((p) => p.single_tps)))}) | ` +
      `${fmt(median(tierS.map((x, i) => x / (plain[i] as TorchBatched).aggregate_tps)), 2)} |`,
    `| pytorch-fp32 sidecar, Python gRPC client (no gateway) | ${S} streams | ` +
      `${fmt(median(viaPython.map((p) => p.single_tps)))} | ${fmt(median(viaPython.map((p) => p.aggregate_tps)))} | ` +
      `${fmt(median(viaPython.map((p) => p.ratio)), 2)}× | the same plain loop | ` +
      `${fmt(median(viaPython.map((p, i) => p.aggregate_tps / (plain[i] as TorchBatched).aggregate_tps)), 2)} |`,
  );
}

// ---- TensorFlow.js -----------------------------------------------------------------------------

/** The plain loop: greedy decode with the KV cache as tensors on this thread, after the first token. */
function tfjsLoop(runner: TfjsRunner): number {
  let first = 0;
  let n = 0;
  runner.greedy(prompt, TOKENS, () => {
    if (n++ === 0) first = performance.now();
  });
  return ((n - 1) * 1000) / (performance.now() - first);
}

async function benchTfjs(): Promise<void> {
  const B = Number(values.batch);
  const runner = await TfjsRunner.load(resolveVariant(family, 'tensorflow-fp32', '.gguf').file);
  const tier = target(tfjsRunner, 'tensorflow-fp32', B);
  await tier.start();
  const pair: Pair = { label: 'tensorflow.js tensorflow-fp32 (wasm)', loop: [], tier: [] };
  const tierB: number[] = [];
  try {
    tfjsLoop(runner);
    await tierSingle(tier);
    for (let r = 0; r < ROUNDS; r++) {
      say(`tensorflow.js: round ${r + 1}/${ROUNDS}`);
      pair.loop.push(tfjsLoop(runner));
      pair.tier.push(await tierSingle(tier));
      tierB.push(await aggregate(tier, [prompt], TOKENS, B));
    }
  } finally {
    await tier.close();
    runner.dispose();
  }
  overhead.push(pair);
  batching.push(
    `| tensorflow-fp32 tfjs | ${B} streams | ${fmt(median(pair.tier))} | ${fmt(median(tierB))} | ` +
      `${fmt(median(tierB.map((x, i) => x / (pair.tier[i] as number))), 2)}× | — | — |`,
  );
}

const load0 = loadavg()[0] ?? 0;
try {
  if (parts.has('llamacpp')) for (const v of values['llama-variants'].split(',')) await benchLlama(v);
  if (parts.has('onnx')) for (const v of values['onnx-variants'].split(',')) await benchOnnx(v);
  if (parts.has('pytorch')) await benchTorch();
  if (parts.has('tfjs')) await benchTfjs();
} finally {
  await tokenizer.close();
}

out.push(
  `## Tier overhead: ${TOKENS} greedy tokens, one stream, model ${family.id} (median of ${ROUNDS} rounds)`,
  '',
  // The µs column is what the tier adds per token (its time per token minus the loop's, median
  // over rounds): on a model whose step is short (tiny) it shows the tier's own cost, on a big
  // one it is within the run-to-run noise of the memory bandwidth other tenants leave.
  '| framework / variant | plain loop tok/s | tier tok/s | tier ÷ loop | tier − loop, µs per token |',
  '|---|---:|---:|---:|---:|',
  ...overhead.map(
    (p) =>
      `| ${p.label} | ${fmt(median(p.loop))} | ${fmt(median(p.tier))} | ` +
      `${fmt(median(p.tier.map((x, i) => x / (p.loop[i] as number))), 3)} | ` +
      `${fmt(median(p.tier.map((x, i) => 1e6 / x - 1e6 / (p.loop[i] as number))))} |`,
  ),
  '',
  `## Batching: aggregate tokens/s of concurrent streams (${TOKENS} tokens each)`,
  '',
  '| tier | load | tier single tok/s | tier aggregate tok/s | ÷ single | framework baseline | tier ÷ baseline |',
  '|---|---|---:|---:|---:|---|---:|',
  ...batching,
  '',
  `1-minute load average ${load0.toFixed(1)} before, ${(loadavg()[0] ?? 0).toFixed(1)} after (2 shared cores).`,
);
process.stdout.write(`${out.join('\n')}\n`);
