import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { rawRequest } from '../helpers/raw-http.js';
import { echoConfig, startGateway, type TestGateway } from '../helpers/start-gateway.js';

let gw: TestGateway;
let port: number;

before(async () => {
  gw = await startGateway(
    echoConfig({
      // Only the header timeout can end the slow connection: the whole-request limit is off.
      server: { headersTimeoutMs: 300, requestTimeoutMs: 0, connectionsCheckingIntervalMs: 50 },
    }),
  );
  port = Number(new URL(gw.baseUrl).port);
});
after(async () => gw.shutdown());

test('the server config reaches the HTTP server', () => {
  const server = gw.app.server;
  const config = gw.gateway.config.server;
  assert.deepEqual(
    [server.headersTimeout, server.requestTimeout, server.keepAliveTimeout],
    [config.headersTimeoutMs, config.requestTimeoutMs, config.keepAliveTimeoutMs],
  );
  assert.equal(server.headersTimeout, 300);
});

test('a client that sends its headers slower than server.headersTimeoutMs is disconnected', async () => {
  const slow = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => slow.once('connect', resolve));
  let received = '';
  slow.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  slow.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
  // One valid header line at a time, never the blank line that ends them.
  slow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  let lines = 0;
  const drip = setInterval(() => {
    if (!slow.destroyed) slow.write(`X-Slow-${lines++}: still coming\r\n`);
  }, 50);
  try {
    // Meanwhile the server answers everyone else.
    const normal = await rawRequest(port, { method: 'GET', target: '/healthz' });
    assert.equal(normal.status, 200);
    await closed;
  } finally {
    clearInterval(drip);
    slow.destroy();
  }
  assert.match(received, /^HTTP\/1\.1 408 /);
  assert.ok(lines > 0, 'the slow client was sending when it was cut off');
  const after = await rawRequest(port, { method: 'GET', target: '/healthz' });
  assert.equal(after.status, 200);
});
