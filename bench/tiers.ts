/**
 * npm run bench:tiers — every tier kind side by side in one run, through the Tier interface:
 * single-stream decode tokens/s, time to first token and inter-token latency p50/p99, then
 * aggregate tokens/s at rising concurrency. Runner modules in bench/tiers/ (any that export
 * `runner`) supply the tiers; see bench/tiers/runner.ts.
 *
 *   npm run bench:tiers -- [--tokens 200] [--runs 5] [--agg-tokens 64] [--concurrency 1,2,4,8,16]
 *                          [--threads 1] [--kinds onnx,llamacpp] [--family models/tiny]
 *
 * Greedy decoding with no stop tokens, so every stream generates exactly the asked number of
 * tokens. All tiers are started first and measured round-robin (run 1 of every tier, then run 2,
 * …), so a change in machine load hits every tier alike; each figure is the best of its runs (the
 * least disturbed one; the machine is shared), TTFT the median.
 */
import { readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelFamily, resolveVariant } from '../src/family/manifest.js';
import { LlamaTokenizer } from '../src/text/llama-tokenizer.js';
import { encodePrompt } from '../src/text/tokenizer.js';
import type { Tier } from '../src/tiers/tier.js';
import {
  aggregate,
  greedyRequest,
  summarise,
  timeStream,
  type SingleStreamResult,
  type StreamTiming,
} from './tiers/measure.js';
import type { BenchContext, BenchTarget, TierRunner } from './tiers/runner.js';

interface Row {
  readonly kind: string;
  readonly target: BenchTarget;
  readonly single: SingleStreamResult;
  readonly aggregate: ReadonlyMap<number, number>;
}

/** Prompts for the streams: varied openings so batched sequences differ in length and content. */
const PROMPTS = [
  'The jury said',
  'In the morning, the',
  'He looked at her and',
  'The government of the United States',
  'It was a long time before',
];

async function loadRunners(only: readonly string[] | undefined): Promise<TierRunner[]> {
  const dir = fileURLToPath(new URL('./tiers/', import.meta.url));
  const runners: TierRunner[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!/\.(ts|js)$/.test(file) || file.endsWith('.d.ts')) continue;
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { runner?: TierRunner };
    if (mod.runner && (only === undefined || only.includes(mod.runner.kind))) runners.push(mod.runner);
  }
  // llama.cpp first: it is the yardstick the other kinds are compared to.
  return runners.sort((a, b) => Number(b.kind === 'llamacpp') - Number(a.kind === 'llamacpp'));
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

interface Started {
  readonly kind: string;
  readonly target: BenchTarget;
  readonly tier: Tier;
}

