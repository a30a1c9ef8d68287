import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { metricValue } from '../helpers/start-gateway.js';
import { grpcCompletion, httpCompletion, idle, parityConfig, startHarness } from './parity-harness.js';

/**
 * Whatever ends a request, what it held is free afterwards: no execution left, no admission slot
 * running or waiting (the router's load is the admission count), no generation in flight. Done,
 * deadline and client cancel are also checked after each request of transport-parity.test.ts.
 */
test('release on every ending: done, refused, failed, deadline, client gone, shutdown', async () => {
  const config = parityConfig();
  // Admission on, so that a stream holds a slot the test can see taken and freed.
  (config.resilience as { defaults?: unknown }).defaults = { admission: { maxConcurrent: 4, maxQueue: 8 } };
  const h = await startHarness({ ...config, server: { shutdownGraceMs: 100 } });
  const zero = { executions: 0, running: 0, queued: 0 };
  try {
    // Done.
    assert.equal((await httpCompletion(h, 'r-done', 'static', true)).status, 200);
    assert.deepEqual(await idle(h), zero);
    // Refused before running: an unknown model, an invalid field.
    assert.equal((await httpCompletion(h, 'r-404', 'nope', false)).status, 404);
    assert.equal((await grpcCompletion(h, 'r-404g', 'nope', false)).status, 404);
    assert.deepEqual(await idle(h), zero);
    // Failed: every tier of the attempt list (the hanging tier's deadline) — and a failing one.
    assert.equal((await grpcCompletion(h, 'r-deadline', 'hang', false)).status, 504);
    assert.deepEqual(await idle(h), zero);
    // Client gone mid-stream, on both transports.
    await httpCompletion(h, 'r-gone', 'slow', true, 2);
    await grpcCompletion(h, 'r-gone-g', 'slow', true, 1);
    assert.deepEqual(await idle(h), zero);
    assert.equal(await metricValue(h.gw.baseUrl, 'tiergate_requests_in_flight{tier="slow"}'), 0);
    // Shutdown: two streams in flight when the grace period ends are aborted and free everything.
    const streams = [httpCompletion(h, 'r-shut', 'slow', true), grpcCompletion(h, 'r-shut-g', 'slow', true)];
    for (let i = 0; i < 100 && h.gw.service.occupancy().running < 2; i++) await sleep(5);
    assert.equal(h.gw.service.occupancy().running, 2, 'both streams hold a slot');
    h.gw.gateway.beginShutdown();
    h.gw.gateway.abortInFlight();
    await Promise.allSettled(streams);
    assert.deepEqual(await idle(h), zero);
  } finally {
    await h.close();
  }
});
