import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadModelFamily } from '../../../src/family/manifest.js';
import { relativeAccuracy } from '../../../src/routing/accuracy.js';
import type { RoutePlan } from '../../../src/routing/plan.js';
import { FAMILY_DIR, metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { sdkBehaviourTests } from '../../helpers/openai-behaviour.js';
import { readGolden } from './helpers.js';

// The real gateway serving the tiny family on the TensorFlow.js tier the way the shipped config
// does (variant tensorflow-fp32 from the manifest), beside llama.cpp Q4_K_M and ONNX Runtime FP32,
// driven by the official openai SDK. Expectations come from the model, never hard-coded.
const TF = 'tiergate-tiny-tf';
const MAIN = 'tiergate-tiny-main';
const ROUTED = 'tiergate-tiny';
const PROMPT = 'The county grand jury said';
const golden = readGolden();

function config(): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'gguf-q4_k_m', threads: 1, sequences: 2 },
      main: { kind: 'onnx', model: 'onnx-fp32', maxBatchSize: 4 },
      tf: { kind: 'tfjs', model: 'tensorflow-fp32', workers: 1, maxBatchSize: 8 },
    },
    models: { [TF]: { tier: 'tf' }, [MAIN]: { tier: 'main' }, [ROUTED]: { tier: 'edge' } },
    routing: {
      // Priors only, so decisions do not depend on how fast this machine is right now.
      minSamples: 100_000,
      profiles: {
        edge: { ttftMs: 5, ttftPerPromptTokenMs: 0.05, perOutputTokenMs: 1 },
        main: { ttftMs: 20, ttftPerPromptTokenMs: 0.2, perOutputTokenMs: 5 },
        tf: { ttftMs: 10, ttftPerPromptTokenMs: 0.1, perOutputTokenMs: 3 },
      },
      policies: {
        accurate: {
          tiers: ['edge', 'tf', 'main'],
          objective: 'fastest',
          latencyBudgetMs: 30_000,
          onInfeasible: 'reject',
        },
      },
      byModel: { [ROUTED]: 'accurate' },
    },
  };
}

describe('OpenAI API on the TensorFlow.js tier', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config());
  });
  after(async () => gw?.shutdown());

  test('/v1/models lists it; greedy completions equal ONNX FP32 (the tier test compares with PyTorch golden)', async () => {
    const models = await gw.client.models.list();
    assert.ok(models.data.some((m) => m.id === TF));
    for (const p of golden.prompts.slice(0, 3)) {
      const params = { prompt: p.text, max_tokens: 16, temperature: 0 };
      const tf = await gw.client.completions.create({ model: TF, ...params });
      const main = await gw.client.completions.create({ model: MAIN, ...params });
      assert.equal(tf.choices[0]!.text, main.choices[0]!.text, `prompt ${JSON.stringify(p.text)}`);
      assert.equal(tf.usage?.prompt_tokens, p.ids.length);
      assert.equal(tf.usage?.completion_tokens, 16);
    }
    const batches = await metricValue(gw.baseUrl, 'tiergate_tier_batch_size_count{tier="tf"}');
    assert.ok(batches > 0, 'the tf tier reports its batch sizes');
  });

  sdkBehaviourTests(() => gw, TF, PROMPT);

  test('the policy engine routes by its measured accuracy: a floor only FP32 meets goes to tf, the fastest FP32 tier by the priors', async () => {
    const family = loadModelFamily(FAMILY_DIR);
    const tfAccuracy = relativeAccuracy(family, 'tensorflow-fp32')!;
    const edgeAccuracy = relativeAccuracy(family, 'gguf-q4_k_m')!;
    assert.ok(tfAccuracy > edgeAccuracy);
    const floor = (tfAccuracy + edgeAccuracy) / 2;
    const res = await fetch(`${gw.baseUrl}/v1/route/explain`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: ROUTED,
        prompt: PROMPT,
        max_tokens: 16,
        tiergate: { accuracy_floor: floor },
      }),
    });
    assert.equal(res.status, 200);
    const out = (await res.json()) as { plan: RoutePlan };
    assert.equal(out.plan.attempts[0]?.tier, 'tf');
    const edge = out.plan.trace.find((v) => v.tier === 'edge')!;
    assert.equal(edge.skip, 'accuracy');
    const tf = out.plan.trace.find((v) => v.tier === 'tf')!;
    assert.equal(tf.accuracy, tfAccuracy);

    // The request itself is served there.
    const served = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: ROUTED,
        prompt: PROMPT,
        max_tokens: 8,
        temperature: 0,
        tiergate: { accuracy_floor: floor },
      }),
    });
    assert.equal(served.status, 200);
    assert.equal(served.headers.get('x-tiergate-tier'), 'tf');
  });
});
