import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { DeadlineWatch } from '../../src/resilience/deadline-watch.js';

describe('DeadlineWatch', () => {
  test('runs each expired deadline once and never a cancelled one', async () => {
    const watch = new DeadlineWatch();
    const fired: string[] = [];
    const now = Date.now();
    watch.watch(now + 30, () => fired.push('late'));
    watch.watch(now + 5, () => fired.push('early'));
    const cancelled = watch.watch(now + 10, () => fired.push('cancelled'));
    watch.cancel(cancelled);
    assert.equal(watch.size, 2);
    await sleep(15);
    assert.deepEqual(fired, ['early']);
    await sleep(40);
    assert.deepEqual(fired, ['early', 'late']);
    assert.equal(watch.size, 0);
  });

  test('a deadline earlier than the armed one is not delayed by it', async () => {
    const watch = new DeadlineWatch();
    const fired: string[] = [];
    const far = watch.watch(Date.now() + 10_000, () => fired.push('far'));
    const at = Date.now() + 5;
    let firedAt = 0;
    watch.watch(at, () => {
      firedAt = Date.now();
      fired.push('near');
    });
    await sleep(30);
    assert.deepEqual(fired, ['near']);
    assert.ok(firedAt >= at);
    assert.equal(watch.size, 1);
    // The far deadline, once cancelled, no longer keeps the process alive (this test would hang).
    watch.cancel(far);
  });

  test('a deadline already past runs on the next timer turn', async () => {
    const watch = new DeadlineWatch();
    let ran = false;
    watch.watch(Date.now() - 1, () => void (ran = true));
    assert.equal(ran, false);
    await sleep(5);
    assert.equal(ran, true);
  });

  test('deadlines added by a callback are watched; a throwing callback becomes a warning', async () => {
    const watch = new DeadlineWatch();
    const fired: string[] = [];
    const warned = new Promise<unknown>((resolve) => process.once('warning', resolve));
    watch.watch(Date.now() + 2, () => {
      watch.watch(Date.now() + 5, () => fired.push('added'));
      throw new Error('callback bug');
    });
    watch.watch(Date.now() + 2, () => fired.push('sibling'));
    assert.equal(((await warned) as Error).message, 'callback bug');
    await sleep(20);
    assert.deepEqual(fired, ['sibling', 'added']);
  });
});
