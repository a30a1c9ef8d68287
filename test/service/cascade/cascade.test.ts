import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { complete, prompts } from '../speculative/harness.js';

/**
 * The cascade strategy (docs/cascade.md) on two real llama.cpp tiers of the tiny family: `edge`
 * on Q4_K_M answers first, `main` on F32 is the escalation. Policies differ only in the threshold:
 * `keep` always keeps edge's answer, `escalate` never does, `judge` decides per prompt.
 */
const PROBE = 4;
const JUDGE = -2.2;
const MARGIN = 0.15;
const PROMPTS = prompts(16);
const base = { max_tokens: 16, temperature: 0 };

function cascadeConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const policy = (minMeanLogprob: number): Record<string, unknown> => ({
    tiers: ['main'],
    cascade: { first: 'edge', then: 'main', minMeanLogprob, probeTokens: PROBE },
  });
  return {
    family: { dir: 'models/tiny' },
    tiers: {
      edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
      main: { kind: 'llamacpp', model: 'tiny-f32.gguf', threads: 1, sequences: 2 },
    },
    models: { 'tiergate-tiny': { tier: 'main' } },
    routing: {
      policies: {
        keep: policy(-1000),
        escalate: policy(0),
        judge: policy(JUDGE),
        margin: {
          tiers: ['main'],
          cascade: { first: 'edge', then: 'main', minMargin: MARGIN, probeTokens: PROBE },
        },
      },
    },
    ...extra,
  };
}

let gw: TestGateway;
before(async () => {
  gw = await startGateway(cascadeConfig());
});
after(() => gw.shutdown());

const policy = (name: string): Record<string, string> => ({ 'x-tiergate-policy': name });

test("kept: the answer is the first tier's own, streamed or not, and named as served by it", async () => {
  for (const prompt of PROMPTS.slice(0, 8)) {
    const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'edge' });
    for (const stream of [false, true]) {
      const got = await complete(gw, { ...base, prompt, stream }, policy('keep'));
      assert.equal(got.status, 200);
      assert.equal(got.text, want.text, `prompt ${prompt.join(',')}${stream ? ', streamed' : ''}`);
      if (!stream) assert.equal(got.completionTokens, want.completionTokens);
      assert.match(got.headers.get('x-tiergate-route-reason') ?? '', /cascade edge first/);
      if (!stream) assert.equal(got.headers.get('x-tiergate-served-by'), 'edge');
    }
  }
  assert.equal(
    await metricValue(gw.baseUrl, 'tiergate_cascade_requests_total{cascade="edge>>main",outcome="kept"}'),
    16,
  );
});

test("escalated: the answer is the escalation tier's alone; the probe tokens are discarded, never sent", async () => {
  const before = await metricValue(
    gw.baseUrl,
    'tiergate_cascade_discarded_tokens_total{cascade="edge>>main"}',
  );
  for (const prompt of PROMPTS.slice(0, 8)) {
    const want = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
    for (const stream of [false, true]) {
      const got = await complete(gw, { ...base, prompt, stream, logprobs: 1 }, policy('escalate'));
      assert.equal(got.status, 200);
      assert.equal(got.text, want.text, `prompt ${prompt.join(',')}${stream ? ', streamed' : ''}`);
      if (!stream) assert.equal(got.completionTokens, want.completionTokens);
      if (!stream) assert.equal(got.headers.get('x-tiergate-served-by'), 'main');
    }
  }
  assert.equal(
    await metricValue(
      gw.baseUrl,
      'tiergate_cascade_requests_total{cascade="edge>>main",outcome="escalated"}',
    ),
    16,
  );
  const discarded =
    (await metricValue(gw.baseUrl, 'tiergate_cascade_discarded_tokens_total{cascade="edge>>main"}')) -
    (Number.isNaN(before) ? 0 : before);
  assert.ok(discarded >= 16 && discarded <= 16 * PROBE, `discarded ${discarded}`);
});

test("judged: each answer is edge's when the mean logprob of its first tokens reaches the threshold, else main's", async () => {
  let kept = 0;
  let escalated = 0;
  for (const prompt of PROMPTS) {
    const edge = await complete(gw, { ...base, prompt, logprobs: 0 }, { 'x-tiergate-tier': 'edge' });
    const lps = edge.logprobs!.slice(0, PROBE);
    const mean = lps.reduce((s, x) => s + x, 0) / lps.length;
    if (Math.abs(mean - JUDGE) < 1e-3) continue; // too close to call from rounded JSON
    const main = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
    const got = await complete(gw, { ...base, prompt }, policy('judge'));
    const want = mean >= JUDGE ? edge : main;
    if (mean >= JUDGE) kept++;
    else escalated++;
    assert.equal(got.text, want.text, `prompt ${prompt.join(',')}: mean ${mean.toFixed(3)}`);
  }
  // The threshold sits where the tiny family's prompts fall on both sides.
  assert.ok(kept > 0 && escalated > 0, `kept ${kept}, escalated ${escalated}`);
});

