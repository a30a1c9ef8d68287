import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/index.js';
import { cascadeName } from '../../../src/routing/cascade-route.js';
import {
  planRoute,
  type EngineInput,
  type TierProfile,
  type TierState,
} from '../../../src/routing/engine.js';
import { Probe } from '../../../src/service/cascade/probe.js';
import type { TokenEvent } from '../../../src/tiers/tier.js';

const tiers = {
  edge: { kind: 'echo', contextLength: 256 },
  main: { kind: 'echo', contextLength: 256 },
};

function configWith(policy: Record<string, unknown>): () => ReturnType<typeof buildConfig> {
  return () =>
    buildConfig(
      {
        tokenizer: { kind: 'bytes' },
        family: { dir: 'models/tiny' },
        tiers,
        models: { m: { tier: 'main' } },
        routing: { policies: { p: { tiers: ['main'], ...policy } } },
      },
      { env: {} },
    );
}

test('config: the cascade option is validated, with its default probe length', () => {
  const ok = configWith({ cascade: { first: 'edge', then: 'main', minMeanLogprob: -1.5 } })();
  assert.deepEqual(ok.routing.policies.p?.cascade, {
    first: 'edge',
    then: 'main',
    minMeanLogprob: -1.5,
    probeTokens: 8,
  });
  const bad = (cascade: Record<string, unknown>, extra: Record<string, unknown> = {}): (() => unknown) =>
    configWith({ cascade, ...extra });
  assert.throws(
    bad({ first: 'nope', then: 'main', minMeanLogprob: -1 }),
    /cascade\/first: no tier named "nope"/,
  );
  assert.throws(
    bad({ first: 'main', then: 'edge', minMeanLogprob: -1 }),
    /"edge" is not one of the policy's tiers/,
  );
  assert.throws(bad({ first: 'main', then: 'main', minMeanLogprob: -1 }), /same tier/);
  assert.throws(bad({ first: 'edge', then: 'main', minMeanLogprob: 0.5 }), /minMeanLogprob/);
  assert.throws(bad({ first: 'edge', then: 'main' }), /exactly one confidence threshold/);
  assert.throws(
    bad({ first: 'edge', then: 'main', minMeanLogprob: -1, minMargin: 1 }),
    /exactly one confidence threshold/,
  );
  assert.throws(bad({ first: 'edge', then: 'main', minMargin: -1 }), /minMargin/);
  assert.equal(
    configWith({ cascade: { first: 'edge', then: 'main', minMargin: 0.5 } })().routing.policies.p?.cascade
      ?.minMargin,
    0.5,
  );
  assert.throws(bad({ first: 'edge', then: 'main', minMeanLogprob: -1, probeTokens: 0 }), /probeTokens/);
  assert.throws(
    bad(
      { first: 'edge', then: 'main', minMeanLogprob: -1 },
      { speculative: { draft: 'edge', verify: 'main' } },
    ),
    /either speculates or cascades/,
  );
  assert.equal(cascadeName({ first: 'edge', then: 'main' }), 'edge>>main');
});

const tokens = (logprobs: number[], runnerUp?: number[]): TokenEvent => ({
  kind: 'tokens',
  tokens: logprobs.map((_, i) => i + 10),
  logprobs,
  top:
    runnerUp === undefined
      ? undefined
      : logprobs.map((lp, i) => [
          { token: i + 10, logprob: lp },
          { token: 99, logprob: runnerUp[i]! },
        ]),
});

test('Probe mean_logprob: the mean logprob of the first tokens against the threshold; unknown or empty is not confident', () => {
  const p = new Probe(3, 'mean_logprob', -1);
  p.add(tokens([-0.5]));
  assert.equal(p.full, false);
  p.add(tokens([-1, -1.5, -9])); // the fourth is past the probe
  assert.equal(p.full, true);
  assert.equal(p.seen, 3);
  assert.equal(p.score, -1);
  assert.equal(p.confident(), true);
  const low = new Probe(2, 'mean_logprob', -0.5);
  low.add(tokens([-0.2, -1]));
  assert.equal(low.confident(), false);
  const unknown = new Probe(2, 'mean_logprob', -100);
  unknown.add(tokens([Number.NaN, -0.1]));
  assert.equal(unknown.confident(), false);
  assert.equal(new Probe(4, 'mean_logprob', -100).confident(), false);
  assert.equal(Probe.topLogprobsFor('mean_logprob'), 0);
});

