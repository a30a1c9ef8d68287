import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadModelFamily } from '../../src/family/manifest.js';
import { relativeAccuracy } from '../../src/routing/accuracy.js';
import type { RoutePlan } from '../../src/routing/plan.js';
import { FAMILY_DIR, metricValue, startGateway, type TestGateway } from '../helpers/start-gateway.js';

const MODEL = 'tiergate-tiny';

/**
 * Scenarios on the real gateway with two real tiers: llama.cpp Q4_K_M (edge) and ONNX Runtime
 * FP32 (main). Latency priors are configured (minSamples high) so that decisions do not depend on
 * how fast this machine happens to be; accuracies come from the manifest's measured perplexities.
 */
function config(): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'gguf-q4_k_m', threads: 1, sequences: 2 },
      main: { kind: 'onnx', model: 'onnx-fp32', maxBatchSize: 4 },
    },
    models: { [MODEL]: { tier: 'edge' } },
    routing: {
      minSamples: 100_000,
      profiles: {
        edge: { ttftMs: 5, ttftPerPromptTokenMs: 0.05, perOutputTokenMs: 1 },
        main: { ttftMs: 20, ttftPerPromptTokenMs: 0.2, perOutputTokenMs: 5 },
      },
      policies: {
        balanced: {
          tiers: ['edge', 'main'],
          objective: 'most_accurate',
          latencyBudgetMs: 30_000,
          onInfeasible: 'best_effort',
        },
        strict: {
          tiers: ['edge', 'main'],
          objective: 'most_accurate',
          latencyBudgetMs: 30_000,
          onInfeasible: 'reject',
        },
      },
      byModel: { [MODEL]: 'balanced' },
    },
  };
}

