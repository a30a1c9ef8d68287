/**
 * The ONNX main tier's batching beside the best plain loop over the same graph, in one run
 * (issue 23's target: 16 streams ≥ 6× the tier's single stream and ≥ 0.9× a plain batched loop):
 *
 *   node --import tsx bench/tiers/onnx-batching.ts [--family models/small] [--variant onnx-fp32]
 *     [--batch 16] [--tokens 128] [--rounds 5]
 *
 * Each round measures, one after the other: the tier's single stream (decode after the first
 * token), the tier's aggregate of `batch` streams (every token, prefill included, over the wall
 * clock), and a plain greedy loop on this thread at 1 and `batch` rows. The plain loop writes its
 * outputs into reused buffers, as the tier does (bench:baselines' loop allocates them per step,
 * which costs page faults), so it is the ceiling of a loop over this graph. Every figure is given
 * in wall-clock tokens/s and in tokens per CPU-second of this process (the tier's worker thread
 * included): on a shared machine the wall clock measures the other processes too, CPU time much
 * less so. Ratios are medians of the rounds' ratios.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { loadModelFamily, resolveVariant } from '../../src/family/manifest.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { argmax } from '../../src/text/sampling.js';
import { encodePrompt } from '../../src/text/tokenizer.js';
import { kvOutputName, readDecoderSpec, type DecoderSpec } from '../../src/tiers/onnx/decoder-spec.js';
import { idTensor, stepMask } from '../../src/tiers/onnx/feeds.js';
import { KvArena } from '../../src/tiers/onnx/kv-arena.js';
import { KvBatch } from '../../src/tiers/onnx/kv-batch.js';
import type { Tier } from '../../src/tiers/tier.js';
import { median } from '../lib/median.js';
import { decodeTps, greedyRequest, timeStream } from './measure.js';
import { runner } from './onnx.js';

interface Rate {
  /** Tokens per wall-clock second. */
  readonly wall: number;
  /** Tokens per CPU-second of this process. */
  readonly cpu: number;
}

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

const warm = new Map<string, (readonly [Float32Array, Float32Array])[]>();

/**
 * `count` pairs of buffers of `size` floats, written once when first made and reused by every
 * later round: a fresh multi-megabyte array costs a page fault per 4 KiB on first touch
 * (src/tiers/onnx/kv-arena.ts), which the tier's reused arena does not pay either.
 */
function warmBuffers(key: string, count: number, size: number): (readonly [Float32Array, Float32Array])[] {
  let bufs = warm.get(key);
  if (bufs === undefined || (bufs[0]?.[0].length ?? 0) < size) {
    bufs = Array.from(
      { length: count },
      () => [new Float32Array(size).fill(1), new Float32Array(size).fill(1)] as const,
    );
    warm.set(key, bufs);
  }
  return bufs;
}

