// A worker that crashes, exits or is stopped while runs are in flight never takes the process
// down: a crash is simulated from inside the worker between runs (the test-only fault hook), and
// close() with sequences mid-run waits for the native run to end before terminating the thread
// (terminating inside onnxruntime-node's session.run() aborts the process; run-gate.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnnxTierError } from '../../../src/tiers/onnx/onnx-tier-error.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { collect, familyContextLength, makeTier, readGolden, request } from './helpers.js';
import { flat } from '../../helpers/tier-events.js';

const golden = readGolden();
const p = golden.prompts[0]!;

async function untilReady(tier: OnnxTier): Promise<void> {
  let health = tier.health();
  for (let i = 0; i < 200 && !health.ready; i++) {
    await new Promise((r) => setTimeout(r, 50));
    health = tier.health();
  }
  assert.equal(health.ready, true, `not recovered: ${health.detail}`);
}

/** Runs one long generation and injects `fault` after its second token; returns how it ended. */
async function crashAfterTwoTokens(tier: OnnxTier, fault: Parameters<OnnxTier['injectWorkerFault']>[0]) {
  let n = 0;
  const long = request(p.ids, familyContextLength() - p.ids.length - 1);
  for await (const e of flat(tier.generate(long, new AbortController().signal))) {
    if (e.kind === 'token' && ++n === 2) tier.injectWorkerFault(fault);
  }
}

for (const [what, fault] of [
  ['an uncaught exception', { kind: 'throw' }],
  ['process.exit()', { kind: 'exit', code: 3 }],
] as const) {
  test(`${what} in the worker fails its sequences, then the worker is replaced and serves again`, async () => {
    const tier = makeTier('tiny-fp32.onnx', { workers: 1 });
    await tier.start();
    try {
      const before = tier.workerStatus().threadId;
      await assert.rejects(crashAfterTwoTokens(tier, fault), (err: unknown) => {
        assert.ok(err instanceof OnnxTierError);
        assert.equal(err.code, 'TG_ONNX_WORKER_FAILED');
        assert.equal(err.retryable, true);
        return true;
      });
      await untilReady(tier);
      assert.notEqual(tier.workerStatus().threadId, before);
      assert.equal(tier.workerStatus().replacements, 1);
      const { tokens } = await collect(tier, request(p.ids, p.greedy.length));
      assert.deepEqual(tokens, p.greedy);
    } finally {
      await tier.close();
    }
  });
}

test('close() with sequences in native runs waits for the runs and never kills the process', async () => {
  // Many rounds at random moments: a terminate() landing inside session.run() would abort this
  // process (the test runner then reports the file as failed, not this assertion).
  for (let round = 0; round < 6; round++) {
    const tier = makeTier('tiny-fp32.onnx', { workers: 2 });
    await tier.start();
    const runs = golden.prompts.slice(0, 4).map(async (q) => {
      try {
        await collect(tier, request(q.ids, familyContextLength() - q.ids.length - 1));
      } catch (err) {
        assert.ok(err instanceof OnnxTierError && err.code === 'TG_ONNX_CLOSED', String(err));
      }
    });
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 60));
    await tier.close();
    await Promise.all(runs);
  }
});
