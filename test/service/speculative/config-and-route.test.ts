import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/index.js';
import { decide } from '../../../src/routing/decide.js';
import {
  planRoute,
  SPECULATION_EXPLORE_EVERY,
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
  assert.deepEqual(spec, {
    draft: 'edge',
    verify: 'main',
    k: 4,
    adaptive: true,
    lookahead: false,
    when: 'always',
  });
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
      speculative: { draft: 'edge', verify: 'main', k: 4, adaptive: true, lookahead: true, when: 'always' },
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

/** The input with the policy's speculation taken only when predicted faster. */
function faster(i: EngineInput): EngineInput {
  return { ...i, policy: { ...i.policy, speculative: { ...i.policy.speculative!, when: 'faster' } } };
}

test("engine: with when 'faster', a pair predicted slower than its verify tier alone is not taken, except on exploration requests", () => {
  // Measured: the pair at 12 ms a token against the verify tier's 9 (speculation not paying).
  const slow = { 'edge>main': profile(12, 0) };
  // `when: always` (the default) speculates all the same.
  assert.equal(planRoute(input({ edge: up, main: up }, slow)).speculative?.verify, 'main');
  const plain = planRoute(faster(input({ edge: up, main: up }, slow)));
  assert.equal(plain.attempts[0]?.tier, 'main');
  assert.equal(plain.speculative, undefined);
  const paired = Math.round(10 + 0.1 * 10 + 12 * 100);
  const alone = Math.round(10 + 0.1 * 10 + 9 * 100);
  assert.match(
    plain.reason,
    new RegExp(`no speculation: edge>main predicted ${paired}ms, main alone ${alone}ms`),
  );
  // An exploration request speculates anyway, so the pair keeps being measured.
  const explored = planRoute({ ...faster(input({ edge: up, main: up }, slow)), exploreSpeculation: true });
  assert.equal(explored.speculative?.verify, 'main');
  assert.equal(explored.speculative?.predictedMs, paired);
  // Exactly as fast: taken (the pair is not predicted worse).
  assert.equal(
    planRoute(input({ edge: up, main: up }, { 'edge>main': profile(9, 0) })).speculative?.verify,
    'main',
  );
});

test('decide: the live router lets one speculating request in SPECULATION_EXPLORE_EVERY explore', () => {
  let plans = 0;
  const explore = (): boolean => plans++ % SPECULATION_EXPLORE_EVERY === 0;
  const base = input({ edge: up, main: up }, { 'edge>main': profile(12, 0) });
  const routing = buildConfig(
    {
      tiers: { edge: { kind: 'echo' }, main: { kind: 'echo' } },
      models: { m: { tier: 'main' } },
      routing: {
        policies: {
          p: {
            tiers: ['edge', 'main'],
            objective: 'most_accurate',
            speculative: { draft: 'edge', verify: 'main', when: 'faster' },
          },
        },
        byModel: { m: 'p' },
      },
    },
    { env: {} },
  ).routing;
  const speculated = Array.from({ length: 2 * SPECULATION_EXPLORE_EVERY }, () =>
    decide(
      { model: 'm', modelTier: 'main', options: {}, features: base.features },
      { routing, profiles: () => base.profiles, state: () => base.state, exploreSpeculation: explore },
    ),
  ).filter((plan) => plan.speculative !== undefined).length;
  assert.equal(speculated, 2);
});
