/**
 * node --max-semi-space-size=64 --import tsx bench/edge-native-memory.ts — where the edge tier's
 * memory goes (issue 20; docs/gateway.md, "Native memory of the edge tier"). A diagnostic: it
 * reaches into node-llama-cpp's internal binding (`_bindings.AddonSampler`) to count samplers,
 * which the tier itself never does.
 *
 * 1. The sampler alone: creates and disposes EDGE_SAMPLERS native samplers on the tiny model and
 *    prints the RSS each leaves behind until a garbage collection.
 * 2. The tier alone: EDGE_REQUESTS 8-token greedy requests, 4 at a time, on the Q4_K_M GGUF with
 *    `reclaimEveryMiB: EDGE_RECLAIM_MIB` (default 16; 0 = before the bound). Every 1,000 requests:
 *    RSS, heap, samplers created and finalized (a FinalizationRegistry on each), V8 collections
 *    by kind (PerformanceObserver 'gc' entries: minor = scavenge, major = mark-compact), and the
 *    tier's own collections with their mean pause.
 * Each part runs in a process of its own (EDGE_PART=sampler|tier runs one): freed sampler
 * buffers stay in the allocator's free lists, so a part run after the other would reuse them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { pino } from 'pino';
import { buildConfig } from '../src/config/index.js';
import { loadModelFamily } from '../src/family/manifest.js';
import { MetricsService } from '../src/observability/metrics.js';
import { llamaRuntime } from '../src/text/llama-runtime.js';
import { LlamaTokenizer } from '../src/text/llama-tokenizer.js';
import { LlamaCppTier } from '../src/tiers/llamacpp/llamacpp-tier.js';

const REQUESTS = Number(process.env.EDGE_REQUESTS ?? 4000);
const SAMPLERS = Number(process.env.EDGE_SAMPLERS ?? 10_000);
const RECLAIM_MIB = Number(process.env.EDGE_RECLAIM_MIB ?? 16);
const FAMILY_DIR = join(process.cwd(), 'models/tiny');
const MB = 1024 * 1024;

type SamplerClass = new (model: unknown) => { dispose(): void };
interface Internals {
  _bindings: { AddonSampler: SamplerClass };
}

const PART = process.env.EDGE_PART;
if (PART === undefined) {
  for (const part of ['sampler', 'tier']) {
    const script = fileURLToPath(import.meta.url);
    const env = { ...process.env, EDGE_PART: part };
    spawnSync(process.execPath, [...process.execArgv, script], { env, stdio: 'inherit' });
  }
  process.exit(0);
}

const llama = await llamaRuntime();
const bindings = (llama as unknown as Internals)._bindings;

// 1. One sampler's native memory, disposed but not collected.
if (PART === 'sampler') {
  const model = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-q4_k_m.gguf') });
  const native = (model as unknown as { _model: unknown })._model;
  const before = process.memoryUsage().rss;
  for (let i = 0; i < SAMPLERS; i++) new bindings.AddonSampler(native).dispose();
  const per = (process.memoryUsage().rss - before) / SAMPLERS;
  console.log(
    `sampler alone: ${SAMPLERS} created and disposed, RSS +${per.toFixed(0)} bytes each until a GC`,
  );
  await model.dispose();
  process.exit(0);
}

// 2. The tier: count samplers through a subclass of the binding the tier's evaluations construct.
let created = 0;
let finalized = 0;
const registry = new FinalizationRegistry(() => void finalized++);
const Original = bindings.AddonSampler;
bindings.AddonSampler = class extends Original {
  constructor(model: unknown) {
    super(model);
    created++;
    registry.register(this, 0);
  }
};
const collections = { minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) collections.minor++;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) collections.major++;
  }
}).observe({ entryTypes: ['gc'] });

const tokenizer = await LlamaTokenizer.load(join(FAMILY_DIR, 'tiny-q4_k_m.gguf'));
const config = buildConfig(
  {
    tiers: {
      edge: {
        kind: 'llamacpp',
        model: 'tiny-q4_k_m.gguf',
        sequences: 4,
        threads: 1,
        reclaimEveryMiB: RECLAIM_MIB,
      },
    },
    models: { m: { tier: 'edge' } },
  },
  { env: {} },
);
const options = config.tiers.edge;
if (options?.kind !== 'llamacpp') throw new Error('edge tier config');
const metrics = new MetricsService({ defaultMetrics: false });
const tier = new LlamaCppTier('edge', options, {
  logger: pino({ level: 'silent' }),
  metrics,
  family: loadModelFamily(FAMILY_DIR),
  tokenizer,
});
await tier.start();
const prompt = tokenizer.tokenize('The jury said');
const one = async (): Promise<void> => {
  const request = {
    tokens: prompt,
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens: 8,
    stopTokens: [],
    topLogprobs: 0,
  };
  for await (const event of tier.generate(request, new AbortController().signal)) void event;
};
const pause = async (): Promise<string> => {
  const text = await metrics.registry.getSingleMetricAsString('tiergate_tier_native_reclaim_seconds');
  const read = (suffix: string): number =>
    Number(/\s(\S+)$/.exec(text.split('\n').find((l) => l.includes(`${suffix}{`)) ?? '')?.[1] ?? 0);
  const count = read('_count');
  return count > 0 ? `${((read('_sum') / count) * 1000).toFixed(1)} ms` : '-';
};
const line = async (done: number): Promise<void> => {
  const m = process.memoryUsage();
  const s = tier.nativeState();
  console.log(
    `${String(done).padStart(6)} requests  RSS ${(m.rss / MB).toFixed(1)} MB  heap ${(m.heapUsed / MB).toFixed(1)}/${(m.heapTotal / MB).toFixed(1)} MB  ` +
      `samplers created ${created} finalized ${finalized}  V8 GCs minor ${collections.minor} major ${collections.major}  ` +
      `tier collections ${s.reclaims} (mean pause ${await pause()})`,
  );
};
console.log(`edge tier, reclaimEveryMiB ${RECLAIM_MIB}, ${REQUESTS} requests, 4 at a time`);
await line(0);
for (let done = 0; done < REQUESTS;) {
  await Promise.all([one(), one(), one(), one()]);
  done += 4;
  if (done % 1000 === 0) await line(done);
}
await tier.close();
await tokenizer.close();
