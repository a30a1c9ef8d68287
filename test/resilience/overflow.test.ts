// Overflow before shedding, on the real gateway (two llama.cpp tiers on the committed tiny
// family): a burst beyond the chosen tier's capacity is taken in part by the second tier of the
// plan (tiergate_overflow_total{from,to}, and the summary line's servedBy), streamed or not, and
// a request is answered 429/503 only when both tiers refused it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue } from '../helpers/start-gateway.js';
import { idle, startTinyHarness, summaryOf, tinyLlamaTier, type Harness } from '../service/parity-harness.js';

const llama = tinyLlamaTier(1);
/**
 * One running and one waiting per tier; the injected delay holds each slot for 1.5 s, so the
 * burst (sent within milliseconds) really overlaps on 2 shared cores, however slowly it runs.
 */
const full = {
  admission: { maxConcurrent: 1, maxQueue: 1, initialServiceMs: 100 },
  fault: { delayRate: 1, delayMs: 1500 },
  breaker: { enabled: false },
};

let h: Harness;
before(async () => {
  h = await startTinyHarness({
    tiers: { edge: llama, spare: llama },
    models: { 'tiergate-tiny': { tier: 'edge' } },
    routing: {
      byModel: { 'tiergate-tiny': 'p' },
      // edge is cheaper: every request is planned edge first, spare second.
      policies: { p: { tiers: ['edge', 'spare'], costPer1kTokens: { edge: 0.1, spare: 1 } } },
    },
    resilience: { requestTimeoutMs: 60_000, tiers: { edge: full, spare: full } },
  });
});
after(async () => {
  await h.close();
});

interface Outcome {
  readonly id: string;
  readonly status: number;
  readonly retryAfter: string | null;
  readonly contentType: string | null;
  /** x-tiergate-served-by and x-tiergate-fallbacks (whole answers; a stream has them in trailers). */
  readonly servedBy: string | null;
  readonly fallbacks: string | null;
  readonly body: string;
}

async function burst(round: string, size: number, stream: boolean): Promise<Outcome[]> {
  return Promise.all(
    Array.from({ length: size }, async (_, i) => {
      const id = `${round}-${i}`;
      const res = await fetch(`${h.gw.baseUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({
          model: 'tiergate-tiny',
          prompt: 'The jury said',
          max_tokens: 8,
          temperature: 0,
          stream,
        }),
      });
      return {
        id,
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        contentType: res.headers.get('content-type'),
        servedBy: res.headers.get('x-tiergate-served-by'),
        fallbacks: res.headers.get('x-tiergate-fallbacks'),
        body: await res.text(),
      };
    }),
  );
}

/** Sum of a counter's series with these labels (0 when absent). */
async function overflow(from: string, to: string): Promise<number> {
  return (await metricValue(h.gw.baseUrl, `tiergate_overflow_total{from="${from}",to="${to}"}`)) || 0;
}

for (const stream of [false, true]) {
  test(`a burst beyond edge's capacity overflows to spare; 429/503 only when both are full (stream: ${stream})`, async () => {
    const before = { spare: await overflow('edge', 'spare'), none: await overflow('edge', 'none') };
    const size = 10;
    const outcomes = await burst(`burst-${stream}`, size, stream);
    const statuses = outcomes.map((o) => o.status).join(',');
    const ok = outcomes.filter((o) => o.status === 200);
    const shed = outcomes.filter((o) => o.status === 429 || o.status === 503);
    assert.equal(ok.length + shed.length, size, `only 200 and 429/503: ${statuses}`);

    const servedBy = new Map<string, string>();
    for (const o of ok) {
      const s = await summaryOf(h, o.id);
      assert.equal(s.tier, 'edge', 'routing chose edge');
      // The summary names the tier that served when it is not the routed one.
      servedBy.set(o.id, ((s.servedBy as string[] | undefined) ?? ['edge']).join());
      if (stream) assert.match(o.body, /data: \[DONE\]/);
      else if (o.servedBy === 'spare')
        assert.equal(o.fallbacks, 'edge -> spare (shed)', 'the header says why');
    }
    const onSpare = [...servedBy.values()].filter((t) => t === 'spare').length;
    assert.ok(onSpare >= 1, `spare served a share of the burst: ${[...servedBy.values()].join(',')}`);
    assert.equal(
      (await overflow('edge', 'spare')) - before.spare,
      onSpare,
      'one overflow per request spare took',
    );

    // Shed only when both tiers refused: the error names each tier's refusal.
    for (const o of shed) {
      assert.ok(Number(o.retryAfter) >= 1, `Retry-After on a ${o.status}`);
      assert.match(o.contentType ?? '', /application\/json/, 'a status, not an SSE error event');
      const error = (JSON.parse(o.body) as { error: { code: string; message: string } }).error;
      assert.ok(['rate_limit_exceeded', 'service_unavailable'].includes(error.code), error.code);
      assert.match(
        error.message,
        /no tier of the plan can take the request now: tier "edge" .*; tier "spare" /,
      );
      assert.equal(o.fallbacks, 'edge -> spare (shed), spare -> - (shed)', 'the headers say so too');
    }
    assert.equal(
      (await overflow('edge', 'none')) - before.none,
      shed.length,
      'every shed request is counted',
    );
    // 2 running + 2 waiting at once, 10 sent within milliseconds: some are shed.
    assert.ok(shed.length >= 1, `the burst was beyond both tiers: ${statuses}`);
    assert.deepEqual(await idle(h), { executions: 0, running: 0, queued: 0 });
  });
}
