import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { toApiError } from '../../src/api/errors.js';
import { toGrpcStatus } from '../../src/api/grpc/grpc-status.js';
import { ERROR_KINDS, GatewayError, type ErrorKind } from '../../src/errors/gateway-error.js';

/** What each kind must become on each transport (docs/architecture.md "Errors"). */
const EXPECTED: Record<ErrorKind, { status: number; type: string; code: string | null; grpc: GrpcStatus }> = {
  bad_request: { status: 400, type: 'invalid_request_error', code: null, grpc: GrpcStatus.INVALID_ARGUMENT },
  not_found: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
    grpc: GrpcStatus.NOT_FOUND,
  },
  context_length: {
    status: 400,
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    grpc: GrpcStatus.INVALID_ARGUMENT,
  },
  infeasible: {
    status: 422,
    type: 'invalid_request_error',
    code: 'route_infeasible',
    grpc: GrpcStatus.FAILED_PRECONDITION,
  },
  overloaded: {
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
  },
  rate_limited: {
    status: 429,
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
  },
  quota_exceeded: {
    status: 429,
    type: 'insufficient_quota',
    code: 'insufficient_quota',
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
  },
  unavailable: {
    status: 503,
    type: 'server_error',
    code: 'service_unavailable',
    grpc: GrpcStatus.UNAVAILABLE,
  },
  timeout: {
    status: 504,
    type: 'server_error',
    code: 'deadline_exceeded',
    grpc: GrpcStatus.DEADLINE_EXCEEDED,
  },
  upstream_timeout: {
    status: 504,
    type: 'server_error',
    code: 'upstream_timeout',
    grpc: GrpcStatus.UNAVAILABLE,
  },
  upstream_broken: {
    status: 502,
    type: 'server_error',
    code: 'upstream_failed',
    grpc: GrpcStatus.UNAVAILABLE,
  },
  cancelled: {
    status: 499,
    type: 'invalid_request_error',
    code: 'client_closed_request',
    grpc: GrpcStatus.CANCELLED,
  },
  internal: { status: 500, type: 'server_error', code: 'internal_error', grpc: GrpcStatus.INTERNAL },
};

test('every error kind has its HTTP status, OpenAI error body and gRPC status', () => {
  assert.deepEqual([...ERROR_KINDS].sort(), Object.keys(EXPECTED).sort(), 'the table covers the closed set');
  for (const kind of ERROR_KINDS) {
    const want = EXPECTED[kind];
    const err = new GatewayError(kind, `a ${kind} error`, { param: 'max_tokens', retryAfter: 7 });
    const api = toApiError(err);
    assert.equal(api.status, want.status, kind);
    // An internal error's own words are not shown to clients.
    const message =
      kind === 'internal' ? 'The server had an error while processing your request.' : `a ${kind} error`;
    const param = kind === 'internal' ? null : 'max_tokens';
    assert.deepEqual(api.toBody(), { error: { message, type: want.type, param, code: want.code } }, kind);
    const grpc = toGrpcStatus(err);
    assert.equal(grpc.status.code, want.grpc, kind);
    assert.equal(grpc.status.details, message, kind);
    assert.equal(grpc.status.metadata?.get('x-tiergate-http-status')[0], String(want.status), kind);
    assert.equal(grpc.status.metadata?.get('x-tiergate-error-code')[0], want.code ?? want.type, kind);
    if (kind !== 'internal') {
      assert.equal(api.retryAfter, 7, `${kind}: Retry-After`);
      assert.equal(grpc.status.metadata?.get('retry-after')[0], '7', `${kind}: retry-after`);
    }
  }
});

test('a kind without its own Retry-After gets one second where clients should come back', () => {
  assert.equal(toApiError(new GatewayError('overloaded', 'x')).retryAfter, 1);
  assert.equal(toApiError(new GatewayError('unavailable', 'x')).retryAfter, 1);
  assert.equal(toApiError(new GatewayError('bad_request', 'x')).retryAfter, undefined);
});

test('tiers map their native errors to one kind at their boundary', async () => {
  const { OnnxTierError } = await import('../../src/tiers/onnx/onnx-tier-error.js');
  const { RemoteTierError } = await import('../../src/tiers/remote/remote-tier-error.js');
  const { TierOverloadedError, TierUnavailableError } = await import('../../src/tiers/errors.js');
  // The two tiers' bad requests were a 400 and a 500 before one error model: both 400 now.
  assert.equal(toApiError(new OnnxTierError('TG_ONNX_BAD_REQUEST', 'x')).status, 400);
  assert.equal(toApiError(new RemoteTierError('TG_REMOTE_BAD_REQUEST', 'x')).status, 400);
  assert.equal(new RemoteTierError('TG_REMOTE_STREAM_BROKEN', 'x').kind, 'upstream_broken');
  assert.equal(new RemoteTierError('TG_REMOTE_DEADLINE', 'x').retryable, false);
  assert.equal(toApiError(new TierOverloadedError('edge')).status, 429);
  assert.equal(toApiError(new TierUnavailableError('edge', 'x')).retryAfter, 5);
});
