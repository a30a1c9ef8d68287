import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BUDGET,
  complete,
  KEYS,
  resetSeconds,
  RPM,
  SCOPE_RPM,
  STREAMS,
  TPM,
  tokensOf,
  withinOneMinute,
  type Answer,
} from './limits-harness.js';

const CONCURRENT = 100;

/** 100 requests at once, spread round-robin over the gateways. */
function burst(
  targets: () => readonly string[],
  key: string,
  body: Record<string, unknown>,
): Promise<Answer[]> {
  const urls = targets();
  return Promise.all(
    Array.from({ length: CONCURRENT }, (_, i) => complete(urls[i % urls.length]!, key, body)),
  );
}

/**
 * The limit tests, the same for every store: `targets` are the gateways (one for the
 * in-process store, two processes sharing one Redis for the Redis store).
 */
export function limitTests(targets: () => readonly string[]): void {
  it(`enforces one requests-per-minute limit under ${CONCURRENT} concurrent requests, with OpenAI's headers`, async () => {
    await withinOneMinute();
    const answers = await burst(targets, KEYS.rpm, { prompt: 'hello', max_tokens: 2 });
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    assert.equal(ok.length, RPM, 'exactly the limit admitted, whatever gateway each request reached');
    assert.equal(refused.length, CONCURRENT - RPM);
    // Each admitted request saw its own place in the window: remaining 19, 18, ... 0.
    assert.deepEqual(
      ok.map((a) => Number(a.headers.get('x-ratelimit-remaining-requests'))).sort((x, y) => x - y),
      Array.from({ length: RPM }, (_, i) => i),
    );
    for (const a of ok) assert.equal(a.headers.get('x-ratelimit-limit-requests'), String(RPM));
    for (const a of refused) {
      assert.equal(a.status, 429);
      assert.deepEqual(
        { type: a.body.error?.type, code: a.body.error?.code },
        { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
      );
      assert.equal(a.headers.get('x-ratelimit-limit-requests'), String(RPM));
      assert.equal(a.headers.get('x-ratelimit-remaining-requests'), '0');
      const reset = a.headers.get('x-ratelimit-reset-requests') ?? '';
      const seconds = resetSeconds(reset);
      assert.ok(seconds > 0 && seconds <= 60, reset);
      // Retry-After is the reset rounded up to whole seconds.
      assert.equal(a.headers.get('retry-after'), String(Math.max(1, Math.ceil(seconds))), reset);
      assert.match(a.body.error?.message ?? '', /requests per min: limit 20, remaining 0/);
    }
  });

  it('enforces one tokens-per-minute limit, charging completion tokens as they are produced', async (t) => {
    await withinOneMinute();
    // 20 prompt tokens and up to 40 completion tokens each: 100 requests could use 6,000.
    const answers = await burst(targets, KEYS.tpm, { prompt: 'abcdefghijklmnopqrst', max_tokens: 40 });
    const ok = answers.filter((a) => a.status === 200);
    const used = ok.reduce((sum, a) => sum + tokensOf(a), 0);
    t.diagnostic(`tokens per minute: ${used} served of ${TPM}, ${ok.length} of ${CONCURRENT} admitted`);
    assert.ok(used <= TPM, `${used} tokens served over a ${TPM} limit`);
    // The limit is used, not refused wholesale: a refusal leaves less than one request's prompt.
    assert.ok(used >= TPM - 60 * 4, `only ${used} of ${TPM} tokens served`);
    for (const a of answers.filter((x) => x.status !== 200)) {
      assert.equal(a.status, 429);
      assert.equal(a.body.error?.code, 'rate_limit_exceeded');
      assert.equal(a.headers.get('x-ratelimit-limit-tokens'), String(TPM));
      const seconds = resetSeconds(a.headers.get('x-ratelimit-reset-tokens') ?? '');
      assert.equal(a.headers.get('retry-after'), String(Math.max(1, Math.ceil(seconds))));
    }
    for (const a of ok) assert.equal(a.headers.get('x-ratelimit-limit-tokens'), String(TPM));
  });

  it(`never lets concurrent requests overrun a hard budget (bound: 0 tokens over)`, async (t) => {
    const answers = await burst(targets, KEYS.budget, { prompt: 'abcdefghijklmnopqrst', max_tokens: 40 });
    const ok = answers.filter((a) => a.status === 200);
    const used = ok.reduce((sum, a) => sum + tokensOf(a), 0);
    t.diagnostic(`hard budget: ${used} tokens served of ${BUDGET}, ${ok.length} of ${CONCURRENT} admitted`);
    assert.ok(used <= BUDGET, `${used} tokens served over a budget of ${BUDGET}`);
    assert.ok(used >= BUDGET - 60 * 4, `only ${used} of ${BUDGET} served`);
    // Streams the budget ended early finish with `length`, as at max_tokens.
    const cut = ok.filter((a) => (a.body.usage?.completion_tokens ?? 0) < 40);
    for (const a of cut) assert.equal(a.body.choices?.[0]?.finish_reason, 'length');
    const next = await complete(targets()[0]!, KEYS.budget, {
      prompt: 'abcdefghijklmnopqrst',
      max_tokens: 5,
    });
    assert.equal(next.status, 429);
    assert.deepEqual(
      { type: next.body.error?.type, code: next.body.error?.code },
      { type: 'insufficient_quota', code: 'insufficient_quota' },
    );
    // Retry-After points at the end of the UTC day, when a daily budget renews.
    const dayEnd = Math.ceil(Date.now() / 86_400_000) * 86_400_000;
    const retryAfter = Number(next.headers.get('retry-after'));
    assert.ok(Math.abs(Date.now() + retryAfter * 1000 - dayEnd) < 5_000, `Retry-After ${retryAfter}`);
  });

  it('limits the streams a key runs at once, over every replica sharing the store', async () => {
    const urls = targets();
    // 20 tokens at 20 ms each: every request of the burst arrives while the first ones run.
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        complete(urls[i % urls.length]!, KEYS.streams, {
          model: 'tiergate-slow',
          prompt: 'slow',
          max_tokens: 20,
        }),
      ),
    );
    const ok = answers.filter((a) => a.status === 200).length;
    assert.ok(ok >= 1 && ok <= STREAMS, `${ok} ran at once over a limit of ${STREAMS}`);
    for (const a of answers.filter((x) => x.status !== 200)) {
      assert.equal(a.status, 429);
      assert.match(a.body.error?.message ?? '', /Too many concurrent requests/);
      assert.equal(a.headers.get('retry-after'), '1');
    }
    // Every slot is back once they ended, on every replica.
    for (const url of urls) {
      const again = await complete(url, KEYS.streams, {
        model: 'tiergate-slow',
        prompt: 'slow',
        max_tokens: 2,
      });
      assert.equal(again.status, 200);
    }
  });

  it("gives a key without its own entry its scope's defaults", async () => {
    const a = await complete(targets()[0]!, KEYS.scoped, { prompt: 'hi', max_tokens: 1 });
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('x-ratelimit-limit-requests'), String(SCOPE_RPM));
    // No tokens-per-minute limit in the scope's defaults: no token headers.
    assert.equal(a.headers.get('x-ratelimit-limit-tokens'), null);
  });

  it('lets a soft budget be passed and counts the tokens beyond it', async () => {
    const url = targets()[0]!;
    for (let i = 0; i < 4; i++) {
      const a = await complete(url, KEYS.soft, { prompt: 'abcdefghijklmnopqrst', max_tokens: 20 });
      assert.equal(a.status, 200);
    }
    // 4 × 40 tokens over a budget of 100: 60 counted beyond it (soft budgets never refuse).
    const deadline = Date.now() + 5_000;
    let over = 0;
    while (Date.now() < deadline && over < 60) {
      over = await metric(url, 'tiergate_budget_overrun_tokens_total{key="other"}');
      if (over < 60) await sleep(50);
    }
    assert.ok(over >= 60, `overrun ${over}`);
  });

  it('shows each key’s usage and windows at /admin/usage (admin scope only)', async () => {
    const url = targets()[0]!;
    const denied = await fetch(`${url}/admin/usage`, { headers: { authorization: `Bearer ${KEYS.rpm}` } });
    assert.equal(denied.status, 403);
    const res = await fetch(`${url}/admin/usage`, { headers: { authorization: `Bearer ${KEYS.admin}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      store: { kind: string; up: boolean };
      keys: Record<
        string,
        {
          windows?: Record<string, { limit: number; used: number }>;
          usage: { requests: number; rejected: Record<string, number> } | null;
          limits: unknown;
        }
      >;
    };
    assert.equal(body.store.up, true);
    const rpm = body.keys.rpm!;
    // Usage is each replica's own count: over two replicas, one of them may have admitted none of
    // the burst (the shared limit went to the other), so the burst shows in their sum.
    const usages = await Promise.all(
      targets().map(async (u) => {
        const r = await fetch(`${u}/admin/usage`, { headers: { authorization: `Bearer ${KEYS.admin}` } });
        return ((await r.json()) as typeof body).keys.rpm?.usage;
      }),
    );
    const sum = (f: (u: NonNullable<(typeof usages)[number]>) => number): number =>
      usages.reduce((total, u) => total + (u === null || u === undefined ? 0 : f(u)), 0);
    assert.ok(sum((u) => u.requests) > 0);
    assert.ok(sum((u) => u.rejected.requests_per_minute ?? 0) > 0);
    assert.equal(rpm.windows?.requestsPerMinute?.limit, RPM);
    const budget = body.keys.budget!;
    assert.ok((budget.windows?.budget?.used ?? Infinity) <= BUDGET);
    // The rpm key is a configured metrics label; its admitted requests are its own series.
    const admitted = await metric(url, 'tiergate_key_requests_total{key="rpm",outcome="admitted"}');
    assert.equal(admitted, rpm.usage?.requests);
  });

  it('still answers an unknown key 401', async () => {
    const a = await complete(targets()[0]!, 'sk-not-a-key-at-all', { prompt: 'hi', max_tokens: 1 });
    assert.equal(a.status, 401);
    assert.equal(a.body.error?.code, 'invalid_api_key');
  });
}

/** One sample of the Prometheus text (admin key), 0 when the series has none yet. */
export async function metric(baseUrl: string, series: string): Promise<number> {
  const text = await (
    await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${KEYS.admin}` } })
  ).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
