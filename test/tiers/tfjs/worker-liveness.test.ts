// The tfjs tier shares the worker pool's liveness rule (src/tiers/worker-host/). Its runs are wasm,
// which V8 interrupts: a worker frozen even inside a run is terminated at once, and close() or a
// terminate() landing mid-forward never takes the process down (6 rounds below).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfjsTierError } from '../../../src/tiers/tfjs/tfjs-tier-error.js';
import { flat } from '../../helpers/tier-events.js';
import { within } from '../../helpers/within.js';
import { collect, makeTfjsTier, readGolden, request } from './helpers.js';

const golden = readGolden();
const p = golden.prompts[0]!;
const LIVENESS = { heartbeatMs: 50, stallMs: 500, replaceAfterMs: 1_000, runStallFactor: 4, runStallMs: 500 };

test('a tfjs worker frozen inside a forward is replaced at once and the tier serves again', async () => {
  const tier = makeTfjsTier({ workers: 1, liveness: LIVENESS });
  await tier.start();
  try {
    const before = tier.workerStatus().threadId;
    let n = 0;
    const failed = (async () => {
      for await (const e of flat(tier.generate(request(p.ids, 400), new AbortController().signal))) {
        if (e.kind === 'token' && ++n === 2)
          tier.injectWorkerFault({ kind: 'freeze', ms: 20_000, inRun: true });
      }
    })();
    await assert.rejects(failed, (err: unknown) => {
      assert.ok(err instanceof TfjsTierError);
      assert.equal(err.code, 'TG_TFJS_WORKER_STALLED');
      return true;
    });
    assert.notEqual(await within(10_000, () => tier.health().ready), undefined, tier.health().detail);
    assert.notEqual(tier.workerStatus().threadId, before);
    const { tokens } = await collect(tier, request(p.ids, 32));
    assert.deepEqual(tokens, p.greedy.slice(0, 32));
  } finally {
    // Returns well before the 20 s freeze would end: the frozen worker was terminated in its run.
    const closing = Date.now();
    await tier.close();
    assert.ok(Date.now() - closing < 5_000);
  }
});

test('close() with sequences mid-forward never kills the process', async () => {
  for (let round = 0; round < 6; round++) {
    const tier = makeTfjsTier({ workers: 1 });
    await tier.start();
    const runs = golden.prompts.slice(0, 4).map(async (q) => {
      try {
        await collect(tier, request(q.ids, 400));
      } catch (err) {
        assert.ok(err instanceof TfjsTierError && err.code === 'TG_TFJS_CLOSED', String(err));
      }
    });
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 100));
    await tier.close();
    await Promise.all(runs);
  }
});
