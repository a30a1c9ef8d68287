import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyModel, leastSquaresSlope, quantileOf } from '../../src/routing/latency-model.js';

const prior = { ttftMs: 40, ttftPerPromptTokenMs: 0.5, perOutputTokenMs: 3, queueMs: 2 };

test('the configured prior answers until minSamples requests were observed', () => {
  const m = new LatencyModel(prior, { window: 16, quantile: 0.9, minSamples: 3 });
  assert.deepEqual(m.estimate(), { ...prior, samples: 0, live: false });
  m.observe({ promptTokens: 10, ttftMs: 5, perTokenMs: 1 });
  m.observe({ promptTokens: 20, ttftMs: 6, perTokenMs: 1 });
  assert.deepEqual(m.estimate(), { ...prior, samples: 2, live: false });
  m.observe({ promptTokens: 30, ttftMs: 7, perTokenMs: 1 });
  assert.equal(m.estimate().live, true);
  assert.equal(m.estimate().samples, 3);
});

test('TTFT is fitted as a + b*promptTokens from observations', () => {
  const m = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  for (let p = 10; p <= 100; p += 10) m.observe({ promptTokens: p, ttftMs: 8 + 0.25 * p, perTokenMs: 2 });
  const e = m.estimate();
  assert.ok(Math.abs(e.ttftPerPromptTokenMs - 0.25) < 1e-9);
  assert.ok(Math.abs(e.ttftMs - 8) < 1e-9);
  assert.equal(e.perOutputTokenMs, 2);
  assert.equal(e.queueMs, 0);
});

test('one outlier moves a quantile estimate by one rank, not by its size', () => {
  const m = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  for (let i = 0; i < 20; i++) m.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 2 });
  m.observe({ promptTokens: 10, ttftMs: 10_000, perTokenMs: 500 });
  const e = m.estimate();
  assert.equal(e.ttftMs, 10);
  assert.equal(e.perOutputTokenMs, 2);
});

test('the window forgets old requests: the model follows a tier that got slower', () => {
  const m = new LatencyModel(prior, { window: 8, quantile: 0.9, minSamples: 4 });
  for (let i = 0; i < 8; i++) m.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 1 });
  for (let i = 0; i < 8; i++) m.observe({ promptTokens: 10, ttftMs: 50, perTokenMs: 4 });
  assert.equal(m.estimate().ttftMs, 50);
  assert.equal(m.estimate().perOutputTokenMs, 4);
});

test('requests with one output token teach TTFT but not time per token; bad values are ignored', () => {
  const m = new LatencyModel(prior, { window: 16, quantile: 0.5, minSamples: 2 });
  m.observe({ promptTokens: 10, ttftMs: 20 });
  m.observe({ promptTokens: 10, ttftMs: 20 });
  m.observe({ promptTokens: 10, ttftMs: Number.NaN });
  m.observe({ promptTokens: 10, ttftMs: -1 });
  const e = m.estimate();
  assert.equal(e.samples, 2);
  assert.equal(e.ttftMs, 20);
  assert.equal(e.perOutputTokenMs, prior.perOutputTokenMs);
});

test('observed queue wait is reported and not counted twice in the TTFT base', () => {
  const m = new LatencyModel(prior, { window: 16, quantile: 0.5, minSamples: 2 });
  for (let i = 0; i < 4; i++) m.observe({ promptTokens: 0, ttftMs: 30, perTokenMs: 1, queueMs: 10 });
  assert.equal(m.estimate().queueMs, 10);
  assert.equal(m.estimate().ttftMs, 20);
});

test('helpers: quantile (type 7) and least-squares slope', () => {
  assert.equal(quantileOf(Float64Array.from([1, 2, 3, 4]), 0.5), 2.5);
  assert.equal(quantileOf(Float64Array.from([]), 0.9), 0);
  assert.equal(leastSquaresSlope(Float64Array.from([1, 1]), Float64Array.from([3, 5])), 0);
  assert.equal(leastSquaresSlope(Float64Array.from([0, 1, 2]), Float64Array.from([1, 3, 5])), 2);
});

test('a full window is re-sorted every window/16 observations, not on every request', () => {
  const m = new LatencyModel(prior, { window: 256, quantile: 0.5, minSamples: 4 });
  for (let i = 0; i < 256; i++) m.observe({ promptTokens: 0, ttftMs: 10, perTokenMs: 1 });
  assert.equal(m.estimate().ttftMs, 10);
  // 15 new observations: the estimate is still the cached one (the median is still 10 anyway).
  for (let i = 0; i < 15; i++) m.observe({ promptTokens: 0, ttftMs: 1000, perTokenMs: 1 });
  const cached = m.estimate();
  assert.equal(cached.samples, 256);
  // The 16th refreshes it: 16 of 256 slow samples do not move the median but are counted.
  m.observe({ promptTokens: 0, ttftMs: 1000, perTokenMs: 1 });
  assert.notEqual(m.estimate(), cached);
  // Past the median: after 128 slow ones (a multiple of 16) the estimate follows.
  for (let i = 16; i < 128; i++) m.observe({ promptTokens: 0, ttftMs: 1000, perTokenMs: 1 });
  assert.ok(m.estimate().ttftMs > 10);
});

test('reconfigure (hot reload): new prior and options apply, the newest observations are kept', () => {
  const m = new LatencyModel(prior, { window: 8, quantile: 0.5, minSamples: 4 });
  for (let i = 0; i < 10; i++) m.observe({ promptTokens: 0, ttftMs: i, perTokenMs: 1 });
  // The window (8) holds ttft 2..9; shrinking to 4 keeps 6..9.
  m.reconfigure(prior, { window: 4, quantile: 0.5, minSamples: 2 });
  assert.equal(m.estimate().samples, 4);
  assert.equal(m.estimate().ttftMs, 7.5);
  // Growing keeps them all and adds room.
  m.reconfigure(prior, { window: 16, quantile: 1, minSamples: 2 });
  assert.equal(m.estimate().ttftMs, 9);
  for (let i = 0; i < 12; i++) m.observe({ promptTokens: 0, ttftMs: 100, perTokenMs: 1 });
  assert.equal(m.estimate().samples, 16);
  // A new prior answers while the model is below its (new) minSamples.
  const slower = { ...prior, ttftMs: 400 };
  m.reconfigure(slower, { window: 16, quantile: 0.5, minSamples: 100 });
  assert.deepEqual(m.estimate(), { ...slower, samples: 16, live: false });
});
