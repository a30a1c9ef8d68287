// Kept sequences on the ONNX tier (src/tiers/kept-sequence.ts), with the real tiny FP32 model:
// verify scores a whole draft in one forward pass on the cached sequence, draft proposes greedy
// tokens, rollback (keep < held) continues exactly as plain greedy decoding, and an open
// sequence holds one of the tier's batch slots until closed or aborted. Expectations come from
// the tier's own plain generate(), whose greedy output test/tiers/onnx/golden.test.ts checks
// against PyTorch's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { VerifyOptions } from '../../../src/tiers/kept-sequence.js';
import { OnnxTierError } from '../../../src/tiers/onnx/onnx-tier-error.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { GREEDY, collect, makeTier, readGolden, request } from './helpers.js';
import { flat } from '../../helpers/tier-events.js';

const golden = readGolden();
const prompt = golden.prompts[0]!.ids;
const CAPACITY = 2;
const batchSizes: number[] = [];
let tier: OnnxTier;
/** The tier's plain greedy continuation of `prompt` and each token's logprob. */
let greedy: number[];
let logprobs: number[];

const OPTIONS: VerifyOptions = { sampling: GREEDY, seed: 7, topLogprobs: 0, logprobs: true };

before(async () => {
  tier = makeTier(
    'tiny-fp32.onnx',
    { maxBatchSize: CAPACITY, maxQueueDelayMs: 20 },
    { observer: { observeBatchSize: (_tier, n) => batchSizes.push(n) } },
  );
  await tier.start();
  const plain = await collect(tier, request(prompt, 16));
  greedy = plain.tokens;
  logprobs = plain.events.flatMap((e) => (e.kind === 'token' ? [e.logprob] : []));
  assert.equal(greedy.length, 16);
});
after(() => tier.close());

/** `tokens` with the one at `at` replaced by another id. */
function wrongAt(tokens: readonly number[], at: number): number[] {
  const out = [...tokens];
  out[at] = (out[at]! + 1) % golden.vocab_size;
  return out;
}

test("verify with the tier's own greedy continuation accepts every position; the bonus is the next greedy token", async () => {
  const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  try {
    const draft = greedy.slice(0, 8);
    const r = await seq.verify({ keep: 0, append: prompt }, draft, OPTIONS);
    assert.equal(r.positions.length, draft.length + 1);
    assert.equal(r.held, prompt.length + draft.length);
    draft.forEach((t, i) => {
      assert.equal(r.positions[i]!.accept, 1, `position ${i}`);
      assert.equal(r.positions[i]!.token, t, `position ${i}`);
      // The verifier's logprobs are plain generation's (one multi-token pass vs one step each).
      assert.ok(Math.abs(r.positions[i]!.draftLogprob - logprobs[i]!) < 1e-4, `logprob at ${i}`);
      assert.ok(Math.abs(r.positions[i]!.tokenLogprob - logprobs[i]!) < 1e-4, `logprob at ${i}`);
    });
    const bonus = r.positions[draft.length]!;
    assert.equal(bonus.accept, 0);
    assert.equal(bonus.token, greedy[8]);
    assert.ok(Math.abs(bonus.tokenLogprob - logprobs[8]!) < 1e-4);
    assert.ok(Number.isNaN(bonus.draftLogprob));
  } finally {
    seq.close();
  }
});

test('a wrong draft token is rejected at its position, with the greedy token as replacement', async () => {
  const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  try {
    const draft = wrongAt(greedy.slice(0, 5), 2);
    const r = await seq.verify({ keep: 0, append: prompt }, draft, { ...OPTIONS, logprobs: false });
    assert.deepEqual(
      r.positions.slice(0, 3).map((p) => p.accept),
      [1, 1, 0],
    );
    assert.equal(r.positions[2]!.token, greedy[2]);
    assert.ok(Number.isNaN(r.positions[2]!.tokenLogprob));
  } finally {
    seq.close();
  }
});

