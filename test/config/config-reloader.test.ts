import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigReloader, type ReloadResult } from '../../src/config/config-reloader.js';
import { loadConfigFile, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';

const SECRET = 'sk-live-reloaded-secret-0123456789';

function configText(keys: string): string {
  return [
    'tiers: { echo: { kind: echo } }',
    'models: { m: { tier: echo } }',
    'auth:',
    '  enabled: true',
    '  keys:',
    keys,
    '',
  ].join('\n');
}

test('a reload rejected for a malformed key entry logs the path, not the secret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-reload-'));
  const file = join(dir, 'tiergate.yaml');
  writeFileSync(file, configText('    - { name: app, key: sk-first-key-0123 }'));
  const running = loadConfigFile(file, { env: {} });
  const applied: Config[] = [];
  const results: ReloadResult[] = [];
  const lines: string[] = [];
  const reloader = new ConfigReloader(
    file,
    { applyConfig: (next) => (applied.push(next), []) },
    createLogger('info', { write: (line: string) => void lines.push(line) }),
    (r) => results.push(r),
    { env: {} },
  );
  // The third entry is the key itself, written as a bare list item.
  writeFileSync(
    file,
    configText(
      [
        '    - { name: app, key: sk-first-key-0123 }',
        '    - { name: ops, key: sk-second-key-0123 }',
        `    - ${SECRET}`,
      ].join('\n'),
    ),
  );
  assert.equal(reloader.reload('test'), 'rejected');
  assert.deepEqual(results, ['rejected']);
  assert.equal(applied.length, 0);
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!) as { msg: string; problems: string[] };
  assert.match(line.msg, /config reload rejected/);
  assert.ok(
    line.problems.some((p) => p.startsWith('/auth/keys/2: ')),
    line.problems.join('\n'),
  );
  assert.ok(!lines[0]!.includes(SECRET), lines[0]);
  assert.equal(running.auth.keys.length, 1);
});
