import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LlamaCppTier } from '../../../src/tiers/llamacpp/llamacpp-tier.js';
import { metricValue, type TestGateway } from '../../helpers/start-gateway.js';
import { complete, prompts, startSpeculative, type Completion } from './harness.js';

/**
 * Greedy speculative decoding (draft Q4_K_M, verify F32, both llama.cpp) answers exactly what
 * the verify tier alone answers, over 60 prompts, several k, streaming and not, through the
 * gateway's HTTP API (docs/speculative.md "What it guarantees").
 */
let gw: TestGateway;
before(async () => {
  gw = await startSpeculative();
});
after(async () => {
  await gw.shutdown();
});

const PROMPTS = prompts(60);
const base = { max_tokens: 24, temperature: 0 };

test('greedy: speculative equals the verifier alone, token for token, for k 1, 3, 6 and adaptive', async () => {
  const alone: Completion[] = [];
  for (const prompt of PROMPTS) {
    const r = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('x-tiergate-route-reason') ?? '', /^override/);
    alone.push(r);
  }
  let differs = 0;
  for (const policy of ['k1', 'k3', 'k6', 'adapt']) {
    for (let i = 0; i < PROMPTS.length; i++) {
      const stream = i % 2 === 1;
      const r = await complete(
        gw,
        { ...base, prompt: PROMPTS[i], stream, stream_options: stream ? { include_usage: true } : undefined },
        { 'x-tiergate-policy': policy },
      );
      assert.equal(r.status, 200);
      if (!stream) {
        assert.match(
          r.headers.get('x-tiergate-route-reason') ?? '',
          /speculative draft>main k=\d+, predicted \d+ms/,
        );
        assert.equal(r.headers.get('x-tiergate-served-by'), 'draft>main');
      }
      const want = alone[i]!;
      if (r.text !== want.text) differs++;
      assert.equal(r.text, want.text, `${policy}, prompt ${i}${stream ? ', streamed' : ''}`);
      assert.equal(r.completionTokens, want.completionTokens, `${policy}, prompt ${i}: usage`);
      assert.equal(r.finish, want.finish);
    }
  }
  assert.equal(differs, 0);
  const proposed = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_draft_tokens_total{pair="draft>main",result="proposed"}',
  );
  const accepted = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_draft_tokens_total{pair="draft>main",result="accepted"}',
  );
  assert.ok(
    proposed > 0 && accepted > 0 && accepted <= proposed,
    `proposed ${proposed}, accepted ${accepted}`,
  );
  console.log(
    `# draft tokens proposed ${proposed}, accepted ${accepted} (${((100 * accepted) / proposed).toFixed(1)}%)`,
  );
});

test("greedy logprobs are the verifier's; stop sequences and max_tokens end as for the verifier alone", async () => {
  for (const prompt of PROMPTS.slice(0, 12)) {
    const want = await complete(gw, { ...base, prompt, logprobs: 2 }, { 'x-tiergate-tier': 'main' });
    const got = await complete(gw, { ...base, prompt, logprobs: 2 }, { 'x-tiergate-policy': 'k3' });
    assert.equal(got.text, want.text);
    assert.equal(got.logprobs?.length, want.logprobs?.length);
    got.logprobs!.forEach((lp, i) =>
      assert.ok(Math.abs(lp - want.logprobs![i]!) < 1e-3, `logprob ${i}: ${lp} vs ${want.logprobs![i]}`),
    );
    // A stop string taken from the middle of the verifier's answer.
    const words = want.text.trim().split(/\s+/);
    if (words.length < 4) continue;
    const stop = ` ${words[2]}`;
    const a = await complete(gw, { ...base, prompt, stop: [stop] }, { 'x-tiergate-tier': 'main' });
    const b = await complete(
      gw,
      { ...base, prompt, stop: [stop], stream: true },
      { 'x-tiergate-policy': 'k6' },
    );
    assert.equal(b.text, a.text);
    assert.equal(b.finish, a.finish);
    const short = await complete(gw, { ...base, prompt, max_tokens: 5 }, { 'x-tiergate-policy': 'k6' });
    assert.equal(short.completionTokens, 5);
    assert.equal(short.finish, 'length');
  }
});

