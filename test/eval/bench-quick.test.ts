import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BenchFile } from '../../src/eval/bench-types.js';
import { FAMILY_DIR, REPO_ROOT } from '../helpers/start-gateway.js';

test('tiergate bench --quick then tiergate report run end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-bench-test-'));
  const config = join(dir, 'tiergate.yaml');
  writeFileSync(
    config,
    [
      'logging: { level: warn }',
      `family: { dir: ${JSON.stringify(FAMILY_DIR)} }`,
      'tiers:',
      '  edge: { kind: llamacpp, model: gguf-q4_k_m, threads: 1, sequences: 4 }',
      '  echo: { kind: echo }',
      'models: { tiny: { tier: edge } }',
      '',
    ].join('\n'),
  );
  const cli = ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts')];
  const out = join(dir, 'bench.json');
  const bench = spawnSync(process.execPath, [...cli, 'bench', '-c', config, '--quick', '-o', out], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(bench.status, 0, bench.stderr);
  const file = JSON.parse(readFileSync(out, 'utf8')) as BenchFile;
  assert.deepEqual(
    file.targets.map((t) => t.target),
    ['edge', 'echo'],
  );
  for (const t of file.targets) {
    assert.equal(t.error, undefined);
    assert.deepEqual(
      t.direct.map((l) => l.concurrency),
      [1, 4],
    );
    assert.deepEqual(
      t.gateway.map((l) => l.concurrency),
      [1, 4],
    );
    for (const l of [...t.direct, ...t.gateway]) {
      assert.equal(l.errors, 0);
      assert.ok(l.requests >= l.concurrency && l.tokens > 0 && l.tokensPerSec > 0);
      assert.ok(l.ttftP50Ms <= l.e2eP50Ms);
    }
    assert.ok((t.peakRssBytes ?? 0) > 0, 'peak RSS read from /proc');
  }
  const edge = file.targets[0];
  assert.equal(edge?.framework, 'llama.cpp');
  // Direct streams are exactly --quick's 16 greedy tokens (no stop tokens).
  assert.equal(edge?.direct[0]?.tokens, 16 * (edge?.direct[0]?.requests ?? 0));
  const report = spawnSync(
    process.execPath,
    [...cli, 'report', '--bench', out, '--profiles', join(dir, 'none.json'), '-o', dir],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(report.status, 0, report.stderr);
  const md = readFileSync(join(dir, 'README.md'), 'utf8');
  assert.match(md, /## Framework selection matrix/);
  assert.match(readFileSync(join(dir, 'throughput.svg'), 'utf8'), /^<svg /);
});
