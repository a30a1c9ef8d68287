import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveEndpoints, splitHostPort } from '../../src/tiers/remote/endpoint-resolver.js';

test('host:port parsing accepts names, IPv4 and bracketed IPv6', () => {
  assert.deepEqual(splitHostPort('edge-workers.tiergate.svc:50061'), {
    host: 'edge-workers.tiergate.svc',
    port: '50061',
  });
  assert.deepEqual(splitHostPort('10.0.0.7:1'), { host: '10.0.0.7', port: '1' });
  assert.deepEqual(splitHostPort('[::1]:50061'), { host: '::1', port: '50061' });
  assert.throws(() => splitHostPort('no-port'), /not host:port/);
});

test('resolve: a name becomes every address the system resolver gives for it', async () => {
  const { endpoints, errors } = await resolveEndpoints(['localhost:50061', '10.1.2.3:7'], true);
  assert.deepEqual(errors, []);
  assert.ok(endpoints.includes('127.0.0.1:50061') || endpoints.includes('[::1]:50061'), endpoints.join(', '));
  assert.ok(endpoints.includes('10.1.2.3:7'));
  assert.ok(!endpoints.includes('localhost:50061'));
});

test('resolve: a name that does not resolve is reported, not fatal', async () => {
  const { endpoints, errors } = await resolveEndpoints(['does-not-exist.invalid:1', '127.0.0.1:2'], true);
  assert.deepEqual(endpoints, ['127.0.0.1:2']);
  assert.equal(errors.length, 1);
});

test('without resolve, targets are used as given (gRPC resolves each itself)', async () => {
  const { endpoints } = await resolveEndpoints(['b:1', 'a:2', 'a:2'], false);
  assert.deepEqual(endpoints, ['a:2', 'b:1']);
});