describe('routing by latency budget and accuracy floor on real tiers', () => {
  let gw: TestGateway;
  const family = loadModelFamily(FAMILY_DIR);
  const edgeAccuracy = relativeAccuracy(family, 'gguf-q4_k_m')!;
  const mainAccuracy = relativeAccuracy(family, 'onnx-fp32')!;
  // A floor between the two tiers' measured accuracies: only the FP32 tier meets it.
  const highFloor = (edgeAccuracy + mainAccuracy) / 2;

  before(async () => {
    gw = await startGateway(config());
  });
  after(async () => {
    await gw?.shutdown();
  });

  async function complete(
    headers: Record<string, string>,
    body: Record<string, unknown> = {},
  ): Promise<Response> {
    return fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: MODEL, prompt: 'The jury said', max_tokens: 8, temperature: 0, ...body }),
    });
  }

  test('the manifest ranks the FP32 tier above the quantised one', () => {
    assert.equal(mainAccuracy, 1);
    assert.ok(edgeAccuracy < 1);
  });

  test('a tight latency budget goes to the fastest feasible tier', async () => {
    const res = await complete({ 'x-tiergate-latency-budget-ms': '40' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'edge');
    assert.equal(res.headers.get('x-tiergate-policy'), 'balanced');
    assert.match(res.headers.get('x-tiergate-route-reason')!, /^objective: edge/);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    assert.ok(body.usage.completion_tokens > 0);
  });

  test('a high accuracy floor goes to the FP32 tier (OpenAI SDK, body field)', async () => {
    const { data, response } = await gw.client.completions
      .create({
        model: MODEL,
        prompt: 'The jury said',
        max_tokens: 8,
        temperature: 0,
        tiergate: { accuracy_floor: highFloor },
      } as never)
      .withResponse();
    assert.equal(response.headers.get('x-tiergate-tier'), 'main');
    assert.match(response.headers.get('x-tiergate-route-reason')!, /^objective: main/);
    assert.ok((data as { choices: unknown[] }).choices.length === 1);
  });

  test('an impossible pair is rejected with the reason when the policy rejects', async () => {
    const res = await complete(
      { 'x-tiergate-policy': 'strict', 'x-tiergate-latency-budget-ms': '40' },
      { tiergate: { accuracy_floor: highFloor } },
    );
    assert.equal(res.status, 422);
    assert.equal(res.headers.get('x-tiergate-policy'), 'strict');
    const body = (await res.json()) as { error: { code: string; message: string; type: string } };
    assert.equal(body.error.code, 'route_infeasible');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /no tier of policy "strict" meets latency_budget_ms=40/);
    assert.match(body.error.message, /edge: latency [\d.]+ ms, accuracy/);
  });

  test('an impossible pair is served best effort, on the accurate tier, when the policy allows', async () => {
    const res = await complete({
      'x-tiergate-latency-budget-ms': '40',
      'x-tiergate-accuracy-floor': String(highFloor),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'main');
    assert.match(
      res.headers.get('x-tiergate-route-reason')!,
      /^best_effort_accuracy: main \(no tier meets both budgets/,
    );
  });

  test('streamed responses carry the route headers too', async () => {
    const res = await complete({ 'x-tiergate-accuracy-floor': String(highFloor) }, { stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'main');
    assert.match(await res.text(), /data: \[DONE\]/);
  });

  test('x-tiergate-tier overrides routing and says so', async () => {
    const res = await complete({ 'x-tiergate-tier': 'edge', 'x-tiergate-accuracy-floor': String(highFloor) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-tier'), 'edge');
    assert.match(res.headers.get('x-tiergate-route-reason')!, /^override: edge/);
  });

  test('system_fingerprint names the tier that served, so it differs between frameworks', async () => {
    const fingerprint = async (tier: string): Promise<string> => {
      const res = await complete({ 'x-tiergate-tier': tier });
      return ((await res.json()) as { system_fingerprint: string }).system_fingerprint;
    };
    const [edge, main] = [await fingerprint('edge'), await fingerprint('main')];
    assert.match(edge, /^fp_[0-9a-f]{10}$/);
    assert.match(main, /^fp_[0-9a-f]{10}$/);
    assert.notEqual(edge, main);
    assert.equal(await fingerprint('edge'), edge);
  });

  test('bad budgets and unknown policies are 400s', async () => {
    for (const [headers, param] of [
      [{ 'x-tiergate-latency-budget-ms': 'soon' }, 'x-tiergate-latency-budget-ms'],
      [{ 'x-tiergate-accuracy-floor': '2' }, 'x-tiergate-accuracy-floor'],
      [{ 'x-tiergate-policy': 'nope' }, 'tiergate.policy'],
    ] as const) {
      const res = await complete(headers);
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { param: string } };
      assert.equal(body.error.param, param);
    }
  });

  test('/v1/route/explain returns the plan with a per-tier trace and runs nothing', async () => {
    const before = await metricValue(gw.baseUrl, 'tiergate_tokens_total{tier="main",type="output"}');
    const res = await fetch(`${gw.baseUrl}/v1/route/explain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 16,
        tiergate: { accuracy_floor: highFloor },
      }),
    });
    assert.equal(res.status, 200);
    const out = (await res.json()) as {
      plan: RoutePlan;
      features: { promptTokens: number; maxTokens: number };
      profiles: Record<string, { accuracy: number; samples: number }>;
    };
    assert.equal(out.features.maxTokens, 16);
    assert.ok(out.features.promptTokens > 0);
    assert.equal(out.plan.policy, 'balanced');
    assert.deepEqual(
      out.plan.attempts.map((a) => a.tier),
      ['main'],
    );
    const edge = out.plan.trace.find((v) => v.tier === 'edge')!;
    assert.equal(edge.skip, 'accuracy');
    assert.equal(edge.accuracy, edgeAccuracy);
    assert.ok(out.profiles.main!.samples > 0, 'completed requests feed the latency model');
    const after = await metricValue(gw.baseUrl, 'tiergate_tokens_total{tier="main",type="output"}');
    assert.equal(after, before);
  });

  test('requests that decode together teach the latency model how many ran at once', async () => {
    const router = gw.gateway.router;
    const seen: { tier: string; concurrency: number | undefined }[] = [];
    const observe = router.observe.bind(router);
    router.observe = (tier, observation) => {
      seen.push({ tier, concurrency: observation.concurrency });
      observe(tier, observation);
    };
    try {
      const pin = { 'x-tiergate-tier': 'main' };
      // Alone: the tier runs this request only.
      await (await complete(pin, { max_tokens: 16 })).arrayBuffer();
      assert.deepEqual(seen, [{ tier: 'main', concurrency: 1 }]);
      // Four at once into main's batch of four: each decoded beside the others.
      seen.length = 0;
      await Promise.all(
        [0, 1, 2, 3].map(async (i) =>
          (await complete(pin, { max_tokens: 48, prompt: `Batch ${i}` })).arrayBuffer(),
        ),
      );
      assert.equal(seen.length, 4);
      assert.ok(
        seen.every(
          (o) => o.tier === 'main' && o.concurrency !== undefined && o.concurrency >= 1 && o.concurrency <= 4,
        ),
      );
      assert.ok(Math.max(...seen.map((o) => o.concurrency!)) > 1, JSON.stringify(seen));
    } finally {
      router.observe = observe;
    }
  });

  test('route decisions are counted by policy, tier and reason code', async () => {
    const v = await metricValue(
      gw.baseUrl,
      'tiergate_route_decisions_total{policy="balanced",tier="main",reason="best_effort_accuracy"}',
    );
    assert.ok(v >= 1);
    const misses = await metricValue(
      gw.baseUrl,
      'tiergate_route_budget_misses_total{policy="balanced",tier="edge",budget="accuracy"}',
    );
    assert.ok(misses >= 1, 'the override served below the floor');
  });

  test('the admin simulate endpoint replays traffic against a candidate policy', async () => {
    const res = await fetch(`${gw.baseUrl}/admin/route/simulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        routing: {
          policies: {
            cheap: { tiers: ['edge', 'main'], objective: 'cheapest', costPer1kTokens: { edge: 1, main: 4 } },
          },
          defaultPolicy: 'cheap',
        },
        traffic: [
          { prompt_tokens: 20, max_tokens: 16, count: 3 },
          { prompt_tokens: 20, max_tokens: 16, accuracy_floor: highFloor },
        ],
      }),
    });
    assert.equal(res.status, 200);
    const r = (await res.json()) as {
      requests: number;
      tierMix: Record<string, { requests: number }>;
      totalCost: number;
    };
    assert.equal(r.requests, 4);
    assert.equal(r.tierMix.edge!.requests, 3);
    assert.equal(r.tierMix.main!.requests, 1);
    assert.ok(Math.abs(r.totalCost - (3 * 36 * 1 + 36 * 4) / 1000) < 1e-9);
  });
});
