import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from '../../src/api/request-id.js';

test('request ids are distinct version 4 UUIDs, across refills of the random pool', () => {
  const ids = Array.from({ length: 2000 }, () => newRequestId());
  for (const id of ids)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
  // Every hex digit position varies (no stuck nibble) outside the version and variant bits.
  const varying = [...ids[0]!].map((_, i) => new Set(ids.map((id) => id[i])).size > 1);
  assert.deepEqual(
    varying.map((v, i) => v || [8, 13, 14, 18, 23].includes(i)),
    varying.map(() => true),
  );
});