test('draft proposes the greedy tokens; rolling back rejected tokens then continuing equals plain greedy', async () => {
  const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  try {
    const P = prompt.length;
    const d = await seq.draft({ keep: 0, append: prompt }, 4);
    assert.deepEqual(d.tokens, greedy.slice(0, 4));
    // The last drafted token is not fed yet.
    assert.equal(d.held, P + 3);

    // A verify that rejects at position 1 leaves the whole draft in the cache (held P + 5) ...
    const v = await seq.verify({ keep: 0, append: prompt }, wrongAt(greedy.slice(0, 5), 1), OPTIONS);
    assert.equal(v.held, P + 5);
    assert.equal(v.positions[1]!.accept, 0);
    assert.equal(v.positions[1]!.token, greedy[1]);

    // ... so the next call keeps the prompt and the accepted token, and appends the replacement.
    const d2 = await seq.draft({ keep: P + 1, append: [greedy[1]!] }, 6);
    assert.deepEqual(d2.tokens, greedy.slice(2, 8));
    assert.equal(d2.held, P + 7);

    const v2 = await seq.verify({ keep: d2.held, append: [greedy[7]!] }, greedy.slice(8, 11), OPTIONS);
    assert.deepEqual(
      v2.positions.map((p) => p.accept),
      [1, 1, 1, 0],
    );
    assert.equal(v2.positions[3]!.token, greedy[11]);
    assert.ok(Math.abs(v2.positions[3]!.tokenLogprob - logprobs[11]!) < 1e-4);

    assert.equal(v2.held, P + 11);

    // An edit that appends nothing re-evaluates the last kept token (greedy[10]).
    const d3 = await seq.draft({ keep: v2.held, append: [] }, 2);
    assert.deepEqual(d3.tokens, greedy.slice(11, 13));
  } finally {
    seq.close();
  }
});

test('kept calls run between the steps of plain batched generation without changing either', async () => {
  const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  try {
    // One plain stream (the other slot is the kept sequence's) decodes while the kept sequence
    // verifies and drafts; both give what they give alone.
    const plain = collect(tier, request(prompt, 16));
    const v = await seq.verify({ keep: 0, append: prompt }, greedy.slice(0, 4), OPTIONS);
    assert.deepEqual(
      v.positions.map((p) => p.accept),
      [1, 1, 1, 1, 0],
    );
    const d = await seq.draft({ keep: v.held, append: [v.positions[4]!.token] }, 6);
    assert.deepEqual(d.tokens, greedy.slice(5, 11));
    assert.deepEqual((await plain).tokens, greedy);
  } finally {
    seq.close();
  }
});

test('a draft stops at a stop token; keep beyond what the sequence holds is refused', async () => {
  const stop = greedy[2]!;
  const seq = await tier.openSequence({ stopTokens: [stop] }, new AbortController().signal);
  try {
    const d = await seq.draft({ keep: 0, append: prompt }, 8);
    assert.deepEqual(d.tokens, greedy.slice(0, greedy.indexOf(stop) + 1));
    await assert.rejects(seq.draft({ keep: d.held + 5, append: [1] }, 1), OnnxTierError);
  } finally {
    seq.close();
  }
});

test('an open sequence holds a batch slot; close() and abort free it for plain requests', async () => {
  const aborter = new AbortController();
  const a = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  const b = await tier.openSequence({ stopTokens: [] }, aborter.signal);
  await a.verify({ keep: 0, append: prompt }, greedy.slice(0, 2), OPTIONS);
  await b.verify({ keep: 0, append: prompt }, greedy.slice(0, 2), OPTIONS);

  // Both slots are held: a plain request waits (it has produced nothing after the kept calls
  // below ran, which the worker serves before any batch step).
  let started = false;
  const plain = (async () => {
    const tokens: number[] = [];
    for await (const e of flat(tier.generate(request(prompt, 4), new AbortController().signal))) {
      started = true;
      if (e.kind === 'token') tokens.push(e.token);
    }
    return tokens;
  })();
  await a.verify({ keep: prompt.length + 2, append: [greedy[2]!] }, [], OPTIONS);
  assert.equal(started, false);

  a.close();
  a.close(); // safe twice
  assert.deepEqual(await plain, greedy.slice(0, 4));

  // Aborting b frees its slot and rejects its next call with the abort's reason.
  const reason = new Error('client went away');
  aborter.abort(reason);
  await assert.rejects(b.draft({ keep: 0, append: prompt }, 1), (err) => err === reason);

  // The tier serves `capacity` plain requests together again.
  batchSizes.length = 0;
  const results = await Promise.all(
    Array.from({ length: CAPACITY }, () => collect(tier, request(prompt, 8))),
  );
  for (const r of results) assert.deepEqual(r.tokens, greedy.slice(0, 8));
  assert.equal(Math.max(...batchSizes), CAPACITY);
});

test("a worker that dies rejects the kept sequence's calls with the tier's error", async () => {
  const seq = await tier.openSequence({ stopTokens: [] }, new AbortController().signal);
  await seq.verify({ keep: 0, append: prompt }, [], OPTIONS);
  tier.injectWorkerFault({ kind: 'exit', code: 3 });
  await assert.rejects(
    (async () => {
      // Calls until the worker's exit is seen (the first may still be answered before it).
      for (let i = 0; i < 1000; i++) await seq.draft({ keep: prompt.length, append: [greedy[0]!] }, 1);
    })(),
    (err: unknown) => {
      assert.ok(err instanceof OnnxTierError);
      assert.equal(err.code, 'TG_ONNX_WORKER_FAILED');
      return true;
    },
  );
  seq.close();
});
