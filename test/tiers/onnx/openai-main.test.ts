import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { metricValue, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { familyContextLength, readGolden } from './helpers.js';
import { sdkBehaviourTests } from '../../helpers/openai-behaviour.js';

// The real gateway with the ONNX Runtime main tier (FP32) and the llama.cpp edge tier (F32),
// driven by the official openai SDK. Expectations come from the model itself, never hard-coded.
const MAIN = 'tiergate-main';
const EDGE = 'tiergate-edge';
const PROMPT = 'The county grand jury said';
const golden = readGolden();

function config(): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    tokenizer: { kind: 'gguf', model: 'models/tiny/tiny-f32.gguf' },
    tiers: {
      main: {
        kind: 'onnx',
        model: 'models/tiny/tiny-fp32.onnx',
        contextLength: familyContextLength(),
        maxBatchSize: 16,
        maxQueueDelayMs: 2,
      },
      edge: { kind: 'llamacpp', model: 'models/tiny/tiny-f32.gguf', threads: 1, sequences: 2 },
    },
    models: { [MAIN]: { tier: 'main' }, [EDGE]: { tier: 'edge' } },
  };
}

describe('OpenAI API on the ONNX Runtime main tier', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config());
  });
  after(async () => gw.shutdown());

  test('greedy completions equal the edge tier F32 ones (same model, other framework)', async () => {
    for (const p of golden.prompts.slice(0, 3)) {
      const params = { prompt: p.text, max_tokens: 24, temperature: 0 };
      const main = await gw.client.completions.create({ model: MAIN, ...params });
      const edge = await gw.client.completions.create({ model: EDGE, ...params });
      assert.equal(main.choices[0]!.text, edge.choices[0]!.text, `prompt ${JSON.stringify(p.text)}`);
      assert.equal(main.usage?.prompt_tokens, p.ids.length);
    }
  });

  test('the x-tiergate-tier header selects the main tier for another model name', async () => {
    const params = { model: EDGE, prompt: PROMPT, max_tokens: 8, temperature: 0 };
    const viaHeader = await gw.client.completions.create(params, { headers: { 'x-tiergate-tier': 'main' } });
    const direct = await gw.client.completions.create({ ...params, model: MAIN });
    assert.equal(viaHeader.choices[0]!.text, direct.choices[0]!.text);
    const before = await metricValue(gw.baseUrl, 'tiergate_tier_batch_size_count{tier="main"}');
    assert.ok(before > 0, 'the main tier reports its batch sizes');
  });

  sdkBehaviourTests(() => gw, MAIN, PROMPT);

  test('chat: OpenAI shapes, streaming equals non-streaming', async () => {
    const params = {
      model: MAIN,
      messages: [{ role: 'user' as const, content: 'Tell me about the jury.' }],
      max_completion_tokens: 16,
      temperature: 0.7,
      seed: 99,
    };
    const res = await gw.client.chat.completions.create(params);
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0]!.message.role, 'assistant');
    assert.ok(['stop', 'length'].includes(res.choices[0]!.finish_reason));
    const stream = await gw.client.chat.completions.create({ ...params, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, res.choices[0]!.message.content);
  });

  test('/healthz keeps answering quickly while the main tier serves 16 concurrent streams', async (t) => {
    // Long prompts (token arrays of ~400 tokens) make the work heavy: 16 prefills of this size
    // on the main thread would stall its loop for 16 × the time of one, measured here first.
    const long: number[] = [golden.bos_id];
    while (long.length < 400) long.push(...golden.prompts[4]!.ids.slice(1));
    const t0Prefill = performance.now();
    await gw.client.completions.create({ model: MAIN, prompt: long, max_tokens: 1 });
    const prefillMs = performance.now() - t0Prefill;
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    let streaming = true;
    const healthLatencies: number[] = [];
    const prober = (async () => {
      while (streaming) {
        const t0 = performance.now();
        const res = await fetch(`${gw.baseUrl}/healthz`);
        assert.equal(res.status, 200);
        await res.text();
        healthLatencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    histogram.enable();
    const one = async (i: number): Promise<number> => {
      const stream = await gw.client.completions.create({
        model: MAIN,
        prompt: [...long, golden.prompts[i % golden.prompts.length]!.ids[1]!],
        max_tokens: 32,
        temperature: 0.8,
        seed: i,
        stream: true,
      });
      let chunks = 0;
      for await (const _chunk of stream) chunks++;
      return chunks;
    };
    const t0 = performance.now();
    const chunks = await Promise.all(Array.from({ length: 16 }, (_, i) => one(i)));
    const busyMs = performance.now() - t0;
    histogram.disable();
    streaming = false;
    await prober;
    assert.ok(chunks.every((c) => c > 0));
    const maxDelayMs = histogram.max / 1e6;
    const p99DelayMs = histogram.percentile(99) / 1e6;
    const worstHealth = Math.max(...healthLatencies);
    t.diagnostic(
      `one ~400-token prefill ${prefillMs.toFixed(0)} ms; busy ${busyMs.toFixed(0)} ms; event-loop delay p99 ${p99DelayMs.toFixed(1)} ms, max ${maxDelayMs.toFixed(1)} ms; ` +
        `${healthLatencies.length} /healthz probes, slowest ${worstHealth.toFixed(1)} ms`,
    );
    // Generous bounds (shared, busy 2-core machine): a loop that waited on inference would show
    // a stall of the whole admission round (16 prefills); we allow well under half of it at worst.
    const bound = 6 * prefillMs;
    assert.ok(
      healthLatencies.length >= 5,
      `only ${healthLatencies.length} probes in ${busyMs.toFixed(0)} ms`,
    );
    assert.ok(
      p99DelayMs < bound / 2,
      `event-loop delay p99 ${p99DelayMs.toFixed(1)} ms (bound ${bound / 2} ms)`,
    );
    assert.ok(maxDelayMs < bound, `event-loop delay max ${maxDelayMs.toFixed(1)} ms (bound ${bound} ms)`);
    assert.ok(worstHealth < bound, `slowest /healthz ${worstHealth.toFixed(1)} ms (bound ${bound} ms)`);
  });

  test('aborting a stream frees its batch slot at once', async () => {
    const controller = new AbortController();
    const stream = await gw.client.completions.create(
      { model: MAIN, prompt: PROMPT, max_tokens: 400, stream: true },
      { signal: controller.signal },
    );
    // The SDK ends an aborted stream quietly (no rejection); the server must notice either way.
    let chunks = 0;
    try {
      for await (const _chunk of stream) {
        if (++chunks === 2) controller.abort();
      }
    } catch {
      // also fine: some SDK versions reject with an AbortError
    }
    assert.ok(chunks >= 2 && chunks < 400);
    // The counter appears once the server has seen the closed socket (NaN until then).
    let aborted = Number.NaN;
    for (let i = 0; i < 100 && !(aborted >= 1); i++) {
      aborted = await metricValue(gw.baseUrl, 'tiergate_requests_aborted_total{tier="main"}');
      if (!(aborted >= 1)) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(aborted, 1);
    const next = await gw.client.completions.create({ model: MAIN, prompt: PROMPT, max_tokens: 3 });
    assert.equal(next.choices.length, 1);
  });
});
