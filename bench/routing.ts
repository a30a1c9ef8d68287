/**
 * npm run bench:routing — the policy engine's own cost: microseconds per routing decision at
 * three tiers, for the pure engine alone and for a whole Router.plan() (policy selection, profile
 * snapshot with live latency models, tier states), on one core of whatever this machine is doing.
 *
 * Options (env): BENCH_DECISIONS (200000), BENCH_ROUNDS (5; the median round is printed).
 */
import { buildConfig } from '../src/config/index.js';
import { loadModelFamily } from '../src/family/manifest.js';
import { planRoute, type EngineInput } from '../src/routing/engine.js';
import { Router } from '../src/routing/router.js';
import type { Tier } from '../src/tiers/tier.js';

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROOT = new URL('../', import.meta.url).pathname;

const config = buildConfig(
  {
    family: { dir: 'models/tiny' },
    tokenizer: { kind: 'bytes' },
    tiers: { edge: { kind: 'echo' }, main: { kind: 'echo' }, fallback: { kind: 'echo' } },
    models: { m: { tier: 'edge' } },
    routing: {
      policies: {
        p: {
          tiers: ['edge', 'main', 'fallback'],
          objective: 'cheapest',
          latencyBudgetMs: 500,
          accuracyFloor: 0.99,
          costPer1kTokens: { edge: 1, main: 2, fallback: 3 },
        },
      },
      defaultPolicy: 'p',
      profiles: { edge: { accuracy: 0.98 }, main: { accuracy: 1 }, fallback: { accuracy: 1 } },
    },
  },
  { baseDir: ROOT, env: {} },
);

/** Stand-in tiers that only answer info() and health(): the router never generates. */
function fakeTier(name: string): Tier {
  const info = {
    name,
    framework: 'llama.cpp',
    modelId: 'bench',
    variant: 'bench',
    precision: 'f32',
    contextLength: 512,
    vocabSize: 256,
  } as const;
  return {
    name,
    start: async () => undefined,
    generate: () => {
      throw new Error('not used');
    },
    score: async () => new Float64Array(),
    info: () => info,
    health: () => ({ ready: true }),
    close: async () => undefined,
  };
}

const tiers = new Map(['edge', 'main', 'fallback'].map((n) => [n, fakeTier(n)]));
const router = new Router(() => config, loadModelFamily(config.family.dir), tiers);
// Fill the latency models' windows so estimates are live (the cache is cleared by each observe).
for (let i = 0; i < 256; i++)
  for (const t of tiers.keys())
    router.observe(t, { promptTokens: i, ttftMs: 5 + i * 0.1, perTokenMs: 1 + (i % 7) });

const input: EngineInput = {
  features: { promptTokens: 100, maxTokens: 64 },
  policy: { name: 'p', ...config.routing.policies.p! },
  budget: { latencyMs: 500, accuracyFloor: 0.99 },
  profiles: router.snapshot(),
  state: router.states(),
};

function time(label: string, fn: (i: number) => unknown): void {
  const perRound: number[] = [];
  let sink = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < DECISIONS; i++) sink += fn(i) === undefined ? 0 : 1;
    perRound.push(Number(process.hrtime.bigint() - t0) / 1000 / DECISIONS);
  }
  perRound.sort((a, b) => a - b);
  const median = perRound[Math.floor(ROUNDS / 2)]!;
  process.stdout.write(
    `${label.padEnd(52)} ${median.toFixed(2)} us/decision (median of ${ROUNDS} x ${DECISIONS}; ${sink > 0 ? 'ok' : ''})\n`,
  );
}

process.stdout.write(`routing decision cost, 3 tiers, node ${process.version}\n`);
time('engine: planRoute (pure)', (i) =>
  planRoute({ ...input, features: { promptTokens: i % 400, maxTokens: 64 } }),
);
time('router: Router.plan (selection + snapshot + engine)', (i) =>
  router.plan({
    model: 'm',
    modelTier: 'edge',
    options: {},
    features: { promptTokens: i % 400, maxTokens: 64 },
  }),
);
