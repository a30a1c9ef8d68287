/**
 * The sidecar samples with the gateway's semantics: for the same logits, parameters and seed,
 * the Python sampler (sidecar/tiergate_sidecar/sampling.py) picks the same tokens as
 * src/text/sampling.ts, so a seeded request gives the same output whichever tier serves it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, sampleToken } from '../../src/text/sampling.js';
import { pythonReport } from './python-report.js';

describe('sidecar sampling parity with the gateway', () => {
  it('picks the same tokens for greedy, temperature, top-k and top-p with the same seeds', () => {
    // Float32-representable logits, so both sides see identical inputs.
    const logits = Array.from({ length: 64 }, (_, i) => Math.fround(Math.sin(i * 1.7) * 3 + (i % 7) * 0.25));
    const cases = [
      { temperature: 0, topP: 1, topK: 0, seed: 1 },
      { temperature: 1, topP: 1, topK: 0, seed: 42 },
      { temperature: 0.7, topP: 1, topK: 5, seed: 7 },
      { temperature: 1.3, topP: 0.8, topK: 0, seed: 123456 },
      { temperature: 0.9, topP: 0.5, topK: 20, seed: 4_000_000_000 },
    ];
    const draws = 50;
    const py = pythonReport<{ tokens: number[]; logprob0: number; top: [number, number][] }[]>(
      'sampling_report.py',
      [JSON.stringify({ logits, cases, draws })],
    );
    cases.forEach((c, i) => {
      const rng = createRng(c.seed);
      const ts = Array.from({ length: draws }, () => sampleToken(logits, c, rng, 3));
      assert.deepEqual(
        py[i]!.tokens,
        ts.map((s) => s.token),
        `case ${JSON.stringify(c)}`,
      );
      assert.ok(Math.abs(py[i]!.logprob0 - ts[0]!.logprob) < 1e-6);
      assert.deepEqual(
        py[i]!.top.map(([t]) => t),
        ts[0]!.top!.map((t) => t.token),
      );
    });
  });
});
