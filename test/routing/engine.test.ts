import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fixedPlan,
  planRoute,
  type EngineInput,
  type NamedPolicy,
  type TierProfile,
  type TierState,
} from '../../src/routing/engine.js';

// Three tiers shaped like tiergate's: a fast quantised edge, a mid FP32 main, a slow FP32 fallback.
const profiles: Record<string, TierProfile> = {
  edge: { ttftMs: 10, ttftPerPromptTokenMs: 0.1, perOutputTokenMs: 1, queueMs: 0, accuracy: 0.98 },
  main: { ttftMs: 20, ttftPerPromptTokenMs: 0.2, perOutputTokenMs: 2, queueMs: 0, accuracy: 1 },
  fallback: { ttftMs: 100, ttftPerPromptTokenMs: 1, perOutputTokenMs: 5, queueMs: 0, accuracy: 1 },
};
const up: TierState = { ready: true, breakerOpen: false, queueDepth: 0, capacity: 4 };
const allUp = { edge: up, main: up, fallback: up };

function policy(over: Partial<NamedPolicy> = {}): NamedPolicy {
  return {
    name: 'p',
    tiers: ['edge', 'main', 'fallback'],
    objective: 'fastest',
    fallback: [],
    costPer1kTokens: { edge: 1, main: 2, fallback: 3 },
    onInfeasible: 'best_effort',
    ...over,
  };
}

function input(over: Partial<EngineInput> = {}): EngineInput {
  return {
    features: { promptTokens: 100, maxTokens: 11 },
    policy: policy(),
    budget: { latencyMs: 1000, accuracyFloor: 0 },
    profiles,
    state: allUp,
    ...over,
  };
}

// Predicted latencies at 100 prompt tokens, 11 output tokens: edge 10+10+10=30, main 20+20+20=60,
// fallback 100+100+50=250 ms.
test('fastest: the lowest predicted latency among feasible tiers, the rest as fallbacks', () => {
  const plan = planRoute(input());
  assert.equal(plan.code, 'objective');
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['edge', 'main', 'fallback'],
  );
  assert.equal(plan.bestEffort, false);
  assert.equal(plan.rejected, undefined);
  const edge = plan.trace.find((v) => v.tier === 'edge')!;
  assert.equal(edge.latencyMs, 30);
  assert.equal(edge.ttftMs, 20);
  assert.equal(edge.chosen, true);
  assert.match(plan.reason, /^objective: edge \(fastest feasible; latency 30ms <= 1000ms/);
});

test('cheapest: lowest cost per request; ties broken by latency', () => {
  const cheap = planRoute(
    input({ policy: policy({ objective: 'cheapest', costPer1kTokens: { edge: 5, main: 1, fallback: 1 } }) }),
  );
  assert.equal(cheap.attempts[0]!.tier, 'main');
  const v = cheap.trace.find((t) => t.tier === 'main')!;
  assert.equal(v.cost, (111 / 1000) * 1);
  assert.equal(cheap.attempts[1]!.tier, 'fallback');
});

test('most_accurate: highest accuracy, ties broken by latency', () => {
  const plan = planRoute(input({ policy: policy({ objective: 'most_accurate' }) }));
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['main', 'fallback', 'edge'],
  );
});

test('an accuracy floor skips the quantised tier and says why', () => {
  const plan = planRoute(input({ budget: { latencyMs: 1000, accuracyFloor: 0.99 } }));
  assert.equal(plan.attempts[0]!.tier, 'main');
  const edge = plan.trace.find((v) => v.tier === 'edge')!;
  assert.equal(edge.skip, 'accuracy');
  assert.equal(edge.feasible, false);
  assert.match(edge.why, /accuracy 0\.9800 < floor 0\.99/);
  // A fallback below the floor is not attempted when the plan is not best effort.
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['main', 'fallback'],
  );
});

test('a latency budget skips slow tiers', () => {
  const plan = planRoute(
    input({ policy: policy({ objective: 'most_accurate' }), budget: { latencyMs: 100, accuracyFloor: 0 } }),
  );
  assert.equal(plan.attempts[0]!.tier, 'main');
  const fb = plan.trace.find((v) => v.tier === 'fallback')!;
  assert.equal(fb.skip, 'latency');
  assert.match(fb.why, /latency 250 ms > budget 100 ms/);
  // Slow but accurate tiers remain fallbacks: a late answer beats an error.
  assert.ok(plan.attempts.some((a) => a.tier === 'fallback'));
});

