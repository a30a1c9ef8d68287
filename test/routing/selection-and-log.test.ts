import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { buildConfig } from '../../src/config/index.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';

/**
 * Policy selection by API key and model over HTTP, and the decision in the request's summary log
 * line, on two zero-work echo tiers (no model files: the byte tokenizer).
 */
describe('policy selection and the summary log line', () => {
  let server: RunningServer;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n'))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const config = buildConfig(
      {
        server: { port: 0, host: '127.0.0.1' },
        logging: { level: 'info' },
        tokenizer: { kind: 'bytes' },
        family: { dir: 'models/tiny' },
        auth: {
          enabled: true,
          keys: [
            { name: 'batch', key: 'batch-key-123', scopes: ['inference'] },
            { name: 'web', key: 'web-key-1234', scopes: ['inference', 'admin'] },
          ],
        },
        tiers: { fast: { kind: 'echo', contextLength: 256 }, exact: { kind: 'echo', contextLength: 256 } },
        models: { echo: { tier: 'fast' }, 'echo-static': { tier: 'fast' } },
        routing: {
          minSamples: 100_000,
          profiles: {
            fast: { perOutputTokenMs: 1, accuracy: 0.9 },
            exact: { perOutputTokenMs: 10, accuracy: 1 },
          },
          policies: {
            quick: { tiers: ['fast', 'exact'], objective: 'fastest' },
            precise: { tiers: ['fast', 'exact'], objective: 'most_accurate' },
          },
          byApiKey: { batch: 'precise' },
          byModel: { echo: 'quick' },
        },
      },
      { baseDir: REPO_ROOT, env: {} },
    );
    server = await startServer(config, pino({ level: 'info' }, stream));
  });
  after(async () => {
    await server?.shutdown();
  });

  async function call(key: string, model: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
      body: JSON.stringify({ model, prompt: 'hello', max_tokens: 4 }),
    });
  }

  test("the API key's policy wins over the model's", async () => {
    const res = await call('batch-key-123', 'echo');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-tiergate-policy'), 'precise');
    assert.equal(res.headers.get('x-tiergate-tier'), 'exact');
  });

  test("the model's policy applies to other keys; the header overrides both", async () => {
    const res = await call('web-key-1234', 'echo');
    assert.equal(res.headers.get('x-tiergate-policy'), 'quick');
    assert.equal(res.headers.get('x-tiergate-tier'), 'fast');
    const named = await call('web-key-1234', 'echo', { 'x-tiergate-policy': 'precise' });
    assert.equal(named.headers.get('x-tiergate-tier'), 'exact');
  });

  test('a model no rule covers uses its static tier', async () => {
    const res = await call('web-key-1234', 'echo-static');
    assert.equal(res.headers.get('x-tiergate-policy'), 'none');
    assert.match(res.headers.get('x-tiergate-route-reason')!, /^static: fast/);
  });

  test('the summary log line carries the policy and the reason code', async () => {
    const res = await call('batch-key-123', 'echo', { 'x-request-id': 'routing-log-1' });
    await res.text();
    // The line is written when the response closes.
    for (let i = 0; i < 50 && !lines.some((l) => l.requestId === 'routing-log-1'); i++)
      await new Promise((r) => setTimeout(r, 10));
    const line = lines.find((l) => l.requestId === 'routing-log-1' && l.msg === 'request');
    assert.ok(line, 'summary line written');
    assert.equal(line.policy, 'precise');
    assert.equal(line.routeReason, 'objective');
    assert.equal(line.tier, 'exact');
  });

  test('/admin/route/simulate needs the admin scope', async () => {
    const body = JSON.stringify({ traffic: [{ prompt_tokens: 5, max_tokens: 4, model: 'echo' }] });
    const post = (key: string) =>
      fetch(`${server.url}/admin/route/simulate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body,
      });
    assert.equal((await post('batch-key-123')).status, 403);
    const ok = await post('web-key-1234');
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { tierMix: object }).tierMix, { fast: { requests: 1, share: 1 } });
  });
});
