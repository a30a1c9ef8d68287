/**
 * npm run bench:slo — mixed service levels near the machine's capacity (docs/routing.md
 * "Mixed service levels"), the mixed-budget bench (bench/routing-mixed.ts) grown to three request
 * classes on a family big enough for the tiers to differ (`small` by default):
 *   interactive  short answers with a tight latency budget, no accuracy floor;
 *   accuracy     a floor only the FP32 tiers meet (between Q4_K_M's and FP32's measured accuracy),
 *                a generous latency budget;
 *   bulk         long answers, the cheapest tier that fits a loose budget.
 * The same open-loop arrival sequence (Poisson, seeded) is sent through the policy engine and, in
 * the same run, pinned to each single tier (x-tiergate-tier) as baselines. Per variant it prints
 * the share of requests that met both their budgets (client-side end-to-end latency, accuracy of
 * the tier that served them) and the goodput: completion tokens per second of the requests that met
 * them.
 *
 * Budgets and the rate are calibrated in the run from unloaded single-request latencies (median
 * of 7 after a warm-up) and each tier's throughput alone (the faster of two rounds), so they
 * mean the same on any machine: a class's budget is BENCH_SLO_TIGHT (interactive) or twice that
 * (accuracy, bulk) × the best unloaded median latency among the tiers that meet its floor; rate = BENCH_SLO_LOAD × the requests per second the fastest tier completes the mix alone
 * at concurrency 8. All tiers run in this gateway process and its workers on the same cores.
 *
 * Options (env): BENCH_SLO_FAMILY (small), BENCH_SLO_SECONDS (40), BENCH_SLO_WARMUP (10: seconds of
 * the same traffic each variant serves first, reported apart), BENCH_SLO_LOAD (1.0),
 * BENCH_SLO_TIGHT (4), BENCH_SLO_SEED (1), BENCH_SLO_TIERS (edge,main,fallback),
 * BENCH_SLO_VARIANTS (all: routed,edge,main,fallback), BENCH_SLO_MAIN_SPEEDUP (4.3: the main tier's
 * batchSpeedup, as config/small.yaml; 0 leaves it unset), BENCH_SLO_QUANTILE (0.95: the latency
 * models' quantile, routing.quantile), BENCH_SLO_BULK_EDGE_MAX_LOAD (1: bulk requests use a policy of
 * their own that plans the edge tier only while its load is below this — 1: only while edge is
 * idle; 0 = no limit),
 * BENCH_SLO_RATE (requests/s instead of the calibrated rate) and BENCH_SLO_BUDGETS (ms per class,
 * "interactive,accuracy,bulk", instead of the calibrated budgets): to compare router builds;
 * BENCH_SLO_BUSY_PRIOR (0.5: routing.busyTierSlowdown, as config/small.yaml; 0: none),
 * BENCH_SLO_SPECULATE ("draft>verify", e.g. "edge>main": the interactive/accuracy policy speculates
 * with that pair when the engine predicts it faster, `when: faster`, lookahead on; unset: never);
 * BENCH_SLO_DUMP (a file: one JSON line per request of every variant, to study the misses).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { buildConfig } from '../src/config/index.js';
import { loadModelFamily } from '../src/family/manifest.js';
import { createLogger } from '../src/observability/logger.js';
import { relativeAccuracy } from '../src/routing/accuracy.js';
import { createRng } from '../src/text/sampling.js';
import { startServer } from '../src/server.js';
import { median } from './lib/median.js';

const FAMILY = process.env.BENCH_SLO_FAMILY ?? 'small';
const SECONDS = Number(process.env.BENCH_SLO_SECONDS ?? 40);
// Seconds of the same mixed traffic each variant serves before the measured SECONDS: the router's
// latency models start from calibration runs of one tier at a time, so they have never seen the
// tiers slow each other down; a gateway in service has. Counted apart, and printed.
const WARMUP = Number(process.env.BENCH_SLO_WARMUP ?? 10);
const LOAD = Number(process.env.BENCH_SLO_LOAD ?? 1.0);
const TIGHT = Number(process.env.BENCH_SLO_TIGHT ?? 4);
const SEED = Number(process.env.BENCH_SLO_SEED ?? 1);
const TIERS = (process.env.BENCH_SLO_TIERS ?? 'edge,main,fallback').split(',');
const MAIN_SPEEDUP = Number(process.env.BENCH_SLO_MAIN_SPEEDUP ?? 4.3);
// Budgets must hold for 95% of requests, so the latency models predict their p95 (the gateway's
// default is p90).
const QUANTILE = Number(process.env.BENCH_SLO_QUANTILE ?? 0.95);
// Bulk requests use their own policy, which keeps the edge tier's last streams for the latency-bound
// classes: it plans edge only while edge's load is below this (0: no limit, one policy for all).
const BULK_EDGE_MAX_LOAD = Number(process.env.BENCH_SLO_BULK_EDGE_MAX_LOAD ?? 1);
// routing.busyTierSlowdown, as config/small.yaml: the slowdown per other busy tier predicted until
// one is measured (the tiers are calibrated one at a time, so none is at the start).
const BUSY_PRIOR = Number(process.env.BENCH_SLO_BUSY_PRIOR ?? 0.5);
// To compare two builds of the router on the same load: a fixed rate and fixed budgets instead
// of calibrated ones (calibration on a shared machine moves them by a quarter between runs).
const FIXED_RATE = Number(process.env.BENCH_SLO_RATE ?? 0);
const FIXED_BUDGETS = process.env.BENCH_SLO_BUDGETS?.split(',').map(Number);
const SPECULATE = process.env.BENCH_SLO_SPECULATE?.split('>');
const DUMP = process.env.BENCH_SLO_DUMP;
const ROOT = new URL('../', import.meta.url).pathname;
const MODEL = `tiergate-${FAMILY}`;

const VARIANT: Record<string, string> = { edge: 'gguf-q4_k_m', main: 'onnx-fp32', fallback: 'pytorch-fp32' };
const TIER_CONFIG: Record<string, Record<string, unknown>> = {
  edge: { kind: 'llamacpp', model: VARIANT.edge, threads: 1, sequences: 8 },
  main: {
    kind: 'onnx',
    model: VARIANT.main,
    workers: 1,
    maxBatchSize: 16,
    // As config/small.yaml: 16 streams worth ~4.3 single ones (bench/tiers/onnx-batching.ts). 0
    // leaves it unset (every stream planned at full speed) to compare.
    ...(MAIN_SPEEDUP > 0 ? { batchSpeedup: MAIN_SPEEDUP } : {}),
  },
  fallback: { kind: 'remote', spawn: true, model: VARIANT.fallback, threads: 1, maxConcurrent: 4 },
};
const COST: Record<string, number> = { edge: 1, main: 4, fallback: 8 };

const family = loadModelFamily(`${ROOT}models/${FAMILY}`);
const accuracy = Object.fromEntries(TIERS.map((t) => [t, relativeAccuracy(family, VARIANT[t]!) ?? 0]));
const FP32_FLOOR =
  ((relativeAccuracy(family, 'gguf-q4_k_m') ?? 0) + (relativeAccuracy(family, 'onnx-fp32') ?? 1)) / 2;

interface RequestClass {
  readonly name: 'interactive' | 'accuracy' | 'bulk';
  readonly share: number;
  readonly tokens: number;
  readonly floor: number;
  /** Latency budget, set by calibration. */
  budgetMs: number;
}
const CLASSES: RequestClass[] = [
  { name: 'interactive', share: 0.4, tokens: 16, floor: 0, budgetMs: 0 },
  { name: 'accuracy', share: 0.3, tokens: 32, floor: FP32_FLOOR, budgetMs: 0 },
  { name: 'bulk', share: 0.3, tokens: 128, floor: 0, budgetMs: 0 },
];

