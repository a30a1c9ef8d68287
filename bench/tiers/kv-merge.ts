/**
 * Cost of the KV-cache strategy of the ONNX tier's continuous batcher, on the family's FP32
 * decoder (not a tier runner; run it directly):
 *
 *   node --import tsx bench/tiers/kv-merge.ts [--rows 16] [--past 256] [--reps 20]
 *
 * Prints the time of one decode step of `rows` sequences with `past` cached positions and the
 * time to re-pack that batch's cache (what a join/leave costs: one copy of every row), into the
 * tier's reused buffers and, for comparison, into fresh allocations.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { loadModelFamily, resolveVariant } from '../../src/family/manifest.js';
import { readDecoderSpec } from '../../src/tiers/onnx/decoder-spec.js';
import { idTensor, stepMask } from '../../src/tiers/onnx/feeds.js';
import { KvArena } from '../../src/tiers/onnx/kv-arena.js';
import { KvBatch, type RowRef } from '../../src/tiers/onnx/kv-batch.js';
import { percentile } from './measure.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '16' },
      past: { type: 'string', default: '256' },
      reps: { type: 'string', default: '20' },
    },
  });
  const rows = Number(values.rows);
  const past = Number(values.past);
  const reps = Number(values.reps);

  const family = loadModelFamily(fileURLToPath(new URL('../../models/tiny', import.meta.url)));
  const file = resolveVariant(family, 'onnx-fp32', '.onnx').file;
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

  const cacheMb = (batch.tensors.reduce((n, t) => n + t.length, 0) * 4) / 1e6;
  const med = (xs: number[]): string => percentile(xs, 50).toFixed(3);
  process.stdout.write(
    `rows ${rows}, cached positions ${past / 2}…${past} (width ${batch.width}), cache ${cacheMb.toFixed(1)} MB\n` +
      `decode step (one run() for all rows): median ${med(stepMs)} ms\n` +
      `re-pack of the whole batch (join/leave) into reused buffers: median ${med(packMs)} ms ` +
      `(${((percentile(packMs, 50) / percentile(stepMs, 50)) * 100).toFixed(0)}% of a step)\n` +
      `the same re-pack into freshly allocated buffers: median ${med(freshPackMs)} ms\n` +
      `steady state: present outputs adopted as the next past, 0 copies per step\n`,
  );
  await session.release();
}

// Only when run directly: bench/tiers.ts imports every module of this folder to find runners.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
