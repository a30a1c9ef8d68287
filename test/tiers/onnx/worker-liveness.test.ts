// A worker that stops answering is taken out of service, its sequences fail with a retryable
// error and it is replaced (src/tiers/worker-host/worker-pool.ts): frozen in JavaScript it is
// terminated at once; frozen inside a run (as a native call that does not return) it cannot be,
// so it is let go and terminated when the run ends, while its replacement already serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnnxTierError } from '../../../src/tiers/onnx/onnx-tier-error.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import type { WorkerFault } from '../../../src/tiers/worker-host/protocol.js';
import { flat } from '../../helpers/tier-events.js';
import { within } from '../../helpers/within.js';
import { collect, familyContextLength, makeTier, readGolden, request } from './helpers.js';

const golden = readGolden();
const p = golden.prompts[0]!;
/** Short margins so the in-run case is found quickly; the rule is the same as the defaults'. */
const LIVENESS = { heartbeatMs: 50, stallMs: 500, replaceAfterMs: 1_000, runStallFactor: 4, runStallMs: 500 };

async function freezeMidSequence(tier: OnnxTier, fault: WorkerFault): Promise<unknown> {
  const long = request(p.ids, familyContextLength() - p.ids.length - 1);
  let n = 0;
  try {
    for await (const e of flat(tier.generate(long, new AbortController().signal))) {
      if (e.kind === 'token' && ++n === 2) tier.injectWorkerFault(fault);
    }
  } catch (err) {
    return err;
  }
  return undefined;
}

for (const inRun of [false, true]) {
  const where = inRun ? 'inside a run' : 'in JavaScript';
  test(`a worker frozen ${where} is out of service at once, replaced, and the tier serves again`, async () => {
    const tier = makeTier('tiny-fp32.onnx', { workers: 1, liveness: LIVENESS });
    await tier.start();
    try {
      const before = tier.workerStatus().threadId;
      const frozenAt = Date.now();
      const failed = freezeMidSequence(tier, { kind: 'freeze', ms: 6_000, inRun });
      // Generous bounds (a noisy 2-core machine): the rule itself says 0.5 s (in JavaScript: out
      // of service, replaced at 1 s) or 4 × a few ms + 0.5 s (inside a run).
      const notReadyAfter = await within(4_000, () => !tier.health().ready);
      assert.notEqual(notReadyAfter, undefined, 'the tier never went out of service');
      const err = await failed;
      assert.ok(err instanceof OnnxTierError, String(err));
      assert.equal(err.code, 'TG_ONNX_WORKER_STALLED');
      assert.equal(err.retryable, true);
      assert.match(tier.health().detail ?? '', /stalled/);
      // Replaced and serving while the frozen worker would still be frozen.
      assert.notEqual(await within(5_000, () => tier.health().ready), undefined, tier.health().detail);
      assert.notEqual(tier.workerStatus().threadId, before);
      assert.equal(tier.workerStatus().replacements, 1);
      const { tokens } = await collect(tier, request(p.ids, p.greedy.length));
      assert.deepEqual(tokens, p.greedy);
      assert.ok(Date.now() - frozenAt < 6_000, 'served again before the freeze ended');
      console.log(`frozen ${where}: out of service after ${notReadyAfter} ms`);
    } finally {
      // Waits for the worker frozen inside its run to leave it (never terminated inside one).
      await tier.close();
    }
  });
}

test('a slow but progressing worker is not declared stalled', async () => {
  const tier = makeTier('tiny-fp32.onnx', { workers: 1, maxBatchSize: 8, liveness: LIVENESS });
  await tier.start();
  try {
    const runs = golden.prompts.map((q) => collect(tier, request(q.ids, 64)));
    // 300 ms blocks between steps stay under stallMs (500 ms).
    for (let i = 0; i < 5; i++) {
      tier.injectWorkerFault({ kind: 'freeze', ms: 300 });
      await new Promise((r) => setTimeout(r, 350));
    }
    await Promise.all(runs);
    assert.equal(tier.workerStatus().replacements, 0);
    assert.equal(tier.health().ready, true);
  } finally {
    await tier.close();
  }
});

test('close() lets go of a worker stuck inside a run instead of waiting for ever', async () => {
  const tier = makeTier('tiny-fp32.onnx', { workers: 1, liveness: LIVENESS });
  await tier.start();
  const failed = freezeMidSequence(tier, { kind: 'freeze', ms: 15_000, inRun: true });
  await new Promise((r) => setTimeout(r, 100));
  const closing = Date.now();
  await tier.close();
  // The run's limit (4 × a few ms + 0.5 s) and a 1 s look, far less than the 15 s freeze. (The
  // freeze is JavaScript, so this process exiting while it lasts is safe; a real native run
  // would make that exit an abort: docs/main-tier.md "Limits".)
  assert.ok(Date.now() - closing < 8_000, `close() took ${Date.now() - closing} ms`);
  const err = await failed;
  assert.ok(err instanceof OnnxTierError && err.code === 'TG_ONNX_CLOSED', String(err));
});

test('at most `workers` stalled workers wait inside runs: beyond that a slot is refilled when one exits', async () => {
  const tier = makeTier('tiny-fp32.onnx', { workers: 1, liveness: LIVENESS });
  await tier.start();
  try {
    tier.injectWorkerFault({ kind: 'freeze', ms: 9_000, inRun: true });
    assert.notEqual(await within(4_000, () => !tier.health().ready), undefined);
    assert.notEqual(await within(5_000, () => tier.health().ready), undefined, 'first stall not replaced');
    // The replacement sticks too, while the first is still inside its run: not replaced now...
    tier.injectWorkerFault({ kind: 'freeze', ms: 3_000, inRun: true });
    assert.notEqual(await within(4_000, () => !tier.health().ready), undefined);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(tier.health().ready, false, 'a second stuck worker was replaced at once');
    assert.equal(tier.workerStatus().replacements, 1);
    // ...but once the second one's run ends and it exits.
    assert.notEqual(await within(8_000, () => tier.health().ready), undefined, tier.health().detail);
    assert.equal(tier.workerStatus().replacements, 2);
    const { tokens } = await collect(tier, request(p.ids, p.greedy.length));
    assert.deepEqual(tokens, p.greedy);
  } finally {
    await tier.close();
  }
});
