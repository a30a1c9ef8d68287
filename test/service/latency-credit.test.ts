import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServedPart } from '../../src/resilience/executor.js';
import { latencyCredits } from '../../src/service/latency-credit.js';

function part(over: Partial<ServedPart>): ServedPart {
  return {
    tier: 'main',
    startedAt: 100,
    promptTokens: 10,
    firstTokenAt: 150,
    lastTokenAt: 150,
    tokens: 1,
    finished: false,
    ...over,
  };
}

test('each tier is credited its own timings (the first its admission wait apart), the mean batch it decoded in and the other tiers busy', () => {
  const credits = latencyCredits(
    [
      part({
        tier: 'edge',
        startedAt: 104,
        tokens: 5,
        firstTokenAt: 120,
        lastTokenAt: 160,
        occupancySum: 10,
        othersBusySum: 5,
        occupancySamples: 5,
      }),
      part({
        tier: 'main',
        startedAt: 170,
        promptTokens: 15,
        firstTokenAt: 200,
        lastTokenAt: 260,
        tokens: 4,
        occupancySum: 24,
        othersBusySum: 0,
        occupancySamples: 4,
      }),
    ],
    100,
  );
  assert.deepEqual(credits, [
    {
      tier: 'edge',
      observation: {
        promptTokens: 10,
        ttftMs: 20,
        queueMs: 4,
        perTokenMs: 10,
        concurrency: 2,
        otherTiersBusy: 1,
      },
    },
    {
      tier: 'main',
      observation: {
        promptTokens: 15,
        ttftMs: 30,
        queueMs: undefined,
        perTokenMs: 20,
        concurrency: 6,
        otherTiersBusy: 0,
      },
    },
  ]);
});

test('a part that does not know its batch (a speculative pair) leaves the concurrency unknown', () => {
  const [credit] = latencyCredits([part({ tier: 'edge>main', tokens: 3, lastTokenAt: 170 })], 100);
  assert.equal(credit!.observation.concurrency, undefined);
  assert.equal(credit!.observation.perTokenMs, 10);
});
