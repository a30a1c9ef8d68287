import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptDraft } from '../../../src/service/speculative/acceptance.js';
import { createRng, type Rng } from '../../../src/text/sampling.js';
import { verifyPosition, type VerifyPosition } from '../../../src/text/speculative-sampling.js';
import { chiSquare, softmax, upperGammaQ } from './chi-square.js';

const greedy = { sampling: { temperature: 0, topP: 1, topK: 0 }, topLogprobs: 0, logprobs: true };
const atOne = { sampling: { temperature: 1, topP: 1, topK: 0 }, topLogprobs: 0, logprobs: false };

/** A row of logits favouring `best`, over a small vocabulary. */
function row(vocab: number, best: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const out = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) out[i] = rng.next() * 3;
  out[best] = 4;
  return out;
}

test('chi-square p-values match known quantiles', () => {
  // Upper 5% points: df 1 → 3.841, df 10 → 18.307, df 30 → 43.773.
  assert.ok(Math.abs(upperGammaQ(0.5, 3.841 / 2) - 0.05) < 1e-3);
  assert.ok(Math.abs(upperGammaQ(5, 18.307 / 2) - 0.05) < 1e-3);
  assert.ok(Math.abs(upperGammaQ(15, 43.773 / 2) - 0.05) < 1e-3);
});

test('greedy: the longest agreeing prefix, then the verifier token; all agreeing adds the bonus', () => {
  const rows = [row(16, 3, 1), row(16, 5, 2), row(16, 7, 3), row(16, 9, 4)];
  const never = (): number => assert.fail('greedy draws nothing');
  const positions = (draft: number[]): VerifyPosition[] =>
    rows.slice(0, draft.length + 1).map((r, i) => verifyPosition(r, draft[i], greedy, createRng(0)));
  const all = acceptDraft([3, 5, 7], positions([3, 5, 7]), never);
  assert.deepEqual(all.tokens, [3, 5, 7, 9]);
  assert.equal(all.accepted, 3);
  const second = acceptDraft([3, 6, 7], positions([3, 6, 7]), never);
  assert.deepEqual(second.tokens, [3, 5]);
  assert.equal(second.accepted, 1);
  const none = acceptDraft([4, 5, 7], positions([4, 5, 7]), never);
  assert.deepEqual(none.tokens, [3]);
  // The verifier's log-probabilities, for the accepted draft tokens as for its own.
  const lse = Math.log(rows[0]!.reduce((s, v) => s + Math.exp(v), 0));
  assert.ok(Math.abs(all.logprobs[0]! - (4 - lse)) < 1e-9);
  assert.throws(() => acceptDraft([3], positions([3]).slice(0, 1), never), /positions/);
});

/**
 * The first emitted token of a step under a rule: accept the draft token with probability
 * `accept`, else emit the position's token. `positionOf` builds the verifier's position.
 */
function firstTokens(
  logits: Float64Array,
  draft: number,
  samples: number,
  positionOf: (logits: Float64Array, draft: number, rng: Rng) => VerifyPosition,
): Map<number, number> {
  const counts = new Map<number, number>();
  for (let s = 0; s < samples; s++) {
    const rng = createRng(1000 + s);
    const pos = positionOf(logits, draft, createRng(7 * s + 1));
    const bonus = verifyPosition(logits, undefined, atOne, createRng(s));
    const first = acceptDraft([draft], [pos, bonus], () => rng.next()).tokens[0]!;
    counts.set(first, (counts.get(first) ?? 0) + 1);
  }
  return counts;
}

test('sampling: the first token is distributed as the verifier, whatever the draft; a wrong rule is rejected', () => {
  const logits = row(12, 2, 42);
  const p = softmax(logits);
  const samples = 4000;
  // Draft the likely token, and an unlikely one: either way the output follows p.
  for (const draft of [2, 9]) {
    const right = chiSquare(
      firstTokens(logits, draft, samples, (l, d, r) => verifyPosition(l, d, atOne, r)),
      p,
      samples,
    );
    assert.ok(
      right.pValue > 0.001,
      `draft ${draft}: chi2 ${right.statistic.toFixed(1)} df ${right.degreesOfFreedom} p ${right.pValue}`,
    );
  }
  // Wrong rule 1: on rejection, sample from p itself (the draft token included) instead of the
  // residual: the draft token is over-represented.
  const fromP = (l: Float64Array, d: number, r: Rng): VerifyPosition => {
    const pos = verifyPosition(l, d, atOne, r);
    return { ...pos, token: verifyPosition(l, undefined, atOne, r).token };
  };
  const wrong = chiSquare(firstTokens(logits, 2, samples, fromP), p, samples);
  assert.ok(wrong.pValue < 1e-6, `sampling from p on rejection passed: p ${wrong.pValue}`);
  // Wrong rule 2: always accept the greedy draft.
  const always = (l: Float64Array, d: number, r: Rng): VerifyPosition => ({
    ...verifyPosition(l, d, atOne, r),
    accept: 1,
  });
  assert.ok(chiSquare(firstTokens(logits, 2, samples, always), p, samples).pValue < 1e-6);
});
