import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import { LazyChildLogger, withLazyRequestLoggers } from '../../src/observability/lazy-child-logger.js';

function capture(): DestinationStream & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
}

test('the root logs as pino; its children are lazy and carry their bindings once they log', () => {
  const out = capture();
  const root = createLogger('info', out);
  const logger = withLazyRequestLoggers(root);
  logger.info({ a: 1 }, 'root line');
  const child = logger.child({ requestId: 'r-1' });
  assert.ok(child instanceof LazyChildLogger);
  assert.equal(child.level, 'info');
  child.debug('below the level');
  child.warn({ b: 2 }, 'child line');
  assert.deepEqual(
    out.lines.map((l) => [l.msg, l.requestId, l.a ?? l.b, l.level]),
    [
      ['root line', undefined, 1, 30],
      ['child line', 'r-1', 2, 40],
    ],
  );
});

test('a level set on the root applies to the logger given to fastify', () => {
  const out = capture();
  const root = createLogger('info', out);
  const logger = withLazyRequestLoggers(root);
  root.level = 'debug';
  logger.debug('now visible');
  logger.child({ requestId: 'r-2' }).debug('child too');
  assert.deepEqual(
    out.lines.map((l) => l.msg),
    ['now visible', 'child too'],
  );
});

test('fastify accepts it: request.log lines carry the request id', async () => {
  const out = capture();
  const app = Fastify({
    loggerInstance: withLazyRequestLoggers(createLogger('info', out)),
    disableRequestLogging: true,
    genReqId: () => 'req-7',
  });
  app.get('/', async (request) => {
    request.log.info('inside');
    return 'ok';
  });
  const res = await app.inject({ method: 'GET', url: '/' });
  await app.close();
  assert.equal(res.body, 'ok');
  const line = out.lines.find((l) => l.msg === 'inside');
  assert.equal(line?.reqId, 'req-7');
});
