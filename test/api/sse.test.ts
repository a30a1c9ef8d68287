import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyReply } from 'fastify';
import { SseWriter } from '../../src/api/sse.js';

/**
 * Runs `script` against an SseWriter on a real fastify reply (inject, no socket) and returns the
 * body and the chunks handed to the response, one per socket write (the last is the stream's end).
 */
async function stream(
  coalesceMs: number,
  script: (sse: SseWriter, writes: readonly string[]) => Promise<void>,
  pending?: () => readonly unknown[],
): Promise<{ body: string; writes: string[] }> {
  const app = Fastify();
  const writes: string[] = [];
  app.get('/', async (_request, reply: FastifyReply) => {
    const raw = reply.raw;
    const write = raw.write.bind(raw) as (chunk: string) => boolean;
    raw.write = ((chunk: string) => (writes.push(chunk), write(chunk))) as typeof raw.write;
    const sse = new SseWriter(reply, coalesceMs, pending);
    await script(sse, writes);
    sse.end();
  });
  const res = await app.inject({ method: 'GET', url: '/' });
  await app.close();
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  return { body: res.body, writes };
}

const events = (text: string): string[] =>
  text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => e.replace(/^data: /, ''));

/** A pending source for the writer: events pushed to `queued` until the writer takes them. */
function source(): { queued: unknown[]; take: () => unknown[] } {
  const queued: unknown[] = [];
  return { queued, take: () => queued.splice(0) };
}

/** Resolves once `check` holds, polling each event-loop turn (the test runner's timeout bounds it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

describe('SseWriter', () => {
  test('coalesceMs 0 writes every event at once', async () => {
    const { body, writes } = await stream(0, async (sse) => {
      for (const n of [1, 2, 3]) await sse.send({ n });
    });
    assert.deepEqual(writes.map(events), [['{"n":1}'], ['{"n":2}'], ['{"n":3}'], ['[DONE]']]);
    assert.deepEqual(events(body), ['{"n":1}', '{"n":2}', '{"n":3}', '[DONE]']);
  });

  test('the first event goes at once; events right after it are held and leave together', async () => {
    const { body, writes } = await stream(60_000, async (sse) => {
      for (const n of [1, 2, 3]) await sse.send({ n });
    });
    // One write for the first event; the two held ones leave with the end of the stream.
    assert.deepEqual(writes.map(events), [['{"n":1}'], ['{"n":2}', '{"n":3}', '[DONE]']]);
    assert.deepEqual(events(body), ['{"n":1}', '{"n":2}', '{"n":3}', '[DONE]']);
  });

  test('a held event is written by itself once the window has passed, without a later event', async () => {
    const { writes } = await stream(5, async (sse, written) => {
      await sse.send({ n: 1 });
      await sse.send({ n: 2 });
      await until(() => written.length === 2);
    });
    assert.deepEqual(writes.map(events), [['{"n":1}'], ['{"n":2}'], ['[DONE]']]);
  });

  test('an event after the window is written at once, with whatever was held', async () => {
    const { writes } = await stream(5, async (sse) => {
      await sse.send({ n: 1 });
      const wroteFirst = performance.now();
      await sse.send({ n: 2 });
      // Wait out the window without giving the held event's timer a chance to run first.
      while (performance.now() - wroteFirst < 5);
      await sse.send({ n: 3 });
    });
    assert.deepEqual(writes.map(events), [['{"n":1}'], ['{"n":2}', '{"n":3}'], ['[DONE]']]);
  });

  test('held opening chunks leave with the first event', async () => {
    const { writes } = await stream(0, async (sse) => {
      sse.hold({ role: 'assistant' });
      await sse.send({ n: 1 });
    });
    assert.deepEqual(writes.map(events), [['{"role":"assistant"}', '{"n":1}'], ['[DONE]']]);
  });

  test('the pending source is drained by the same window, before an event sent after it', async () => {
    const { queued, take } = source();
    const { writes } = await stream(
      60_000,
      async (sse) => {
        queued.push({ p: 1 });
        await sse.schedule();
        // Within the window: waits in the source, and leaves ahead of the next sent event.
        queued.push({ p: 2 });
        await sse.schedule();
        await sse.send({ n: 3 });
        queued.push({ p: 4 });
        await sse.schedule();
      },
      take,
    );
    // The last pending event leaves with the end of the stream.
    assert.deepEqual(writes.map(events), [['{"p":1}'], ['{"p":2}', '{"n":3}', '{"p":4}', '[DONE]']]);
  });

  test('with coalesceMs 0, each schedule() writes what is pending at once', async () => {
    const { queued, take } = source();
    const { writes } = await stream(
      0,
      async (sse) => {
        for (const p of [1, 2]) {
          queued.push({ p });
          await sse.schedule();
        }
        // Nothing pending: no empty write.
        await sse.schedule();
      },
      take,
    );
    assert.deepEqual(writes.map(events), [['{"p":1}'], ['{"p":2}'], ['[DONE]']]);
  });
});

describe('SseWriter backpressure', () => {
  test('a client that stops reading makes send() wait until the socket drains', async () => {
    const app = Fastify();
    let waited = 0;
    let sent = 0;
    const big = 'x'.repeat(64 * 1024);
    app.get('/', async (_request, reply) => {
      const sse = new SseWriter(reply, 1);
      // Without a reader, the socket fills: send() then hands back a promise instead of buffering.
      for (;;) {
        const wait = sse.send({ big, n: sent++ });
        if (wait !== undefined) {
          waited++;
          await wait;
          break;
        }
      }
      sse.end();
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(url);
    const { connect } = await import('node:net');
    const socket = connect(Number(port), '127.0.0.1');
    socket.pause();
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await until(() => waited === 1);
    // The handler is parked on the promise: nothing more is produced while the client does not read.
    const parkedAt = sent;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(sent, parkedAt);
    // Resuming the reader drains the socket, the handler goes on and ends the stream.
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received = (received + d).slice(-64)));
    socket.resume();
    await until(() => received.includes('[DONE]'));
    socket.destroy();
    await app.close();
    assert.ok(sent >= 1);
  });
});
