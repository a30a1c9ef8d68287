import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { call, gatewayClients } from '../api/grpc/grpc-client.js';
import { echoConfig, startGateway } from '../helpers/start-gateway.js';

const KEY = 'sk-redaction-test-key';

/**
 * `logging.redact` paths never reach a log line: pino's redact sees every line, the per-request
 * summary of both transports included, and so do the paths always redacted (authorization).
 */
test('configured redact paths never appear in any log line, summaries included', async () => {
  const lines: string[] = [];
  const gw = await startGateway(
    echoConfig({
      logging: { level: 'debug', redact: ['apiKey', 'model', 'routeReason'] },
      grpc: { enabled: true, host: '127.0.0.1', port: 0 },
      auth: { enabled: true, keys: [{ name: 'team-secret-name', key: KEY, scopes: ['inference', 'admin'] }] },
      models: { 'model-secret-name': { tier: 'echo' } },
    }),
    KEY,
    { write: (line: string) => void lines.push(line) },
  );
  try {
    const res = await gw.client.completions.create({
      model: 'model-secret-name',
      prompt: 'hi',
      max_tokens: 4,
    });
    assert.equal(res.model, 'model-secret-name');
    // A refused request and an unknown model are summarised too.
    await fetch(`${gw.baseUrl}/v1/models`, { headers: { authorization: 'Bearer wrong-key' } });
    await gw.client.completions.create({ model: 'model-secret-name-2', prompt: 'hi' }).catch(() => undefined);
    const c = gatewayClients(gw.grpcAddress!);
    const md = new Metadata();
    md.set('authorization', `Bearer ${KEY}`);
    md.set('x-request-id', 'redaction-grpc');
    await call(
      c.gateway,
      'Complete',
      { model: 'model-secret-name', prompt: 'hi', options: { maxTokens: 4 } },
      md,
    );
    c.close();
  } finally {
    await gw.shutdown();
  }
  const summaries = lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'request');
  assert.ok(summaries.length >= 4, `summary lines: ${summaries.length}`);
  assert.ok(summaries.some((s) => s.transport === 'grpc' && s.requestId === 'redaction-grpc'));
  for (const s of summaries.filter((l) => l.route !== '/v1/models')) assert.equal(s.model, '[redacted]');
  const text = lines.join('\n');
  for (const secret of ['model-secret-name', 'team-secret-name', KEY, 'wrong-key'])
    assert.ok(!text.includes(secret), `"${secret}" was logged`);
});
