/**
 * The fallback tier through the real gateway, driven by the official OpenAI SDK: a supervised
 * PyTorch sidecar serving the family FP32 model, selected by model name.
 */
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { APIError } from 'openai';
import { RemoteTier } from '../../../src/tiers/remote/remote-tier.js';
import { echoConfig, metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { FAMILY_DIR, hasFamily, readJson, waitFor } from './helpers.js';

const MODEL = 'tiergate-tiny-fallback';

interface Golden {
  prompts: { ids: number[]; greedy: number[]; greedy_text: string }[];
}

function fallbackTier(gw: TestGateway): RemoteTier {
  const tier = gw.gateway.tiers.get('fallback');
  assert.ok(tier instanceof RemoteTier);
  return tier;
}

describe(
  'OpenAI API on the PyTorch fallback tier',
  { skip: hasFamily() ? false : 'models/tiny not built' },
  () => {
    let gw: TestGateway;

    before(async () => {
      gw = await startGateway({
        family: { dir: 'models/tiny' },
        tiers: {
          fallback: {
            kind: 'remote',
            spawn: true,
            model: 'pytorch-fp32',
            required: true,
            restart: { initialDelayMs: 50, maxDelayMs: 1000 },
          },
        },
        models: { [MODEL]: { tier: 'fallback' } },
      });
    });

    after(async () => {
      await gw.shutdown();
    });

    it('serves a greedy completion equal to the golden FP32 continuation', async () => {
      const golden = readJson<Golden>(join(FAMILY_DIR, 'golden.json'));
      const p = golden.prompts[0]!;
      const res = await gw.client.completions.create({
        model: MODEL,
        prompt: p.ids,
        max_tokens: p.greedy.length,
        temperature: 0,
      });
      assert.equal(res.usage?.prompt_tokens, p.ids.length);
      // The gateway stops at EOS; the golden run did not, so compare up to the first EOS.
      const stops = gw.gateway.tokenizer.stopTokens;
      const cut = p.greedy.findIndex((t) => stops.includes(t));
      const expected = cut === -1 ? p.greedy : p.greedy.slice(0, cut);
      assert.equal(res.usage?.completion_tokens, expected.length);
      assert.equal(res.choices[0]!.text, gw.gateway.tokenizer.detokenize(expected, p.ids));
    });

    it('streams chat completions and reports readiness', async () => {
      const stream = await gw.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'The jury said' }],
        max_tokens: 8,
        temperature: 0.8,
        seed: 3,
        stream: true,
      });
      let text = '';
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.ok(finish === 'length' || finish === 'stop');
      assert.equal(typeof text, 'string');
      const ready = (await (await fetch(`${gw.baseUrl}/readyz`)).json()) as {
        tiers: Record<string, { ready: boolean }>;
      };
      assert.equal(ready.tiers.fallback?.ready, true);
    });

    it('a client abort ends the generation inside the sidecar', async () => {
      const tier = fallbackTier(gw);
      const before = (await tier.fetchInfo()).counters!;
      const ac = new AbortController();
      const stream = await gw.client.completions.create(
        { model: MODEL, prompt: 'The', max_tokens: 400, temperature: 0.9, seed: 1, stream: true },
        { signal: ac.signal },
      );
      let chunks = 0;
      // The SDK ends the iteration quietly after an abort (it treats it as the caller's choice).
      for await (const _chunk of stream) {
        if (++chunks === 3) {
          ac.abort();
          break;
        }
      }
      assert.equal(chunks, 3);
      await waitFor(
        async () => (await tier.fetchInfo()).counters!.generateCancelled > before.generateCancelled,
        10_000,
        'the sidecar to count the cancellation',
      );
      const c1 = (await tier.fetchInfo()).counters!;
      assert.equal(c1.activeRequests, 0);
      assert.ok(c1.tokensGenerated - before.tokensGenerated < 400, 'stopped before max_tokens');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(
        (await tier.fetchInfo()).counters!.tokensGenerated,
        c1.tokensGenerated,
        'and stays stopped',
      );
    });

    it('kill -9 mid-stream: a clean error event, a restart, then the next request succeeds', async () => {
      const tier = fallbackTier(gw);
      const pid = tier.sidecarPid!;
      const stream = await gw.client.completions.create({
        model: MODEL,
        prompt: 'The',
        max_tokens: 400,
        temperature: 0.9,
        seed: 2,
        stream: true,
      });
      let chunks = 0;
      await assert.rejects(async () => {
        for await (const _chunk of stream) if (++chunks === 3) process.kill(pid, 'SIGKILL');
      }, APIError);
      await waitFor(() => tier.sidecarPid !== pid && tier.health().ready, 60_000, 'the restarted sidecar');
      assert.equal(await metricValue(gw.baseUrl, 'tiergate_sidecar_restarts_total{tier="fallback"}'), 1);
      const res = await gw.client.completions.create({
        model: MODEL,
        prompt: 'The',
        max_tokens: 4,
        temperature: 0,
      });
      assert.equal(res.usage?.completion_tokens, 4);
    });
  },
);

describe('a gateway whose sidecar cannot start', () => {
  it('still serves its other tiers, and /readyz says why', async () => {
    const base = echoConfig();
    const gw = await startGateway({
      ...base,
      tiers: {
        ...(base.tiers as Record<string, unknown>),
        fallback: {
          kind: 'remote',
          spawn: true,
          model: 'pytorch-fp32',
          python: '/nonexistent/python3',
          restart: { initialDelayMs: 60_000 },
        },
      },
    });
    try {
      const res = await gw.client.completions.create({
        model: 'tiergate-echo',
        prompt: 'hello',
        max_tokens: 3,
      });
      assert.equal(res.choices.length, 1);
      const r = await fetch(`${gw.baseUrl}/readyz`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { tiers: Record<string, { ready: boolean; detail?: string }> };
      assert.equal(body.tiers.fallback?.ready, false);
      assert.match(body.tiers.fallback?.detail ?? '', /\/nonexistent\/python3: spawn .*ENOENT/);
    } finally {
      await gw.shutdown();
    }
  });
});
