import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeltaMerger } from '../../src/api/delta-merger.js';
import type { TokenDetail } from '../../src/pipeline/types.js';

const token = (id: number, text: string): TokenDetail => ({ token: id, text, logprob: -id, top: [] });

test('deltas of one choice are joined in order, with their tokens', () => {
  const m = new DeltaMerger();
  m.add({ kind: 'delta', index: 0, text: 'The', tokens: [token(1, 'The')] });
  m.add({ kind: 'delta', index: 0, text: ' jury', tokens: [token(2, ' jury')] });
  m.add({ kind: 'delta', index: 0, text: ' said', tokens: [] });
  assert.deepEqual(m.take(), [
    { kind: 'delta', index: 0, text: 'The jury said', tokens: [token(1, 'The'), token(2, ' jury')] },
  ]);
});

test('each choice gets one delta, in the order its first delta came; take() empties it', () => {
  const m = new DeltaMerger();
  m.add({ kind: 'delta', index: 2, text: 'a', tokens: [] });
  m.add({ kind: 'delta', index: 0, text: 'b', tokens: [] });
  m.add({ kind: 'delta', index: 2, text: 'c', tokens: [] });
  assert.deepEqual(
    m.take().map((d) => [d.index, d.text]),
    [
      [2, 'ac'],
      [0, 'b'],
    ],
  );
  assert.deepEqual(m.take(), []);
});

test('the merged tokens are a copy: the event they came from is not changed', () => {
  const m = new DeltaMerger();
  const tokens = [token(1, 'x')];
  m.add({ kind: 'delta', index: 0, text: 'x', tokens });
  m.add({ kind: 'delta', index: 0, text: 'y', tokens: [token(2, 'y')] });
  m.take();
  assert.equal(tokens.length, 1);
});
