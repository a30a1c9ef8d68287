/**
 * npm run bench:routing (second part) — a mixed-budget load over real tiers: 70% of requests
 * with a tight latency budget, 30% with a high accuracy floor, sent through the policy engine and,
 * in the same run, pinned to each single tier (x-tiergate-tier) as baselines. Prints the share of
 * requests that met both their budgets (measured end-to-end latency at the client, accuracy of the
 * tier that served them) for each.
 *
 * The tight budget is calibrated in the run: halfway between the edge tier's and the main tier's
 * median latency measured during warm-up, so it means the same thing on any machine.
 *
 * Options (env): BENCH_MIXED_REQUESTS (60), BENCH_MIXED_TOKENS (32), BENCH_MIXED_CONCURRENCY (2).
 */
import { buildConfig } from '../src/config/index.js';
import { loadModelFamily } from '../src/family/manifest.js';
import { createLogger } from '../src/observability/logger.js';
import { relativeAccuracy } from '../src/routing/accuracy.js';
import { startServer } from '../src/server.js';

const REQUESTS = Number(process.env.BENCH_MIXED_REQUESTS ?? 60);
const TOKENS = Number(process.env.BENCH_MIXED_TOKENS ?? 32);
const CONCURRENCY = Number(process.env.BENCH_MIXED_CONCURRENCY ?? 2);
const ROOT = new URL('../', import.meta.url).pathname;
const MODEL = 'tiergate-tiny';

const family = loadModelFamily(`${ROOT}models/tiny`);
const accuracy: Record<string, number> = {
  edge: relativeAccuracy(family, 'gguf-q4_k_m') ?? 0,
  main: relativeAccuracy(family, 'onnx-fp32') ?? 0,
};
// Between the two tiers: only the FP32 tier meets it.
const HIGH_FLOOR = (accuracy.edge! + accuracy.main!) / 2;

const config = buildConfig(
  {
    server: { port: 0 },
    logging: { level: 'silent' },
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'gguf-q4_k_m', threads: 1, sequences: 4 },
      main: { kind: 'onnx', model: 'onnx-fp32', maxBatchSize: 8 },
    },
    models: { [MODEL]: { tier: 'edge' } },
    routing: {
      minSamples: 8,
      policies: {
        mixed: {
          tiers: ['edge', 'main'],
          objective: 'cheapest',
          costPer1kTokens: { edge: 1, main: 4 },
          onInfeasible: 'best_effort',
        },
      },
      byModel: { [MODEL]: 'mixed' },
    },
  },
  { baseDir: ROOT, env: {} },
);

interface Outcome {
  readonly ms: number;
  readonly tier: string;
}

async function send(url: string, headers: Record<string, string>, i: number): Promise<Outcome> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, prompt: `The jury said ${i}`, max_tokens: TOKENS, temperature: 0 }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return { ms: performance.now() - t0, tier: res.headers.get('x-tiergate-tier') ?? '?' };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const server = await startServer(config, createLogger('silent'));
try {
  // Warm-up at the load's own concurrency, so the calibration (and the latency models, which
  // learn from these requests) see the same contention as the measured run.
  const warm: Record<string, number[]> = { edge: [], main: [] };
  for (const tier of ['edge', 'main']) {
    for (let i = 0; i < 16; i += CONCURRENCY) {
      const batch = Array.from({ length: CONCURRENCY }, (_, k) =>
        send(server.url, { 'x-tiergate-tier': tier }, i + k),
      );
      for (const o of await Promise.all(batch)) warm[tier]!.push(o.ms);
    }
  }
  const tight = Math.round((median(warm.edge!) + median(warm.main!)) / 2);
  // The request mix, fixed for every variant: 70% tight latency, 30% high accuracy.
  const mix = Array.from({ length: REQUESTS }, (_, i) =>
    i % 10 < 7 ? { latency: tight, floor: 0 } : { latency: 30_000, floor: HIGH_FLOOR },
  );
  const variants: [string, (b: { latency: number; floor: number }) => Record<string, string>][] = [
    [
      'policy engine',
      (b) => ({
        'x-tiergate-latency-budget-ms': String(b.latency),
        'x-tiergate-accuracy-floor': String(b.floor),
      }),
    ],
    ['edge only (x-tiergate-tier)', () => ({ 'x-tiergate-tier': 'edge' })],
    ['main only (x-tiergate-tier)', () => ({ 'x-tiergate-tier': 'main' })],
  ];
  process.stdout.write(
    `mixed-budget load: ${REQUESTS} requests x ${TOKENS} tokens, concurrency ${CONCURRENCY}; ` +
      `70% latency budget ${tight} ms (calibrated: edge median ${median(warm.edge!).toFixed(1)} ms, main ${median(warm.main!).toFixed(1)} ms), ` +
      `30% accuracy floor ${HIGH_FLOOR.toFixed(5)} (edge ${accuracy.edge!.toFixed(5)}, main ${accuracy.main!.toFixed(5)})\n`,
  );
  for (const [name, headers] of variants) {
    let next = 0;
    let met = 0;
    const tiers: Record<string, number> = {};
    const worker = async (): Promise<void> => {
      while (next < mix.length) {
        const i = next++;
        const b = mix[i]!;
        const o = await send(server.url, headers(b), i);
        tiers[o.tier] = (tiers[o.tier] ?? 0) + 1;
        if (o.ms <= b.latency && (accuracy[o.tier] ?? 0) >= b.floor) met++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const share = Object.entries(tiers)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ');
    process.stdout.write(
      `${name.padEnd(30)} met both budgets: ${((met / REQUESTS) * 100).toFixed(1)}%  (tiers: ${share})\n`,
    );
  }
} finally {
  await server.shutdown();
}
