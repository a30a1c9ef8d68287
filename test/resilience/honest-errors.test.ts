// Honest errors on the real gateway (llama.cpp tiers on the committed tiny family, HTTP and
// gRPC): an attempt that times out while the request's deadline is ahead is the upstream's
// timeout (504 upstream_timeout, gRPC UNAVAILABLE), not deadline_exceeded; a retry refused by
// the failed tier's budget while another tier of the plan fits is a 503 with Retry-After that
// says so; and one tier spending its budget leaves another tier's retries alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { call } from '../api/grpc/grpc-client.js';
import { metricValue } from '../helpers/start-gateway.js';
import { startTinyHarness, summaryOf, tinyLlamaTier, type Harness } from '../service/parity-harness.js';

const llama = tinyLlamaTier(2);
const noBreaker = { breaker: { enabled: false } };

let h: Harness;
before(async () => {
  h = await startTinyHarness({
    tiers: { edge: llama, flaky: llama, stuck: llama },
    models: {
      'tiergate-stuck': { tier: 'stuck' },
      'tiergate-flaky': { tier: 'flaky' },
      'tiergate-slowfirst': { tier: 'stuck' },
    },
    routing: {
      byModel: { 'tiergate-flaky': 'flaky-first', 'tiergate-slowfirst': 'stuck-first' },
      policies: {
        'flaky-first': { tiers: ['flaky', 'edge'], costPer1kTokens: { flaky: 0.1, edge: 1 } },
        'stuck-first': { tiers: ['stuck', 'edge'], costPer1kTokens: { stuck: 0.1, edge: 1 } },
      },
    },
    resilience: {
      // Far longer than any attempt here: every failure below happens with the deadline ahead.
      requestTimeoutMs: 30_000,
      // One retry per tier for the whole test (ratio 0; the floor is 1 per 10 minutes).
      retryBudget: { ratio: 0, minPerSecond: 1 / 600, windowMs: 600_000 },
      tiers: {
        flaky: { ...noBreaker, fault: { errorRate: 1 } },
        stuck: { ...noBreaker, fault: { hangRate: 1 }, attemptTimeoutMs: 300 },
      },
    },
  });
});
after(async () => {
  await h.close();
});

async function complete(
  model: string,
  requestId: string,
  stream = false,
): Promise<{ res: Response; body: string }> {
  const res = await fetch(`${h.gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model, prompt: 'The jury said', max_tokens: 8, temperature: 0, stream }),
  });
  return { res, body: await res.text() };
}

async function grpcFailure(model: string, requestId: string): Promise<ServiceError> {
  const md = new Metadata();
  md.set('x-request-id', requestId);
  const request = { model, prompt: 'The jury said', options: { maxTokens: 8, temperature: 0 } };
  return call(h.grpc.gateway, 'Complete', request, md).then(
    () => assert.fail('the call should fail'),
    (err: unknown) => err as ServiceError,
  );
}

test('an attempt timeout with the deadline ahead is upstream_timeout on HTTP, gRPC and the summary line', async () => {
  for (const stream of [false, true]) {
    const id = `upstream-timeout-${stream}`;
    const { res, body } = await complete('tiergate-stuck', id, stream);
    assert.equal(res.status, 504, body);
    const error = (JSON.parse(body) as { error: Record<string, unknown> }).error;
    assert.equal(error.code, 'upstream_timeout');
    assert.equal(error.type, 'server_error');
    assert.match(String(error.message), /attempt on tier "stuck" timed out after 300 ms/);
    const summary = await summaryOf(h, id);
    assert.equal(summary.status, 504);
    assert.equal(summary.error, 'upstream_timeout', 'never deadline_exceeded: the deadline was 30 s away');
  }
  const err = await grpcFailure('tiergate-stuck', 'upstream-timeout-grpc');
  assert.equal(err.code, GrpcStatus.UNAVAILABLE, 'not DEADLINE_EXCEEDED: the call had time left');
  assert.equal(err.metadata.get('x-tiergate-error-code')[0], 'upstream_timeout');
  assert.equal(err.metadata.get('x-tiergate-http-status')[0], '504');
  assert.match(err.details, /attempt on tier "stuck" timed out after 300 ms/);
  assert.equal((await summaryOf(h, 'upstream-timeout-grpc')).error, 'upstream_timeout');
});

test('a retry refused by the budget while another tier fits is a 503 with Retry-After and the reason; budgets are per tier', async () => {
  // flaky fails before its first token; its one retry serves the request on edge.
  const first = await complete('tiergate-flaky', 'budget-1');
  assert.equal(first.res.status, 200, first.body);
  assert.equal(first.res.headers.get('x-tiergate-tier'), 'flaky');
  assert.equal(first.res.headers.get('x-tiergate-served-by'), 'edge');
  assert.equal(first.res.headers.get('x-tiergate-fallbacks'), 'flaky -> edge (fault)');
  assert.deepEqual(
    (await summaryOf(h, 'budget-1')).servedBy,
    ['edge'],
    'the summary names the tier that served',
  );

  // flaky's budget is spent; edge is predicted to answer well within the deadline: say so.
  const second = await complete('tiergate-flaky', 'budget-2');
  assert.equal(second.res.status, 503, second.body);
  assert.ok(Number(second.res.headers.get('retry-after')) >= 1, 'Retry-After');
  const error = (JSON.parse(second.body) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, 'service_unavailable');
  assert.match(
    error.message,
    /injected fault .*not retried because the retry budget of tier "flaky" is spent, although tier "edge" is predicted to answer in \d+ ms, within the \d+ ms left/,
  );
  assert.equal((await summaryOf(h, 'budget-2')).error, 'service_unavailable');
  assert.equal(second.res.headers.get('x-tiergate-fallbacks'), 'flaky -> - (fault)');

  const err = await grpcFailure('tiergate-flaky', 'budget-grpc');
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.ok(Number(err.metadata.get('retry-after')[0]) >= 1, 'retry-after metadata');
  assert.match(err.details, /retry budget of tier "flaky" is spent/);
  // The same account of the attempts as HTTP's headers, in the error's metadata.
  assert.equal(err.metadata.get('x-tiergate-fallbacks')[0], 'flaky -> - (fault)');

  // stuck's budget is its own: flaky spending all of its budget did not take stuck's retry.
  const other = await complete('tiergate-slowfirst', 'budget-other');
  assert.equal(other.res.status, 200, other.body);
  assert.equal(other.res.headers.get('x-tiergate-served-by'), 'edge');
  assert.deepEqual((await summaryOf(h, 'budget-other')).fallbacks, [
    { from: 'stuck', to: 'edge', cause: 'timeout', stage: 'before_first_token' },
  ]);

  const retries = (from: string, result: string): Promise<number> =>
    metricValue(h.gw.baseUrl, `tiergate_retries_total{from="${from}",tier="edge",result="${result}"}`);
  assert.equal(await retries('flaky', 'attempted'), 1);
  assert.equal(await retries('flaky', 'budget_exhausted'), 2);
  assert.equal(await retries('stuck', 'attempted'), 1);
});