const config = buildConfig(
  {
    server: { port: 0 },
    logging: { level: 'silent' },
    family: { dir: `models/${FAMILY}` },
    tiers: Object.fromEntries(TIERS.map((t) => [t, TIER_CONFIG[t]])),
    models: { [MODEL]: { tier: TIERS[0] } },
    routing: {
      minSamples: 8,
      quantile: QUANTILE,
      busyTierSlowdown: BUSY_PRIOR,
      policies: {
        slo: {
          tiers: TIERS,
          objective: 'cheapest',
          costPer1kTokens: Object.fromEntries(TIERS.map((t) => [t, COST[t]])),
          onInfeasible: 'best_effort',
          ...(SPECULATE === undefined
            ? {}
            : {
                speculative: { draft: SPECULATE[0], verify: SPECULATE[1], when: 'faster', lookahead: true },
              }),
        },
        bulk: {
          tiers: TIERS,
          objective: 'cheapest',
          costPer1kTokens: Object.fromEntries(TIERS.map((t) => [t, COST[t]])),
          onInfeasible: 'best_effort',
          maxLoad: BULK_EDGE_MAX_LOAD > 0 && TIERS.includes('edge') ? { edge: BULK_EDGE_MAX_LOAD } : {},
        },
      },
      byModel: { [MODEL]: 'slo' },
    },
    resilience: { requestTimeoutMs: 120_000 },
  },
  { baseDir: ROOT, env: {} },
);

