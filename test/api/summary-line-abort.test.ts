import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';

// A stream whose client leaves is summarised while its generation stops: its summary line must
// still count the tokens generated so far (it used to say 0) and the time to the first one.
let server: RunningServer;
const lines: Record<string, unknown>[] = [];

before(async () => {
  const config = buildConfig(
    {
      server: { port: 0, host: '127.0.0.1' },
      logging: { level: 'info' },
      family: { dir: 'models/tiny' },
      tiers: { slow: { kind: 'echo', tokenDelayMs: 10 } },
      models: { 'tiergate-echo': { tier: 'slow' } },
    },
    { baseDir: REPO_ROOT, env: {} },
  );
  const logger = createLogger('info', {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  server = await startServer(config, logger);
});
after(async () => server.shutdown());

test('the summary line of a stream the client left counts the tokens generated so far', async () => {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'abort-log-1' },
    body: JSON.stringify({
      model: 'tiergate-echo',
      prompt: 'The county grand jury',
      max_tokens: 200,
      stream: true,
    }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/^data: /gm) ?? []).length < 3) text += decoder.decode((await reader.read()).value);
  controller.abort();

  let line: Record<string, unknown> | undefined;
  for (let i = 0; i < 100 && line === undefined; i++) {
    line = lines.find((l) => l.requestId === 'abort-log-1' && l.msg === 'request');
    if (line === undefined) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(line, 'no summary line');
  assert.equal(line.aborted, true);
  assert.equal(line.stream, true);
  const tokens = line.completionTokens as number;
  assert.ok(tokens >= 3 && tokens < 200, `completionTokens ${tokens}`);
  assert.equal(typeof line.ttftMs, 'number');
});
