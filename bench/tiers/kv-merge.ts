/**
 * Cost of the KV-cache strategy of the ONNX tier's continuous batcher, on the family's FP32
 * decoder (not a tier runner; run it directly):
 *
 *   node --import tsx bench/tiers/kv-merge.ts [--family models/tiny] [--variant onnx-fp32]
 *     [--file any.onnx] [--rows 16] [--past 256] [--reps 20] [--profile]
 *
 * `--file` measures another decoder file instead of the family's variant, e.g. the optimum form
 * of the same weights written by `models/scripts/export_onnx.py --kv-io present --out …`.
 *
 * Prints the time of one decode step of `rows` sequences with `past` cached positions and the
 * time to re-pack that batch's cache (what a join/leave costs: one copy of every row), into the
 * tier's reused buffers and, for comparison, into fresh allocations. Then the batching ceiling of
 * the graph itself: steps of one row and of `rows` rows, alternated, each with its outputs
 * written into reused buffers as the tier does; `rows` × (one-row step) / (rows-row step) is the
 * most any loop over this graph can gain from batching at that cache length. `--profile` adds
 * where a step's kernel time goes (ONNX Runtime's profiler, one row and `rows` rows): weight
 * matmuls, the attention's own kernels (the Concat of past and new keys/values, or of the scores
 * in a decoder that outputs only the new positions; the score and value matmuls, mask and
 * softmax), and the rest.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { loadModelFamily, resolveVariant } from '../../src/family/manifest.js';
import { kvOutputName, readDecoderSpec, type DecoderSpec } from '../../src/tiers/onnx/decoder-spec.js';
import { idTensor, stepMask } from '../../src/tiers/onnx/feeds.js';
import { KvArena } from '../../src/tiers/onnx/kv-arena.js';
import { KvBatch, type RowRef } from '../../src/tiers/onnx/kv-batch.js';
import { argmax, logSumExp } from '../../src/text/sampling.js';
import { percentile } from './measure.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '16' },
      past: { type: 'string', default: '256' },
      reps: { type: 'string', default: '20' },
      family: { type: 'string', default: fileURLToPath(new URL('../../models/tiny', import.meta.url)) },
      variant: { type: 'string', default: 'onnx-fp32' },
      file: { type: 'string', default: '' },
      profile: { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const past = Number(values.past);
  const reps = Number(values.reps);

  const family = loadModelFamily(values.family);
  const file = values.file || resolveVariant(family, values.variant, '.onnx').file;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const spec = readDecoderSpec(session.inputMetadata, session.outputMetadata, file);
  const shape = { layers: spec.layers, kvHeads: spec.kvHeads, headDim: spec.headDim };

  // Rows of different lengths (past/2 … past), filled with small values: the timing does not
  // depend on the contents.
  const singles = Array.from({ length: rows }, (_, r) => {
    const len = Math.round(past / 2 + ((past / 2) * r) / Math.max(1, rows - 1));
    const tensors = Array.from({ length: shape.layers * 2 }, () =>
      new Float32Array(shape.kvHeads * len * shape.headDim).fill(0.01),
    );
    return KvBatch.single(shape, tensors, len);
  });
  const refs = (source: KvBatch[]): RowRef[] => source.map((s) => ({ source: s, row: 0 }));
  const batch = KvBatch.pack(shape, refs(singles));

  function timeIt(fn: () => void): number[] {
    const out: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      fn();
      out.push(performance.now() - t0);
    }
    return out;
  }

  const everyRow = batch.lengths.map((_, row) => ({ source: batch, row }));
  const freshPackMs = timeIt(() => {
    KvBatch.pack(shape, everyRow);
  });
  const arena = new KvArena(shape.layers * 2);
  const packMs = timeIt(() => {
    KvBatch.pack(shape, everyRow, arena, batch);
  });

  const stepMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: idTensor(spec.inputIdsType, new Array<number>(rows).fill(3), [rows, 1]),
      attention_mask: stepMask(spec.attentionMaskType, batch.lengths, batch.width),
    };
    if (spec.positionIds) feeds['position_ids'] = idTensor(spec.positionIds, batch.lengths, [rows, 1]);
    for (let l = 0; l < shape.layers; l++) {
      for (const [j, kv] of ['key', 'value'].entries()) {
        const data = batch.tensors[2 * l + j] as Float32Array;
        feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', data, [
          rows,
          shape.kvHeads,
          batch.width,
          shape.headDim,
        ]);
      }
    }
    const t0 = performance.now();
    await session.run(feeds);
    stepMs.push(performance.now() - t0);
  }

  // The ceiling: one-row and rows-row steps alternated, each at `past` cached positions, their
  // presents and logits written into buffers reused across steps (as the tier's are).
  const vocab = spec.vocabSize ?? 0;
  /** One step of n rows: its wall time and this process's CPU time (ms), run on this thread. */
  const stepAt = (n: number): (() => Promise<{ wall: number; cpu: number }>) => {
    const pastData = Array.from({ length: shape.layers * 2 }, () =>
      new Float32Array(n * shape.kvHeads * past * shape.headDim).fill(0.01),
    );
    const presentData = Array.from({ length: shape.layers * 2 }, () =>
      spec.kvOutputs === 'present'
        ? new Float32Array(n * shape.kvHeads * (past + 1) * shape.headDim)
        : undefined,
    );
    const logits = new Float32Array(n * vocab);
    const lengths = new Array<number>(n).fill(past);
    return async () => {
      const feeds: Record<string, ort.Tensor> = {
        input_ids: idTensor(spec.inputIdsType, new Array<number>(n).fill(3), [n, 1]),
        attention_mask: stepMask(spec.attentionMaskType, lengths, past),
      };
      if (spec.positionIds) feeds['position_ids'] = idTensor(spec.positionIds, lengths, [n, 1]);
      const fetches: Record<string, ort.Tensor | null> = {
        logits: vocab > 0 ? new ort.Tensor('float32', logits, [n, 1, vocab]) : null,
      };
      for (let l = 0; l < shape.layers; l++) {
        for (const [j, kv] of ['key', 'value'].entries()) {
          feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor(
            'float32',
            pastData[2 * l + j] as Float32Array,
            [n, shape.kvHeads, past, shape.headDim],
          );
          fetches[kvOutputName(spec.kvOutputs, 2 * l + j)] = kvFetch(spec, presentData[2 * l + j], [
            n,
            shape.kvHeads,
            past + 1,
            shape.headDim,
          ]);
        }
      }
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await session.run(feeds, fetches);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      return { wall, cpu: (c.user + c.system) / 1000 };
    };
  };
  const one = stepAt(1);
  const many = stepAt(rows);
  await one();
  await many();
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const oneMs: number[] = [];
  const manyMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    // Pairs of adjacent steps, so that a change of machine load hits both sides of each ratio.
    const m = await many();
    const o = await one();
    manyMs.push(m.wall);
    oneMs.push(o.wall);
    ratios.push((rows * o.wall) / m.wall);
    // CPU time does not count the time the thread waited for a core: on a shared machine it is
    // the steadier measure of what a step costs.
    cpuRatios.push((rows * o.cpu) / m.cpu);
  }

  // What a step's sampling costs beyond argmax when logprobs are asked for: a softmax over the
  // vocabulary per row (decode-engine.ts skips it for greedy requests without logprobs).
  const rowsLogits = new Float32Array(rows * vocab).map((_, i) => Math.sin(i) * 8);
  const row = (r: number): Float32Array => rowsLogits.subarray(r * vocab, (r + 1) * vocab);
  const lseMs = timeIt(() => {
    for (let r = 0; r < rows; r++) logSumExp(row(r));
  });
  const argmaxMs = timeIt(() => {
    for (let r = 0; r < rows; r++) argmax(row(r));
  });

  const cacheMb = (batch.tensors.reduce((n, t) => n + t.length, 0) * 4) / 1e6;
  const med = (xs: number[]): string => percentile(xs, 50).toFixed(3);
  process.stdout.write(
    `rows ${rows}, cached positions ${past / 2}…${past} (width ${batch.width}), cache ${cacheMb.toFixed(1)} MB\n` +
      `decode step (one run() for all rows): median ${med(stepMs)} ms\n` +
      `re-pack of the whole batch (join/leave) into reused buffers: median ${med(packMs)} ms ` +
      `(${((percentile(packMs, 50) / percentile(stepMs, 50)) * 100).toFixed(0)}% of a step)\n` +
      `the same re-pack into freshly allocated buffers: median ${med(freshPackMs)} ms\n` +
      (spec.kvOutputs === 'present'
        ? `steady state: present outputs adopted as the next past, 0 copies per step\n`
        : `steady state: each step's new positions written into spare columns, 0 copies of the cache per step\n`) +
      `batching ceiling at ${past} cached positions (${values.file ? basename(file) : values.variant}, ${spec.kvOutputs} outputs): one row ` +
      `${med(oneMs)} ms, ${rows} rows ${med(manyMs)} ms; ${rows} × one-row / ${rows}-row step: median ` +
      `${percentile(ratios, 50).toFixed(2)}× (of ${reps} pairs); by CPU time ${percentile(cpuRatios, 50).toFixed(2)}×\n` +
      `sampling ${rows} logits rows of ${vocab}: argmax median ${med(argmaxMs)} ms, softmax (logSumExp) ` +
      `median ${med(lseMs)} ms\n` +
      `1-minute load average ${loadavg()[0]?.toFixed(1)} (2 shared cores)\n`,
  );
  await session.release();
  if (values.profile) {
    for (const n of [1, rows]) process.stdout.write(`${await profileStep(file, n, past, reps)}\n`);
  }
}

