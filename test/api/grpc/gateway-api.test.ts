import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { echoConfig, startGateway, type TestGateway } from '../../helpers/start-gateway.js';
import { bearer, call, collect, gatewayClients, stream, type GatewayClients } from './grpc-client.js';

const KEY = 'sk-grpc-test-key-1';

interface Completion {
  id: string;
  model: string;
  choices: { index: number; text: string; finishReason: string }[];
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  route: { policy: string; code: string; tier: string; servedBy: string[] };
}

interface Chunk {
  id: string;
  index: number;
  text: string;
  finishReason: string;
  usage: Completion['usage'] | null;
  route: Completion['route'] | null;
}

/** The gRPC API of a real gateway (echo tiers, byte tokenizer, API keys on) through a real grpc-js client. */
describe('gRPC gateway API', () => {
  let gw: TestGateway;
  let c: GatewayClients;

  before(async () => {
    gw = await startGateway(
      echoConfig({
        grpc: { enabled: true, host: '127.0.0.1', port: 0 },
        auth: { enabled: true, keys: [{ name: 'tester', key: KEY, scopes: ['inference'] }] },
        tiers: {
          echo: { kind: 'echo', contextLength: 256 },
          slow: { kind: 'echo', contextLength: 256, tokenDelayMs: 25 },
        },
        models: {
          'tiergate-echo': { tier: 'echo', description: 'echo' },
          'tiergate-slow': { tier: 'slow' },
          'tiergate-routed': { tier: 'echo' },
        },
        routing: {
          policies: { both: { tiers: ['echo', 'slow'], objective: 'fastest', latencyBudgetMs: 5000 } },
          byModel: { 'tiergate-routed': 'both' },
        },
      }),
    );
    assert.ok(gw.grpcAddress, 'gRPC address');
    c = gatewayClients(gw.grpcAddress);
  });

  after(async () => {
    c.close();
    await gw.shutdown();
  });

  const auth = () => bearer(KEY);

  it('answers a unary completion through the same pipeline as HTTP', async () => {
    const request = {
      model: 'tiergate-echo',
      prompt: 'hello grpc',
      options: { maxTokens: 10, temperature: 0 },
    };
    const res = await call<Completion>(c.gateway, 'Complete', request, auth());
    const http = await gw.client.completions.create(
      { model: 'tiergate-echo', prompt: 'hello grpc', max_tokens: 10, temperature: 0 },
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    assert.equal(res.choices.length, 1);
    assert.equal(res.choices[0]?.text, http.choices[0]?.text);
    assert.equal(res.choices[0]?.finishReason, 'length');
    assert.equal(res.usage.completionTokens, 10);
    assert.equal(res.usage.promptTokens, http.usage?.prompt_tokens);
    assert.equal(res.route.tier, 'echo');
    assert.deepEqual(res.route.servedBy, ['echo']);
    assert.match(res.id, /^cmpl-/);
  });

  it('streams a completion whose chunks add up to the unary answer, usage last', async () => {
    const request = {
      model: 'tiergate-echo',
      prompt: 'stream me',
      options: { maxTokens: 12, temperature: 0 },
    };
    const whole = await call<Completion>(c.gateway, 'Complete', request, auth());
    const chunks = await collect<Chunk>(stream(c.gateway, 'CompleteStream', request, auth()));
    assert.ok(chunks.length >= 3, `chunks: ${chunks.length}`);
    assert.equal(chunks.map((k) => k.text).join(''), whole.choices[0]?.text);
    assert.equal(chunks.at(-2)?.finishReason, 'length');
    const last = chunks.at(-1)!;
    assert.equal(last.usage?.completionTokens, 12);
    assert.equal(last.route?.tier, 'echo');
  });

  it('answers chat, unary and streamed, with the HTTP chat template', async () => {
    const request = {
      model: 'tiergate-echo',
      messages: [{ role: 'user', content: 'hi there' }],
      options: { maxTokens: 8, temperature: 0 },
    };
    const res = await call<Completion>(c.gateway, 'Chat', request, auth());
    const http = await gw.client.chat.completions.create(
      {
        model: 'tiergate-echo',
        messages: [{ role: 'user', content: 'hi there' }],
        max_tokens: 8,
        temperature: 0,
      },
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    assert.match(res.id, /^chatcmpl-/);
    assert.equal(res.choices[0]?.text, http.choices[0]?.message.content);
    const chunks = await collect<Chunk>(stream(c.gateway, 'ChatStream', request, auth()));
    assert.equal(chunks.map((k) => k.text).join(''), res.choices[0]?.text);
  });

  it('lists the served models', async () => {
    const res = await call<{ models: { id: string; tier: string; ready: boolean; framework: string }[] }>(
      c.gateway,
      'ListModels',
      {},
      auth(),
    );
    assert.deepEqual(res.models.map((m) => m.id).sort(), [
      'tiergate-echo',
      'tiergate-routed',
      'tiergate-slow',
    ]);
    assert.ok(res.models.every((m) => m.ready && m.framework === 'echo'));
  });

  it('explains a route without running a model', async () => {
    const res = await call<{
      code: string;
      policy: string;
      attempts: { tier: string }[];
      promptTokens: number;
    }>(c.gateway, 'Explain', { model: 'tiergate-slow', prompt: 'abc', maxTokens: 5 }, auth());
    assert.equal(res.policy, 'none');
    assert.equal(res.code, 'static');
    assert.equal(res.attempts[0]?.tier, 'slow');
    assert.ok(res.promptTokens >= 3);
    const chat = await call<{ code: string; promptTokens: number }>(
      c.gateway,
      'Explain',
      { model: 'tiergate-echo', messages: [{ role: 'user', content: 'abc' }] },
      auth(),
    );
    assert.equal(chat.code, 'static');
    assert.ok(chat.promptTokens > res.promptTokens, 'the chat template adds tokens');
    assert.equal(
      (res.attempts[0] as { predictedMs?: number }).predictedMs,
      undefined,
      'a fixed plan predicts nothing',
    );
    // A routed plan carries the engine's prediction per attempt, as HTTP's /v1/route/explain does.
    const routed = await call<{ policy: string; attempts: { tier: string; predictedMs?: number }[] }>(
      c.gateway,
      'Explain',
      { model: 'tiergate-routed', prompt: 'abc', maxTokens: 5 },
      auth(),
    );
    assert.equal(routed.policy, 'both');
    assert.ok(routed.attempts.length >= 1);
    for (const a of routed.attempts)
      assert.ok(typeof a.predictedMs === 'number' && a.predictedMs >= 0, a.tier);
  });

  it('maps errors to gRPC status codes from the shared error table', async () => {
    const request = { model: 'tiergate-echo', prompt: 'x', options: { maxTokens: 2 } };
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('expected an error'),
        (err: ServiceError) => err.code,
      );
    assert.equal(await codeOf(call(c.gateway, 'Complete', request)), GrpcStatus.UNAUTHENTICATED);
    assert.equal(
      await codeOf(call(c.gateway, 'Complete', request, bearer('sk-wrong-key'))),
      GrpcStatus.UNAUTHENTICATED,
    );
    assert.equal(
      await codeOf(collect(stream(c.gateway, 'CompleteStream', request))),
      GrpcStatus.UNAUTHENTICATED,
    );
    assert.equal(
      await codeOf(call(c.gateway, 'Complete', { ...request, model: 'nope' }, auth())),
      GrpcStatus.NOT_FOUND,
    );
    const tooMany = { ...request, options: { maxTokens: 2, n: 99 } };
    const err = await call(c.gateway, 'Complete', tooMany, auth()).catch((e: ServiceError) => e);
    assert.equal((err as ServiceError).code, GrpcStatus.INVALID_ARGUMENT);
    assert.match((err as ServiceError).details, /'n' must be at most/);
    assert.equal((err as ServiceError).metadata.get('x-tiergate-http-status')[0], '400');
  });

  it('turns the gRPC deadline into the request budget (DEADLINE_EXCEEDED)', async () => {
    // 200 tokens at 25 ms each cannot fit in 300 ms.
    const request = { model: 'tiergate-slow', prompt: 'slow one', options: { maxTokens: 200 } };
    const deadline = new Date(Date.now() + 300);
    const err = await call(c.gateway, 'Complete', request, auth(), { deadline }).catch(
      (e: ServiceError) => e,
    );
    assert.equal((err as ServiceError).code, GrpcStatus.DEADLINE_EXCEEDED);
    await waitFor(() => inFlight(gw, 'slow') === 0, 'slot freed after the deadline');
    // Counted as a timeout (HTTP's 504), like the HTTP API's requests.
    await waitFor(() => requests(gw, '/tiergate.v1.Gateway/Complete', '504') === 1, 'request counted as 504');
  });

  it('stops generating when the client cancels the stream', async () => {
    const before = aborted(gw, 'slow');
    const s = stream<Chunk>(
      c.gateway,
      'CompleteStream',
      { model: 'tiergate-slow', prompt: 'cancel me', options: { maxTokens: 200 } },
      auth(),
    );
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    assert.equal(inFlight(gw, 'slow'), 1);
    s.on('error', () => undefined);
    s.cancel();
    await waitFor(() => inFlight(gw, 'slow') === 0, 'generation stopped after cancel');
    await waitFor(() => aborted(gw, 'slow') === before + 1, 'counted as aborted');
  });

  it('serves grpc.health.v1 for the process and the gateway API', async () => {
    const ok = await call<{ status: string }>(c.health, 'Check', { service: '' });
    assert.equal(ok.status, 'SERVING');
    const api = await call<{ status: string }>(c.health, 'Check', { service: 'tiergate.v1.Gateway' });
    assert.equal(api.status, 'SERVING');
    const err = await call(c.health, 'Check', { service: 'nope' }).catch((e: ServiceError) => e);
    assert.equal((err as ServiceError).code, GrpcStatus.NOT_FOUND);
  });
});

function requests(gw: TestGateway, route: string, status: string): number {
  const entry = gw.gateway.metrics.requests
    .get()
    .values.find((e) => e.labels.route === route && e.labels.status === status);
  return entry?.value ?? 0;
}

// The in-flight gauge is filled at scrape time from this count.
const inFlight = (gw: TestGateway, tier: string) => gw.gateway.metrics.generating.get(tier) ?? 0;
const aborted = (gw: TestGateway, tier: string) =>
  gw.gateway.metrics.aborted.get().values.find((e) => e.labels.tier === tier)?.value ?? 0;

async function waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await sleep(20);
  }
}
