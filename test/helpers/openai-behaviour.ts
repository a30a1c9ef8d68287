import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestGateway } from './start-gateway.js';

/**
 * The OpenAI-SDK behaviours every generating tier must show through the gateway, registered as
 * tests inside the caller's describe(): streamed deltas equal the whole text for a seed, seeded
 * sampling repeats, logprobs name the chosen token and its best alternatives.
 */
export function sdkBehaviourTests(gateway: () => TestGateway, model: string, prompt: string): void {
  test('streamed deltas joined equal the non-streamed text for the same seed', async () => {
    const gw = gateway();
    const params = { model, prompt, max_tokens: 24, temperature: 0.9, seed: 1234 };
    const whole = await gw.client.completions.create(params);
    const stream = await gw.client.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: { completion_tokens: number } | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, whole.choices[0]!.text);
    assert.equal(finish, whole.choices[0]!.finish_reason);
    assert.equal(usage?.completion_tokens, whole.usage?.completion_tokens);
  });

  test('seeded sampling is reproducible and different seeds differ somewhere', async () => {
    const gw = gateway();
    const run = (seed: number) =>
      gw.client.completions.create({ model, prompt, max_tokens: 24, temperature: 1, seed });
    const [a, b] = [await run(7), await run(7)];
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
    const others = await Promise.all([8, 9, 10].map(run));
    assert.ok(
      others.some((o) => o.choices[0]!.text !== a.choices[0]!.text),
      'different seeds gave identical text',
    );
  });

  test('logprobs: the chosen token and top alternatives, best first', async () => {
    const res = await gateway().client.completions.create({
      model,
      prompt,
      max_tokens: 5,
      temperature: 0,
      logprobs: 3,
    });
    const lp = res.choices[0]!.logprobs!;
    assert.equal(lp.tokens?.length, res.usage?.completion_tokens);
    assert.equal(lp.tokens?.join(''), res.choices[0]!.text);
    for (const [i, top] of (lp.top_logprobs ?? []).entries()) {
      // A dict keyed by token text (OpenAI's legacy shape; integer-like keys such as "1" are
      // listed first by JavaScript), so its order says nothing: compare values instead.
      const values = Object.values(top);
      assert.ok(values.length >= 1 && values.length <= 3);
      const chosen = lp.token_logprobs?.[i] ?? 1;
      assert.ok(chosen <= 0);
      // Greedy picks the most likely token: it is the best of the alternatives.
      assert.ok(Math.abs(Math.max(...values) - chosen) < 1e-6, `${chosen} vs ${JSON.stringify(top)}`);
    }
  });
}
