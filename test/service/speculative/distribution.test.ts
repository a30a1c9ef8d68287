import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Token } from 'node-llama-cpp';
import { SpeculativeSession } from '../../../src/service/speculative/session.js';
import { llamaRuntime } from '../../../src/text/llama-runtime.js';
import { createRng } from '../../../src/text/sampling.js';
import { Cancellation } from '../../../src/tiers/cancellation.js';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import type { OnnxTier } from '../../../src/tiers/onnx/onnx-tier.js';
import { startLlamaTier, type StartedLlamaTier } from '../../helpers/llama-tier.js';
import { FAMILY_DIR } from '../../helpers/start-gateway.js';
import { makeTier } from '../../tiers/onnx/helpers.js';
import { chiSquare } from './chi-square.js';

/**
 * Speculative sampling keeps the verifier's distribution (docs/speculative.md "What it
 * guarantees"): at temperature 1, the first token of a speculative step (Q4_K_M drafter on
 * llama.cpp, k = 4) over 3,000 seeded samples against the verifier's own next-token
 * probabilities, for two verifiers: llama.cpp on the F32 GGUF (its probabilities as llama.cpp
 * computes them) and the ONNX tier on the FP32 export (its probabilities from its own verify
 * pass, every token's log-probability). Pearson's chi-square at significance 0.001; the same data
 * under the drafter's rule (always accept) must be rejected.
 */
const SAMPLES = 3000;
const ALPHA = 0.001;

let drafter: LlamaCppTier;
let verifier: LlamaCppTier;
let onnx: OnnxTier;

let started: StartedLlamaTier[] = [];

before(async () => {
  started = [
    await startLlamaTier({ model: 'tiny-q4_k_m.gguf', sequences: 1, threads: 1 }, 'draft'),
    await startLlamaTier({ model: 'tiny-f32.gguf', sequences: 1, threads: 1 }, 'main'),
  ];
  [drafter, verifier] = started.map((s) => s.tier) as [LlamaCppTier, LlamaCppTier];
  onnx = makeTier('tiny-fp32.onnx', { maxBatchSize: 2 });
  await onnx.start();
});
after(async () => {
  for (const s of started) await s.close();
  await onnx.close();
});

/** The verifier's next-token probabilities after `prompt`, from llama.cpp itself (its own softmax). */
async function verifierProbabilities(prompt: readonly number[]): Promise<Float64Array> {
  const llama = await llamaRuntime();
  const model = await llama.loadModel({ modelPath: join(FAMILY_DIR, 'tiny-f32.gguf') });
  const context = await model.createContext({ contextSize: 512, sequences: 1 });
  try {
    const seq = context.getSequence();
    const input = prompt.map((t, i) =>
      i === prompt.length - 1
        ? ([t as Token, { generateNext: { probabilities: true } }] as const)
        : (t as Token),
    );
    const out = await seq.controlledEvaluate(input as Parameters<typeof seq.controlledEvaluate>[0]);
    const p = new Float64Array(2048);
    for (const [token, prob] of out[prompt.length - 1]!.next.probabilities!) p[token] = prob;
    return p;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

/** The ONNX tier's next-token probabilities after `prompt`: every token's log-probability from its verify pass. */
async function onnxProbabilities(prompt: readonly number[]): Promise<Float64Array> {
  const seq = await onnx.openSequence({ stopTokens: [] }, new Cancellation());
  try {
    const vocab = 2048;
    const r = await seq.verify({ keep: 0, append: prompt }, [], {
      sampling: { temperature: 1, topP: 1, topK: 0 },
      seed: 1,
      topLogprobs: vocab,
      logprobs: true,
    });
    const p = new Float64Array(vocab);
    for (const t of r.positions[0]!.top ?? []) p[t.token] = Math.exp(t.logprob);
    return p;
  } finally {
    seq.close();
  }
}

test("temperature 1: the first speculative token follows the llama.cpp verifier's probabilities (chi-square)", async () => {
  await distributionMatches(() => verifier, verifierProbabilities);
});

test("temperature 1: the first speculative token follows the ONNX verifier's probabilities (chi-square)", async () => {
  await distributionMatches(() => onnx, onnxProbabilities);
});

async function distributionMatches(
  verifyTier: () => LlamaCppTier | OnnxTier,
  probabilities: (prompt: readonly number[]) => Promise<Float64Array>,
): Promise<void> {
  const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
    prompts: { ids: number[] }[];
  };
  // A prompt whose most likely next token is likely but not certain: both branches of the rule run.
  let prompt: number[] | undefined;
  let p: Float64Array | undefined;
  for (const candidate of golden.prompts.map((g) => g.ids)) {
    const probs = await probabilities(candidate);
    const top = Math.max(...probs);
    if (top > 0.15 && top < 0.9) [prompt, p] = [candidate, probs];
    if (prompt !== undefined) break;
  }
  assert.ok(prompt !== undefined && p !== undefined, 'a golden prompt with a top probability in (0.15, 0.9)');
  const sampling = { temperature: 1, topP: 1, topK: 0 };
  const open = { stopTokens: [] };
  // The drafter's greedy proposal for the first position.
  const probe = await drafter.openSequence(open, new Cancellation());
  const draftToken = (await probe.draft({ keep: 0, append: prompt }, 1)).tokens[0]!;
  probe.close();
  const session = new SpeculativeSession(
    await verifyTier().openSequence(open, new Cancellation()),
    await drafter.openSequence(open, new Cancellation()),
  );
  const first = new Map<number, number>();
  let accepted = 0;
  try {
    for (let s = 0; s < SAMPLES; s++) {
      const rng = createRng(90_001 + s);
      const options = { sampling, seed: 17 * s + 5, topLogprobs: 0, logprobs: false };
      const step = await session.step(prompt, 4, options, () => rng.next());
      const token = step.run.tokens[0]!;
      first.set(token, (first.get(token) ?? 0) + 1);
      if (step.run.accepted > 0) {
        assert.equal(token, draftToken);
        accepted++;
      }
    }
  } finally {
    session.close();
  }
  // The drafter's own rule: its greedy token, every time.
  const always = new Map<number, number>();
  always.set(draftToken, SAMPLES);
  const result = chiSquare(first, p, SAMPLES);
  console.log(
    `# chi-square ${result.statistic.toFixed(1)}, df ${result.degreesOfFreedom}, p-value ${result.pValue.toFixed(4)}; first draft token accepted in ${accepted} of ${SAMPLES} (verifier p(d) = ${p[draftToken]!.toFixed(3)})`,
  );
  assert.ok(accepted > 0 && accepted < SAMPLES, 'both the accepting and the rejecting branch ran');
  assert.ok(
    Math.abs(accepted / SAMPLES - p[draftToken]!) < 0.05,
    'the draft token is accepted about p(d) of the time',
  );
  assert.ok(result.pValue > ALPHA, `rejected at ${ALPHA}: p-value ${result.pValue}`);
  const wrong = chiSquare(always, p, SAMPLES);
  assert.ok(wrong.pValue < ALPHA, `the drafter's rule passed: p-value ${wrong.pValue}`);
}
