// A main tier that dies after 5 streamed tokens: the executor continues on the next tier from
// prompt + tokens sent, and the OpenAI SDK sees one well-formed stream whose text is exactly the
// greedy FP32 continuation recorded in golden.json (ONNX FP32 → llama.cpp F32, shared tokenizer).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILY_DIR, metricValue, startGateway, type TestGateway } from '../helpers/start-gateway.js';

interface GoldenPrompt {
  text: string;
  greedy: number[];
  greedy_text: string;
}
const golden = JSON.parse(readFileSync(join(FAMILY_DIR, 'golden.json'), 'utf8')) as {
  prompts: GoldenPrompt[];
};
const prompt = golden.prompts[0]!;

let gw: TestGateway;
before(async () => {
  gw = await startGateway({
    family: { dir: 'models/tiny' },
    tiers: {
      main: { kind: 'onnx', model: 'onnx-fp32', workers: 1, maxBatchSize: 4 },
      edge: { kind: 'llamacpp', model: 'tiny-f32.gguf', threads: 1, sequences: 2 },
    },
    models: { 'tiergate-tiny': { tier: 'main' } },
    resilience: {
      tiers: {
        main: { fault: { failAfterTokensRate: 1, failAfterTokens: 5 }, fallbacks: ['edge'] },
      },
    },
  });
});
after(async () => {
  await gw.shutdown();
});

test('a tier dying after 5 tokens yields one seamless stream equal to the greedy FP32 text', async () => {
  const stream = await gw.client.completions.create({
    model: 'tiergate-tiny',
    prompt: prompt.text,
    max_tokens: prompt.greedy.length,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  const finishes: (string | null)[] = [];
  let usage: { completion_tokens: number } | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason !== null) finishes.push(c.finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, prompt.greedy_text);
  assert.deepEqual(finishes, ['length'], 'exactly one finish');
  assert.equal(usage?.completion_tokens, prompt.greedy.length, 'tokens from both tiers are counted once');
  const fallbacks = await metricValue(
    gw.baseUrl,
    'tiergate_fallbacks_total{from="main",to="edge",cause="fault",stage="mid_stream"}',
  );
  assert.equal(fallbacks, 1);
});

test('a non-streamed request names the continuation in its headers', async () => {
  const res = await fetch(`${gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiergate-tiny', prompt: prompt.text, max_tokens: 12, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-tiergate-continued-from'), 'main');
  assert.equal(res.headers.get('x-tiergate-served-by'), 'main, edge');
  const body = (await res.json()) as { choices: { text: string }[] };
  assert.ok(prompt.greedy_text.startsWith(body.choices[0]!.text), body.choices[0]!.text);
});
