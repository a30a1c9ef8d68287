import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TfjsTierError } from '../../../src/tiers/tfjs/tfjs-tier-error.js';
import { flat } from '../../helpers/tier-events.js';
import { collect, makeTfjsTier, readGolden, request } from './helpers.js';

const golden = readGolden();

test('a dead worker fails its sequences, the tier is not ready, then it is replaced and serves again', async () => {
  const tier = makeTfjsTier({ workers: 1 });
  await tier.start();
  try {
    const p = golden.prompts[0]!;
    const running = (async () => {
      let n = 0;
      for await (const e of flat(tier.generate(request(p.ids, 400), new AbortController().signal))) {
        // An uncaught exception inside the worker, between two steps (the test-only fault hook).
        if (e.kind === 'token' && ++n === 2) tier.injectWorkerFault({ kind: 'throw' });
      }
    })();
    await assert.rejects(running, (err: unknown) => {
      assert.ok(err instanceof TfjsTierError);
      assert.equal(err.code, 'TG_TFJS_WORKER_FAILED');
      assert.equal(err.kind, 'upstream_broken');
      return true;
    });
    // Meanwhile (the restart waits 500 ms) the tier says it cannot serve, and refuses requests.
    // (Terminating a tfjs worker inside a forward is safe too: wasm runs as JavaScript, see
    // worker-liveness.test.ts.)
    const health = tier.health();
    assert.equal(health.ready, false);
    const unreadyDetail = health.detail;
    await assert.rejects(collect(tier, request(p.ids, 2)), { kind: 'unavailable' });
    let now = tier.health();
    for (let i = 0; i < 200 && !now.ready; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = tier.health();
    }
    assert.equal(now.ready, true, `not recovered (was: ${unreadyDetail})`);
    const { tokens } = await collect(tier, request(p.ids, 32));
    assert.deepEqual(tokens, p.greedy.slice(0, 32));
  } finally {
    await tier.close();
  }
});

test('a model file that is not an F32/F16 LLaMA GGUF fails start with a typed error', async () => {
  const tier = makeTfjsTier({
    model: {
      path: `${process.cwd()}/models/tiny/tiny-q8_0.gguf`,
      modelId: 'tiny',
      variant: 'x',
      contextLength: 512,
    },
  });
  await assert.rejects(tier.start(), (err: unknown) => {
    assert.ok(err instanceof TfjsTierError);
    assert.equal(err.code, 'TG_TFJS_MODEL_INVALID');
    assert.match(err.message, /only F32\/F16/);
    return true;
  });
  assert.equal(tier.health().ready, false);
  await tier.close();
});
