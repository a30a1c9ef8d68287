// The real `tiergate serve` process: SIGHUP re-reads the config file; a valid edit changes
// behaviour without a restart (an injected fault turns on), a broken one is rejected and counted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { metricValue, REPO_ROOT } from '../helpers/start-gateway.js';

const BASE = 'tokenizer: { kind: bytes }\ntiers: { echo: { kind: echo } }\nmodels: { e: { tier: echo } }\n';
// File watching is off so that only the signal triggers reloads here.
const config = (fault: string): string =>
  `${BASE}resilience:\n  watchConfig: false\n  tiers:\n    echo: { fault: ${fault} }\n`;

test('SIGHUP applies a valid edit live and rejects a broken one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-sighup-'));
  const file = join(dir, 'tiergate.yaml');
  writeFileSync(file, config('{}'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, TIERGATE_LOG_LEVEL: 'info', TIERGATE_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    let url: string | undefined;
    // tsx compiles the sources at start: on 2 busy cores that can take well over 10 s.
    for (let i = 0; i < 600 && url === undefined; i++) {
      url = /"url":"(http:[^"]+)"/.exec(output)?.[1];
      if (url === undefined) await sleep(50);
    }
    assert.ok(url, output);
    const complete = async (): Promise<number> => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'e', prompt: 'hi', max_tokens: 2 }),
      });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await complete(), 200);

    const reloads = (result: string): Promise<number> =>
      metricValue(url, `tiergate_config_reloads_total{result="${result}"}`);
    writeFileSync(file, config('{ errorRate: 1 }'));
    child.kill('SIGHUP');
    for (let i = 0; i < 100 && !((await reloads('applied')) >= 1); i++) await sleep(50);
    assert.equal(await complete(), 503, 'the injected fault is live');

    writeFileSync(file, `${BASE}resilience: { tiers: { echo: { fault: { errorRate: oops } } } }\n`);
    child.kill('SIGHUP');
    for (let i = 0; i < 100 && !((await reloads('rejected')) >= 1); i++) await sleep(50);
    assert.match(output, /config reload rejected/);
    assert.match(output, /errorRate/);
    assert.equal(await complete(), 503, 'the previous config stays in force');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
});