/**
 * The fetch of a KV output: a present output goes into the reused buffer `data` (as the tier
 * writes it); an `append` decoder's new positions are small and ORT allocates them.
 */
function kvFetch(
  spec: DecoderSpec,
  data: Float32Array | undefined,
  dims: readonly number[],
): ort.Tensor | null {
  return spec.kvOutputs === 'present' && data !== undefined ? new ort.Tensor('float32', data, dims) : null;
}

interface ProfileEvent {
  readonly cat?: string;
  readonly name: string;
  readonly dur: number;
  readonly args?: { readonly op_name?: string; readonly input_type_shape?: readonly object[] };
}

const WEIGHT_MATMULS = new Set(['MatMul', 'MatMulInteger', 'MatMulNBits', 'DynamicQuantizeMatMul']);
const ATTENTION_OPS = new Set(['Concat', 'FusedMatMul', 'MatMul', 'Softmax', 'Where', 'Div']);

/** Kernel time per step of `n` rows at `past` cached positions, by kind (ONNX Runtime's profiler). */
async function profileStep(file: string, n: number, past: number, reps: number): Promise<string> {
  const prefix = join(tmpdir(), `tiergate-kv-merge-${process.pid}-${n}`);
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1,
    executionMode: 'sequential',
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const spec = readDecoderSpec(session.inputMetadata, session.outputMetadata, file);
  const lengths = new Array<number>(n).fill(past);
  const dims = [n, spec.kvHeads, past, spec.headDim];
  const pastData = new Float32Array(n * spec.kvHeads * past * spec.headDim).fill(0.01);
  // Outputs into reused buffers, as the tier writes them (fresh ones would add page faults).
  const presentDims = [n, spec.kvHeads, past + 1, spec.headDim];
  const presents = Array.from({ length: spec.layers * 2 }, () =>
    spec.kvOutputs === 'present' ? new Float32Array(n * spec.kvHeads * (past + 1) * spec.headDim) : undefined,
  );
  const vocab = spec.vocabSize ?? 0;
  const logits = new Float32Array(n * vocab);
  for (let i = 0; i < reps; i++) {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: idTensor(spec.inputIdsType, new Array<number>(n).fill(3), [n, 1]),
      attention_mask: stepMask(spec.attentionMaskType, lengths, past),
    };
    if (spec.positionIds) feeds['position_ids'] = idTensor(spec.positionIds, lengths, [n, 1]);
    const fetches: Record<string, ort.Tensor | null> = {
      logits: vocab > 0 ? new ort.Tensor('float32', logits, [n, 1, vocab]) : null,
    };
    for (let l = 0; l < spec.layers; l++) {
      for (const [j, kv] of ['key', 'value'].entries()) {
        feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', pastData, dims);
        fetches[kvOutputName(spec.kvOutputs, 2 * l + j)] = kvFetch(spec, presents[2 * l + j], presentDims);
      }
    }
    await session.run(feeds, fetches);
  }
  // endProfiling() writes the file; onnxruntime-node does not return its name.
  session.endProfiling();
  await session.release();
  const dir = tmpdir();
  const name = readdirSync(dir).find((f) => join(dir, f).startsWith(prefix) && f.endsWith('.json'));
  if (name === undefined) return `profile of ${n} rows: no profile file written`;
  const events = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ProfileEvent[];
  rmSync(join(dir, name));
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
  const byKind = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    // A weight matmul has one dynamic input (the weights are initializers, not listed).
    const kind =
      WEIGHT_MATMULS.has(op) && (e.args?.input_type_shape?.length ?? 0) === 1
        ? 'weight matmuls'
        : e.name.includes('/attention/') && ATTENTION_OPS.has(op)
          ? `attention ${op}`
          : 'other';
    byKind.set(kind, (byKind.get(kind) ?? 0) + e.dur);
  }
  const total = [...byKind.values()].reduce((a, b) => a + b, 0);
  const parts = [...byKind]
    .sort((a, b) => b[1] - a[1])
    .map(([k, us]) => `${k} ${(us / runs / 1000).toFixed(2)}`)
    .join(', ');
  return `profile, ${n} row(s) at ${past} cached positions: kernels ${(total / runs / 1000).toFixed(2)} ms per step (${parts})`;
}

// Only when run directly: bench/tiers.ts imports every module of this folder to find runners.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
