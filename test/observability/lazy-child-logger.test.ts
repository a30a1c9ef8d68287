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

test('under fastify, no pino child is built for a request that logs nothing', async () => {
  const out = capture();
  const root = createLogger('info', out);
  let built = 0;
  const pinoChild = root.child.bind(root);
  root.child = ((...args: Parameters<typeof root.child>) => {
    built++;
    return pinoChild(...args);
  }) as typeof root.child;
  let ids = 0;
  const app = Fastify({
    loggerInstance: withLazyRequestLoggers(root),
    disableRequestLogging: true,
    genReqId: () => `req-${++ids}`,
  });
  app.get('/quiet', async () => 'ok');
  app.get('/logs', async (request) => {
    request.log.info('inside');
    return 'ok';
  });
  for (let i = 0; i < 3; i++) assert.equal((await app.inject({ method: 'GET', url: '/quiet' })).body, 'ok');
  assert.equal(built, 0);
  assert.equal((await app.inject({ method: 'GET', url: '/logs' })).body, 'ok');
  await app.close();
  assert.ok(built >= 1);
  const line = out.lines.find((l) => l.msg === 'inside');
  assert.equal(line?.reqId, 'req-4');
});