/** Greedy plain loop of `rows` copies of `prompt`; decode rate after the first token. */
async function plainLoop(
  session: ort.InferenceSession,
  file: string,
  prompt: readonly number[],
  rows: number,
  tokens: number,
): Promise<Rate> {
  const spec = readDecoderSpec(session.inputMetadata, session.outputMetadata, file);
  const { layers, kvHeads, headDim } = spec;
  const vocab = spec.vocabSize ?? 0;
  const n = prompt.length;
  const pastNames = Array.from(
    { length: layers * 2 },
    (_, t) => `${Math.floor(t / 2)}.${t % 2 === 0 ? 'key' : 'value'}`,
  );
  const feeds: Record<string, ort.Tensor> = {
    input_ids: idTensor(spec.inputIdsType, Array.from({ length: rows }, () => prompt).flat(), [rows, n]),
    attention_mask: idTensor(spec.attentionMaskType, new Array<number>(rows * n).fill(1), [rows, n]),
  };
  if (spec.positionIds) {
    const pos = Array.from({ length: rows }, () => prompt.map((_, i) => i)).flat();
    feeds['position_ids'] = idTensor(spec.positionIds, pos, [rows, n]);
  }
  for (const name of pastNames) {
    feeds[`past_key_values.${name}`] = new ort.Tensor('float32', new Float32Array(0), [
      rows,
      kvHeads,
      0,
      headDim,
    ]);
  }
  const out = await session.run(feeds);
  let logits = (out['logits'] as ort.Tensor).data as Float32Array;
  let stride = logits.length / rows;
  if (spec.kvOutputs === 'append') {
    const first = Array.from({ length: rows }, (_, r) =>
      argmax(logits.subarray(r * stride + stride - vocab, (r + 1) * stride)),
    );
    const present = pastNames.map(
      (_, t) => (out[kvOutputName('append', t)] as ort.Tensor).data as Float32Array,
    );
    return appendLoop(
      session,
      spec,
      KvBatch.padded(spec, present, n, new Array<number>(rows).fill(n)),
      first,
      tokens,
    );
  }
  // Two reused buffers per KV tensor (ping-pong), sized for the whole run, and one for logits.
  const cap = rows * kvHeads * (n + tokens) * headDim;
  const bufs = warmBuffers(`${rows}`, pastNames.length, cap);
  pastNames.forEach((name, t) => {
    const present = (out[`present.${name}`] as ort.Tensor).data as Float32Array;
    (bufs[t] as readonly [Float32Array, Float32Array])[0].set(present);
  });
  const logitsBuf = (
    warmBuffers(`${rows} logits`, 1, rows * vocab)[0] as readonly [Float32Array, Float32Array]
  )[0];
  let cur = 0;
  let next = Array.from({ length: rows }, (_, r) =>
    argmax(logits.subarray(r * stride + stride - vocab, (r + 1) * stride)),
  );
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 1; i < tokens; i++) {
    const past = n + i - 1;
    const stepFeeds: Record<string, ort.Tensor> = {
      input_ids: idTensor(spec.inputIdsType, next, [rows, 1]),
      attention_mask: stepMask(spec.attentionMaskType, new Array<number>(rows).fill(past), past),
    };
    if (spec.positionIds)
      stepFeeds['position_ids'] = idTensor(spec.positionIds, new Array<number>(rows).fill(past), [rows, 1]);
    const fetches: Record<string, ort.Tensor | null> = {
      logits: new ort.Tensor('float32', logitsBuf, [rows, 1, vocab]),
    };
    pastNames.forEach((name, t) => {
      const pair = bufs[t] as readonly [Float32Array, Float32Array];
      const from = pair[cur] as Float32Array;
      const to = pair[1 - cur] as Float32Array;
      stepFeeds[`past_key_values.${name}`] = new ort.Tensor(
        'float32',
        from.subarray(0, rows * kvHeads * past * headDim),
        [rows, kvHeads, past, headDim],
      );
      fetches[`present.${name}`] = new ort.Tensor(
        'float32',
        to.subarray(0, rows * kvHeads * (past + 1) * headDim),
        [rows, kvHeads, past + 1, headDim],
      );
    });
    await session.run(stepFeeds, fetches);
    cur = 1 - cur;
    logits = logitsBuf;
    stride = vocab;
    next = Array.from({ length: rows }, (_, r) => argmax(logits.subarray(r * vocab, (r + 1) * vocab)));
  }
  const wallMs = performance.now() - t0;
  const usedMs = cpuMs() - c0;
  const count = (tokens - 1) * rows;
  return { wall: (count * 1000) / wallMs, cpu: (count * 1000) / usedMs };
}

/** Spare columns per re-pack: the tier's own choice (src/tiers/onnx/decode-engine.ts). */
const APPEND_SPARE = 32;
const arenas = new Map<number, KvArena>();

/**
 * The plain loop for a decoder that outputs only the new positions: the cache stays in reused
 * buffers with spare columns, each step's new column is written in place, and the rows are
 * re-packed when the spare columns run out (the tier's KV code, without its worker, messages
 * or scheduling).
 */
async function appendLoop(
  session: ort.InferenceSession,
  spec: DecoderSpec,
  prefilled: KvBatch,
  first: number[],
  tokens: number,
): Promise<Rate> {
  const rows = first.length;
  const vocab = spec.vocabSize ?? 0;
  let arena = arenas.get(rows);
  if (arena === undefined) {
    arena = new KvArena(spec.layers * 2);
    arenas.set(rows, arena);
  }
  const all = (kv: KvBatch) => Array.from({ length: rows }, (_, row) => ({ source: kv, row }));
  let kv = KvBatch.pack(spec, all(prefilled), arena, undefined, APPEND_SPARE);
  const logitsBuf = (
    warmBuffers(`${rows} logits`, 1, rows * vocab)[0] as readonly [Float32Array, Float32Array]
  )[0];
  let next = first;
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 1; i < tokens; i++) {
    if (kv.spare === 0) kv = KvBatch.pack(spec, all(kv), arena, kv, APPEND_SPARE);
    const dims = [rows, spec.kvHeads, kv.capacity, spec.headDim];
    const stepFeeds: Record<string, ort.Tensor> = {
      input_ids: idTensor(spec.inputIdsType, next, [rows, 1]),
      attention_mask: stepMask(spec.attentionMaskType, kv.lengths, kv.width, kv.capacity),
    };
    if (spec.positionIds) stepFeeds['position_ids'] = idTensor(spec.positionIds, kv.lengths, [rows, 1]);
    const fetches: Record<string, ort.Tensor | null> = {
      logits: new ort.Tensor('float32', logitsBuf, [rows, 1, vocab]),
    };
    kv.tensors.forEach((data, t) => {
      stepFeeds[`past_key_values.${kvOutputName('present', t).slice('present.'.length)}`] = new ort.Tensor(
        'float32',
        data,
        dims,
      );
      fetches[kvOutputName('append', t)] = null;
    });
    const out = await session.run(stepFeeds, fetches);
    kv.append(
      kv.tensors.map((_, t) => (out[kvOutputName('append', t)] as ort.Tensor).data as Float32Array),
      1,
    );
    next = Array.from({ length: rows }, (_, r) => argmax(logitsBuf.subarray(r * vocab, (r + 1) * vocab)));
  }
  const wallMs = performance.now() - t0;
  const usedMs = cpuMs() - c0;
  const count = (tokens - 1) * rows;
  return { wall: (count * 1000) / wallMs, cpu: (count * 1000) / usedMs };
}

