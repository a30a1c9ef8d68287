import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  holdTraceContext,
  releaseTraceContext,
  traceContextOfRequest,
} from '../../src/observability/tracing.js';

const A = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
const B = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };

test("a running request's trace context is found by its id, and gone once released", () => {
  holdTraceContext('req-1', A);
  assert.deepEqual(traceContextOfRequest('req-1'), A);
  assert.equal(traceContextOfRequest('req-2'), undefined);
  assert.equal(traceContextOfRequest(undefined), undefined);
  releaseTraceContext('req-1');
  assert.equal(traceContextOfRequest('req-1'), undefined);
});

test('two running requests with one id get no context rather than each other’s', () => {
  holdTraceContext('dup', A);
  holdTraceContext('dup', B);
  assert.equal(traceContextOfRequest('dup'), undefined);
  releaseTraceContext('dup');
  assert.equal(traceContextOfRequest('dup'), undefined);
  releaseTraceContext('dup');
  holdTraceContext('dup', B);
  assert.deepEqual(traceContextOfRequest('dup'), B, 'a later request with the id is its own again');
  releaseTraceContext('dup');
});
