#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's own test runner (through tsx, so TypeScript runs unbuilt).
// Usage: npm test [-- path-or-substring ...]  — extra args filter the test files by substring.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk('test')
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Model-backed tests share 2 CPU cores; running files one at a time keeps them deterministic.
// Every test file gets a timeout (TEST_TIMEOUT_MS, default 10 min) so a hang fails CI instead of
// stalling it. 5 min was too short for test/models/convert.test.ts on a machine at load 9-10 (its
// SentencePiece case alone took 176 s there).
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? '600000'}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