async function measureAll(
  started: readonly Started[],
  prompts: readonly (readonly number[])[],
  opts: { tokens: number; runs: number; aggTokens: number; levels: readonly number[] },
): Promise<Row[]> {
  const top = Math.max(...opts.levels);
  for (const s of started) {
    // Warm-up: first runs pay for lazy allocations and thread start-up.
    await timeStream(s.tier, greedyRequest(prompts[0] as number[], 16));
    await aggregate(s.tier, prompts, 8, top);
  }
  const timings = new Map<Started, StreamTiming[]>(started.map((s) => [s, []]));
  for (let run = 0; run < opts.runs; run++) {
    for (const s of started) {
      timings.get(s)?.push(await timeStream(s.tier, greedyRequest(prompts[0] as number[], opts.tokens)));
    }
  }
  const agg = new Map<Started, Map<number, number>>(started.map((s) => [s, new Map()]));
  for (const c of opts.levels) {
    // Fewer repetitions than single stream: each aggregate run is c times longer.
    for (let run = 0; run < Math.max(1, Math.ceil(opts.runs / 2)); run++) {
      for (const s of started) {
        const tps = await aggregate(s.tier, prompts, opts.aggTokens, c);
        const m = agg.get(s) as Map<number, number>;
        m.set(c, Math.max(m.get(c) ?? 0, tps));
      }
    }
  }
  return started.map((s) => ({
    kind: s.kind,
    target: s.target,
    single: summarise(timings.get(s) ?? []),
    aggregate: agg.get(s) ?? new Map(),
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tokens: { type: 'string', default: '200' },
      runs: { type: 'string', default: '5' },
      'agg-tokens': { type: 'string', default: '64' },
      concurrency: { type: 'string', default: '1,2,4,8,16' },
      threads: { type: 'string', default: '1' },
      kinds: { type: 'string' },
      family: { type: 'string', default: fileURLToPath(new URL('../models/tiny', import.meta.url)) },
    },
  });
  const levels = values.concurrency.split(',').map(Number);
  const opts = {
    tokens: Number(values.tokens),
    runs: Number(values.runs),
    aggTokens: Number(values['agg-tokens']),
    levels,
  };
  const family = loadModelFamily(values.family);
  const tokenizer = await LlamaTokenizer.load(resolveVariant(family, 'gguf-f32', '.gguf').file);
  const ctx: BenchContext = {
    family,
    tokenizer,
    maxConcurrency: Math.max(...levels),
    threads: Number(values.threads),
  };
  const prompts = PROMPTS.map((p) => encodePrompt(tokenizer, p));
  const started: Started[] = [];
  let rows: Row[] = [];
  let load: [number, number] = [0, 0];
  try {
    for (const runner of await loadRunners(values.kinds?.split(','))) {
      for (const target of runner.targets(ctx)) {
        process.stderr.write(`starting ${target.label}…\n`);
        const tier = target.create();
        started.push({ kind: runner.kind, target, tier });
        await tier.start();
      }
    }
    process.stderr.write(`measuring ${started.length} tiers round-robin…\n`);
    const loadBefore = loadavg()[0] ?? 0;
    rows = await measureAll(started, prompts, opts);
    load = [loadBefore, loadavg()[0] ?? 0];
  } finally {
    await Promise.allSettled(started.map((s) => s.tier.close()));
    await tokenizer.close();
  }
  // Figures on a shared machine mean little without the load they were taken under.
  const loadLine = `${cpus().length} CPUs; 1-minute load average ${load[0].toFixed(1)} before, ${load[1].toFixed(1)} after measuring`;
  process.stdout.write(`${report(rows, opts, ctx)}\n${loadLine}\n`);
}

function report(
  rows: readonly Row[],
  opts: { tokens: number; runs: number; aggTokens: number; levels: readonly number[] },
  ctx: BenchContext,
): string {
  const base = rows.find((r) => r.target.variant === 'gguf-f32');
  const out: string[] = [];
  out.push(
    `## Single stream (${opts.tokens} greedy tokens, best of ${opts.runs}; threads ${ctx.threads}; model ${ctx.family.id})`,
    '',
    '| tier | decode tok/s | × llama.cpp f32 | TTFT ms | inter-token p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const r of rows) {
    const ratio = base ? r.single.decodeTps / base.single.decodeTps : Number.NaN;
    out.push(
      `| ${r.target.label} | ${fmt(r.single.decodeTps)} | ${fmt(ratio, 2)} | ${fmt(r.single.ttftMs, 1)} | ` +
        `${fmt(r.single.itlP50Ms, 2)} | ${fmt(r.single.itlP99Ms, 2)} |`,
    );
  }
  const top = Math.max(...opts.levels);
  out.push(
    '',
    `## Aggregate tokens/s by concurrency (${opts.aggTokens} greedy tokens per stream)`,
    '',
    `| tier | ${opts.levels.map((c) => `c=${c}`).join(' | ')} | c=${top} / single stream |`,
    `|---|${opts.levels.map(() => '---:').join('|')}|---:|`,
  );
  for (const r of rows) {
    const cells = opts.levels.map((c) => fmt(r.aggregate.get(c) ?? Number.NaN));
    const scale = (r.aggregate.get(top) ?? Number.NaN) / r.single.decodeTps;
    out.push(`| ${r.target.label} | ${cells.join(' | ')} | ${fmt(scale, 2)}× |`);
  }
  return `${out.join('\n')}\n`;
}

await main();
