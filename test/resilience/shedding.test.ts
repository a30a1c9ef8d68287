// A burst beyond a tier's capacity (1 running + 2 queued) is shed at once with 429 (queue full)
// or 503 (the wait would outlast the deadline), each with Retry-After; every other request
// completes normally.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { edgeConfig, metricValue, startGateway, type TestGateway } from '../helpers/start-gateway.js';

let gw: TestGateway;
before(async () => {
  gw = await startGateway(
    edgeConfig(
      {},
      {
        resilience: {
          tiers: {
            // The injected delay holds the slot, so the burst really overlaps on 2 shared cores.
            edge: {
              admission: { maxConcurrent: 1, maxQueue: 2, initialServiceMs: 300 },
              fault: { delayRate: 1, delayMs: 300 },
            },
          },
        },
      },
    ),
  );
});
after(async () => {
  await gw.shutdown();
});

test('a burst beyond capacity is shed with 429/503 and Retry-After; nothing else fails', async () => {
  const burst = 8;
  const responses = await Promise.all(
    Array.from({ length: burst }, () =>
      fetch(`${gw.baseUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'tiergate-tiny',
          prompt: 'The jury said',
          max_tokens: 8,
          temperature: 0,
        }),
      }),
    ),
  );
  const statuses = responses.map((r) => r.status);
  const ok = responses.filter((r) => r.status === 200);
  const shed = responses.filter((r) => r.status === 429 || r.status === 503);
  assert.equal(ok.length + shed.length, burst, `only 200 and 429/503: ${statuses.join(',')}`);
  assert.ok(ok.length >= 1 && ok.length <= 3, `1 running + 2 queued are served: ${statuses.join(',')}`);
  assert.ok(shed.length >= burst - 3);
  for (const r of shed) {
    const retryAfter = Number(r.headers.get('retry-after'));
    assert.ok(retryAfter >= 1, `Retry-After on a ${r.status}`);
    const body = (await r.json()) as { error: { type: string; code: string } };
    assert.ok(body.error.code === 'rate_limit_exceeded' || body.error.code === 'service_unavailable');
  }
  for (const r of ok) {
    const body = (await r.json()) as { choices: { text: string; finish_reason: string }[] };
    assert.equal(body.choices[0]?.finish_reason, 'length');
  }
  const counted =
    ((await metricValue(gw.baseUrl, 'tiergate_shed_total{tier="edge",reason="queue_full"}')) || 0) +
    ((await metricValue(gw.baseUrl, 'tiergate_shed_total{tier="edge",reason="deadline"}')) || 0);
  assert.equal(counted, shed.length);
  assert.equal(await metricValue(gw.baseUrl, 'tiergate_admission_queue_depth{tier="edge"}'), 0);
});
