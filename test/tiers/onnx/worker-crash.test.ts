import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { OnnxTierError } from '../../../src/tiers/onnx/onnx-tier-error.js';
import { collect, makeTier, readGolden, request } from './helpers.js';
import { flat } from '../../helpers/tier-events.js';

const golden = readGolden();

/** The tier's worker threads (private; reached into only to simulate a crash). */
function threads(tier: object): Worker[] {
  return (tier as { workers: { worker: Worker }[] }).workers.map((w) => w.worker);
}

test('a crashed inference worker fails its sequences, then is replaced and the tier serves again', async () => {
  const tier = makeTier('tiny-fp32.onnx', { workers: 1 });
  await tier.start();
  try {
    const p = golden.prompts[0]!;
    const running = (async () => {
      let n = 0;
      for await (const e of flat(tier.generate(request(p.ids, 400), new AbortController().signal))) {
        if (e.kind === 'token' && ++n === 2) await threads(tier)[0]!.terminate();
      }
    })();
    await assert.rejects(
      running,
      (err: unknown) => err instanceof OnnxTierError && err.code === 'TG_ONNX_WORKER_FAILED',
    );
    let health = tier.health();
    for (let i = 0; i < 200 && !health.ready; i++) {
      await new Promise((r) => setTimeout(r, 50));
      health = tier.health();
    }
    assert.equal(health.ready, true, `not recovered: ${health.detail}`);
    const { tokens } = await collect(tier, request(p.ids, p.greedy.length));
    assert.deepEqual(tokens, p.greedy);
  } finally {
    await tier.close();
  }
});
