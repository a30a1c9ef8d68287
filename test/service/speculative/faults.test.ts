import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import { metricValue, startGateway } from '../../helpers/start-gateway.js';
import { complete, prompts, speculativeConfig } from './harness.js';

/**
 * Faults during speculation (docs/speculative.md "Failures"), injected with the resilience
 * layer's fault filter (src/resilience/fault-tier.ts), which applies to kept sequences too.
 */
const PROMPTS = prompts(12);
const base = { max_tokens: 24, temperature: 0 };

/** The speculation config plus a third tier, `backup` (F32 as well), the policy's fallback. */
function withBackup(fault: Record<string, unknown>): Record<string, unknown> {
  const config = speculativeConfig();
  const tiers = config.tiers as Record<string, unknown>;
  tiers.backup = { kind: 'llamacpp', model: 'tiny-f32.gguf', threads: 1, sequences: 2 };
  return {
    ...config,
    routing: {
      // The backup is predicted slower, so the engine plans the speculative pair first.
      profiles: { backup: { perOutputTokenMs: 50 } },
      policies: {
        k4: {
          tiers: ['main', 'backup'],
          fallback: ['backup'],
          speculative: { draft: 'draft', verify: 'main', k: 4, adaptive: false },
        },
      },
    },
    resilience: { tiers: fault },
  };
}

test('the draft tier failing mid-request: the answer completes on the verify tier, equal to its greedy output', async () => {
  // Every draft sequence fails once it has drafted 5 tokens; one in two fails as it opens.
  const gw = await startGateway(
    withBackup({ draft: { fault: { failAfterTokensRate: 1, failAfterTokens: 5 } } }),
  );
  try {
    for (const prompt of PROMPTS) {
      const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
      for (const stream of [false, true]) {
        const got = await complete(gw, { ...base, prompt, stream }, { 'x-tiergate-policy': 'k4' });
        assert.equal(got.status, 200);
        assert.equal(got.text, want.text, `prompt ${prompt.join(',')}${stream ? ', streamed' : ''}`);
        assert.equal(got.finish, want.finish);
        const servedBy = got.headers.get('x-tiergate-served-by');
        if (!stream && servedBy !== 'main') {
          assert.equal(servedBy, 'draft>main, main');
          assert.match(got.headers.get('x-tiergate-fallbacks') ?? '', /^draft -> main \(fault\)/);
        }
        // Once the draft tier's breaker opens, the engine plans plain decoding on main.
        if (servedBy === 'main')
          assert.doesNotMatch(got.headers.get('x-tiergate-route-reason') ?? '', /speculative/);
      }
    }
    const handedOver = await metricValue(
      gw.baseUrl,
      'tiergate_speculative_requests_total{pair="draft>main",outcome="handed_over_draft_failed"}',
    );
    // The breaker opens after its volume threshold (5 failures) in its window.
    assert.ok(handedOver >= 5, `handed over ${handedOver}`);
    assert.equal(await metricValue(gw.baseUrl, 'tiergate_breaker_state{tier="draft"}'), 2);
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
  } finally {
    await gw.shutdown();
  }
});

test('the draft tier failing as it opens: plain decoding on the verify tier', async () => {
  const gw = await startGateway(withBackup({ draft: { fault: { errorRate: 1 } } }));
  try {
    for (const prompt of PROMPTS.slice(0, 4)) {
      const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
      const got = await complete(gw, { ...base, prompt }, { 'x-tiergate-policy': 'k4' });
      assert.equal(got.text, want.text);
      assert.equal(got.headers.get('x-tiergate-served-by'), 'main');
    }
  } finally {
    await gw.shutdown();
  }
});

test("the verify tier failing mid-request: failover to the plan's next tier, as for a plain attempt", async () => {
  const gw = await startGateway(
    withBackup({ main: { fault: { failAfterTokensRate: 1, failAfterTokens: 7 } } }),
  );
  try {
    for (const prompt of PROMPTS.slice(0, 6)) {
      const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'backup' });
      const got = await complete(gw, { ...base, prompt }, { 'x-tiergate-policy': 'k4' });
      assert.equal(got.status, 200);
      assert.equal(got.text, want.text);
      const servedBy = got.headers.get('x-tiergate-served-by') ?? '';
      assert.match(servedBy, /backup$/);
      if (prompt === PROMPTS[0]) {
        // The first: speculation served the first tokens, then the plan's fallback took over.
        assert.equal(servedBy, 'draft>main, backup');
        assert.match(got.headers.get('x-tiergate-fallbacks') ?? '', /main -> backup \(fault\)/);
        assert.equal(got.headers.get('x-tiergate-continued-from'), 'main');
      }
    }
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
  } finally {
    await gw.shutdown();
  }
});

test('the draft tier hanging mid-request: after the draft limit the verify tier finishes the answer alone', async () => {
  const gw = await startGateway(withBackup({ draft: { fault: { hangRate: 1, hangAfterTokens: 5 } } }));
  try {
    for (const prompt of PROMPTS.slice(0, 3)) {
      const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
      const got = await complete(gw, { ...base, prompt }, { 'x-tiergate-policy': 'k4' });
      assert.equal(got.status, 200);
      assert.equal(got.text, want.text);
      assert.equal(got.headers.get('x-tiergate-served-by'), 'draft>main, main');
      assert.match(got.headers.get('x-tiergate-fallbacks') ?? '', /^draft -> main \(timeout\)/);
    }
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
    const draft = gw.gateway.tiers.get('draft') as LlamaCppTier;
    for (let i = 0; i < 100 && draft.nativeState().sequencesInUse > 0; i++) await sleep(10);
    assert.equal(draft.nativeState().sequencesInUse, 0, 'the hung draft sequences were freed');
  } finally {
    await gw.shutdown();
  }
});

test("the verify tier hanging past the request deadline: 504, both tiers' sequences freed", async () => {
  const gw = await startGateway({
    ...speculativeConfig(),
    resilience: { requestTimeoutMs: 1500, tiers: { main: { fault: { hangRate: 1, hangAfterTokens: 6 } } } },
  });
  try {
    const got = await complete(gw, { ...base, prompt: PROMPTS[0] }, { 'x-tiergate-policy': 'k3' });
    assert.equal(got.status, 504);
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
    const tiers = ['draft', 'main'].map((t) => gw.gateway.tiers.get(t) as LlamaCppTier);
    for (let i = 0; i < 100 && tiers.some((t) => t.nativeState().sequencesInUse > 0); i++) await sleep(10);
    assert.deepEqual(
      tiers.map((t) => t.nativeState().sequencesInUse),
      [0, 0],
    );
  } finally {
    await gw.shutdown();
  }
});
