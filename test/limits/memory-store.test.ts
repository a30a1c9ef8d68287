import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { buildConfig } from '../../src/config/index.js';
import { REPO_ROOT, startGateway, type TestGateway } from '../helpers/start-gateway.js';
import { bearer, call, callWithTrailers, collect, gatewayClients, stream } from '../api/grpc/grpc-client.js';
import { complete, KEYS, limitsConfig, RPM, SCOPE_RPM, TPM, withinOneMinute } from './limits-harness.js';
import { limitTests } from './limit-suite.js';

/** Per-key limits with the in-process store (one replica, the embedded default). */
describe('key limits, in-process store', () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startGateway(limitsConfig({}, { grpc: { enabled: true, host: '127.0.0.1', port: 0 } }));
  });

  after(async () => {
    await gw.shutdown();
  });

  limitTests(() => [gw.baseUrl]);

  it('refuses over a limit on gRPC with RESOURCE_EXHAUSTED and the same fields in trailers', async () => {
    await withinOneMinute(5_000);
    // Spend the rpm key's minute over HTTP; the gRPC call is the same key's next request.
    for (let i = 0; i < RPM; i++) await complete(gw.baseUrl, KEYS.rpm, { prompt: 'x', max_tokens: 1 });
    const c = gatewayClients(gw.grpcAddress!);
    try {
      const err = await call(
        c.gateway,
        'Complete',
        { model: 'tiergate-echo', prompt: 'hello', options: { maxTokens: 2 } },
        bearer(KEYS.rpm),
      ).then(
        () => assert.fail('admitted over the limit'),
        (e: ServiceError) => e,
      );
      assert.equal(err.code, GrpcStatus.RESOURCE_EXHAUSTED);
      const md = err.metadata;
      assert.equal(md.get('x-tiergate-http-status')[0], '429');
      assert.equal(md.get('x-tiergate-error-code')[0], 'rate_limit_exceeded');
      assert.equal(md.get('x-ratelimit-limit-requests')[0], String(RPM));
      assert.equal(md.get('x-ratelimit-remaining-requests')[0], '0');
      assert.match(String(md.get('x-ratelimit-reset-requests')[0]), /^\d+(\.\d+)?m?s$/);
      assert.ok(Number(md.get('retry-after')[0]) >= 1);
    } finally {
      c.close();
    }
  });

  it('sends the x-ratelimit-* fields as trailers of a successful gRPC call, unary and streamed', async () => {
    const c = gatewayClients(gw.grpcAddress!);
    try {
      const { trailers } = await callWithTrailers(
        c.gateway,
        'Complete',
        { model: 'tiergate-echo', prompt: 'hi', options: { maxTokens: 2 } },
        bearer(KEYS.scoped),
      );
      assert.equal(trailers.get('x-ratelimit-limit-requests')[0], String(SCOPE_RPM));
      const left = Number(trailers.get('x-ratelimit-remaining-requests')[0]);
      assert.ok(left >= 0 && left < SCOPE_RPM, `remaining ${left}`);
      assert.match(String(trailers.get('x-ratelimit-reset-requests')[0]), /^\d+(\.\d+)?m?s$/);
      const s = stream(
        c.gateway,
        'CompleteStream',
        { model: 'tiergate-echo', prompt: 'hi', options: { maxTokens: 2 } },
        bearer(KEYS.tpm),
      );
      const streamed = new Promise<Metadata>((resolve) =>
        s.on('status', (st: { metadata: Metadata }) => resolve(st.metadata)),
      );
      await collect(s);
      const md = await streamed;
      assert.equal(md.get('x-ratelimit-limit-tokens')[0], String(TPM));
      assert.ok(Number(md.get('x-ratelimit-remaining-tokens')[0]) < TPM);
      assert.equal(md.get('x-ratelimit-limit-requests')[0], '10000');
    } finally {
      c.close();
    }
  });

  it('applies changed limits on a hot reload, from the next request', async () => {
    const before = await complete(gw.baseUrl, KEYS.scoped, { prompt: 'hi', max_tokens: 1 });
    assert.equal(before.headers.get('x-ratelimit-limit-requests'), String(SCOPE_RPM));
    const reload = (limits: Record<string, unknown>, extra: Record<string, unknown> = {}): string[] =>
      gw.gateway.applyConfig(
        buildConfig(
          {
            ...limitsConfig(limits, { grpc: { enabled: true, host: '127.0.0.1', port: 0 } }),
            logging: { level: 'silent' },
            server: { port: 0, host: '127.0.0.1' },
            ...extra,
          },
          { baseDir: REPO_ROOT, env: {} },
        ),
      );
    // Limits apply live: nothing to restart for.
    assert.deepEqual(reload({ byScope: { inference: { requestsPerMinute: 50 } } }), []);
    const after = await complete(gw.baseUrl, KEYS.scoped, { prompt: 'hi', max_tokens: 1 });
    assert.equal(after.headers.get('x-ratelimit-limit-requests'), '50');
    // The store and tracing are set up once: a reload that changes them says they need a restart,
    // and the store in use stays the in-process one.
    const restart = reload(
      { byScope: { inference: { requestsPerMinute: 50 } }, store: 'redis' },
      { tracing: { enabled: true } },
    );
    assert.deepEqual(restart, ['tracing', 'limits.store']);
    const still = await complete(gw.baseUrl, KEYS.scoped, { prompt: 'hi', max_tokens: 1 });
    assert.equal(still.status, 200);
    assert.equal(still.headers.get('x-ratelimit-limit-requests'), '50');
    reload({ byScope: { inference: { requestsPerMinute: 50 } } });
  });

  it('stops one long stream where its tokens-per-minute limit ends, not after the whole answer', async () => {
    const one = await startGateway(limitsConfig({ byKey: { tpm: { tokensPerMinute: 100 } } }));
    try {
      await withinOneMinute(5_000);
      // 11 prompt tokens (10 bytes and the start token); max_tokens 400 would take 411 tokens:
      // the limit ends the stream at 100 tokens in all.
      const a = await complete(one.baseUrl, KEYS.tpm, { prompt: '0123456789', max_tokens: 400 });
      assert.equal(a.status, 200);
      assert.deepEqual(a.body.usage, { prompt_tokens: 11, completion_tokens: 89, total_tokens: 100 });
      assert.equal(a.body.choices?.[0]?.finish_reason, 'length');
      assert.equal(a.headers.get('x-ratelimit-limit-tokens'), '100');
      const next = await complete(one.baseUrl, KEYS.tpm, { prompt: '0123456789', max_tokens: 4 });
      assert.equal(next.status, 429);
      assert.equal(next.headers.get('x-ratelimit-remaining-tokens'), '0');
    } finally {
      await one.shutdown();
    }
  });
});
