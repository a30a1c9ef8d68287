import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/index.js';
import {
  planRoute,
  type EngineInput,
  type TierProfile,
  type TierState,
} from '../../../src/routing/engine.js';
import { pairName, parsePairName, PRIOR_SPEEDUP } from '../../../src/routing/speculative-route.js';

const tiers = {
  edge: { kind: 'echo', contextLength: 256 },
  main: { kind: 'echo', contextLength: 256 },
};

function configWith(
  speculative: Record<string, unknown>,
  profiles: Record<string, unknown> = {},
): () => ReturnType<typeof buildConfig> {
  return () =>
    buildConfig(
      {
        tokenizer: { kind: 'bytes' },
        family: { dir: 'models/tiny' },
        tiers,
        models: { m: { tier: 'main' } },
        routing: { policies: { p: { tiers: ['main'], speculative } }, profiles },
      },
      { env: {} },
    );
}

test('config: the speculative option is validated, unknown tiers rejected', () => {
  const ok = configWith({ draft: 'edge', verify: 'main' })();
  const spec = ok.routing.policies.p?.speculative;
  assert.deepEqual(spec, { draft: 'edge', verify: 'main', k: 4, adaptive: true, lookahead: false });
  assert.throws(configWith({ draft: 'nope', verify: 'main' }), /speculative\/draft: no tier named "nope"/);
  assert.throws(configWith({ draft: 'edge', verify: 'gone' }), /speculative\/verify: no tier named "gone"/);
  assert.throws(configWith({ draft: 'main', verify: 'edge' }), /"edge" is not one of the policy's tiers/);
  assert.throws(configWith({ draft: 'main', verify: 'main' }), /same tier/);
  assert.throws(configWith({ draft: 'edge', verify: 'main', k: 0 }), /k/);
  assert.throws(configWith({ draft: 'edge', verify: 'main', k: 8, maxK: 4 }), /maxK/);
  assert.throws(configWith({ draft: 'edge', verify: 'main', extra: 1 }));
  // A pair's latency prior is named draft>verify.
  configWith({ draft: 'edge', verify: 'main' }, { 'edge>main': { perOutputTokenMs: 2 } })();
  assert.throws(configWith({ draft: 'edge', verify: 'main' }, { 'edge>x': {} }), /profiles/);
  assert.equal(pairName({ draft: 'edge', verify: 'main' }), 'edge>main');
  assert.deepEqual(parsePairName('edge>main'), { draft: 'edge', verify: 'main' });
  assert.equal(parsePairName('main'), undefined);
});

const profile = (perOutputTokenMs: number, accuracy: number): TierProfile => ({
  ttftMs: 10,
  ttftPerPromptTokenMs: 0.1,
  perOutputTokenMs,
  queueMs: 0,
  accuracy,
});
const up: TierState = { ready: true, breakerOpen: false, queueDepth: 0, capacity: 2 };

function input(state: Record<string, TierState>, profiles: Record<string, TierProfile> = {}): EngineInput {
  return {
    features: { promptTokens: 10, maxTokens: 101 },
    policy: {
      name: 'p',
      tiers: ['edge', 'main'],
      objective: 'most_accurate',
      fallback: [],
      costPer1kTokens: {},
      onInfeasible: 'best_effort',
      speculative: { draft: 'edge', verify: 'main', k: 4, adaptive: true, lookahead: true },
    },
    budget: { latencyMs: 60_000, accuracyFloor: 0 },
    profiles: { edge: profile(2, 0.9), main: profile(9, 1), ...profiles },
    state,
  };
}

test("engine: the verify tier is planned at the pair's speed, the route names the strategy and its prediction", () => {
  const plan = planRoute(input({ edge: up, main: up }));
  assert.equal(plan.attempts[0]?.tier, 'main');
  const spec = plan.speculative;
  assert.ok(spec !== undefined);
  assert.deepEqual([spec.draft, spec.verify, spec.k, spec.maxK, spec.adaptive], ['edge', 'main', 4, 8, true]);
  // Prior: the verify tier's per-token time over PRIOR_SPEEDUP, both tiers' first token.
  const predicted = 20 + 0.2 * 10 + (9 / PRIOR_SPEEDUP) * 100;
  assert.equal(spec.predictedMs, Math.round(predicted));
  assert.match(plan.reason, new RegExp(`speculative edge>main k=4, predicted ${spec.predictedMs}ms`));
  assert.match(plan.trace.find((t) => t.tier === 'main')!.why, /speculative edge>main/);
  // Measured: the pair's own live profile replaces the prior.
  const measured = planRoute(input({ edge: up, main: up }, { 'edge>main': profile(3, 0) }));
  assert.equal(measured.speculative?.predictedMs, Math.round(10 + 0.1 * 10 + 3 * 100));
});

test('engine: no speculation while the draft tier is down or the verify tier saturated', () => {
  const down = planRoute(input({ edge: { ...up, ready: false }, main: up }));
  assert.equal(down.attempts[0]?.tier, 'main');
  assert.equal(down.speculative, undefined);
  assert.doesNotMatch(down.reason, /speculative/);
  const open = planRoute(input({ edge: { ...up, breakerOpen: true }, main: up }));
  assert.equal(open.speculative, undefined);
  const saturated = planRoute(input({ edge: up, main: { ...up, queueDepth: 2 } }));
  assert.equal(saturated.speculative, undefined);
  assert.equal(planRoute(input({ edge: up, main: { ...up, queueDepth: 1 } })).speculative?.verify, 'main');
});
