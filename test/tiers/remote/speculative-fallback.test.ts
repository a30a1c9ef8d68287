import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { complete, prompts, type Completion } from '../../service/speculative/harness.js';

/**
 * The PyTorch sidecar as a speculative verifier behind the real gateway: llama.cpp Q4_K_M drafts,
 * the sidecar verifies over its KeptSequence RPC (src/tiers/remote/remote-kept-sequence.ts), and
 * the greedy answer equals the sidecar's own answer token for token, streaming and not.
 */
let gw: TestGateway;
before(async () => {
  const spec = (k: number, adaptive: boolean): Record<string, unknown> => ({
    tiers: ['fallback'],
    speculative: { draft: 'draft', verify: 'fallback', k, adaptive },
  });
  gw = await startGateway({
    family: { dir: 'models/tiny' },
    tiers: {
      draft: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
      fallback: {
        kind: 'remote',
        spawn: true,
        model: 'pytorch-fp32',
        threads: 1,
        maxConcurrent: 2,
        required: true,
      },
    },
    models: { 'tiergate-tiny': { tier: 'fallback' } },
    routing: { policies: { k4: spec(4, false), adapt: spec(3, true) } },
  });
});
after(async () => {
  await gw.shutdown();
});

test('greedy: draft (llama.cpp) > fallback (PyTorch sidecar) equals the sidecar alone', async () => {
  const PROMPTS = prompts(16);
  const base = { max_tokens: 20, temperature: 0 };
  const alone: Completion[] = [];
  for (const prompt of PROMPTS) {
    const r = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'fallback' });
    assert.equal(r.status, 200);
    alone.push(r);
  }
  for (const policy of ['k4', 'adapt']) {
    for (let i = 0; i < PROMPTS.length; i++) {
      const stream = i % 2 === 1;
      const r = await complete(
        gw,
        { ...base, prompt: PROMPTS[i], stream, stream_options: stream ? { include_usage: true } : undefined },
        { 'x-tiergate-policy': policy },
      );
      assert.equal(r.status, 200);
      if (!stream)
        assert.equal(r.headers.get('x-tiergate-served-by'), 'draft>fallback', `${policy}, prompt ${i}`);
      assert.equal(r.text, alone[i]!.text, `${policy}, prompt ${i}${stream ? ', streamed' : ''}`);
      assert.equal(r.completionTokens, alone[i]!.completionTokens, `${policy}, prompt ${i}: usage`);
      assert.equal(r.finish, alone[i]!.finish);
    }
  }
  const accepted = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_draft_tokens_total{pair="draft>fallback",result="accepted"}',
  );
  assert.ok((accepted ?? 0) > 0, 'some drafted tokens were accepted by the sidecar');
});
