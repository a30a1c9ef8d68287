import assert from 'node:assert/strict';
import { test } from 'node:test';
import { echoConfig, metricValue, startGateway } from '../helpers/start-gateway.js';

test('x-request-id is honoured and returned', async (t) => {
  const gw = await startGateway(echoConfig());
  t.after(() => gw.shutdown());
  const res = await fetch(`${gw.baseUrl}/v1/models`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(res.headers.get('x-request-id'), 'abc-123');
  const other = await fetch(`${gw.baseUrl}/v1/models`);
  assert.match(other.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('metrics count requests, tokens by type, TTFT and in-flight', async (t) => {
  const gw = await startGateway(echoConfig());
  t.after(() => gw.shutdown());
  const res = await gw.client.completions.create({
    model: 'tiergate-echo',
    prompt: 'hello world',
    max_tokens: 5,
  });
  assert.equal(res.usage?.prompt_tokens, 12); // BOS + 11 bytes with the byte tokenizer
  const m = (s: string) => metricValue(gw.baseUrl, s);
  assert.equal(await m('tiergate_tokens_total{tier="echo",type="input"}'), 12);
  assert.equal(await m('tiergate_tokens_total{tier="echo",type="output"}'), 5);
  assert.equal(await m('tiergate_requests_in_flight{tier="echo"}'), 0);
  assert.equal(await m('tiergate_time_to_first_token_seconds_count{tier="echo"}'), 1);
  assert.equal(await m('tiergate_requests_total{route="/v1/completions",tier="echo",status="200"}'), 1);
});

test('a scrape during a stream shows it in flight and holding an admission slot', async (t) => {
  const gw = await startGateway(
    echoConfig({ tiers: { echo: { kind: 'echo', contextLength: 256, tokenDelayMs: 10 } } }),
  );
  t.after(() => gw.shutdown());
  const m = (s: string) => metricValue(gw.baseUrl, s);
  const stream = await gw.client.completions.create({
    model: 'tiergate-echo',
    prompt: 'abcdefghij',
    max_tokens: 30,
    stream: true,
  });
  let scraped = false;
  for await (const chunk of stream) {
    void chunk;
    if (scraped) continue;
    scraped = true;
    // These gauges are filled when /metrics is read, from the live counts.
    assert.equal(await m('tiergate_requests_in_flight{tier="echo"}'), 1);
    assert.equal(await m('tiergate_admission_active{tier="echo"}'), 1);
    assert.equal(await m('tiergate_admission_queue_depth{tier="echo"}'), 0);
  }
  assert.equal(await m('tiergate_requests_in_flight{tier="echo"}'), 0);
  assert.equal(await m('tiergate_admission_active{tier="echo"}'), 0);
});

test('tiergate_tier_ready is current on a scrape even if /readyz is never called', async (t) => {
  const gw = await startGateway(echoConfig());
  t.after(() => gw.shutdown());
  assert.equal(await metricValue(gw.baseUrl, 'tiergate_tier_ready{tier="echo"}'), 1);
});

test('SIGTERM-style shutdown lets an in-flight stream finish, then refuses new work', async () => {
  // 40 tokens at 10 ms each: the stream is still running when shutdown starts.
  const gw = await startGateway(
    echoConfig({
      tiers: { echo: { kind: 'echo', contextLength: 256, tokenDelayMs: 10 } },
      server: { port: 0, shutdownGraceMs: 5000 },
    }),
  );
  const stream = await gw.client.completions.create({
    model: 'tiergate-echo',
    prompt: 'abcdefghij',
    max_tokens: 40,
    stream: true,
  });
  let text = '';
  let finish: string | null = null;
  let stopping: Promise<void> | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (stopping === undefined) {
      stopping = gw.shutdown();
      assert.equal(gw.gateway.readiness().ready, false);
    }
  }
  await stopping;
  assert.equal(finish, 'length');
  assert.equal(text, 'abcdefghij'.repeat(4));
  await assert.rejects(fetch(`${gw.baseUrl}/healthz`));
});

test('past the grace period, in-flight generations are aborted', async () => {
  const gw = await startGateway(
    echoConfig({
      tiers: { echo: { kind: 'echo', contextLength: 4096, tokenDelayMs: 20 } },
      server: { port: 0, shutdownGraceMs: 100 },
    }),
  );
  const outcome = gw.client.completions
    .create({ model: 'tiergate-echo', prompt: 'abc', max_tokens: 1000 })
    .then(
      () => 'completed',
      (err: { status?: number }) => err.status,
    );
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  await gw.shutdown();
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(await outcome, 503);
});
