import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { LineWriter, type WriteFn } from '../../src/observability/line-writer.js';

/** A fake fd: records each write; `refuse` throws EAGAIN, `limit` writes only that many bytes. */
function fakeFd() {
  const writes: string[] = [];
  const state = { refuse: 0, limit: Infinity };
  const write: WriteFn = (_fd, data) => {
    if (state.refuse > 0) {
      state.refuse--;
      throw Object.assign(new Error('EAGAIN: resource temporarily unavailable'), { code: 'EAGAIN' });
    }
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const n = Math.min(bytes.length, state.limit);
    writes.push(bytes.subarray(0, n).toString());
    return n;
  };
  return { writes, state, write };
}

test('lines of one event-loop turn go out together, in order, in one write', async () => {
  const fd = fakeFd();
  const w = new LineWriter(99, { write: fd.write });
  w.write('a\n');
  w.write('b\n');
  w.write('c\n');
  assert.deepEqual(fd.writes, [], 'nothing is written synchronously');
  await nextTurn();
  assert.deepEqual(fd.writes, ['a\nb\nc\n']);
  w.write('d\n');
  await nextTurn();
  assert.deepEqual(fd.writes, ['a\nb\nc\n', 'd\n']);
  w.close();
});

test('a full pipe (EAGAIN) keeps the lines and writes them later, before newer ones', async () => {
  const fd = fakeFd();
  const w = new LineWriter(99, { write: fd.write, retryMs: 5 });
  fd.state.refuse = 2;
  w.write('first\n');
  await nextTurn();
  w.write('second\n');
  await sleep(40);
  assert.equal(fd.writes.join(''), 'first\nsecond\n');
  assert.equal(w.dropped, 0);
  w.close();
});

test('a partial write continues with the bytes that did not go, multi-byte characters intact', async () => {
  const pieces: Buffer[] = [];
  const w = new LineWriter(99, {
    write: (_fd, data) => {
      const b = typeof data === 'string' ? Buffer.from(data) : data;
      const n = Math.min(b.length, 3); // splits "é" and "ö" across writes
      pieces.push(Buffer.from(b.subarray(0, n)));
      return n;
    },
  });
  w.write('héllo wörld\n');
  await nextTurn();
  assert.ok(pieces.length > 1);
  assert.equal(Buffer.concat(pieces).toString(), 'héllo wörld\n');
  w.close();
});

test('a backlog larger than the initial buffer is written whole and in order', async () => {
  const fd = fakeFd();
  const w = new LineWriter(99, { write: fd.write, retryMs: 5 });
  fd.state.refuse = 1;
  const lines = Array.from(
    { length: 3000 },
    (_, i) => `{"i":${i},"text":"wörds ünd ßtuff ${'x'.repeat(40)}"}\n`,
  );
  for (const line of lines.slice(0, 10)) w.write(line);
  await nextTurn(); // refused: kept
  for (const line of lines.slice(10)) w.write(line);
  await sleep(30);
  assert.equal(fd.writes.join(''), lines.join(''));
  assert.equal(w.dropped, 0);
  w.close();
});

test('while the pipe stays full, lines past the queue limit are dropped and counted', async () => {
  const fd = fakeFd();
  const w = new LineWriter(99, { write: fd.write, maxQueuedChars: 10, retryMs: 1000 });
  fd.state.refuse = 1;
  w.write('12345\n');
  await nextTurn();
  w.write('abc\n');
  w.write('defgh\n');
  assert.equal(w.dropped, 1);
  fd.state.refuse = 0;
  w.flush();
  assert.equal(fd.writes.join(''), '12345\nabc\n');
  w.close();
});

test('a destination that fails for good drops its lines with one warning, without throwing', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  const w = new LineWriter(99, {
    write: () => {
      throw Object.assign(new Error('EPIPE: broken pipe'), { code: 'EPIPE' });
    },
  });
  w.write('x\n');
  w.write('y\n');
  await nextTurn();
  await nextTurn();
  assert.equal(w.dropped, 2);
  process.off('warning', onWarning);
  assert.equal(warnings.filter((m) => m.includes('EPIPE')).length, 1);
  w.close();
});

test('the gateway logger writes to stdout and nothing queued is lost on process.exit', () => {
  const logger = fileURLToPath(new URL('../../src/observability/logger.ts', import.meta.url));
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { createLogger } = await import(${JSON.stringify(logger)});
       const log = createLogger('info');
       for (let i = 0; i < 1000; i++) log.info({ i }, 'line');
       process.exit(0);`,
    ],
    { encoding: 'utf8' },
  );
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { i: number; msg: string });
  assert.equal(lines.length, 1000);
  assert.deepEqual(
    lines.map((l) => l.i),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});
