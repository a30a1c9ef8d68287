import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withAttempts, type GenerationRequest } from '../../src/pipeline/types.js';

test('withAttempts keeps every field of the request and sets the attempts', () => {
  // Every field set (optional ones too), so a field added to GenerationRequest but not copied
  // by withAttempts shows up here.
  const full: Required<GenerationRequest> = {
    requestId: 'r',
    model: 'm',
    tier: 't',
    promptTokens: [1, 2],
    maxTokens: 3,
    sampling: { temperature: 0.5, topP: 0.9, topK: 4, seed: 5 },
    stop: ['x'],
    n: 2,
    logprobs: true,
    topLogprobs: 1,
    arrivedAt: 6,
    attempts: [{ tier: 'a', deadlineMs: 1 }],
    deadline: 7,
  };
  const attempts = [{ tier: 'b', deadlineMs: 2 }];
  const copy = withAttempts(full, attempts);
  assert.deepEqual(Object.keys(copy).sort(), Object.keys(full).sort());
  assert.deepEqual(copy, { ...full, attempts });
});