test('Probe min_margin: the smallest lead of the top token over the runner-up; no runner-up is not confident', () => {
  assert.equal(Probe.topLogprobsFor('min_margin'), 2);
  const p = new Probe(3, 'min_margin', 0.5);
  p.add(tokens([-0.1, -0.2], [-3, -0.8]));
  assert.ok(Math.abs(p.score - 0.6) < 1e-12);
  assert.equal(p.confident(), true);
  p.add(tokens([-0.6, -0.1], [-0.7, -9])); // 0.1 at the third; the fourth is past the probe
  assert.ok(Math.abs(p.score - 0.1) < 1e-12);
  assert.equal(p.confident(), false);
  const blind = new Probe(1, 'min_margin', 0);
  blind.add(tokens([-0.1]));
  assert.equal(blind.confident(), false);
});

const profile = (perOutputTokenMs: number, accuracy: number): TierProfile => ({
  ttftMs: 10,
  ttftPerPromptTokenMs: 0,
  perOutputTokenMs,
  queueMs: 0,
  accuracy,
});
const up: TierState = { ready: true, breakerOpen: false, queueDepth: 0, capacity: 2 };

function input(
  over: { floor?: number; budget?: number; edge?: TierState; tiers?: string[]; margin?: boolean } = {},
): EngineInput {
  return {
    features: { promptTokens: 10, maxTokens: 21 },
    policy: {
      name: 'p',
      tiers: over.tiers ?? ['edge', 'main'],
      objective: 'cheapest',
      fallback: [],
      costPer1kTokens: { edge: 1, main: 4 },
      onInfeasible: 'best_effort',
      cascade: over.margin
        ? { first: 'edge', then: 'main', minMargin: 0.5, probeTokens: 5 }
        : { first: 'edge', then: 'main', minMeanLogprob: -2, probeTokens: 5 },
    },
    budget: { latencyMs: over.budget ?? 10_000, accuracyFloor: over.floor ?? 0.99 },
    profiles: { edge: profile(2, 0.95), main: profile(10, 1) },
    state: { edge: over.edge ?? up, main: up },
  };
}

test('engine: a cascade when the floor sends the request to `then` and `first` can serve', () => {
  const plan = planRoute(input());
  assert.equal(plan.attempts[0]?.tier, 'main');
  // Escalated: 10 + 4 x 2 on edge, then 10 + 20 x 10 on main; kept: 10 + 20 x 2.
  assert.deepEqual(plan.cascade, {
    first: 'edge',
    then: 'main',
    signal: 'mean_logprob',
    threshold: -2,
    probeTokens: 5,
    predictedMs: 228,
  });
  assert.match(plan.reason, /cascade edge first \(probe 5, mean_logprob >= -2\), predicted 228ms/);
  const margin = planRoute(input({ margin: true }));
  assert.equal(margin.cascade?.signal, 'min_margin');
  assert.equal(margin.cascade?.threshold, 0.5);
  // `first` need not be one of the policy's tiers.
  assert.equal(planRoute(input({ tiers: ['main'] })).cascade?.first, 'edge');
});

test('engine: no cascade when edge is chosen anyway, is down, or the escalation would miss the budget', () => {
  // No floor: edge itself is the cheapest feasible tier, served plainly.
  const cheap = planRoute(input({ floor: 0 }));
  assert.equal(cheap.attempts[0]?.tier, 'edge');
  assert.equal(cheap.cascade, undefined);
  const down = planRoute(input({ edge: { ...up, breakerOpen: true } }));
  assert.equal(down.attempts[0]?.tier, 'main');
  assert.equal(down.cascade, undefined);
  assert.match(down.reason, /no cascade: edge unavailable/);
  // 220ms fits main alone but not the probe before it.
  const tight = planRoute(input({ budget: 225 }));
  assert.equal(tight.attempts[0]?.tier, 'main');
  assert.equal(tight.cascade, undefined);
  assert.match(tight.reason, /no cascade: edge>>main predicted 228ms over the 225ms budget/);
});