test("margin rule: edge's answer is kept when its top token leads the runner-up by MARGIN at every probe token; the client gets only the alternatives it asked for", async () => {
  let kept = 0;
  let escalated = 0;
  for (const prompt of PROMPTS) {
    const edge = await raw({ ...base, prompt, logprobs: 2 }, { 'x-tiergate-tier': 'edge' });
    const margins = edge.top.slice(0, PROBE).map((alternatives) => {
      const best = Object.values(alternatives).sort((a, b) => b - a);
      return best[0]! - best[1]!;
    });
    const least = Math.min(...margins);
    if (Math.abs(least - MARGIN) < 1e-3) continue;
    const main = await complete(gw, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
    const got = await raw({ ...base, prompt, logprobs: 1 }, policy('margin'));
    if (least >= MARGIN) {
      kept++;
      assert.equal(got.text, edge.text);
      assert.equal(got.servedBy, 'edge');
    } else {
      escalated++;
      assert.equal(got.text, main.text);
    }
    // One alternative per token, as asked, though the rule read two.
    assert.ok(got.top.every((alternatives) => Object.keys(alternatives).length <= 1));
  }
  assert.ok(kept > 0 && escalated > 0, `kept ${kept}, escalated ${escalated}`);
});

/** A completion with its logprobs' alternatives (OpenAI's top_logprobs: token text → logprob). */
async function raw(
  body: Record<string, unknown>,
  headers: Record<string, string>,
): Promise<{ text: string; top: Record<string, number>[]; servedBy: string | null }> {
  const res = await fetch(`${gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'tiergate-tiny', ...body }),
  });
  const json = (await res.json()) as {
    choices: { text: string; logprobs: { top_logprobs: Record<string, number>[] } }[];
  };
  return {
    text: json.choices[0]!.text,
    top: json.choices[0]!.logprobs.top_logprobs,
    servedBy: res.headers.get('x-tiergate-served-by'),
  };
}

test('a client that goes away during the probe frees the first tier and the request', async () => {
  for (let round = 0; round < 3; round++) {
    const abort = new AbortController();
    const pending = fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...policy('escalate') },
      body: JSON.stringify({
        model: 'tiergate-tiny',
        prompt: PROMPTS[round],
        max_tokens: 400,
        temperature: 0,
        stream: true,
      }),
      signal: abort.signal,
    });
    await sleep(5);
    abort.abort();
    await pending.then((r) => r.text()).catch(() => undefined);
    for (let i = 0; i < 300 && gw.service.occupancy().executions > 0; i++) await sleep(10);
    assert.deepEqual(gw.service.occupancy(), { executions: 0, running: 0, queued: 0 });
  }
  // The tiers still serve.
  const after = await complete(gw, { ...base, prompt: PROMPTS[0] }, policy('keep'));
  assert.equal(after.status, 200);
});

test('the first tier failing before its verdict escalates; failing after it continues mid-stream on main', async () => {
  const faulty = await startGateway(
    cascadeConfig({
      resilience: { tiers: { edge: { fault: { failAfterTokensRate: 1, failAfterTokens: 2 } } } },
    }),
  );
  try {
    for (const prompt of PROMPTS.slice(0, 4)) {
      const want = await complete(faulty, { ...base, prompt }, { 'x-tiergate-tier': 'main' });
      const got = await complete(faulty, { ...base, prompt }, policy('keep'));
      assert.equal(got.status, 200);
      assert.equal(got.text, want.text);
      assert.match(got.headers.get('x-tiergate-fallbacks') ?? '', /^edge -> main \(fault\)/);
    }
    assert.ok(
      (await metricValue(
        faulty.baseUrl,
        'tiergate_cascade_requests_total{cascade="edge>>main",outcome="first_failed"}',
      )) >= 4,
    );
  } finally {
    await faulty.shutdown();
  }
  // Fails after 10 tokens: the probe (4) kept edge's answer, main continues from the 10 sent.
  const late = await startGateway(
    cascadeConfig({
      resilience: { tiers: { edge: { fault: { failAfterTokensRate: 1, failAfterTokens: 10 } } } },
    }),
  );
  try {
    for (const prompt of PROMPTS.slice(0, 4)) {
      const got = await complete(late, { ...base, prompt }, policy('keep'));
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('x-tiergate-served-by'), 'edge, main');
      assert.equal(got.headers.get('x-tiergate-continued-from'), 'edge');
      // Edge's first ten tokens, then main's continuation: the answer is as long as asked.
      assert.equal(got.completionTokens, base.max_tokens);
    }
  } finally {
    await late.shutdown();
  }
});
