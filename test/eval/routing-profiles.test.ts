import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { RoutingSchema, type RoutingConfig } from '../../src/config/index.js';
import { loadFamilyProfiles, PROFILES_FILE, writeProfiles } from '../../src/family/accuracy-profiles.js';
import type { ModelFamily } from '../../src/family/manifest.js';
import { relativeAccuracy } from '../../src/routing/accuracy.js';
import { TierProfiles } from '../../src/routing/tier-profiles.js';
import { PROFILES_FIXTURE } from './fixtures/measurements.js';

function family(dir: string, id = 'fixture'): ModelFamily {
  return {
    dir,
    id,
    manifest: {},
    variants: [
      {
        id: 'pytorch-fp32',
        framework: 'pytorch',
        format: 'pytorch',
        precision: 'fp32',
        file: 'x',
        perplexity: 100,
      },
      {
        id: 'gguf-q2_k',
        framework: 'llama.cpp',
        format: 'gguf',
        precision: 'q2_k',
        file: 'y',
        perplexity: 125,
      },
    ],
  };
}

const routing = (accuracy?: number): RoutingConfig =>
  Value.Default(RoutingSchema, {
    profiles: accuracy === undefined ? {} : { edge: { accuracy } },
  }) as RoutingConfig;

test('the policy engine takes a tier’s accuracy from the eval profiles next to the manifest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-profiles-'));
  const fam = family(dir);
  // Without the file: the manifest's perplexities (100 / 125).
  const before = new TierProfiles(routing(), { edge: 'gguf-q2_k' }, fam).profile('edge');
  assert.equal(before.accuracySource, 'manifest');
  assert.equal(before.accuracy, relativeAccuracy(fam, 'gguf-q2_k'));
  writeProfiles(join(dir, PROFILES_FILE), PROFILES_FIXTURE);
  const after = new TierProfiles(routing(), { edge: 'gguf-q2_k' }, fam).profile('edge');
  assert.equal(after.accuracySource, 'eval');
  assert.equal(after.accuracy, PROFILES_FIXTURE.variants['gguf-q2_k']?.relativeAccuracy);
  // The config's explicit accuracy still wins.
  const configured = new TierProfiles(routing(0.5), { edge: 'gguf-q2_k' }, fam).profile('edge');
  assert.deepEqual([configured.accuracySource, configured.accuracy], ['config', 0.5]);
});

test('profiles of another family or a broken file are ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-profiles-'));
  writeProfiles(join(dir, PROFILES_FILE), PROFILES_FIXTURE);
  assert.equal(loadFamilyProfiles(family(dir, 'another-family')), undefined);
  writeFileSync(join(dir, PROFILES_FILE), '{ not json');
  assert.equal(loadFamilyProfiles(family(dir)), undefined);
  assert.equal(
    new TierProfiles(routing(), { edge: 'gguf-q2_k' }, family(dir)).profile('edge').accuracySource,
    'manifest',
  );
});

test('a reloaded routing config (new object) changes accuracy, priors and window live', () => {
  const fam = family(mkdtempSync(join(tmpdir(), 'tiergate-profiles-')));
  let current = routing();
  const profiles = new TierProfiles(() => current, { edge: 'gguf-q2_k' }, fam);
  const before = profiles.profile('edge');
  assert.equal(before.accuracySource, 'manifest');
  const reloaded = Value.Default(RoutingSchema, {
    profiles: { edge: { accuracy: 0.5, ttftMs: 123 } },
  }) as RoutingConfig;
  current = reloaded;
  const after = profiles.profile('edge');
  assert.equal(after.accuracy, 0.5);
  assert.equal(after.accuracySource, 'config');
  assert.equal(after.ttftMs, 123);
  assert.equal(after.live, false);
});
