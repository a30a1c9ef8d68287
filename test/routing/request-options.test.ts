import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toApiError } from '../../src/api/errors.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { buildConfig, ConfigError } from '../../src/config/index.js';
import { relativeAccuracy, referenceVariant } from '../../src/routing/accuracy.js';
import { parseRouteOptions } from '../../src/routing/route-options.js';
import { selectPolicy } from '../../src/routing/select-policy.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { FAMILY_DIR } from '../helpers/start-gateway.js';

test('route options come from the tiergate body field, else the headers', () => {
  assert.deepEqual(
    parseRouteOptions({ tiergate: { latency_budget_ms: 250, accuracy_floor: 0.9, policy: 'p' } }, {}),
    {
      policy: 'p',
      latencyBudgetMs: 250,
      accuracyFloor: 0.9,
    },
  );
  const headers = {
    'x-tiergate-latency-budget-ms': '300',
    'x-tiergate-accuracy-floor': '0.5',
    'x-tiergate-policy': 'h',
  };
  assert.deepEqual(parseRouteOptions({}, headers), { policy: 'h', latencyBudgetMs: 300, accuracyFloor: 0.5 });
  assert.equal(parseRouteOptions({ tiergate: { latency_budget_ms: 10 } }, headers).latencyBudgetMs, 10);
  assert.deepEqual(parseRouteOptions({}, {}), {
    policy: undefined,
    latencyBudgetMs: undefined,
    accuracyFloor: undefined,
  });
});

test('bad route options are 400s naming the field', () => {
  const bad = (body: unknown, headers: Record<string, string> = {}, param?: string): void => {
    assert.throws(
      () => parseRouteOptions(body, headers),
      (err: unknown) =>
        err instanceof GatewayError &&
        err.kind === 'bad_request' &&
        toApiError(err).status === 400 &&
        (param === undefined || err.param === param),
    );
  };
  bad({ tiergate: 'fast' }, {}, 'tiergate');
  bad({ tiergate: { latency_budget: 1 } }, {}, 'tiergate.latency_budget');
  bad({ tiergate: { latency_budget_ms: -5 } }, {}, 'tiergate.latency_budget_ms');
  bad({ tiergate: { latency_budget_ms: '100' } }, {}, 'tiergate.latency_budget_ms');
  bad({ tiergate: { accuracy_floor: 1.5 } }, {}, 'tiergate.accuracy_floor');
  bad({ tiergate: { policy: 3 } }, {}, 'tiergate.policy');
  bad({}, { 'x-tiergate-latency-budget-ms': 'soon' }, 'x-tiergate-latency-budget-ms');
  bad({}, { 'x-tiergate-accuracy-floor': 'NaN' }, 'x-tiergate-accuracy-floor');
});

const routing = {
  policies: { a: { tiers: ['edge'] }, b: { tiers: ['edge'] }, c: { tiers: ['edge'] } },
  defaultPolicy: 'c',
  byModel: { m: 'b' },
  byApiKey: { team: 'a' },
};

function config(r: unknown) {
  return buildConfig(
    {
      tokenizer: { kind: 'bytes' },
      tiers: { edge: { kind: 'echo' } },
      models: { m: { tier: 'edge' } },
      routing: r,
    },
    { env: {} },
  );
}

test('policy selection: request, then API key, then model, then default', () => {
  const r = config(routing).routing;
  assert.equal(selectPolicy(r, { requested: 'b', apiKey: 'team', model: 'm' })?.by, 'request');
  assert.equal(selectPolicy(r, { apiKey: 'team', model: 'm' })?.name, 'a');
  assert.equal(selectPolicy(r, { apiKey: 'other', model: 'm' })?.name, 'b');
  assert.equal(selectPolicy(r, { model: 'x' })?.name, 'c');
  assert.equal(selectPolicy(config({ policies: routing.policies }).routing, { model: 'x' }), undefined);
  assert.throws(
    () => selectPolicy(r, { requested: 'zzz', model: 'm' }),
    /Unknown routing policy "zzz" \(policies: a, b, c\)/,
  );
});

test('policy config: defaults are filled in and names are cross-checked', () => {
  const p = config({ policies: { fast: { tiers: ['edge'] } } }).routing.policies.fast!;
  assert.equal(p.objective, 'cheapest');
  assert.equal(p.onInfeasible, 'best_effort');
  assert.equal(p.accuracyFloor, 0);
  assert.throws(
    () =>
      config({
        policies: { x: { tiers: ['edge', 'gpu'], fallback: ['main'], objective: 'quickest' } },
        defaultPolicy: 'nope',
      }),
    (err: unknown) => err instanceof ConfigError && /objective/.test(err.message),
  );
  assert.throws(
    () =>
      config({
        policies: { x: { tiers: ['edge', 'gpu'], fallback: ['main'], maxLoad: { main: 2 } } },
        defaultPolicy: 'nope',
        byModel: { m: 'y' },
      }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /\/routing\/policies\/x\/tiers\/1: no tier named "gpu"/.test(err.message) &&
      /\/routing\/policies\/x\/fallback\/0: "main" is not one of the policy's tiers/.test(err.message) &&
      /\/routing\/policies\/x\/maxLoad\/main: not one of the policy's tiers/.test(err.message) &&
      /\/routing\/defaultPolicy: no policy named "nope"/.test(err.message) &&
      /\/routing\/byModel\/m: no policy named "y"/.test(err.message),
  );
});

test("accuracy relative to FP32 comes from the manifest's perplexities", () => {
  const family = loadModelFamily(FAMILY_DIR);
  const ref = referenceVariant(family)!;
  assert.match(ref.precision, /^fp?32$/);
  for (const v of family.variants) {
    const acc = relativeAccuracy(family, v.id)!;
    assert.ok(acc > 0 && acc <= 1);
    assert.ok(Math.abs(acc - Math.min(1, ref.perplexity! / v.perplexity!)) < 1e-12);
  }
  assert.equal(relativeAccuracy(family, ref.id), 1);
  assert.equal(relativeAccuracy(family, 'no-such-variant'), undefined);
});
