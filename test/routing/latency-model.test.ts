import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyModel, nonNegativeSlopes, quantileOf } from '../../src/routing/latency-model.js';

const prior = { ttftMs: 40, ttftPerPromptTokenMs: 0.5, perOutputTokenMs: 3, queueMs: 2 };
/** A prior states no load slopes. */
const NO_LOAD_TERMS = {
  ttftPerStreamMs: 0,
  ttftPerBusyTierMs: 0,
  perOutputTokenPerStreamMs: 0,
  perOutputTokenPerBusyTierMs: 0,
  busyTiersSeen: false,
};

test('the configured prior answers until minSamples requests were observed', () => {
  const m = new LatencyModel(prior, { window: 16, quantile: 0.9, minSamples: 3 });
  assert.deepEqual(m.estimate(), {
    ...prior,
    ...NO_LOAD_TERMS,
    samples: 0,
    live: false,
  });
  m.observe({ promptTokens: 10, ttftMs: 5, perTokenMs: 1 });
  m.observe({ promptTokens: 20, ttftMs: 6, perTokenMs: 1 });
  assert.deepEqual(m.estimate(), {
    ...prior,
    ...NO_LOAD_TERMS,
    samples: 2,
    live: false,
  });
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

test('time per token is fitted against how many requests the tier ran: alone, plus a slope per stream', () => {
  const m = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  // A batch whose step costs 2 ms plus 1.5 ms per stream it carries.
  for (let c = 1; c <= 8; c++)
    m.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 2 + 1.5 * c, concurrency: c });
  const e = m.estimate();
  assert.ok(Math.abs(e.perOutputTokenPerStreamMs - 1.5) < 1e-9);
  assert.ok(Math.abs(e.perOutputTokenMs - 3.5) < 1e-9);
});

test('no slope without loads a whole stream apart; a missing concurrency counts as one', () => {
  const m = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  for (let i = 0; i < 8; i++)
    m.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 2 + i, concurrency: 1 + i / 10 });
  assert.equal(m.estimate().perOutputTokenPerStreamMs, 0);
  assert.equal(m.estimate().perOutputTokenMs, 5.5);
  const n = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  for (let i = 0; i < 4; i++) n.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 2 });
  for (let i = 0; i < 4; i++) n.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 8, concurrency: 4 });
  assert.ok(Math.abs(n.estimate().perOutputTokenPerStreamMs - 2) < 1e-9);
  // A slope never goes negative (a tier does not get faster with load).
  const o = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  for (let c = 1; c <= 8; c++)
    o.observe({ promptTokens: 10, ttftMs: 10, perTokenMs: 20 - c, concurrency: c });
  assert.equal(o.estimate().perOutputTokenPerStreamMs, 0);
});

test('TTFT and time per token are also fitted against other tiers busy meanwhile (they share the cores)', () => {
  const m = new LatencyModel(prior, { window: 64, quantile: 0.5, minSamples: 4 });
  // 2 ms + 1 ms per stream in the tier's batch + 4 ms per other busy tier, loads mixed.
  for (let c = 1; c <= 6; c++)
    for (let o = 0; o <= 2; o++)
      m.observe({
        promptTokens: 10,
        ttftMs: 10 + 5 * c + 7 * o,
        perTokenMs: 2 + c + 4 * o,
        concurrency: c,
        otherTiersBusy: o,
      });
  const e = m.estimate();
  assert.ok(Math.abs(e.perOutputTokenPerStreamMs - 1) < 1e-9);
  assert.ok(Math.abs(e.perOutputTokenPerBusyTierMs - 4) < 1e-9);
  assert.ok(Math.abs(e.perOutputTokenMs - 3) < 1e-9);
  // TTFT the same way (10 ms + 5 ms per stream + 7 ms per busy tier), reported for one stream.
  assert.ok(Math.abs(e.ttftPerStreamMs - 5) < 1e-9);
  assert.ok(Math.abs(e.ttftPerBusyTierMs - 7) < 1e-9);
  assert.ok(Math.abs(e.ttftMs - 15) < 1e-9);
  // Prompts 10 tokens each: no slope per prompt token.
  assert.equal(e.ttftPerPromptTokenMs, 0);
});

test('slopes: never negative, each fitted alone when the other is not usable or moves with it', () => {
  const y = Float64Array.from([3, 5, 7, 9]);
  const x = Float64Array.from([1, 2, 3, 4]);
  const close = (got: number[], want: number[]): void =>
    assert.ok(
      got.length === want.length && got.every((v, i) => Math.abs(v - want[i]!) < 1e-9),
      `${got} != ${want}`,
    );
  close(nonNegativeSlopes([x, new Float64Array(4)], y, [1, 1]), [2, 0]);
  close(nonNegativeSlopes([new Float64Array(4).fill(1), Float64Array.from([0, 1, 2, 3])], y, [1, 1]), [0, 2]);
  // z = x - 1: collinear, the earlier column takes the whole slope.
  close(nonNegativeSlopes([x, Float64Array.from([0, 1, 2, 3])], y, [1, 1]), [2, 0]);
  // Per-token time falling with the other tiers' load: that slope is dropped, the own one refitted.
  const [own, others] = nonNegativeSlopes(
    [x, Float64Array.from([2, 0, 2, 0])],
    Float64Array.from([1, 5, 5, 9]),
    [1, 1],
  );
  assert.equal(others, 0);
  assert.ok(own! > 0);
  // A column that varies less than its minimum spread gets no slope (prompts of 11 to 13 tokens).
  close(
    nonNegativeSlopes([Float64Array.from([11, 12, 13, 12])], Float64Array.from([10, 60, 20, 30]), [16]),
    [0],
  );
  // Three columns at once: y = 1 + 2a + 3b + 0.5c.
  const a = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const b = Float64Array.from([0, 1, 0, 2, 1, 0, 2, 1]);
  const c = Float64Array.from([10, 40, 20, 30, 60, 50, 20, 80]);
  const yy = a.map((_, i) => 1 + 2 * a[i]! + 3 * b[i]! + 0.5 * c[i]!);
  close(nonNegativeSlopes([a, b, c], yy, [1, 1, 1]), [2, 3, 0.5]);
});

test('a burst that made requests wait for admission does not stay in the TTFT base', () => {
  const m = new LatencyModel(prior, { window: 16, quantile: 0.9, minSamples: 2 });
  // A burst: 3 s in the admission queue, 20 ms to the first token once admitted.
  for (let i = 0; i < 8; i++) m.observe({ promptTokens: 0, ttftMs: 3020, perTokenMs: 1, queueMs: 3000 });
  assert.equal(m.estimate().ttftMs, 20);
  assert.equal(m.estimate().queueMs, 3000);
});

test('helpers: quantile (type 7) and least-squares slope', () => {
  assert.equal(quantileOf(Float64Array.from([1, 2, 3, 4]), 0.5), 2.5);
  assert.equal(quantileOf(Float64Array.from([]), 0.9), 0);
  assert.deepEqual(nonNegativeSlopes([Float64Array.from([1, 1])], Float64Array.from([3, 5]), [0]), [0]);
  assert.deepEqual(nonNegativeSlopes([Float64Array.from([0, 1, 2])], Float64Array.from([1, 3, 5]), [0]), [2]);
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
  assert.deepEqual(m.estimate(), {
    ...slower,
    ...NO_LOAD_TERMS,
    samples: 16,
    live: false,
  });
});
