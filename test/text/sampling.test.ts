import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  argmax,
  candidates,
  createRng,
  logSoftmax,
  sampleToken,
  topEntries,
} from '../../src/text/sampling.js';

const greedy = { temperature: 0, topK: 0, topP: 1 };

test('logSoftmax is normalised and stable for large logits', () => {
  const lp = logSoftmax([1000, 1001, 1002]);
  const sum = Array.from(lp).reduce((a, b) => a + Math.exp(b), 0);
  assert.ok(Math.abs(sum - 1) < 1e-12);
  assert.ok(Math.abs((lp[2] as number) - (lp[1] as number) - 1) < 1e-12);
});

test('greedy picks the argmax and reports its raw logprob; ties go to the lower id', () => {
  const logits = [0.5, 3, 1, 3];
  const s = sampleToken(logits, greedy, createRng(1));
  assert.equal(s.token, 1);
  assert.equal(argmax(logits), 1);
  assert.ok(Math.abs(s.logprob - (logSoftmax(logits)[1] as number)) < 1e-12);
  assert.equal(s.top, undefined);
});

test('top alternatives are the best n by logprob, best first', () => {
  const logits = [0, 5, 2, 4, -1, 3];
  const s = sampleToken(logits, greedy, createRng(1), 3);
  assert.deepEqual(
    s.top?.map((t) => t.token),
    [1, 3, 5],
  );
  assert.deepEqual(
    topEntries(logSoftmax(logits), 10).map((t) => t.token),
    [1, 3, 5, 2, 0, 4],
  );
});

test('the same seed gives the same sequence; different seeds differ', () => {
  const a = createRng(42);
  const b = createRng(42);
  const c = createRng(43);
  const xa = Array.from({ length: 8 }, () => a.next());
  const xb = Array.from({ length: 8 }, () => b.next());
  const xc = Array.from({ length: 8 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  for (const x of xa) assert.ok(x >= 0 && x < 1);
});

test('top-k keeps only the k most likely tokens', () => {
  const logits = [0, 1, 2, 3, 4];
  const params = { temperature: 1, topK: 2, topP: 1 };
  assert.deepEqual(candidates(logits, params).ids, [4, 3]);
  const rng = createRng(7);
  for (let i = 0; i < 200; i++) {
    assert.ok([3, 4].includes(sampleToken(logits, params, rng).token));
  }
});

test('top-p keeps the smallest prefix reaching the mass, at least one token', () => {
  // Probabilities ~ [0.643, 0.237, 0.087, 0.032] for logits [3, 2, 1, 0].
  const logits = [3, 2, 1, 0];
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.5 }).ids, [0]);
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.8 }).ids, [0, 1]);
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.9 }).ids, [0, 1, 2]);
});

test('sampling frequencies follow the tempered distribution', () => {
  const logits = [Math.log(0.7), Math.log(0.2), Math.log(0.1)];
  const rng = createRng(123);
  const counts = [0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const t = sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng).token;
    counts[t] = (counts[t] as number) + 1;
  }
  assert.ok(Math.abs((counts[0] as number) / n - 0.7) < 0.02);
  assert.ok(Math.abs((counts[1] as number) / n - 0.2) < 0.02);
  // A low temperature sharpens: almost always the argmax.
  let top = 0;
  for (let i = 0; i < 1000; i++) {
    if (sampleToken(logits, { temperature: 0.05, topK: 0, topP: 1 }, rng).token === 0) top++;
  }
  assert.ok(top > 990);
});

test('the reported logprob ignores temperature (raw distribution)', () => {
  const logits = [2, 1];
  const s = sampleToken(logits, { temperature: 0.1, topK: 1, topP: 1 }, createRng(3));
  assert.equal(s.token, 0);
  assert.ok(Math.abs(s.logprob - (logSoftmax(logits)[0] as number)) < 1e-12);
});