test("a client that goes away mid-stream frees both tiers' sequences and slots", async () => {
  const draft = gw.gateway.tiers.get('draft') as LlamaCppTier;
  const main = gw.gateway.tiers.get('main') as LlamaCppTier;
  for (let round = 0; round < 3; round++) {
    const abort = new AbortController();
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tiergate-policy': 'k3' },
      body: JSON.stringify({
        model: 'tiergate-tiny',
        prompt: PROMPTS[round],
        max_tokens: 400,
        temperature: 0,
        stream: true,
      }),
      signal: abort.signal,
    });
    assert.match(res.headers.get('x-tiergate-route-reason') ?? '', /speculative draft>main/);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    // Both kept sequences are open while the answer streams.
    assert.equal(draft.nativeState().sequencesInUse, 1);
    assert.equal(main.nativeState().sequencesInUse, 1);
    abort.abort();
    await reader.read().catch(() => undefined);
    for (let i = 0; i < 200 && gw.service.occupancy().executions > 0; i++) await sleep(10);
    for (
      let i = 0;
      i < 200 && draft.nativeState().sequencesInUse + main.nativeState().sequencesInUse > 0;
      i++
    )
      await sleep(10);
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
    assert.equal(draft.nativeState().sequencesInUse, 0);
    assert.equal(main.nativeState().sequencesInUse, 0);
    assert.equal(
      draft.nativeState().idleSequencesWithHistory + main.nativeState().idleSequencesWithHistory,
      0,
    );
  }
});

test("the pair's latency model learns from speculated requests; explain shows it", async () => {
  const res = await fetch(`${gw.baseUrl}/v1/route/explain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tiergate-policy': 'k3' },
    body: JSON.stringify({ model: 'tiergate-tiny', prompt: 'The jury said', max_tokens: 24 }),
  });
  const body = (await res.json()) as {
    plan: {
      reason: string;
      attempts: { tier: string; predictedMs: number }[];
      speculative?: { predictedMs: number };
    };
    profiles: Record<string, { live: boolean; samples: number; perOutputTokenMs: number }>;
  };
  const pair = body.profiles['draft>main'];
  assert.ok(pair !== undefined && pair.live && pair.samples >= 8, JSON.stringify(pair));
  assert.equal(body.plan.attempts[0]?.tier, 'main');
  assert.equal(body.plan.speculative?.predictedMs, body.plan.attempts[0]?.predictedMs);
  assert.match(body.plan.reason, new RegExp(`predicted ${body.plan.speculative?.predictedMs}ms`));
});

test('speculation gives way to plain decoding on the verify tier once it is saturated; the answer is unchanged', async () => {
  const prompt = PROMPTS[5]!;
  const want = await complete(gw, { prompt, max_tokens: 200, temperature: 0 }, { 'x-tiergate-tier': 'main' });
  const before = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_requests_total{pair="draft>main",outcome="handed_over_saturated"}',
  );
  const res = await fetch(`${gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tiergate-policy': 'busy' },
    body: JSON.stringify({ model: 'tiergate-tiny', prompt, max_tokens: 200, temperature: 0, stream: true }),
  });
  const reader = res.body!.getReader();
  let raw = new TextDecoder().decode((await reader.read()).value);
  // A second stream on main while the speculative one runs: main's load passes stopAtLoad.
  const other = complete(
    gw,
    { prompt: PROMPTS[6], max_tokens: 60, temperature: 0 },
    { 'x-tiergate-tier': 'main' },
  );
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    raw += new TextDecoder().decode(value);
  }
  assert.equal((await other).status, 200);
  let text = '';
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    text += (JSON.parse(line.slice(6)) as { choices: { text: string }[] }).choices[0]?.text ?? '';
  }
  assert.equal(text, want.text);
  const after = await metricValue(
    gw.baseUrl,
    'tiergate_speculative_requests_total{pair="draft>main",outcome="handed_over_saturated"}',
  );
  assert.equal(after - (Number.isNaN(before) ? 0 : before), 1);
});

test('sampling through the gateway: a seeded speculative answer repeats, other seeds differ', async () => {
  const texts = new Set<string>();
  for (const seed of [7, 8, 9, 10]) {
    const body = { prompt: PROMPTS[3], max_tokens: 24, temperature: 1, seed };
    const a = await complete(gw, body, { 'x-tiergate-policy': 'k3' });
    const b = await complete(gw, { ...body, stream: true }, { 'x-tiergate-policy': 'k3' });
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('x-tiergate-served-by'), 'draft>main');
    assert.equal(b.text, a.text, `seed ${seed}`);
    texts.add(a.text);
  }
  assert.ok(texts.size > 1, 'different seeds, different samples');
});
