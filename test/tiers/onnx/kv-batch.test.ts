import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvArena } from '../../../src/tiers/onnx/kv-arena.js';
import { KvBatch } from '../../../src/tiers/onnx/kv-batch.js';

const shape = { layers: 1, kvHeads: 2, headDim: 2 };

/** A one-row cache of `len` positions whose values encode (tensor, head, position, dim). */
function single(len: number, tag: number): KvBatch {
  const tensors = [0, 1].map((t) => {
    const a = new Float32Array(2 * len * 2);
    for (let h = 0; h < 2; h++)
      for (let p = 0; p < len; p++)
        for (let d = 0; d < 2; d++) a[(h * len + p) * 2 + d] = tag * 1000 + t * 100 + h * 10 + p + d / 10;
    return a;
  });
  return KvBatch.single(shape, tensors, len);
}

/** Row r, head h of tensor t as a list of positions (first dim only), pads included. */
function column(b: KvBatch, t: number, r: number, h: number, cols = b.width): number[] {
  const out: number[] = [];
  for (let p = 0; p < cols; p++) out.push(b.tensors[t]![((r * 2 + h) * b.capacity + p) * 2] as number);
  return out;
}

test('pack left-pads shorter rows with zeros and right-aligns every row', () => {
  const a = single(3, 1);
  const b = single(1, 2);
  const batch = KvBatch.pack(shape, [
    { source: a, row: 0 },
    { source: b, row: 0 },
  ]);
  assert.equal(batch.width, 3);
  assert.deepEqual(batch.lengths, [3, 1]);
  assert.deepEqual(column(batch, 0, 0, 1), [1010, 1011, 1012]);
  assert.deepEqual(column(batch, 1, 1, 0), [0, 0, 2100]);
  assert.equal(batch.sharedPadding, 0);
});

test('re-packing after the longest row leaves trims columns that are padding everywhere', () => {
  const batch = KvBatch.pack(shape, [
    { source: single(5, 1), row: 0 },
    { source: single(2, 2), row: 0 },
    { source: single(3, 3), row: 0 },
  ]);
  const trimmed = KvBatch.pack(shape, [
    { source: batch, row: 1 },
    { source: batch, row: 2 },
  ]);
  assert.equal(trimmed.width, 3);
  assert.deepEqual(column(trimmed, 0, 0, 0), [0, 2000, 2001]);
  assert.deepEqual(column(trimmed, 0, 1, 1), [3010, 3011, 3012]);
});

test('advance adopts the step outputs and grows every row by one', () => {
  const batch = KvBatch.pack(shape, [
    { source: single(2, 1), row: 0 },
    { source: single(1, 2), row: 0 },
  ]);
  const present = [new Float32Array(2 * 2 * 3 * 2), new Float32Array(2 * 2 * 3 * 2)];
  batch.advance(present);
  assert.equal(batch.width, 3);
  assert.deepEqual(batch.lengths, [3, 2]);
  assert.equal(batch.tensors[0], present[0]);
});

test('packing into reused arena memory zeroes padding and never overwrites the current cache', () => {
  const arena = new KvArena(2);
  const first = KvBatch.pack(
    shape,
    [
      { source: single(4, 1), row: 0 },
      { source: single(4, 2), row: 0 },
    ],
    arena,
  );
  // Re-pack from `first` (in the arena) with a shorter new row: stale values must not leak.
  const second = KvBatch.pack(
    shape,
    [
      { source: first, row: 1 },
      { source: single(1, 3), row: 0 },
    ],
    arena,
    first,
  );
  assert.notEqual(second.tensors[0]!.buffer, first.tensors[0]!.buffer);
  assert.deepEqual(column(second, 0, 1, 0), [0, 0, 0, 3000]);
  assert.deepEqual(column(second, 0, 0, 1), [2010, 2011, 2012, 2013]);
  // A third pack from `second` reuses the first buffer.
  const third = KvBatch.pack(shape, [{ source: second, row: 1 }], arena, second);
  assert.equal(third.tensors[0]!.buffer, first.tensors[0]!.buffer);
  assert.deepEqual(column(third, 1, 0, 1), [3110]);
});

test('pack leaves zeroed spare columns; append writes new positions in place; re-pack keeps them', () => {
  const arena = new KvArena(2);
  // Stale values in the arena: spare and pad columns must still come out as zeros.
  arena.take(0, 64, undefined).fill(Number.NaN);
  arena.take(1, 64, undefined).fill(Number.NaN);
  const batch = KvBatch.pack(
    shape,
    [
      { source: single(2, 1), row: 0 },
      { source: single(1, 2), row: 0 },
    ],
    arena,
    undefined,
    3,
  );
  assert.equal(batch.width, 2);
  assert.equal(batch.capacity, 5);
  assert.equal(batch.spare, 3);
  assert.deepEqual(column(batch, 0, 1, 1, 5), [0, 2010, 0, 0, 0]);
  // New positions: [rows, kvHeads, count, headDim] = [2, 2, 2, 2].
  const news = [0, 1].map((t) => Float32Array.from({ length: 16 }, (_, i) => 9000 + t * 100 + i));
  batch.append(news, 2);
  assert.equal(batch.width, 4);
  assert.deepEqual(batch.lengths, [4, 3]);
  assert.equal(batch.spare, 1);
  // Row 1, head 1 of tensor 0 is block 3 of the new tensor: values 9012 (dim 0), 9014.
  assert.deepEqual(column(batch, 0, 1, 1, 5), [0, 2010, 9012, 9014, 0]);
  assert.throws(() => batch.append(news, 2), /capacity 5/);
  // Re-packing row 1 alone trims the shared pad column and adds spare columns again.
  const repacked = KvBatch.pack(shape, [{ source: batch, row: 1 }], arena, batch, 2);
  assert.equal(repacked.width, 3);
  assert.equal(repacked.capacity, 5);
  assert.deepEqual(column(repacked, 0, 0, 1, 5), [2010, 9012, 9014, 0, 0]);
  assert.ok(repacked.tensors[0]!.buffer !== batch.tensors[0]!.buffer);
});
