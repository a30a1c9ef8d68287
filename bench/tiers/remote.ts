/**
 * Benchmark runner for the `remote` tier kind (the PyTorch sidecar over gRPC), and a standalone
 * side-by-side run against llama.cpp F32 — the yardstick (target: single stream ≥ 0.5×):
 *
 *   node --import tsx bench/tiers/remote.ts [--tokens 200] [--runs 3] [--concurrency 4] [--threads 1]
 *
 * Every figure is measured through the Tier interface, i.e. through gRPC for the sidecar:
 * single-stream tokens/s (best of --runs), time to first token, mean inter-token latency, and
 * aggregate tokens/s of --concurrency simultaneous streams. Greedy, no stop tokens, so every run
 * generates exactly --tokens tokens.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Value } from '@sinclair/typebox/value';
import { LlamaCppTierSchema, type LlamaCppTierConfig } from '../../src/config/tiers/llamacpp.js';
import { RemoteTierSchema, type RemoteTierConfig } from '../../src/config/tiers/remote.js';
import { loadModelFamily, type ModelFamily } from '../../src/family/manifest.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { LlamaCppTier } from '../../src/tiers/llamacpp/llamacpp-tier.js';
import { RemoteTier } from '../../src/tiers/remote/remote-tier.js';
import type { Tier } from '../../src/tiers/tier.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';

export interface StreamStats {
  readonly tokensPerSecond: number;
  readonly ttftMs: number;
  readonly interTokenMs: number;
}

export interface TierBenchResult {
  readonly tier: string;
  readonly framework: string;
  readonly variant: string;
  readonly single: StreamStats;
  readonly concurrency: number;
  readonly concurrentTokensPerSecond: number;
}

export interface BenchOptions {
  readonly prompt: readonly number[];
  readonly tokens: number;
  readonly runs: number;
  readonly concurrency: number;
}

async function stream(tier: Tier, o: BenchOptions): Promise<StreamStats & { count: number; totalMs: number }> {
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  let count = 0;
  const request = {
    tokens: o.prompt,
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens: o.tokens,
    stopTokens: [],
    topLogprobs: 0,
  };
  for await (const e of tier.generate(request, new AbortController().signal)) {
    if (e.kind !== 'token') continue;
    last = performance.now();
    if (count++ === 0) first = last;
  }
  const totalMs = last - t0;
  return {
    count,
    totalMs,
    tokensPerSecond: (count * 1000) / totalMs,
    ttftMs: first - t0,
    interTokenMs: count > 1 ? (last - first) / (count - 1) : 0,
  };
}

/** Measures any started tier: best-of-`runs` single stream, then `concurrency` parallel streams. */
export async function measureTier(tier: Tier, o: BenchOptions): Promise<TierBenchResult> {
  await stream(tier, { ...o, tokens: Math.min(o.tokens, 8) }); // warm-up
  let best: StreamStats | undefined;
  for (let i = 0; i < o.runs; i++) {
    const s = await stream(tier, o);
    if (best === undefined || s.tokensPerSecond > best.tokensPerSecond) best = s;
  }
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: o.concurrency }, () => stream(tier, o)));
  const wall = performance.now() - t0;
  const info = tier.info();
  return {
    tier: tier.name,
    framework: info.framework,
    variant: info.variant,
    single: best!,
    concurrency: o.concurrency,
    concurrentTokensPerSecond: (all.reduce((n, s) => n + s.count, 0) * 1000) / wall,
  };
}

/** The fallback tier as the gateway runs it: a supervised sidecar serving the family's FP32 GGUF. */
export function createRemoteBenchTier(family: ModelFamily, options: Partial<RemoteTierConfig> = {}): RemoteTier {
  const config = Value.Default(RemoteTierSchema, {
    kind: 'remote',
    spawn: true,
    model: 'pytorch-fp32',
    required: true,
    ...options,
  }) as RemoteTierConfig;
  const logger = pino({ level: 'warn' });
  return new RemoteTier('fallback', config, { logger, metrics: new MetricsService({ defaultMetrics: false }), family });
}

export function formatResults(results: readonly TierBenchResult[]): string {
  const head = '| tier | framework | variant | single tok/s | TTFT ms | inter-token ms | concurrent tok/s |';
  const rows = results.map(
    (r) =>
      `| ${r.tier} | ${r.framework} | ${r.variant} | ${r.single.tokensPerSecond.toFixed(0)} | ${r.single.ttftMs.toFixed(1)} | ` +
      `${r.single.interTokenMs.toFixed(2)} | ${r.concurrentTokensPerSecond.toFixed(0)} (×${r.concurrency}) |`,
  );
  return [head, '|---|---|---|---:|---:|---:|---:|', ...rows].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tokens: { type: 'string', default: '200' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '4' },
      threads: { type: 'string', default: '1' },
      family: { type: 'string', default: fileURLToPath(new URL('../../models/tiny', import.meta.url)) },
    },
  });
  const family = loadModelFamily(values.family);
  const threads = Number(values.threads);
  const o: BenchOptions = {
    prompt: [1, 338, 500],
    tokens: Number(values.tokens),
    runs: Number(values.runs),
    concurrency: Number(values.concurrency),
  };
  const f32 = family.variants.find((v) => v.id === 'gguf-f32');
  if (f32 === undefined) throw new Error(`no gguf-f32 variant in ${join(family.dir, 'manifest.json')}`);
  const tokenizer = await LlamaTokenizer.load(f32.file);
  const metrics = new MetricsService({ defaultMetrics: false });
  const llamaConfig = Value.Default(LlamaCppTierSchema, {
    kind: 'llamacpp',
    model: 'gguf-f32',
    threads,
    sequences: o.concurrency,
  }) as LlamaCppTierConfig;
  const edge = new LlamaCppTier('edge-f32', llamaConfig, { logger: pino({ level: 'warn' }), metrics, family, tokenizer });
  const remote = createRemoteBenchTier(family, { threads, maxConcurrent: o.concurrency });
  const results: TierBenchResult[] = [];
  try {
    await edge.start();
    results.push(await measureTier(edge, o));
    await edge.close();
    await remote.start();
    results.push(await measureTier(remote, o));
  } finally {
    await Promise.allSettled([edge.close(), remote.close(), tokenizer.close()]);
  }
  process.stdout.write(`${formatResults(results)}\n`);
  const [llama, torch] = results;
  if (llama !== undefined && torch !== undefined) {
    const ratio = torch.single.tokensPerSecond / llama.single.tokensPerSecond;
    process.stdout.write(
      `\nPyTorch sidecar over gRPC / llama.cpp F32, single stream: ${ratio.toFixed(2)}× (target ≥ 0.5×; ` +
        `${o.tokens} greedy tokens, best of ${o.runs}, threads ${threads})\n`,
    );
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
