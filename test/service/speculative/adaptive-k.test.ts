import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bestK,
  expectedTokens,
  EXPLORE_EVERY,
  nextK,
  PairStats,
} from '../../../src/service/speculative/adaptive-k.js';

test('expected tokens per step: 1 at no acceptance, k + 1 at full', () => {
  assert.equal(expectedTokens(0, 4), 1);
  assert.equal(expectedTokens(1, 4), 5);
  assert.ok(Math.abs(expectedTokens(0.5, 2) - 1.75) < 1e-12);
});

test('best k grows with the acceptance rate and shrinks as drafting costs more', () => {
  const cheapDraft = { draftMsPerToken: 0.2, verifyMs: (n: number) => 5 + 0.5 * n };
  const ks = [0.1, 0.5, 0.8, 0.95].map((a) => bestK(a, cheapDraft, 16).k);
  for (let i = 1; i < ks.length; i++) assert.ok(ks[i]! >= ks[i - 1]!, `k by acceptance: ${ks.join(', ')}`);
  assert.ok(ks[3]! > ks[0]!, `k by acceptance: ${ks.join(', ')}`);
  const dearDraft = { draftMsPerToken: 4, verifyMs: (n: number) => 5 + 0.5 * n };
  assert.ok(bestK(0.8, dearDraft, 16).k < bestK(0.8, cheapDraft, 16).k);
  assert.equal(bestK(0.99, cheapDraft, 3).k, 3, 'capped at maxK');
});

test('pair statistics follow the measured acceptance; k follows them, probing one off now and then', () => {
  const stats = new PairStats(0.8);
  assert.equal(stats.costs(), undefined);
  assert.equal(nextK(stats, 8, 0, 4), 4, 'unmeasured: the route k');
  for (let i = 0; i < 200; i++) {
    stats.observeAcceptance(0, 4); // every draft rejected at its first token
    stats.observeDraft(1, 4);
    stats.observeVerify(5 + (i % 2), i % 2 === 0 ? 5 : 2);
  }
  assert.ok(stats.acceptance < 0.05, `acceptance ${stats.acceptance}`);
  assert.equal(nextK(stats, 8, 0, 4), 1, 'nothing accepted: draft one');
  for (let i = 0; i < 400; i++) stats.observeAcceptance(6, 6);
  assert.ok(stats.acceptance > 0.95, `acceptance ${stats.acceptance}`);
  const best = nextK(stats, 8, 0, 1);
  assert.ok(best >= 4, `k at high acceptance: ${best}`);
  const probes = [nextK(stats, 8, EXPLORE_EVERY - 1, best), nextK(stats, 8, 2 * EXPLORE_EVERY - 1, best)];
  assert.deepEqual(probes.sort(), [Math.max(1, best - 1), Math.min(8, best + 1)].sort());
});

test('a verify pass is predicted no cheaper than the cheapest one measured', () => {
  const stats = new PairStats(0.9);
  stats.observeDraft(2, 1);
  // Steep measured costs over 8-10 positions: the line through them reaches 0 near 7.
  for (let i = 0; i < 50; i++) {
    stats.observeVerify(20, 8);
    stats.observeVerify(40, 9);
    stats.observeVerify(60, 10);
  }
  const costs = stats.costs()!;
  assert.ok(Math.abs(costs.verifyMs(9) - 40) < 1);
  assert.ok(costs.verifyMs(1) >= 20, `verify(1) ${costs.verifyMs(1)}`);
  assert.ok(costs.verifyMs(12) > 60);
});
