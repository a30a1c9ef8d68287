import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import { writeSummaryLine, type SummaryFields } from '../../src/observability/summary-line.js';

function capture(): DestinationStream & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}

const minimal: SummaryFields = {
  requestId: 'req-1',
  method: 'POST',
  route: '/v1/completions',
  status: 200,
  apiKey: undefined,
  denied: undefined,
  model: undefined,
  tier: undefined,
  policy: undefined,
  routeReason: undefined,
  stream: false,
  promptTokens: 12,
  completionTokens: 16,
  ttftMs: undefined,
  durationMs: 0.42,
  finishReason: undefined,
  error: undefined,
  aborted: undefined,
  servedBy: undefined,
  continuedFrom: undefined,
  fallbacks: undefined,
};

const full: SummaryFields = {
  ...minimal,
  apiKey: 'ops',
  denied: 'missing_scope',
  model: 'tiny "quoted" \u00e9\n',
  tier: 'edge',
  policy: 'interactive',
  routeReason: 'cheapest_feasible',
  stream: true,
  ttftMs: 3.25,
  finishReason: 'stop',
  error: 'TIERGATE_ERR_DEADLINE',
  aborted: true,
  servedBy: ['main', 'fallback'],
  continuedFrom: 'main',
  fallbacks: [{ from: 'main', to: 'fallback', cause: 'error', stage: 'mid_stream' }],
};

test('the summary line is byte for byte what pino writes for logger.info(fields, "request")', () => {
  for (const fields of [minimal, full, { ...minimal, durationMs: Number.NaN }]) {
    const ours = capture();
    const theirs = capture();
    writeSummaryLine(createLogger('info', ours), fields);
    createLogger('info', theirs).info({ ...fields }, 'request');
    // pino stamps its own time: compare with both set to the same value.
    const at = (line: string | undefined) => (line ?? '').replace(/"time":\d+/, '"time":0');
    assert.equal(ours.lines.length, 1);
    assert.equal(at(ours.lines[0]), at(theirs.lines[0]));
  }
});

test('the summary line respects the logger level', () => {
  const out = capture();
  writeSummaryLine(createLogger('warn', out), minimal);
  assert.equal(out.lines.length, 0);
});
