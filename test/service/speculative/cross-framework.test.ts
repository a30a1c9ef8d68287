import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { complete, prompts, type Completion } from './harness.js';

/**
 * Speculation across frameworks (docs/speculative.md): llama.cpp Q4_K_M drafts, the ONNX Runtime
 * FP32 tier verifies. Greedy answers equal the ONNX tier alone over 50 prompts, k 2 and 5 and
 * adaptive, streaming and not, over HTTP.
 */
let gw: TestGateway;
before(async () => {
  const spec = (k: number, adaptive: boolean): Record<string, unknown> => ({
    tiers: ['main'],
    speculative: { draft: 'edge', verify: 'main', k, adaptive },
  });
  gw = await startGateway({
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, intraOpThreads: 1 },
    },
    models: { 'tiergate-tiny': { tier: 'main' } },
    routing: { policies: { k2: spec(2, false), k5: spec(5, false), adapt: spec(4, true) } },
  });
});
after(async () => {
  await gw.shutdown();
});

const PROMPTS = prompts(50);
const base = { max_tokens: 24, temperature: 0 };

test('greedy edge>main (llama.cpp drafts, ONNX verifies) equals main alone, token for token', async () => {
  const alone: Completion[] = [];
  for (const prompt of PROMPTS)
    alone.push(await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' }));
  for (const policy of ['k2', 'k5', 'adapt']) {
    for (let i = 0; i < PROMPTS.length; i++) {
      const stream = i % 2 === 0;
      const r = await complete(
        gw,
        { ...base, prompt: PROMPTS[i], stream, stream_options: stream ? { include_usage: true } : undefined },
        { 'x-tiergate-policy': policy },
      );
      assert.equal(r.status, 200);
      if (!stream) assert.equal(r.headers.get('x-tiergate-served-by'), 'edge>main');
      assert.equal(r.text, alone[i]!.text, `${policy}, prompt ${i}${stream ? ', streamed' : ''}`);
      assert.equal(r.completionTokens, alone[i]!.completionTokens);
      assert.equal(r.finish, alone[i]!.finish);
    }
  }
  const proposed = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_draft_tokens_total{pair="edge>main",result="proposed"}',
  );
  const accepted = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_draft_tokens_total{pair="edge>main",result="accepted"}',
  );
  console.log(`# edge>main: draft tokens proposed ${proposed}, accepted ${accepted}`);
  assert.ok(accepted > 0 && accepted <= proposed);
});

test("the pair's latency model learns its time to first token apart from the wait for admission", async () => {
  const router = gw.gateway.router;
  const seen: { tier: string; ttftMs: number; queueMs: number | undefined }[] = [];
  const observe = router.observe.bind(router);
  router.observe = (tier, o) => {
    seen.push({ tier, ttftMs: o.ttftMs, queueMs: o.queueMs });
    observe(tier, o);
  };
  try {
    const r = await complete(gw, { ...base, prompt: PROMPTS[0] }, { 'x-tiergate-policy': 'k5' });
    assert.equal(r.headers.get('x-tiergate-served-by'), 'edge>main');
  } finally {
    router.observe = observe;
  }
  const pair = seen.find((o) => o.tier === 'edge>main');
  assert.ok(pair !== undefined && pair.queueMs !== undefined, JSON.stringify(seen));
  // The wait before the pair's attempt started is only part of its time to first token: drafting
  // and the first verify pass come after it.
  assert.ok(pair.queueMs < pair.ttftMs, JSON.stringify(pair));
});
