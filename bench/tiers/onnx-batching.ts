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
import { encodePrompt } from '../../src/text/tokenizer.js';
import type { Tier } from '../../src/tiers/tier.js';
import { median } from '../lib/median.js';
import { decodeTps, greedyRequest, timeStream } from './measure.js';
import { runner } from './onnx.js';
import { cpuMs, plainLoop, type Rate } from './onnx-loop.js';

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
