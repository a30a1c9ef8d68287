import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SpeculativeSession } from '../../../src/service/speculative/session.js';
import { createRng } from '../../../src/text/sampling.js';
import { Cancellation } from '../../../src/tiers/cancellation.js';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { GenerateRequest } from '../../../src/tiers/tier.js';
import { startLlamaTier, type StartedLlamaTier } from '../../helpers/llama-tier.js';
import { prompts } from './harness.js';

/**
 * The session on real kept sequences, without the gateway: steps with and without lookahead give
 * the verifier's greedy tokens, and with a drafter that always agrees (the same F32 model on both
 * sides) the lookahead block is what the next step drafts.
 */
let drafter: LlamaCppTier;
let verifier: LlamaCppTier;
const greedy = { temperature: 0, topP: 1, topK: 0 };

let started: StartedLlamaTier[] = [];

before(async () => {
  started = [
    await startLlamaTier({ model: 'tiny-f32.gguf', sequences: 1, threads: 1 }, 'draft'),
    await startLlamaTier({ model: 'tiny-f32.gguf', sequences: 1, threads: 1 }, 'main'),
  ];
  [drafter, verifier] = started.map((s) => s.tier) as [LlamaCppTier, LlamaCppTier];
});
after(async () => {
  for (const s of started) await s.close();
});

async function plain(tokens: readonly number[], n: number): Promise<number[]> {
  const request: GenerateRequest = { tokens, sampling: greedy, maxTokens: n, stopTokens: [], topLogprobs: 0 };
  const out: number[] = [];
  for await (const e of verifier.generate(request, new Cancellation()))
    if (e.kind === 'tokens') out.push(...e.tokens);
  return out;
}

test("greedy steps with and without lookahead give the verifier's tokens; an agreeing drafter's lookahead is used", async () => {
  for (const lookahead of [false, true]) {
    for (const prompt of prompts(4)) {
      const want = await plain(prompt, 40);
      const open = { stopTokens: [] };
      const session = new SpeculativeSession(
        await verifier.openSequence(open, new Cancellation()),
        await drafter.openSequence(open, new Cancellation()),
      );
      const committed = [...prompt];
      const rng = createRng(1);
      let steps = 0;
      try {
        while (committed.length - prompt.length < want.length) {
          const options = { sampling: greedy, seed: steps, topLogprobs: 0, logprobs: false };
          const step = await session.step(committed, 4, options, () => rng.next(), 0, lookahead);
          committed.push(...step.run.tokens);
          steps++;
        }
      } finally {
        session.close();
      }
      assert.deepEqual(committed.slice(prompt.length, prompt.length + want.length), want);
      if (lookahead)
        assert.equal(session.lookaheadUsed, steps - 1, 'every step after the first drafted ahead');
      else assert.equal(session.lookaheadUsed, 0);
    }
  }
});