test('tiers that are not ready or whose breaker is open are skipped', () => {
  const plan = planRoute(
    input({ state: { edge: { ...up, ready: false }, main: { ...up, breakerOpen: true }, fallback: up } }),
  );
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['fallback'],
  );
  assert.equal(plan.trace.find((v) => v.tier === 'edge')!.skip, 'not_ready');
  assert.equal(plan.trace.find((v) => v.tier === 'main')!.skip, 'breaker_open');
});

test('a tier with no profile or no state is treated as not ready', () => {
  const { edge: _edge, ...rest } = profiles;
  const plan = planRoute(input({ profiles: rest, state: { edge: up, main: up } }));
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['main'],
  );
  assert.equal(plan.trace.find((v) => v.tier === 'edge')!.skip, 'not_ready');
  assert.equal(plan.trace.find((v) => v.tier === 'fallback')!.skip, 'not_ready');
});

test('infeasible budgets are rejected with a reason when the policy says reject', () => {
  const plan = planRoute(
    input({ policy: policy({ onInfeasible: 'reject' }), budget: { latencyMs: 40, accuracyFloor: 0.999 } }),
  );
  assert.equal(plan.code, 'infeasible');
  assert.deepEqual(plan.attempts, []);
  assert.match(plan.rejected!.reason, /latency_budget_ms=40 and accuracy_floor=0.999/);
  assert.match(plan.rejected!.reason, /edge: latency 30 ms, accuracy 0\.9800/);
  assert.ok(plan.trace.every((v) => !v.chosen && v.attempt === undefined));
});

test('best effort prefers the tier meeting the accuracy floor (fastest of them)', () => {
  const plan = planRoute(input({ budget: { latencyMs: 40, accuracyFloor: 0.999 } }));
  assert.equal(plan.code, 'best_effort_accuracy');
  assert.equal(plan.bestEffort, true);
  assert.equal(plan.attempts[0]!.tier, 'main');
  // Best effort: even the tier below the floor is a fallback.
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['main', 'edge', 'fallback'],
  );
});

test('best effort falls back to the latency budget when no tier meets the floor', () => {
  const plan = planRoute(input({ budget: { latencyMs: 100, accuracyFloor: 1.5 } }));
  assert.equal(plan.code, 'best_effort_latency');
  assert.equal(plan.attempts[0]!.tier, 'main');
});

test('best effort takes the most accurate tier when neither budget can be met', () => {
  const plan = planRoute(input({ budget: { latencyMs: 1, accuracyFloor: 1.5 } }));
  assert.equal(plan.code, 'best_effort');
  assert.equal(plan.attempts[0]!.tier, 'main');
});

test('with no tier available the plan is rejected as unavailable, even for best effort', () => {
  const down = { ...up, ready: false };
  const plan = planRoute(
    input({ state: { edge: down, main: down, fallback: { ...up, breakerOpen: true } } }),
  );
  assert.equal(plan.code, 'unavailable');
  assert.match(plan.rejected!.reason, /edge: not ready; main: not ready; fallback: breaker open/);
});

