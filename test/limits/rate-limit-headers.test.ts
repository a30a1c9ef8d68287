import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rateLimitFields, resetDuration } from '../../src/api/rate-limit-headers.js';

test('reset durations are written as OpenAI writes them (Go durations)', () => {
  const cases: [number, string][] = [
    [0, '0ms'],
    [-5, '0ms'],
    [20, '20ms'],
    [999.6, '1s'],
    [1000, '1s'],
    [1500, '1.5s'],
    [1050, '1.05s'],
    [1005, '1.005s'],
    [41_337, '41.337s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [3_723_000, '1h2m3s'],
    [3_723_450, '1h2m3.45s'],
  ];
  for (const [ms, text] of cases) assert.equal(resetDuration(ms), text, String(ms));
});

test('the x-ratelimit fields name only the limits a key has', () => {
  assert.deepEqual(rateLimitFields(undefined), {});
  assert.deepEqual(rateLimitFields({ requests: { limit: 20, remaining: 3, resetMs: 1500 } }), {
    'x-ratelimit-limit-requests': '20',
    'x-ratelimit-remaining-requests': '3',
    'x-ratelimit-reset-requests': '1.5s',
  });
});
