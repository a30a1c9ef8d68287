import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { formatOpenLoop, openLoop, percentiles } from '../../bench/lib/open-loop.js';

// The server shares this process's event loop with the load generator, so every delay below is a
// timer, never a busy wait: a blocked loop would stall the client too and prove nothing.
async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1/completions` };
}

// Node timers run on the loop's millisecond clock and can fire up to ~1 ms before the requested
// delay by performance.now(); re-arm until the deadline has really passed.
function at(deadline: number, fn: () => void): void {
  const left = deadline - performance.now();
  if (left <= 0) fn();
  else setTimeout(() => at(deadline, fn), Math.ceil(left));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const BODY = JSON.stringify({ model: 'tiergate-echo', prompt: 'hello', max_tokens: 4 });

describe('openLoop', () => {
  let slow: { server: Server; url: string };
  let stalling: { server: Server; url: string };
  let bodies = 0;

  before(async () => {
    // Answers every request 5 ms after its body arrived.
    slow = await listen((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        if (body === BODY) bodies++;
        at(performance.now() + 5, () =>
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
        );
      });
    });
    // Answers at once, except that everything arriving between its 100th request and 300 ms later
    // is held until those 300 ms are over (a server-side pause such as a GC or a lock).
    let seen = 0;
    let stallUntil = 0;
    stalling = await listen((req, res) => {
      req.resume();
      req.on('end', () => {
        seen++;
        if (seen === 100) stallUntil = performance.now() + 300;
        at(stallUntil, () => res.end('{"ok":true}'));
      });
    });
  });
  after(async () => {
    await close(slow.server);
    await close(stalling.server);
  });

  test('holds the requested rate and sees the server delay', async () => {
    const r = await openLoop({
      url: slow.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      rate: 200,
      durationSeconds: 2,
      connections: 8,
      warmupSeconds: 0.5,
    });
    assert.equal(r.errors, 0, formatOpenLoop(r));
    assert.equal(r.sent, 400);
    assert.equal(r.completed, 400);
    assert.ok(Math.abs(r.achievedRate - 200) <= 20, formatOpenLoop(r));
    assert.ok(r.latency.p50 >= 5, formatOpenLoop(r));
    assert.ok(r.serviceLatency.p50 >= 5, formatOpenLoop(r));
    // Warm-up requests reach the server but are not counted; every body arrived intact.
    assert.equal(bodies, 500);
  });

  test('charges a stall from the due time, including requests queued behind it', async () => {
    // Two connections: during the 300 ms stall both are held and the next ~60 requests wait in
    // the client's queue. Their service latency is short, but their latency from due time is not.
    const r = await openLoop({
      url: stalling.url,
      rate: 200,
      durationSeconds: 2,
      connections: 2,
      warmupSeconds: 0,
    });
    const line = formatOpenLoop(r);
    assert.equal(r.errors, 0, line);
    assert.equal(r.completed, 400, line);
    // ~60 of 400 requests (15%) were delayed by tens to hundreds of ms.
    assert.ok(r.latency.p90 >= 50, line);
    assert.ok(r.latency.p99 >= 150, line);
    assert.ok(r.latency.max >= 250, line);
    assert.ok(r.lateStarts >= 30, line);
    // Measured from the actual send, the queued requests look fast: that is coordinated omission.
    assert.ok(r.serviceLatency.p90 < r.latency.p90 / 2, line);
  });

  test('counts refused connections as errors', async () => {
    const gone = await listen((_req, res) => res.end());
    const url = gone.url;
    await close(gone.server);
    const r = await openLoop({ url, rate: 50, durationSeconds: 0.5, connections: 2, warmupSeconds: 0 });
    assert.equal(r.completed, 0);
    assert.equal(r.errors, 25);
  });

  test('percentiles are nearest-rank over the sorted samples', () => {
    const xs = Float64Array.from({ length: 1000 }, (_, i) => 1000 - i);
    const p = percentiles(xs);
    assert.deepEqual(p, { p50: 500, p90: 900, p99: 990, p999: 999, max: 1000 });
  });
});
