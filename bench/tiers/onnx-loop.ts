/**
 * The best plain greedy loop over an ONNX decoder on this thread, for benchmarks to put the tier
 * beside (bench/tiers/onnx-batching.ts, bench/tier-baselines.ts): its outputs go into buffers
 * reused across steps and rounds, as the tier's do (fresh multi-megabyte arrays cost page
 * faults). A `present` decoder's outputs become the next step's past (ping-pong buffers); a
 * `new_key_values` decoder's new positions are written into spare cache columns with the tier's
 * own KvBatch, re-packed when they run out (src/tiers/onnx/kv-batch.ts), without the tier's
 * worker, messages or scheduling.
 */
import ort from 'onnxruntime-node';
import { argmax } from '../../src/text/sampling.js';
import {
  kvInputName,
  kvOutputName,
  readDecoderSpec,
  type DecoderSpec,
} from '../../src/tiers/onnx/decoder-spec.js';
import { idTensor, stepMask } from '../../src/tiers/onnx/feeds.js';
import { KvArena } from '../../src/tiers/onnx/kv-arena.js';
import { KvBatch } from '../../src/tiers/onnx/kv-batch.js';

export interface Rate {
  /** Tokens per wall-clock second. */
  readonly wall: number;
  /** Tokens per CPU-second of this process. */
  readonly cpu: number;
}

export const cpuMs = (): number => {
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
export async function plainLoop(
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
      stepFeeds[kvInputName(t)] = new ort.Tensor('float32', data, dims);
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
