import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DestinationStream } from 'pino';
import { startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { attr, CLIENT, Receiver, SERVER, STATUS_ERROR, type OtlpSpan } from './otlp-receiver.js';

/** Log lines captured from the gateway's logger. */
function capture(): { stream: DestinationStream; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  };
}

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

/**
 * A routed request whose first tier, the PyTorch sidecar (spawned by the gateway, the family's
 * FP32 weights), fails after 4 streamed tokens (fault injection) and is continued on the echo
 * tier: one trace with the request's span, its routing, key-limit, stream, admission and attempt
 * spans, exported over OTLP/HTTP to a receiver in the test.
 */
describe('OpenTelemetry tracing of a request that fails over mid-stream', () => {
  const receiver = new Receiver();
  const logs = capture();
  let gw: TestGateway;

  before(async () => {
    const endpoint = await receiver.start();
    gw = await startGateway(
      {
        logging: { level: 'info' },
        family: { dir: 'models/tiny' },
        tiers: {
          sidecar: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: 1, required: true },
          spare: { kind: 'echo', contextLength: 512 },
        },
        models: { 'tiergate-traced': { tier: 'sidecar' } },
        routing: {
          byModel: { 'tiergate-traced': 'traced' },
          policies: {
            traced: {
              tiers: ['sidecar', 'spare'],
              objective: 'cheapest',
              fallback: ['spare'],
              costPer1kTokens: { sidecar: 0.1, spare: 1 },
            },
          },
        },
        resilience: { tiers: { sidecar: { fault: { failAfterTokensRate: 1, failAfterTokens: 4 } } } },
        tracing: { enabled: true, endpoint, samplingRatio: 1, exportIntervalMs: 50 },
      },
      'unused',
      logs.stream,
    );
  });

  after(async () => {
    await gw.shutdown();
    receiver.server.close();
  });

  it("continues the client's trace: one trace, parent links, GenAI and route attributes, the sidecar attempt failed", async () => {
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
        'x-request-id': 'traced-request-1',
      },
      body: JSON.stringify({
        model: 'tiergate-traced',
        prompt: 'The city',
        max_tokens: 12,
        temperature: 0,
        stream: true,
      }),
    });
    assert.equal(res.status, 200);
    await res.text();
    const spans = await receiver.trace(CLIENT_TRACE, 7);
    // No key limits configured: no key-limits span (docs/tracing.md).
    assert.equal(spans.filter((s) => s.name === 'tiergate.key_limits').length, 0);
    assert.deepEqual([...receiver.contentTypes], ['application/json']);
    const byName = (name: string): OtlpSpan | undefined => spans.find((s) => s.name === name);
    const root = byName('text_completion tiergate-traced');
    assert.ok(root, spans.map((s) => s.name).join(', '));
    assert.equal(root.kind, SERVER);
    assert.equal(root.parentSpanId, CLIENT_SPAN, "the client's span is the request's parent");
    assert.equal(attr(root, 'gen_ai.operation.name'), 'text_completion');
    assert.equal(attr(root, 'gen_ai.request.model'), 'tiergate-traced');
    assert.equal(attr(root, 'gen_ai.request.max_tokens'), 12);
    assert.equal(attr(root, 'gen_ai.request.temperature'), 0);
    assert.equal(attr(root, 'gen_ai.usage.output_tokens'), 12);
    assert.ok(Number(attr(root, 'gen_ai.usage.input_tokens')) > 0);
    assert.match(String(attr(root, 'gen_ai.response.model')), /\//);
    assert.equal(attr(root, 'tiergate.route.policy'), 'traced');
    assert.equal(attr(root, 'tiergate.route.reason'), 'objective');
    assert.equal(attr(root, 'tiergate.route.tier'), 'sidecar');
    assert.equal(attr(root, 'tiergate.route.continued_from'), 'sidecar');
    assert.deepEqual(attr(root, 'tiergate.route.served_by'), ['sidecar', 'spare']);
    assert.deepEqual(attr(root, 'tiergate.route.fallbacks'), ['sidecar -> spare (fault, mid_stream)']);
    assert.equal(root.status?.code ?? 0, 0, 'the request itself succeeded');

    for (const name of ['tiergate.route', 'tiergate.stream'])
      assert.equal(byName(name)?.parentSpanId, root.spanId, `${name} is a child of the request`);
    const stream = byName('tiergate.stream')!;
    const sidecar = byName('tiergate.attempt sidecar');
    const spare = byName('tiergate.attempt spare');
    assert.ok(sidecar && spare, spans.map((s) => s.name).join(', '));
    for (const s of [sidecar, spare]) {
      assert.equal(s.parentSpanId, stream.spanId);
      assert.equal(s.kind, CLIENT);
    }
    assert.equal(sidecar.status?.code, STATUS_ERROR, 'the sidecar attempt ended with an error status');
    assert.equal(attr(sidecar, 'error.type'), 'fault');
    assert.equal(attr(sidecar, 'tiergate.attempt.tokens'), 4);
    assert.ok(Number(attr(sidecar, 'tiergate.attempt.ttft_ms')) > 0);
    assert.equal(spare.status?.code ?? 0, 0);
    assert.equal(attr(spare, 'tiergate.attempt.tokens'), 8);
    assert.equal(attr(spare, 'tiergate.attempt.finished'), true);
    assert.ok(spans.some((s) => s.name === 'tiergate.admission' && s.parentSpanId === stream.spanId));
    assert.equal(attr(byName('tiergate.route'), 'tiergate.route.tier'), 'sidecar');

    // The summary line carries the trace id.
    const line = logs.lines.find((l) => l.msg === 'request' && l.requestId === 'traced-request-1');
    assert.equal(line?.traceId, CLIENT_TRACE);
  });

  it('ignores a malformed traceparent: the request is served and starts a trace of its own', async () => {
    const before = new Set(receiver.spans.map((s) => s.traceId));
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: '00-not-a-trace-id-01',
        'x-request-id': 'traced-request-2',
      },
      body: JSON.stringify({ model: 'tiergate-traced', prompt: 'The city', max_tokens: 2, temperature: 0 }),
    });
    assert.equal(res.status, 200);
    let root: OtlpSpan | undefined;
    for (let i = 0; i < 200 && root === undefined; i++) {
      root = receiver.spans.find(
        (s) =>
          s.kind === SERVER &&
          !before.has(s.traceId) &&
          attr(s, 'tiergate.request_id') === 'traced-request-2',
      );
      if (root === undefined) await sleep(50);
    }
    assert.ok(root, 'the request was traced');
    assert.equal(root.parentSpanId ?? '', '', 'no parent: a new trace');
    assert.match(root.traceId, /^[0-9a-f]{32}$/);
    const line = logs.lines.find((l) => l.msg === 'request' && l.requestId === 'traced-request-2');
    assert.equal(line?.traceId, root.traceId);
  });
});