/**
 * The accuracy of an answer from its x-tiergate-served-by header: a speculative pair's ("edge>main")
 * is its verifier's, which decided every token; an answer continued on another tier after a failure
 * ("main, edge") is only as accurate as its least accurate part.
 */
function answerAccuracy(servedBy: string): number {
  return Math.min(...servedBy.split(', ').map((part) => accuracy[part.split('>').at(-1)!] ?? 0));
}

interface Outcome {
  readonly ms: number;
  readonly tier: string;
  readonly tokens: number;
  readonly ok: boolean;
  /** The engine's predicted latency (from the route reason), when it routed the request. */
  readonly predictedMs: number | undefined;
  /** The route reason header, for BENCH_SLO_DUMP. */
  readonly reason: string;
}

async function send(
  url: string,
  headers: Record<string, string>,
  c: RequestClass,
  i: number,
): Promise<Outcome> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: MODEL,
      prompt: `Request ${i} of the mixed load: once upon a time`,
      max_tokens: c.tokens,
      temperature: 0,
    }),
  });
  const body = (await res.json()) as { usage?: { completion_tokens?: number } };
  const reason = res.headers.get('x-tiergate-route-reason') ?? '';
  const predicted = /latency ([\d.]+)ms/.exec(reason);
  return {
    reason,
    predictedMs: predicted === null ? undefined : Number(predicted[1]),
    ms: performance.now() - t0,
    tier: res.headers.get('x-tiergate-served-by') ?? res.headers.get('x-tiergate-tier') ?? '?',
    tokens: body.usage?.completion_tokens ?? 0,
    ok: res.status === 200,
  };
}

