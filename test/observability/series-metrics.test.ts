import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from '../../src/observability/series-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVATIONS: [string, string, number][] = [
  ['/v1/completions', 'echo', 0.0004],
  ['/v1/completions', 'echo', 0.001], // on a bound: counts in that bucket (le is inclusive)
  ['/v1/completions', 'echo', 0.05],
  ['/v1/completions', 'edge', 7], // above the last bound: only in +Inf
  ['/v1/chat/completions', 'echo', 0.2],
];

test('a SeriesHistogram renders exactly as a prom-client Histogram fed the same values', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({
    name: 'h_seconds',
    help: 'help text',
    labelNames: ['route', 'tier'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  const histogram = new SeriesHistogram('h_seconds', 'help text', ['route', 'tier'], BUCKETS).registerIn(
    ours,
  );
  for (const [route, tier, v] of OBSERVATIONS) {
    reference.observe({ route, tier }, v);
    histogram.labels(route, tier).observe(v);
  }
  // The cold-path form with a label object lands in the same series.
  reference.observe({ tier: 'echo', route: '/v1/completions' }, 0.5);
  histogram.observe({ tier: 'echo', route: '/v1/completions' }, 0.5);
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('a SeriesCounter renders exactly as a prom-client Counter fed the same increments', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Counter({
    name: 'c_total',
    help: 'h',
    labelNames: ['tier', 'type'],
    registers: [theirs],
  });
  const counter = new SeriesCounter('c_total', 'h', ['tier', 'type']).registerIn(ours);
  const held = counter.labels('echo', 'input');
  for (let i = 0; i < 3; i++) {
    reference.inc({ tier: 'echo', type: 'input' }, 12);
    held.inc(12);
  }
  reference.inc({ tier: 'edge', type: 'output' });
  counter.inc({ tier: 'edge', type: 'output' });
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('held series keep counting after a registry reset', async () => {
  const registry = new Registry();
  const counter = new SeriesCounter('c_total', 'h', ['tier']).registerIn(registry);
  const held = counter.labels('echo');
  held.inc(5);
  registry.resetMetrics();
  held.inc(2);
  assert.match(await registry.metrics(), /^c_total\{tier="echo"\} 2$/m);
});

test('bad label sets and values are refused, as prom-client refuses them', () => {
  const counter = new SeriesCounter('c_total', 'h', ['tier']);
  assert.throws(() => counter.labels('a', 'b'), /expected 1 label values/);
  assert.throws(() => counter.inc({ tier: 'a', nope: 'x' } as { tier: string }), /unknown label "nope"/);
  assert.throws(() => counter.labels('a').inc(-1), /must be ≥ 0/);
  const histogram = new SeriesHistogram('h', 'h', ['tier'], BUCKETS);
  assert.throws(() => histogram.labels('a').observe(Number.NaN), /must be finite/);
});
