import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Mirror } from '../../../src/service/speculative/session.js';
import { Cancellation } from '../../../src/tiers/cancellation.js';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { GenerateRequest } from '../../../src/tiers/tier.js';
import { startLlamaTier, type StartedLlamaTier } from '../../helpers/llama-tier.js';
import { FAMILY_DIR } from '../../helpers/start-gateway.js';

const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
  prompts: { ids: number[] }[];
};
const greedy = { temperature: 0, topP: 1, topK: 0 };
const verifyGreedy = { sampling: greedy, seed: 1, topLogprobs: 0, logprobs: true };
const open = { stopTokens: [2] };

/** Plain greedy decoding on the tier: the tokens and their log-probabilities. */
async function plain(
  tier: LlamaCppTier,
  tokens: readonly number[],
  n: number,
): Promise<{ tokens: number[]; logprobs: number[] }> {
  const request: GenerateRequest = {
    tokens,
    sampling: greedy,
    maxTokens: n,
    stopTokens: [2],
    topLogprobs: 0,
  };
  const out = { tokens: [] as number[], logprobs: [] as number[] };
  for await (const e of tier.generate(request, new Cancellation())) {
    if (e.kind !== 'tokens') break;
    out.tokens.push(...e.tokens);
    out.logprobs.push(...e.logprobs);
  }
  return out;
}

describe('llama.cpp kept sequence (draft / verify on a cached sequence)', () => {
  let tier: LlamaCppTier;
  let started: StartedLlamaTier;

  before(async () => {
    started = await startLlamaTier({ threads: 1 });
    ({ tier } = started);
  });
  after(() => started.close());

  test('drafts in steps equal plain greedy decoding', async () => {
    for (const prompt of golden.prompts.slice(0, 4).map((p) => p.ids)) {
      const want = await plain(tier, prompt, 20);
      const seq = await tier.openSequence(open, new Cancellation());
      const mirror = new Mirror();
      const committed = [...prompt];
      try {
        while (committed.length - prompt.length < want.tokens.length) {
          const r = await seq.draft(mirror.edit(committed), 3);
          mirror.fed(committed, r.tokens, r.held);
          // The last drafted token is not evaluated yet: the cache holds one fewer.
          assert.equal(r.held, committed.length + r.tokens.length - 1);
          if (r.tokens.length === 0) break;
          committed.push(...r.tokens);
        }
      } finally {
        seq.close();
      }
      assert.deepEqual(committed.slice(prompt.length, prompt.length + want.tokens.length), want.tokens);
    }
  });

  test("verify: the agreeing prefix is accepted with the tier's own log-probabilities, then its token; rolled back by keep", async () => {
    const prompt = golden.prompts[1]!.ids;
    const want = await plain(tier, prompt, 14);
    const seq = await tier.openSequence(open, new Cancellation());
    try {
      const all = await seq.verify({ keep: 0, append: prompt }, want.tokens.slice(0, 5), verifyGreedy);
      assert.equal(all.positions.length, 6);
      assert.deepEqual(
        all.positions.map((p) => p.accept),
        [1, 1, 1, 1, 1, 0],
      );
      assert.equal(all.positions[5]!.token, want.tokens[5]);
      assert.equal(all.held, prompt.length + 5);
      for (let i = 0; i < 5; i++) {
        // One batch of six positions against plain decoding's one token at a time.
        assert.ok(Math.abs(all.positions[i]!.draftLogprob - want.logprobs[i]!) < 1e-3, `position ${i}`);
        assert.ok(Math.abs(all.positions[i]!.tokenLogprob - want.logprobs[i]!) < 1e-3);
      }
      // A draft wrong at its third token: rejected there, the verifier's token instead.
      const wrong = [want.tokens[6]!, want.tokens[7]!, (want.tokens[8]! + 1) % 2048, want.tokens[9]!];
      const r = await seq.verify({ keep: prompt.length + 5, append: [want.tokens[5]!] }, wrong, verifyGreedy);
      assert.deepEqual(
        r.positions.map((p) => p.accept),
        [1, 1, 0, 0, 0],
      );
      assert.equal(r.positions[2]!.token, want.tokens[8]);
      // Roll back past the rejected tokens and go on: the same tokens as plain decoding.
      const r2 = await seq.verify(
        { keep: prompt.length + 8, append: [want.tokens[8]!] },
        want.tokens.slice(9, 12),
        verifyGreedy,
      );
      assert.deepEqual(
        r2.positions.map((p) => p.accept),
        [1, 1, 1, 0],
      );
      assert.equal(r2.positions[3]!.token, want.tokens[12]);
      // Sampling reads the raw logits: the draft token's chance is its probability, in (0, 1).
      const s = await seq.verify(
        { keep: prompt.length, append: [want.tokens[0]!] },
        want.tokens.slice(1, 3),
        {
          sampling: { temperature: 1, topP: 1, topK: 0 },
          seed: 5,
          topLogprobs: 2,
          logprobs: true,
        },
      );
      for (let i = 0; i < 2; i++) {
        const p = s.positions[i]!;
        assert.ok(p.accept > 0 && p.accept < 1, `accept ${p.accept}`);
        assert.ok(
          Math.abs(Math.log(p.accept) - want.logprobs[i + 1]!) < 1e-3,
          'at temperature 1 the chance is p(d)',
        );
        assert.equal(p.top?.length, 2);
      }
      await assert.rejects(seq.draft({ keep: 10_000, append: [1] }, 1), /bad sequence edit/);
    } finally {
      seq.close();
    }
  });

  test('close and abort free the sequence', async () => {
    const a = await tier.openSequence(open, new Cancellation());
    const cancel = new Cancellation();
    const b = await tier.openSequence(open, cancel);
    assert.equal(tier.nativeState().sequencesInUse, 2);
    await a.draft({ keep: 0, append: golden.prompts[0]!.ids }, 4);
    a.close();
    a.close();
    cancel.abort(new Error('client gone'));
    await assert.rejects(b.draft({ keep: 0, append: [1, 2] }, 2), /client gone/);
    for (let i = 0; i < 100 && tier.nativeState().sequencesInUse > 0; i++) await sleep(10);
    assert.equal(tier.nativeState().sequencesInUse, 0);
    assert.equal(tier.nativeState().idleSequencesWithHistory, 0);
    await assert.rejects(a.verify({ keep: 0, append: [1] }, [], verifyGreedy), /closed/);
  });
});
