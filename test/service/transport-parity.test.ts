import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  deltas,
  grpcCompletion,
  httpCompletion,
  idle,
  latencySamples,
  metricSnapshot,
  startHarness,
  summaryOf,
  type Ending,
  type Harness,
} from './parity-harness.js';

/** The summary fields both transports must agree on (transport, method, route, ids and times differ). */
const SHARED = [
  'status',
  'model',
  'tier',
  'policy',
  'routeReason',
  'stream',
  'promptTokens',
  'completionTokens',
  'finishReason',
  'error',
  'aborted',
  'servedBy',
  'continuedFrom',
  'fallbacks',
] as const;

interface Observed {
  readonly ending: Ending;
  readonly summary: Record<string, unknown>;
  readonly metrics: Record<string, number>;
  readonly samples: Record<string, number>;
}

/**
 * One request over one transport: what the client saw, its summary line, the metric deltas and
 * the latency-model samples it added, and that it left nothing held (executions, admission).
 */
async function observe(h: Harness, send: () => Promise<Ending>, requestId: string): Promise<Observed> {
  const before = await metricSnapshot(h);
  const samplesBefore = latencySamples(h);
  const ending = await send();
  const summary = await summaryOf(h, requestId);
  assert.deepEqual(await idle(h), { executions: 0, running: 0, queued: 0 }, `${requestId}: nothing held`);
  const samplesAfter = latencySamples(h);
  const samples: Record<string, number> = {};
  for (const [t, n] of Object.entries(samplesAfter))
    if (n !== samplesBefore[t]) samples[t] = n - (samplesBefore[t] ?? 0);
  return { ending, summary, metrics: deltas(before, await metricSnapshot(h)), samples };
}

function shared(summary: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(SHARED.map((k) => [k, summary[k]]));
}

describe('the same request over HTTP and gRPC', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  const cases: { name: string; model: string; stream: boolean; check: (o: Observed) => void }[] = [
    {
      name: 'static, whole answer',
      model: 'static',
      stream: false,
      check: (o) => {
        assert.equal(o.summary.routeReason, 'static');
        assert.equal(o.summary.stream, false);
        assert.deepEqual(o.samples, { a: 1 });
      },
    },
    {
      name: 'static, streamed',
      model: 'static',
      stream: true,
      check: (o) => assert.equal(o.summary.stream, true),
    },
    {
      name: 'routed by a policy',
      model: 'routed',
      stream: true,
      check: (o) => {
        assert.equal(o.summary.policy, 'p');
        assert.equal(o.summary.routeReason, 'objective');
        assert.equal(o.summary.tier, 'b', 'the cheaper tier');
        assert.deepEqual(o.samples, { b: 1 });
      },
    },
    {
      name: 'failover before the first token',
      model: 'failover',
      stream: true,
      check: (o) => {
        assert.deepEqual(o.summary.fallbacks, [
          { from: 'bad', to: 'a', cause: 'fault', stage: 'before_first_token' },
        ]);
        assert.equal(
          o.metrics['tiergate_fallbacks_total{from="bad",to="a",cause="fault",stage="before_first_token"}'],
          1,
        );
        assert.deepEqual(o.samples, { a: 1 }, 'the tier that served is credited, not the planned one');
      },
    },
    {
      name: 'mid-stream continuation',
      model: 'continued',
      stream: true,
      check: (o) => {
        assert.deepEqual(o.summary.servedBy, ['breaks', 'a']);
        assert.equal(o.summary.continuedFrom, 'breaks');
        assert.equal(o.summary.completionTokens, 8);
        assert.deepEqual(o.samples, { breaks: 1, a: 1 }, 'each tier is credited with its own part');
      },
    },
    {
      name: 'deadline exceeded',
      model: 'hang',
      stream: true,
      check: (o) => {
        assert.equal(o.summary.status, 504);
        assert.equal(o.summary.error, 'deadline_exceeded');
        assert.deepEqual(o.samples, {});
      },
    },
    {
      name: 'attempt timeout with the deadline ahead',
      model: 'stuck',
      stream: false,
      check: (o) => {
        // The tier's limit, not the request's deadline (400 ms): the upstream's timeout.
        assert.equal(o.summary.status, 504);
        assert.equal(o.summary.error, 'upstream_timeout');
        assert.deepEqual(o.samples, {});
      },
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const id = c.name.replace(/\W+/g, '-');
      const http = await observe(h, () => httpCompletion(h, `http-${id}`, c.model, c.stream), `http-${id}`);
      const grpc = await observe(h, () => grpcCompletion(h, `grpc-${id}`, c.model, c.stream), `grpc-${id}`);
      assert.deepEqual(shared(grpc.summary), shared(http.summary), 'summary fields');
      assert.deepEqual(grpc.metrics, http.metrics, 'metric deltas');
      assert.deepEqual(grpc.samples, http.samples, 'latency-model updates');
      assert.equal(grpc.ending.status, http.ending.status);
      if (http.ending.status === 200) {
        assert.deepEqual(
          { policy: grpc.ending.route?.policy, code: grpc.ending.route?.code, tier: grpc.ending.route?.tier },
          { policy: http.ending.route?.policy, code: http.ending.route?.code, tier: http.ending.route?.tier },
          'route',
        );
      }
      c.check(http);
    });
  }

  it('client cancel', async () => {
    const http = await observe(h, () => httpCompletion(h, 'http-cancel', 'slow', true, 2), 'http-cancel');
    const grpc = await observe(h, () => grpcCompletion(h, 'grpc-cancel', 'slow', true, 1), 'grpc-cancel');
    for (const o of [http, grpc]) {
      assert.equal(o.summary.aborted, true);
      assert.equal(o.summary.tier, 'slow');
      assert.ok((o.summary.completionTokens as number) < 8, 'stopped early');
      assert.deepEqual(o.samples, {}, 'an abandoned request teaches no latency model');
      assert.equal(o.metrics['tiergate_requests_aborted_total{tier="slow"}'], 1);
    }
    assert.equal(grpc.summary.policy, http.summary.policy);
    assert.equal(grpc.summary.routeReason, http.summary.routeReason);
  });
});
