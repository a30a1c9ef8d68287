import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cancellation, CancelledError, sleepUnlessCancelled } from '../../src/tiers/cancellation.js';

describe('Cancellation', () => {
  test('abort runs listeners once, in order, and sets aborted/reason', () => {
    const c = new Cancellation();
    const calls: string[] = [];
    c.addEventListener('abort', () => calls.push('a'));
    c.addEventListener('abort', () => calls.push('b'), { once: true });
    assert.equal(c.aborted, false);
    assert.doesNotThrow(() => c.throwIfAborted());
    const reason = new Error('gone');
    c.abort(reason);
    c.abort(new Error('second'));
    assert.deepEqual(calls, ['a', 'b']);
    assert.equal(c.aborted, true);
    assert.equal(c.reason, reason);
    assert.throws(() => c.throwIfAborted(), reason);
  });

  test('removed, duplicate and late listeners behave as on AbortSignal', () => {
    const c = new Cancellation();
    let n = 0;
    const inc = (): void => void n++;
    const removed = (): void => assert.fail('removed listener ran');
    c.addEventListener('abort', inc);
    c.addEventListener('abort', inc); // the same listener twice counts once
    c.addEventListener('abort', removed);
    c.removeEventListener('abort', removed);
    c.abort();
    c.addEventListener('abort', removed); // after the abort: never called
    assert.equal(n, 1);
    assert.ok(c.reason instanceof CancelledError);
    assert.equal((c.reason as Error).name, 'AbortError');
  });

  test('one listener is held without a Set; a second one keeps registration order', () => {
    const c = new Cancellation();
    const calls: string[] = [];
    const a = (): void => void calls.push('a');
    const b = (): void => void calls.push('b');
    c.addEventListener('abort', a);
    c.removeEventListener('abort', b); // not registered: nothing changes
    c.removeEventListener('abort', a);
    c.addEventListener('abort', b);
    c.addEventListener('abort', a);
    c.addEventListener('abort', b); // already registered
    c.abort();
    assert.deepEqual(calls, ['b', 'a']);
  });

  test('a throwing listener does not stop the others or the caller; it becomes a warning', async () => {
    const c = new Cancellation();
    let later = false;
    const warned = new Promise<unknown>((resolve) => process.once('warning', resolve));
    c.addEventListener('abort', () => {
      throw new Error('listener bug');
    });
    c.addEventListener('abort', () => void (later = true));
    assert.doesNotThrow(() => c.abort());
    assert.equal(later, true);
    assert.equal(((await warned) as Error).message, 'listener bug');
  });

  test('a real AbortSignal satisfies the same contract (tiers accept both)', () => {
    const accept = (s: Pick<Cancellation, 'aborted' | 'reason' | 'throwIfAborted'>): boolean => s.aborted;
    assert.equal(accept(new AbortController().signal), false);
  });

  test('sleepUnlessCancelled resolves after the delay or rejects with the reason', async () => {
    await sleepUnlessCancelled(1, new Cancellation());
    const c = new Cancellation();
    const pending = sleepUnlessCancelled(Number.POSITIVE_INFINITY, c);
    const reason = new Error('stop');
    c.abort(reason);
    await assert.rejects(pending, reason);
    await assert.rejects(sleepUnlessCancelled(1, c), reason);
  });
});
