import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { RoutingSchema, type RoutingConfig } from '../../src/config/index.js';
import type { ModelFamily } from '../../src/family/manifest.js';
import { TierProfiles } from '../../src/routing/tier-profiles.js';

const family: ModelFamily = {
  dir: mkdtempSync(join(tmpdir(), 'tiergate-tier-profiles-')),
  id: 'none',
  manifest: {},
  variants: [],
};
const routing = Value.Default(RoutingSchema, { minSamples: 4 }) as RoutingConfig;

test('a tier never seen while others were busy borrows their slowdown, in proportion to its own speed', () => {
  const profiles = new TierProfiles(
    routing,
    { edge: undefined, main: undefined, fallback: undefined },
    family,
  );
  // edge and main were seen with 0 to 2 other tiers busy: each busy tier adds half their own time.
  for (const [tier, ttft, perToken] of [
    ['edge', 10, 2],
    ['main', 20, 4],
  ] as const)
    for (let o = 0; o <= 2; o++)
      for (let i = 0; i < 3; i++)
        profiles.observe(tier, {
          promptTokens: 10,
          ttftMs: ttft * (1 + o / 2),
          perTokenMs: perToken * (1 + o / 2),
          otherTiersBusy: o,
        });
  // fallback only ever ran alone (calibrated by itself).
  for (let i = 0; i < 8; i++) profiles.observe('fallback', { promptTokens: 10, ttftMs: 40, perTokenMs: 8 });
  const snap = profiles.snapshot();
  assert.equal(snap.edge!.busySlopes, 'learned');
  assert.ok(Math.abs(snap.edge!.perOutputTokenPerBusyTierMs! - 1) < 1e-9);
  assert.ok(Math.abs(snap.main!.ttftPerBusyTierMs! - 10) < 1e-9);
  const fallback = snap.fallback!;
  assert.equal(fallback.busySlopes, 'borrowed');
  assert.ok(Math.abs(fallback.perOutputTokenPerBusyTierMs! - 4) < 1e-9);
  assert.ok(Math.abs(fallback.ttftPerBusyTierMs! - 20) < 1e-9);
  // Its own model is untouched: once it sees the others' load, it learns its own.
  assert.equal(profiles.profile('fallback').busySlopes, 'none');
});

test('tiers that learned no slowdown from each other (separate machines) lend none', () => {
  const profiles = new TierProfiles(routing, { edge: undefined, fallback: undefined }, family);
  for (let o = 0; o <= 2; o++)
    for (let i = 0; i < 3; i++)
      profiles.observe('edge', { promptTokens: 10, ttftMs: 10, perTokenMs: 2, otherTiersBusy: o });
  for (let i = 0; i < 8; i++) profiles.observe('fallback', { promptTokens: 10, ttftMs: 40, perTokenMs: 8 });
  const snap = profiles.snapshot();
  assert.equal(snap.edge!.busySlopes, 'learned');
  assert.equal(snap.edge!.perOutputTokenPerBusyTierMs, 0);
  assert.equal(snap.fallback!.busySlopes, 'none');
  assert.equal(snap.fallback!.perOutputTokenPerBusyTierMs, 0);
});

test('before any tier has measured its slowdown, routing.busyTierSlowdown stands in for every tier', () => {
  const prior = Value.Default(RoutingSchema, { minSamples: 4, busyTierSlowdown: 0.5 }) as RoutingConfig;
  const profiles = new TierProfiles(prior, { edge: undefined, main: undefined }, family);
  // Both calibrated alone: neither window holds a request made while the other was busy.
  for (let i = 0; i < 8; i++) profiles.observe('edge', { promptTokens: 10, ttftMs: 10, perTokenMs: 2 });
  let snap = profiles.snapshot();
  assert.equal(snap.edge!.busySlopes, 'prior');
  assert.equal(snap.edge!.perOutputTokenPerBusyTierMs, 1);
  assert.equal(snap.edge!.ttftPerBusyTierMs, 5);
  // main is still on its configured seed (5 ms per token by default): the prior scales that.
  assert.equal(snap.main!.busySlopes, 'prior');
  assert.equal(snap.main!.perOutputTokenPerBusyTierMs, 2.5);
  // Once edge measures its own slowdown (here none: separate machines), the prior no longer applies.
  for (let o = 0; o <= 2; o++)
    for (let i = 0; i < 3; i++)
      profiles.observe('edge', { promptTokens: 10, ttftMs: 10, perTokenMs: 2, otherTiersBusy: o });
  snap = profiles.snapshot();
  assert.equal(snap.edge!.busySlopes, 'learned');
  assert.equal(snap.edge!.perOutputTokenPerBusyTierMs, 0);
  assert.equal(snap.main!.busySlopes, 'none');
  assert.equal(snap.main!.perOutputTokenPerBusyTierMs, 0);
  // The default (0) predicts no slowdown until measured, as before.
  const plain = new TierProfiles(routing, { edge: undefined }, family);
  assert.equal(plain.snapshot().edge!.busySlopes, 'none');
});
