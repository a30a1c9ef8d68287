import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/start-gateway.js';

// The real `tiergate serve` process (through tsx, so no build is needed).
function serve(configText: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-cli-'));
  const file = join(dir, 'tiergate.yaml');
  writeFileSync(file, configText);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, TIERGATE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

test('a bad config fails start-up with the bad path named', async () => {
  const { child, output } = serve('server: { port: -5 }\ntiers: {}\nmodels: {}\n', { TIERGATE_PORT: '' });
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 1);
  assert.match(output(), /\/server\/port/);
});

test('a missing model file fails start-up clearly', async () => {
  const { child, output } = serve(
    `family: { dir: ${join(REPO_ROOT, 'models/tiny')} }\ntiers: { edge: { kind: llamacpp, model: missing-q9.gguf } }\nmodels: { m: { tier: edge } }\n`,
  );
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 1);
  assert.match(output(), /model file not found: .*missing-q9\.gguf/);
});

test('serve answers, and SIGTERM shuts it down cleanly', async (t) => {
  const { child, output } = serve(
    'tokenizer: { kind: bytes }\ntiers: { echo: { kind: echo } }\nmodels: { e: { tier: echo } }\n',
    { TIERGATE_PORT: '0' },
  );
  // A failed assertion must not leave the child running (its pipes would keep the test alive).
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let url: string | undefined;
  // Up to 60 s: tsx compiles the CLI on start, which is slow on a loaded 2-core machine.
  for (let i = 0; i < 1200 && url === undefined; i++) {
    url = /"url":"(http:[^"]+)"/.exec(output())?.[1];
    if (url === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(url, output());
  const res = await fetch(`${url}/v1/models`);
  assert.equal(res.status, 200);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
  assert.match(output(), /shut down/);
});
