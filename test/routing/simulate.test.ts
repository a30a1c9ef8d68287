import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/index.js';
import type { TierProfile } from '../../src/routing/engine.js';
import { parseRoutingDocument } from '../../src/routing/policy-file.js';
import { formatReport, simulate } from '../../src/routing/simulate.js';
import { parseTraffic, TrafficError } from '../../src/routing/traffic.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';

const profiles: Record<string, TierProfile> = {
  edge: { ttftMs: 10, ttftPerPromptTokenMs: 0, perOutputTokenMs: 1, queueMs: 0, accuracy: 0.98 },
  main: { ttftMs: 20, ttftPerPromptTokenMs: 0, perOutputTokenMs: 4, queueMs: 0, accuracy: 1 },
};

function routing(doc: unknown) {
  return parseRoutingDocument(doc, ['edge', 'main'], 'test');
}

test('simulate: tier mix, weighted percentiles, accuracy, cost and budgets met', () => {
  const r = simulate({
    routing: routing({
      policies: {
        p: {
          tiers: ['edge', 'main'],
          objective: 'cheapest',
          costPer1kTokens: { edge: 1, main: 2 },
          onInfeasible: 'reject',
        },
      },
      defaultPolicy: 'p',
    }),
    traffic: parseTraffic(
      [
        '# comment',
        '{"prompt_tokens": 10, "max_tokens": 11, "count": 3}',
        '{"prompt_tokens": 10, "max_tokens": 11, "accuracy_floor": 0.99}',
        '{"prompt_tokens": 10, "max_tokens": 11, "accuracy_floor": 0.99, "latency_budget_ms": 30}',
        '{"prompt_tokens": 10, "max_tokens": 11, "policy": "missing"}',
        '',
      ].join('\n'),
    ),
    profiles,
    modelTiers: { m: 'edge' },
    defaultModel: 'm',
  });
  assert.equal(r.requests, 6);
  assert.equal(r.served, 4);
  assert.equal(r.rejected, 1);
  assert.equal(r.invalid, 1);
  assert.deepEqual(r.tierMix, { edge: { requests: 3, share: 0.5 }, main: { requests: 1, share: 1 / 6 } });
  assert.deepEqual(r.reasons, { objective: 4, infeasible: 1, invalid: 1 });
  // edge: 10 + 10 = 20 ms (weight 3), main: 20 + 40 = 60 ms (weight 1).
  assert.deepEqual(r.latencyMs, { p50: 20, p95: 60, p99: 60 });
  assert.equal(r.expectedAccuracy, (3 * 0.98 + 1) / 4);
  assert.ok(Math.abs(r.totalCost - (3 * 21 + 21 * 2) / 1000) < 1e-12);
  assert.equal(r.metBothShare, 4 / 6);
  assert.match(formatReport('x.yaml', r), /tier mix: edge 50\.0%, main 16\.7%/);
});

test('simulate: requests no policy governs take the static model tier', () => {
  const r = simulate({
    routing: routing({ policies: {} }),
    traffic: parseTraffic(
      '{"prompt_tokens": 5, "max_tokens": 1, "model": "m"}\n{"prompt_tokens": 5, "max_tokens": 1, "model": "zz"}',
    ),
    profiles,
    modelTiers: { m: 'main' },
    defaultModel: 'm',
  });
  assert.deepEqual(r.reasons, { static: 1, invalid: 1 });
  assert.deepEqual(Object.keys(r.tierMix), ['main']);
});

test('traffic and policy files are validated with the line or path named', () => {
  assert.throws(
    () => parseTraffic('{"prompt_tokens": 5}\n'),
    (e: unknown) => e instanceof TrafficError && /traffic:1: \/max_tokens/.test(e.message),
  );
  assert.throws(() => parseTraffic('\n{oops'), /traffic:2: not JSON/);
  assert.throws(() => parseTraffic('# nothing\n'), /no records/);
  assert.throws(
    () => routing({ policies: { p: { tiers: ['gpu'] } } }),
    /\/policies\/p\/tiers\/0: no tier named "gpu"/,
  );
  // A whole gateway config is accepted too: its `routing:` section is used.
  const dev = buildConfig(
    { tokenizer: { kind: 'bytes' }, tiers: { edge: { kind: 'echo' } }, models: { m: { tier: 'edge' } } },
    { env: {} },
  );
  assert.deepEqual(routing({ routing: { policies: {} } }).policies, dev.routing.policies);
});

test('`tiergate simulate` compares the shipped example policies on the example traffic', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'simulate',
      '--config',
      'config/tiergate.yaml',
      '--policy',
      'config/policies-latency.yaml',
      '--policy',
      'config/policies-accuracy.yaml',
      '--traffic',
      'config/traffic-example.jsonl',
      '--json',
    ],
    { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, TIERGATE_LOG_LEVEL: 'silent' } },
  );
  assert.equal(r.status, 0, r.stderr);
  const reports = JSON.parse(r.stdout) as {
    policyFile: string;
    report: { requests: number; tierMix: Record<string, { share: number }> };
  }[];
  assert.deepEqual(
    reports.map((x) => x.policyFile),
    ['config/policies-latency.yaml', 'config/policies-accuracy.yaml'],
  );
  for (const { report } of reports) assert.equal(report.requests, 100);
  const bad = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'simulate',
      '--policy',
      'config/tiergate.yaml',
      '--traffic',
      'config/policies-latency.yaml',
    ],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /tiergate: .*config\/policies-latency\.yaml:\d+/);
});
