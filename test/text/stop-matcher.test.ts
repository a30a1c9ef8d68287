import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopMatcher } from '../../src/text/stop-matcher.js';

function run(stops: string[], deltas: string[]): { text: string; stop: string | undefined } {
  const m = new StopMatcher(stops);
  let text = '';
  for (const d of deltas) {
    const r = m.push(d);
    text += r.text;
    if (r.stop !== undefined) return { text, stop: r.stop };
  }
  return { text: text + m.flush(), stop: undefined };
}

test('a stop string straddling deltas is found and not emitted', () => {
  assert.deepEqual(run(['END'], ['abc E', 'N', 'D more']), { text: 'abc ', stop: 'END' });
});

test('a partial match that turns out not to be one is released', () => {
  assert.deepEqual(run(['END'], ['abc E', 'NX', ' tail']), { text: 'abc ENX tail', stop: undefined });
});

test('text held back at the end is flushed when generation ends', () => {
  assert.deepEqual(run(['END'], ['abc EN']), { text: 'abc EN', stop: undefined });
});

test('the earliest of several stops wins', () => {
  assert.deepEqual(run(['yz', 'b'], ['xyzab']), { text: 'x', stop: 'yz' });
});

test('nothing is held back beyond what could still match', () => {
  const m = new StopMatcher(['\n\n']);
  assert.equal(m.push('line one\n').text, 'line one');
  assert.equal(m.push('x').text, '\nx');
});

test('no stops: deltas pass straight through', () => {
  const m = new StopMatcher([]);
  assert.equal(m.push('abc').text, 'abc');
});