/** What the engine learned: each tier's latency model as /v1/route/explain reports it. */
async function learned(url: string): Promise<string> {
  const explained = (await (
    await fetch(`${url}/v1/route/explain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'once upon a time', max_tokens: 16 }),
    })
  ).json()) as {
    profiles?: Record<
      string,
      {
        ttftMs: number;
        ttftPerPromptTokenMs: number;
        perOutputTokenMs: number;
        perOutputTokenPerStreamMs?: number;
        perOutputTokenPerBusyTierMs?: number;
      }
    >;
  };
  return TIERS.map((t) => {
    const p = explained.profiles?.[t];
    return p === undefined
      ? `${t} ?`
      : `${t} ttft ${p.ttftMs.toFixed(1)} + ${p.ttftPerPromptTokenMs.toFixed(2)}/prompt token, per token ` +
          `${p.perOutputTokenMs.toFixed(2)} + ${(p.perOutputTokenPerStreamMs ?? 0).toFixed(2)}/stream + ` +
          `${(p.perOutputTokenPerBusyTierMs ?? 0).toFixed(2)}/busy tier ms`;
  }).join('; ');
}

if (DUMP !== undefined) writeFileSync(DUMP, '');
const server = await startServer(config, createLogger('silent'));
try {
  process.stdout.write(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  // Unloaded latency per tier and class (after a warm-up), and each tier's throughput alone.
  const unloaded: Record<string, Record<string, number>> = {};
  const alone: Record<string, number> = {};
  for (const tier of TIERS) {
    unloaded[tier] = {};
    const pin = { 'x-tiergate-tier': tier };
    for (const c of CLASSES) {
      const ms: number[] = [];
      for (let i = 0; i < 8; i++) ms.push((await send(server.url, pin, c, i)).ms);
      unloaded[tier]![c.name] = median(ms.slice(1));
    }
    // Twice, keeping the faster: the machine's other work only ever slows a round, and a low
    // estimate would offer a load the single tiers carry easily.
    const mix = Array.from({ length: 36 }, (_, i) => CLASSES[i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : 2]!);
    alone[tier] = 0;
    for (let round = 0; round < 2; round++) {
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < mix.length) {
            const i = next++;
            await send(server.url, pin, mix[i]!, i);
          }
        }),
      );
      alone[tier] = Math.max(alone[tier]!, mix.length / ((performance.now() - t0) / 1000));
    }
  }
  // Each class's budget: a multiple of the best unloaded latency among the tiers that meet its floor.
  const bestFor = (c: RequestClass): number =>
    Math.min(...TIERS.filter((t) => accuracy[t]! >= c.floor).map((t) => unloaded[t]![c.name]!));
  for (const c of CLASSES)
    c.budgetMs =
      FIXED_BUDGETS?.[CLASSES.indexOf(c)] ??
      Math.round((c.name === 'interactive' ? TIGHT : 2 * TIGHT) * bestFor(c));
  const best = Math.max(...Object.values(alone));
  const rate = FIXED_RATE > 0 ? FIXED_RATE : LOAD * best;
  for (const tier of TIERS) {
    process.stdout.write(
      `${tier.padEnd(9)} accuracy ${accuracy[tier]!.toFixed(5)}; unloaded ms: ` +
        CLASSES.map((c) => `${c.name} ${unloaded[tier]![c.name]!.toFixed(0)}`).join(', ') +
        `; alone at concurrency 8: ${alone[tier]!.toFixed(2)} req/s\n`,
    );
  }
  process.stdout.write(
    `classes: ${CLASSES.map((c) => `${c.name} ${c.share * 100}% (${c.tokens} tokens, budget ${c.budgetMs} ms, floor ${c.floor.toFixed(5)})`).join('; ')}\n` +
      `offered: ${rate.toFixed(2)} req/s for ${WARMUP} s of warm-up + ${SECONDS} s measured (${FIXED_RATE > 0 ? 'fixed' : `${LOAD} x the fastest tier alone`}), Poisson, seed ${SEED}; ` +
      `main batchSpeedup ${MAIN_SPEEDUP > 0 ? MAIN_SPEEDUP : 'unset'}; latency quantile ${QUANTILE}; ` +
      `bulk policy maxLoad ${BULK_EDGE_MAX_LOAD > 0 ? `edge ${BULK_EDGE_MAX_LOAD}` : 'none'}; ` +
      `busy-tier prior ${BUSY_PRIOR}; speculation ${SPECULATE === undefined ? 'none' : `${SPECULATE.join('>')} when faster`}\n\n`,
  );

  // One arrival sequence for every variant.
  const rng = createRng(SEED);
  const arrivals: { at: number; c: RequestClass }[] = [];
  for (let t = 0; ;) {
    t += (-Math.log(1 - rng.next()) / rate) * 1000;
    if (t > (WARMUP + SECONDS) * 1000) break;
    const u = rng.next();
    const c =
      u < CLASSES[0]!.share
        ? CLASSES[0]!
        : u < CLASSES[0]!.share + CLASSES[1]!.share
          ? CLASSES[1]!
          : CLASSES[2]!;
    arrivals.push({ at: t, c });
  }

  const allVariants: [string, (c: RequestClass) => Record<string, string>][] = [
    [
      'routed (policy engine)',
      (c) => ({
        'x-tiergate-policy': c.name === 'bulk' ? 'bulk' : 'slo',
        'x-tiergate-latency-budget-ms': String(c.budgetMs),
        'x-tiergate-accuracy-floor': String(c.floor),
      }),
    ],
    ...TIERS.map((t): [string, () => Record<string, string>] => [
      `${t} only`,
      () => ({ 'x-tiergate-tier': t }),
    ]),
  ];
  // BENCH_SLO_VARIANTS=routed,main runs a subset (the first word of a variant's name).
  const only = process.env.BENCH_SLO_VARIANTS?.split(',');
  const variants = allVariants.filter(([name]) => only === undefined || only.includes(name.split(' ')[0]!));
  const goodputs: Record<string, number> = {};
  for (const [name, headers] of variants) {
    const t0 = performance.now();
    const pending: Promise<Outcome & { c: RequestClass }>[] = [];
    for (const [i, a] of arrivals.entries()) {
      const wait = t0 + a.at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(send(server.url, headers(a.c), a.c, i).then((o) => ({ ...o, c: a.c })));
    }
    const all = await Promise.all(pending);
    const took = (performance.now() - t0) / 1000 - WARMUP;
    const metBudgets = (o: Outcome & { c: RequestClass }): boolean =>
      o.ok && o.ms <= o.c.budgetMs && answerAccuracy(o.tier) >= o.c.floor;
    const measured = arrivals.findIndex((a) => a.at >= WARMUP * 1000);
    const first = measured === -1 ? arrivals.length : measured;
    const warm = all.slice(0, first);
    const outcomes = all.slice(first);
    const met = outcomes.filter(metBudgets);
    const goodput = met.reduce((s, o) => s + o.tokens, 0) / took;
    if (DUMP !== undefined)
      for (const [i, o] of all.entries())
        appendFileSync(
          DUMP,
          JSON.stringify({
            variant: name,
            i,
            atMs: Math.round(arrivals[i]!.at),
            class: o.c.name,
            budgetMs: o.c.budgetMs,
            tier: o.tier,
            ms: Math.round(o.ms),
            predictedMs: o.predictedMs,
            met: metBudgets(o),
            warmup: i < first,
            tokens: o.tokens,
            reason: o.reason,
          }) + '\n',
        );
    goodputs[name] = goodput;
    const served = Object.entries(
      outcomes.reduce<Record<string, number>>((m, o) => ({ ...m, [o.tier]: (m[o.tier] ?? 0) + 1 }), {}),
    )
      .map(([t, n]) => `${t} ${n}`)
      .join(', ');
    const perClass = CLASSES.map((c) => {
      const of = outcomes.filter((o) => o.c === c);
      return `${c.name} ${met.filter((o) => o.c === c).length}/${of.length}`;
    }).join(', ');
    // Where each class went and how it fared there: what the router did, not only how it scored.
    const byTier = CLASSES.map((c) => {
      const cells = new Map<string, [number, number]>();
      for (const o of outcomes.filter((x) => x.c === c)) {
        const cell = cells.get(o.tier) ?? [0, 0];
        cell[1]++;
        if (met.includes(o)) cell[0]++;
        cells.set(o.tier, cell);
      }
      return `${c.name}: ${[...cells].map(([t, [m, n]]) => `${t} ${m}/${n}`).join(', ')}`;
    }).join('; ');
    // How well the engine's predictions held, per tier it routed to: the share of requests that
    // took no longer than predicted (its quantile, p90 by default, is the aim) and the median ratio.
    const predictedOn = new Map<string, number[]>();
    for (const o of outcomes) {
      if (o.predictedMs === undefined || o.predictedMs <= 0) continue;
      const list = predictedOn.get(o.tier) ?? [];
      list.push(o.ms / o.predictedMs);
      predictedOn.set(o.tier, list);
    }
    // Misses the engine saw coming (no tier predicted within budget: capacity) against misses it
    // did not (predicted within, took longer: the latency model).
    const planned = outcomes.filter((o) => o.predictedMs !== undefined);
    const within = planned.filter((o) => o.predictedMs! <= o.c.budgetMs);
    const over = planned.filter((o) => o.predictedMs! > o.c.budgetMs);
    const metOf = (list: typeof outcomes): number => list.filter((o) => met.includes(o)).length;
    const foresight =
      planned.length === 0
        ? ''
        : `planned within budget ${within.length} (met ${metOf(within)}), over budget ${over.length} (met ${metOf(over)})`;
    const predictions = [...predictedOn]
      .map(
        ([t, r]) =>
          `${t} ${((r.filter((x) => x <= 1).length / r.length) * 100).toFixed(0)}% within, median ${median(r).toFixed(2)}x`,
      )
      .join('; ');
    process.stdout.write(
      `${name.padEnd(24)} met both budgets ${((met.length / outcomes.length) * 100).toFixed(2)}% = ${met.length}/${outcomes.length} (${perClass}); ` +
        `goodput ${goodput.toFixed(1)} tokens/s; p50 ${median(outcomes.map((o) => o.ms)).toFixed(0)} ms; ` +
        `errors ${outcomes.filter((o) => !o.ok).length}; served: ${served}; ${took.toFixed(1)} s\n` +
        `${''.padEnd(24)} met/served by tier: ${byTier}\n` +
        (predictions === '' ? '' : `${''.padEnd(24)} actual / predicted latency: ${predictions}\n`) +
        (foresight === '' ? '' : `${''.padEnd(24)} ${foresight}\n`) +
        (warm.length === 0
          ? ''
          : `${''.padEnd(24)} warm-up (first ${WARMUP} s, not counted above): met both budgets ${warm.filter(metBudgets).length}/${warm.length}\n`),
    );
    // What the latency models learned from the routed run (each tier's p-quantile terms).
    if (name.startsWith('routed'))
      process.stdout.write(`${''.padEnd(24)} learned: ${await learned(server.url)}\n`);
  }
  const singles = TIERS.filter((t) => goodputs[`${t} only`] !== undefined);
  const routed = goodputs['routed (policy engine)'];
  if (routed !== undefined && singles.length > 0) {
    const best = singles.reduce((a, b) => (goodputs[`${b} only`]! > goodputs[`${a} only`]! ? b : a));
    process.stdout.write(
      `\nrouted goodput / best single tier's (${best}): ${(routed / goodputs[`${best} only`]!).toFixed(2)}x\n`,
    );
  }
  process.stdout.write(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
} finally {
  await server.shutdown();
}
