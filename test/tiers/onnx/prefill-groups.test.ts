// How the ONNX tier groups prompts admitted together into padded prefill runs
// (src/tiers/onnx/decode-engine.ts prefillGroups): similar lengths together, padding within a
// quarter of the real positions, at most 1,024 padded positions per run unless one prompt is
// longer. Exactness of padded prefill is checked with the real model in batching.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prefillGroups } from '../../../src/tiers/onnx/decode-engine.js';

const prompt = (n: number): { tokens: number[] } => ({ tokens: Array.from({ length: n }, (_, i) => i + 1) });
const lengths = (groups: { tokens: number[] }[][]): number[][] =>
  groups.map((g) => g.map((r) => r.tokens.length));

test('prompts of equal length go in one run', () => {
  assert.deepEqual(lengths(prefillGroups(Array.from({ length: 16 }, () => prompt(8)))), [
    Array.from({ length: 16 }, () => 8),
  ]);
});

test('lengths far apart are prefilled apart, longest first; close ones share a run', () => {
  assert.deepEqual(lengths(prefillGroups([prompt(10), prompt(200), prompt(9), prompt(190)])), [
    [200, 190],
    [10, 9],
  ]);
});

test('padding stays within a quarter of the real positions', () => {
  for (const groups of [
    prefillGroups([prompt(100), prompt(80), prompt(70), prompt(60), prompt(50)]),
    prefillGroups(Array.from({ length: 12 }, (_, i) => prompt(5 + i * 7))),
  ]) {
    for (const g of groups) {
      const width = Math.max(...g.map((r) => r.tokens.length));
      const real = g.reduce((n, r) => n + r.tokens.length, 0);
      assert.ok(g.length * width <= 1.25 * real, `group ${lengths([g])[0]!.join(',')}`);
    }
  }
});

test('a run holds at most 1,024 padded positions, but a longer prompt still runs alone', () => {
  const groups = prefillGroups([prompt(2000), ...Array.from({ length: 8 }, () => prompt(300))]);
  assert.deepEqual(lengths(groups), [[2000], [300, 300, 300], [300, 300, 300], [300, 300]]);
  assert.equal(groups.flat().length, 9);
});