async function tierSingle(tier: Tier, prompt: readonly number[], tokens: number): Promise<Rate> {
  const c0 = cpuMs();
  const t = await timeStream(tier, greedyRequest(prompt, tokens));
  const usedMs = cpuMs() - c0;
  // CPU over the whole stream includes the prefill; count its tokens against the whole stream.
  return { wall: decodeTps(t), cpu: (t.tokens * 1000) / usedMs };
}

async function tierAggregate(
  tier: Tier,
  prompt: readonly number[],
  tokens: number,
  streams: number,
): Promise<Rate> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const all = await Promise.all(
    Array.from({ length: streams }, () => timeStream(tier, greedyRequest(prompt, tokens))),
  );
  const wallMs = performance.now() - t0;
  const usedMs = cpuMs() - c0;
  const count = all.reduce((s, t) => s + t.tokens, 0);
  return { wall: (count * 1000) / wallMs, cpu: (count * 1000) / usedMs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      family: { type: 'string', default: fileURLToPath(new URL('../../models/small', import.meta.url)) },
      variant: { type: 'string', default: 'onnx-fp32' },
      batch: { type: 'string', default: '16' },
      tokens: { type: 'string', default: '128' },
      rounds: { type: 'string', default: '5' },
    },
  });
  const B = Number(values.batch);
  const TOKENS = Number(values.tokens);
  const ROUNDS = Number(values.rounds);
  const family = loadModelFamily(values.family);
  const tokenizer = await LlamaTokenizer.load(resolveVariant(family, 'gguf-f32', '.gguf').file);
  const prompt = encodePrompt(tokenizer, 'The government of the United States');
  const file = resolveVariant(family, values.variant, '.onnx').file;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const target = runner
    .targets({ family, tokenizer, maxConcurrency: B, threads: 1 })
    .find((t) => t.variant === values.variant);
  if (target === undefined) throw new Error(`${values.variant}: not in ${family.dir}`);
  const tier = target.create();
  await tier.start();
  const load0 = loadavg()[0] ?? 0;
  const rows: { t1: Rate; tB: Rate; l1: Rate; lB: Rate }[] = [];
  try {
    await plainLoop(session, file, prompt, 1, 8);
    await tierSingle(tier, prompt, 8);
    for (let r = 0; r < ROUNDS; r++) {
      process.stderr.write(`round ${r + 1}/${ROUNDS}\n`);
      const t1 = await tierSingle(tier, prompt, TOKENS);
      const tB = await tierAggregate(tier, prompt, TOKENS, B);
      const l1 = await plainLoop(session, file, prompt, 1, TOKENS);
      const lB = await plainLoop(session, file, prompt, B, TOKENS);
      rows.push({ t1, tB, l1, lB });
    }
  } finally {
    await tier.close();
    await session.release();
  }
  const med = (f: (r: (typeof rows)[number]) => number): number => median(rows.map(f));
  const fmt = (x: number, d = 0): string => x.toFixed(d);
  const line = (unit: string, k: keyof Rate): string =>
    `| ${unit} | ${fmt(med((r) => r.t1[k]))} | ${fmt(med((r) => r.tB[k]))} | ` +
    `**${fmt(
      med((r) => r.tB[k] / r.t1[k]),
      2,
    )}×** | ${fmt(med((r) => r.l1[k]))} | ${fmt(med((r) => r.lB[k]))} | ` +
    `${fmt(
      med((r) => r.lB[k] / r.l1[k]),
      2,
    )}× | **${fmt(
      med((r) => r.tB[k] / r.lB[k]),
      2,
    )}** |`;
  process.stdout.write(
    `## ONNX main tier batching, ${family.id} ${values.variant}: ${B} streams × ${TOKENS} greedy tokens ` +
      `(median of ${ROUNDS} rounds)\n\n` +
      `| measure | tier 1 stream | tier ${B} streams | tier ${B} ÷ 1 | plain loop 1 row | plain loop ${B} rows | ` +
      `loop ${B} ÷ 1 | tier ${B} ÷ loop ${B} |\n|---|---:|---:|---:|---:|---:|---:|---:|\n` +
      `${line('tokens/s (wall clock)', 'wall')}\n${line('tokens per CPU-second', 'cpu')}\n\n` +
      `1-minute load average ${fmt(load0, 1)} before, ${fmt(loadavg()[0] ?? 0, 1)} after (2 shared cores).\n`,
  );
}

// Only when run directly: bench/tiers.ts imports every module of this folder to find runners.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