test("the policy's fallback order is followed, limited to available tiers", () => {
  const plan = planRoute(
    input({
      policy: policy({ fallback: ['fallback', 'main'] }),
      state: { edge: up, main: { ...up, ready: false }, fallback: up },
    }),
  );
  assert.deepEqual(
    plan.attempts.map((a) => a.tier),
    ['edge', 'fallback'],
  );
  assert.match(plan.trace.find((v) => v.tier === 'fallback')!.why, /fallback #1/);
});

test('deadlines: each attempt leaves the next one its predicted latency; the last gets the budget', () => {
  const plan = planRoute(input({ budget: { latencyMs: 1000, accuracyFloor: 0 } }));
  // edge: 1000 - main's 60; main: 1000 - fallback's 250; fallback: all 1000. Each attempt
  // carries its predicted latency (the executor's "would another tier have fitted").
  assert.deepEqual(plan.attempts, [
    { tier: 'edge', deadlineMs: 940, predictedMs: 30 },
    { tier: 'main', deadlineMs: 750, predictedMs: 60 },
    { tier: 'fallback', deadlineMs: 1000, predictedMs: 250 },
  ]);
  // An attempt always gets twice its own prediction: edge 2 x 30 (> 100 - 250), fallback 2 x 250 (> 100).
  const tight = planRoute(
    input({ policy: policy({ fallback: ['fallback'] }), budget: { latencyMs: 100, accuracyFloor: 0 } }),
  );
  assert.deepEqual(tight.attempts, [
    { tier: 'edge', deadlineMs: 60, predictedMs: 30 },
    { tier: 'fallback', deadlineMs: 500, predictedMs: 250 },
  ]);
});

test('a full tier predicts queue wait in whole service times', () => {
  const busy = planRoute(input({ state: { ...allUp, edge: { ...up, queueDepth: 4, capacity: 4 } } }));
  const edge = busy.trace.find((v) => v.tier === 'edge')!;
  assert.equal(edge.queueMs, 30);
  assert.equal(edge.latencyMs, 60);
  // Tie with main on latency; the cost breaks it (edge is cheaper).
  assert.equal(busy.attempts[0]!.tier, 'edge');
  const busier = planRoute(input({ state: { ...allUp, edge: { ...up, queueDepth: 8, capacity: 4 } } }));
  assert.equal(busier.attempts[0]!.tier, 'main');
});

test('a tier that does not batch plans concurrent requests as if they ran one after another', () => {
  // Three requests already on an edge with 4 sequences but one stream's worth of throughput: the
  // next one waits three service times (30 ms each), although a sequence is free.
  const shared = { ...up, queueDepth: 3, capacity: 4, throughput: 1 };
  const plan = planRoute(input({ state: { ...allUp, edge: shared } }));
  const edge = plan.trace.find((v) => v.tier === 'edge')!;
  assert.equal(edge.queueMs, 90);
  assert.equal(plan.attempts[0]!.tier, 'main');
  // The same load on a tier that batches its 4 sequences costs no wait.
  const batched = planRoute(input({ state: { ...allUp, edge: { ...shared, throughput: undefined } } }));
  assert.equal(batched.trace.find((v) => v.tier === 'edge')!.queueMs, 0);
  assert.equal(batched.attempts[0]!.tier, 'edge');
});

test('a learned per-stream slowdown predicts the batch a request joins, and queueing only beyond capacity', () => {
  // main: 2 ms per token alone, +1 ms for every other request in its batch (the latency model's
  // fit); 16 streams at once, stated throughput 4 (not used once the slowdown is learned).
  const learned = { ...profiles, main: { ...profiles.main!, perOutputTokenPerStreamMs: 1 } };
  const main = (queueDepth: number): ReturnType<typeof planRoute>['trace'][number] =>
    planRoute(
      input({
        profiles: learned,
        state: { ...allUp, main: { ...up, queueDepth, capacity: 16, throughput: 4 } },
      }),
    ).trace.find((v) => v.tier === 'main')!;
  // Alone: 20 + 20 + 10 x 2 = 60 ms. Joining 5 others: 10 tokens at 2 + 5 = 7 ms: 110 ms, no wait.
  assert.equal(main(0).latencyMs, 60);
  assert.equal(main(5).queueMs, 0);
  assert.equal(main(5).latencyMs, 110);
  // Full (16 running): one wave of a full batch's service time (20 + 20 + 10 x 17) = 210 ms of
  // wait, then decoding in a full batch.
  assert.equal(main(16).queueMs, 210);
  assert.equal(main(16).latencyMs, 210 + 210);
  // The same load without the learned slope: throughput 4 means waiting whole service times.
  const stated = planRoute(
    input({ state: { ...allUp, main: { ...up, queueDepth: 5, capacity: 16, throughput: 4 } } }),
  ).trace.find((v) => v.tier === 'main')!;
  assert.equal(stated.queueMs, 60);
  // A tight budget: main fits alone but not in the batch it would join, where edge still fits.
  const tight = (queueDepth: number): string =>
    planRoute(
      input({
        profiles: learned,
        policy: policy({ tiers: ['main', 'edge'], objective: 'most_accurate' }),
        budget: { latencyMs: 100, accuracyFloor: 0 },
        state: { ...allUp, main: { ...up, queueDepth, capacity: 16 } },
      }),
    ).attempts[0]!.tier;
  assert.equal(tight(0), 'main');
  assert.equal(tight(5), 'edge');
});

test('a learned slowdown per busy tier is added while other tiers of the machine run requests', () => {
  const learned = { ...profiles, main: { ...profiles.main!, perOutputTokenPerBusyTierMs: 3 } };
  const latency = (edgeDepth: number, fallbackDepth: number): number =>
    planRoute(
      input({
        profiles: learned,
        state: {
          edge: { ...up, queueDepth: edgeDepth },
          main: up,
          fallback: { ...up, queueDepth: fallbackDepth },
        },
      }),
    ).trace.find((v) => v.tier === 'main')!.latencyMs;
  // Alone 60 ms; each busy tier adds 3 ms to each of the 10 tokens after the first.
  assert.equal(latency(0, 0), 60);
  assert.equal(latency(2, 0), 90);
  assert.equal(latency(1, 3), 120);
});

test("a policy's maxLoad keeps it off a tier whose load reached the limit, while another tier is feasible", () => {
  const limited = policy({ objective: 'cheapest', maxLoad: { edge: 2 } });
  const at = (edgeDepth: number, budget = 1000): ReturnType<typeof planRoute> =>
    planRoute(
      input({
        policy: limited,
        budget: { latencyMs: budget, accuracyFloor: 0 },
        state: { ...allUp, edge: { ...up, queueDepth: edgeDepth } },
      }),
    );
  assert.equal(at(1).attempts[0]!.tier, 'edge');
  const full = at(2);
  assert.equal(full.attempts[0]!.tier, 'main');
  const edge = full.trace.find((v) => v.tier === 'edge')!;
  assert.equal(edge.skip, 'load_limit');
  assert.equal(edge.feasible, false);
  assert.match(edge.why, /load 2 >= the policy's maxLoad 2/);
  // Other policies are not limited.
  assert.equal(
    planRoute(
      input({
        policy: policy({ objective: 'cheapest' }),
        state: { ...allUp, edge: { ...up, queueDepth: 2 } },
      }),
    ).attempts[0]!.tier,
    'edge',
  );
  // Best effort (nothing meets a 20 ms budget) stays within the limits too...
  const late = at(2, 20);
  assert.equal(late.bestEffort, true);
  assert.equal(late.attempts[0]!.tier, 'main');
  // ...unless no tier is within them.
  const everywhere = planRoute(
    input({
      policy: policy({ maxLoad: { edge: 1, main: 1, fallback: 1 } }),
      state: {
        edge: { ...up, queueDepth: 1 },
        main: { ...up, queueDepth: 1 },
        fallback: { ...up, queueDepth: 1 },
      },
    }),
  );
  assert.equal(everywhere.bestEffort, true);
  assert.equal(everywhere.attempts[0]!.tier, 'edge');
});

test('tiers outside the policy are never considered', () => {
  const plan = planRoute(input({ policy: policy({ tiers: ['main', 'fallback'] }) }));
  assert.deepEqual(
    plan.trace.map((v) => v.tier),
    ['main', 'fallback'],
  );
  assert.equal(plan.attempts[0]!.tier, 'main');
});

test('the engine is pure: the same input gives the same plan', () => {
  assert.deepEqual(planRoute(input()), planRoute(input()));
});

test('fixed plans: override and static carry one attempt with the whole budget', () => {
  const o = fixedPlan('main', 'p', 'fastest', 'override', { latencyMs: 500, accuracyFloor: 0.5 });
  assert.deepEqual(o.attempts, [{ tier: 'main', deadlineMs: 500 }]);
  assert.match(o.reason, /^override: main \(x-tiergate-tier override, routing bypassed\)$/);
  const s = fixedPlan('edge', 'none', 'cheapest', 'static', { latencyMs: 600_000, accuracyFloor: 0 });
  assert.equal(s.code, 'static');
  assert.deepEqual(s.trace, []);
});
