import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metadata, Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import pino from 'pino';
import { serverDefinitions } from '../../src/api/grpc/proto.js';
import { healthService } from '../../src/api/grpc/health-service.js';
import { buildConfig } from '../../src/config/index.js';
import { loadModelFamily } from '../../src/family/manifest.js';
import { loadTokenizer } from '../../src/gateway/load-tokenizer.js';
import { MetricsService } from '../../src/observability/metrics.js';
import { createTier } from '../../src/tiers/registry.js';
import { TIER_HEALTH_SERVICE } from '../../src/tiers/remote/health-probe.js';
import type { Tier } from '../../src/tiers/tier.js';
import type { Tokenizer } from '../../src/text/tokenizer.js';
import { tierService } from '../../src/worker/tier-service.js';
import { bearer, call, gatewayClients } from '../api/grpc/grpc-client.js';
import { REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { Receiver } from './otlp-receiver.js';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

/**
 * Trace context across processes: the worker's tier service (src/worker/tier-service.ts, what
 * `tiergate worker` serves) over an echo tier, with the metadata of each Generate call kept,
 * behind a gateway `remote` tier; and a gRPC client's `traceparent` continued by the gateway API.
 */
describe('trace context over gRPC metadata', () => {
  const receiver = new Receiver();
  const seen: Metadata[] = [];
  let server: Server | undefined;
  let tier: Tier | undefined;
  let tokenizer: Tokenizer | undefined;
  let gw: TestGateway;

  before(async () => {
    const endpoint = await receiver.start();
    const config = buildConfig(
      {
        tokenizer: { kind: 'bytes' },
        tiers: { echo: { kind: 'echo', contextLength: 512 } },
        models: { e: { tier: 'echo' } },
      },
      { baseDir: REPO_ROOT, env: {} },
    );
    const family = loadModelFamily(config.family.dir);
    tokenizer = await loadTokenizer(config, family);
    tier = createTier('echo', config.tiers.echo!, {
      logger: pino({ level: 'silent' }),
      metrics: new MetricsService(),
      family,
      tokenizer,
    });
    await tier.start();
    const defs = serverDefinitions();
    const service = tierService(tier, { maxConcurrent: 64, runtime: {} }, pino({ level: 'silent' }));
    const generate = service.Generate as (call: ServerWritableStream<unknown, unknown>) => void;
    const grpcServer = new Server();
    server = grpcServer;
    grpcServer.addService(defs.tier, {
      ...service,
      Generate(c: ServerWritableStream<unknown, unknown>) {
        seen.push(c.metadata);
        generate(c);
      },
    });
    grpcServer.addService(
      defs.health,
      healthService((s) => (s === '' || s === TIER_HEALTH_SERVICE ? true : undefined)),
    );
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err === null ? resolve(p) : reject(err),
      ),
    );
    gw = await startGateway({
      tokenizer: { kind: 'bytes' },
      grpc: { enabled: true, host: '127.0.0.1', port: 0 },
      auth: { enabled: true, keys: [{ name: 'tracer', key: 'sk-trace-test-1' }] },
      // The key has a limit: its requests get a key-limits span.
      limits: { byKey: { tracer: { requestsPerMinute: 1000 } } },
      tiers: { far: { kind: 'remote', address: `127.0.0.1:${port}`, healthIntervalMs: 100, required: true } },
      models: { 'tiergate-far': { tier: 'far' } },
      tracing: { enabled: true, endpoint, exportIntervalMs: 50 },
    });
  });

  after(async () => {
    await gw?.shutdown();
    server?.forceShutdown();
    await tier?.close();
    await tokenizer?.close();
    receiver.server.close();
  });

  it("sends the request's trace context to the tier server, whose parent is the gateway's stream span", async () => {
    const res = await fetch(`${gw.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-trace-test-1',
        'content-type': 'application/json',
        traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
      },
      body: JSON.stringify({ model: 'tiergate-far', prompt: 'hello', max_tokens: 3 }),
    });
    assert.equal(res.status, 200);
    const sent = seen.at(-1)?.get('traceparent')[0];
    assert.match(String(sent), new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-01$`));
    const spans = await receiver.trace(CLIENT_TRACE, 5);
    const stream = spans.find((s) => s.name === 'tiergate.stream');
    assert.ok(stream, spans.map((s) => s.name).join(', '));
    assert.equal(String(sent).split('-')[2], stream.spanId, 'the tier server joins under the stream span');
    const keyLimits = spans.find((s) => s.name === 'tiergate.key_limits');
    assert.equal(keyLimits?.parentSpanId, spans.find((s) => s.kind === 2)?.spanId);
  });

  it("continues a gRPC client's traceparent from the call's metadata", async () => {
    const trace = '5af7651916cd43dd8448eb211c80319d';
    const md = bearer('sk-trace-test-1');
    md.set('traceparent', `00-${trace}-${CLIENT_SPAN}-01`);
    const c = gatewayClients(gw.grpcAddress!);
    try {
      await call(
        c.gateway,
        'Complete',
        { model: 'tiergate-far', prompt: 'hello', options: { maxTokens: 2 } },
        md,
      );
    } finally {
      c.close();
    }
    const spans = await receiver.trace(trace, 4);
    const root = spans.find((s) => s.kind === 2);
    assert.ok(root, 'the call is traced in the client’s trace');
    assert.equal(root.parentSpanId, CLIENT_SPAN);
    assert.equal(seen.at(-1)?.get('traceparent')[0]?.toString().split('-')[1], trace);
  });
});
