import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cycles, moduleOf, sourceImports } from './import-graph.js';

/**
 * The layers of src/ and what each may import (docs/architecture.md "Layers"): a module may
 * import its own layer's modules and any lower layer's, never a higher one's, and no file may
 * take part in an import cycle (type-only imports included: a cycle of types is still a knot a
 * reader has to untie).
 */
const LAYERS: readonly (readonly string[])[] = [
  // 0: foundations, importable by everything.
  ['errors', 'config', 'family', 'observability', 'text'],
  // 1: one inference framework each, behind the Tier contract.
  ['tiers'],
  // 2: decisions and mechanisms over tiers: routing (policy engine), resilience (breakers,
  // admission, retries), pipeline (decoding a tier's tokens into choices), limits (per-key limits).
  ['routing', 'resilience', 'pipeline', 'limits'],
  // 3: the generation service and the gateway object it runs on.
  ['gateway', 'service'],
  // 4: transports: the HTTP and gRPC APIs, and the single-tier worker server.
  ['api', 'worker'],
  // 5: programs: the server, the CLI and the evaluation/benchmark tooling.
  ['server', 'eval', 'cli'],
];

function layerOf(module: string): number {
  const i = LAYERS.findIndex((l) => l.includes(module));
  assert.notEqual(i, -1, `src/${module} has no layer in test/architecture/layers.test.ts`);
  return i;
}

test('every import goes to the same or a lower layer', () => {
  const upward = sourceImports()
    .filter((e) => layerOf(moduleOf(e.to)) > layerOf(moduleOf(e.from)))
    .map((e) => `${e.from} → ${e.to}`);
  assert.deepEqual(upward, [], `upward imports:\n${upward.join('\n')}`);
});

test('no import cycles between files, type-only imports included', () => {
  const found = cycles(sourceImports()).map((c) => c.join(' ↔ '));
  assert.deepEqual(found, [], `cycles:\n${found.join('\n')}`);
});

test('nothing below src/api imports the HTTP error type', () => {
  const offending = sourceImports()
    .filter((e) => e.to === 'src/api/errors.ts' && layerOf(moduleOf(e.from)) < layerOf('api'))
    .map((e) => e.from);
  assert.deepEqual(offending, []);
});

test('the graph is read: the known edges of a request path are there', () => {
  const edges = new Set(sourceImports().map((e) => `${e.from} → ${e.to}`));
  // A parser that silently found nothing would pass the tests above.
  assert.ok(edges.has('src/api/openai/completions.ts → src/service/generation-service.ts'));
  assert.ok(edges.has('src/service/execution.ts → src/pipeline/execute.ts'));
  assert.ok(edges.has('src/resilience/executor.ts → src/pipeline/source.ts'));
});
