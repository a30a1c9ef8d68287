// Issue 20's frozen ONNX worker, through the real gateway: the main tier's worker is frozen for
// 10 s under a steady load with edge (llama.cpp) and fallback (PyTorch sidecar) healthy. The
// worker's liveness (src/tiers/worker-host/) takes main out of service within about a second,
// the requests it held continue on another tier, new ones are routed elsewhere, the worker is
// replaced and main serves again, all while the freeze still lasts: no request fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OnnxTier } from '../../src/tiers/onnx/onnx-tier.js';
import { metricValue, startGateway, type TestGateway } from '../helpers/start-gateway.js';

const FREEZE_MS = 10_000;
const LOAD_MS = FREEZE_MS + 4_000;
const CLIENTS = 3;

let gw: TestGateway;
before(async () => {
  gw = await startGateway({
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 4 },
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, maxBatchSize: 8 },
      fallback: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: 1, maxConcurrent: 2 },
    },
    models: { 'tiergate-tiny': { tier: 'main' }, 'tiergate-tiny-main': { tier: 'main' } },
    routing: {
      byModel: { 'tiergate-tiny': 'mainfirst' },
      policies: {
        // main is the cheapest tier, so it takes the load while it is ready.
        mainfirst: {
          tiers: ['main', 'edge', 'fallback'],
          objective: 'cheapest',
          latencyBudgetMs: 5_000,
          accuracyFloor: 0,
          fallback: ['edge', 'fallback'],
          costPer1kTokens: { main: 0.1, edge: 0.4, fallback: 1.0 },
          onInfeasible: 'best_effort',
        },
      },
    },
    resilience: { requestTimeoutMs: 20_000 },
  });
});
after(async () => {
  await gw.shutdown();
});

interface Outcome {
  readonly status: number;
  readonly tier: string | null;
  readonly servedBy: string | null;
  readonly startedAt: number;
}

async function one(): Promise<Outcome> {
  const startedAt = Date.now();
  const res = await fetch(`${gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiergate-tiny', prompt: 'The jury said', max_tokens: 24, temperature: 0 }),
  });
  await res.arrayBuffer();
  return {
    status: res.status,
    tier: res.headers.get('x-tiergate-tier'),
    servedBy: res.headers.get('x-tiergate-served-by'),
    startedAt,
  };
}

/** How long after its client starts it a request may be routed, on a loaded machine. */
const ROUTING_MARGIN_MS = 250;

test('a main worker frozen for 10 s under load: 0 failed requests, main out of service within ~1 s, replaced, serving again', async () => {
  const main = gw.gateway.tiers.get('main') as OnnxTier;
  assert.equal(main.health().ready, true);
  const before = main.workerStatus().threadId;

  const start = Date.now();
  const outcomes: Outcome[] = [];
  const load = Array.from({ length: CLIENTS }, async () => {
    while (Date.now() - start < LOAD_MS) outcomes.push(await one());
  });

  // Readiness as the router sees it, sampled every 10 ms.
  const transitions: { at: number; ready: boolean }[] = [];
  /** Each time a look found main out of service: the last one before it came back bounds when it did. */
  const outSeen: number[] = [];
  let last = true;
  const sampler = setInterval(() => {
    const ready = main.health().ready;
    if (!ready) outSeen.push(Date.now());
    if (ready !== last) transitions.push({ at: Date.now(), ready });
    last = ready;
  }, 10);

  await new Promise((r) => setTimeout(r, 2_000));
  const frozenAt = Date.now();
  main.injectWorkerFault({ kind: 'freeze', ms: FREEZE_MS });
  await Promise.all(load);
  clearInterval(sampler);

  if (process.env.TEST_DEBUG !== undefined) {
    console.log(JSON.stringify({ frozenAt, transitions, outcomes }));
  }
  const failed = outcomes.filter((o) => o.status !== 200);
  assert.deepEqual(failed, [], `${failed.length} of ${outcomes.length} requests failed`);

  const down = transitions.find((t) => !t.ready && t.at >= frozenAt);
  assert.ok(down, `main never went out of service: ${JSON.stringify(transitions)}`);
  const detectedMs = down.at - frozenAt;
  // The rule says 0.75 s + one 100 ms look; the bound is generous for a busy 2-core machine.
  assert.ok(detectedMs < 3_000, `out of service only after ${detectedMs} ms`);
  const up = transitions.find((t) => t.ready && t.at > down.at);
  assert.ok(up, 'main never came back');
  assert.ok(up.at - frozenAt < FREEZE_MS, 'main came back only after the freeze ended');
  assert.notEqual(main.workerStatus().threadId, before);
  assert.equal(main.workerStatus().replacements, 1);
  assert.equal(
    await metricValue(gw.baseUrl, 'tiergate_tier_worker_failures_total{tier="main",cause="stall"}'),
    1,
  );

  // Main took the load before the freeze and again after its replacement started.
  const servedByMain = (o: Outcome): boolean => o.tier === 'main' && o.servedBy === 'main';
  assert.ok(outcomes.some((o) => o.startedAt < frozenAt && servedByMain(o)));
  assert.ok(
    outcomes.some((o) => o.startedAt > up.at && servedByMain(o)),
    'main served nothing after recovery',
  );
  // Main came back somewhere between the last look that found it out and `up.at` (looks run late
  // on a loaded machine), and a request is routed a little after its client started it: only a
  // request started before that last look, by a margin, was surely routed while main was out.
  const lastOut = Math.max(...outSeen.filter((t) => t < up.at));
  const elsewhere = outcomes.filter(
    (o) => o.startedAt > down.at && o.startedAt < lastOut - ROUTING_MARGIN_MS,
  );
  const routedToMain = elsewhere.filter((o) => o.tier === 'main');
  assert.deepEqual(
    routedToMain.map((o) => o.startedAt - frozenAt),
    [],
    `requests routed to main while it was out (ms after the freeze; out ${down.at - frozenAt}, ` +
      `last seen out ${lastOut - frozenAt}, back ${up.at - frozenAt}; transitions ` +
      `${JSON.stringify(transitions.map((t) => ({ ms: t.at - frozenAt, ready: t.ready })))})`,
  );
  const continued = outcomes.filter((o) => o.servedBy?.includes(',') === true).length;
  console.log(
    `requests ${outcomes.length}, failed ${failed.length}; main out of service ${detectedMs} ms after the ` +
      `freeze, back ${up.at - frozenAt} ms after; ${continued} continued on another tier, ` +
      `${elsewhere.length} routed elsewhere while main was out`,
  );
});
