import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  formatSoak,
  soak,
  startSoakGateway,
  type SoakGateway,
  type SoakResult,
} from '../../../bench/lib/soak.js';

/**
 * The CI-sized memory soak (issue 20): the real gateway in a child process over HTTP, the same
 * harness as `npm run bench:soak` (20,000 requests with the default budget, the before-fix
 * baseline beside it).
 *
 * The bound does not scale with the number of requests, because what the fix leaves behind does
 * not: at most `reclaimEveryMiB` of sampler memory waits for a collection at any time, so RSS at
 * the end can sit up to one budget above RSS after warm-up (seen: +16.6 MB with the default 16 MiB
 * over 3,000 requests). The test runs the edge tier with a 4 MiB budget so that the bound, one
 * budget (4.2 MB) plus what the JS heap gains between two of the tier's collections (~170 requests
 * apart), stays far below what the requests leave without the collections: 2,048 x 12 bytes each, which
 * shows as RSS unless V8 happens to run a full GC (`SOAK_REQUESTS=2500 SOAK_WARMUP=500 npm run
 * bench:soak` measured +34.6 MB over 2,500 requests with `reclaimEveryMiB: 0`). The issue's own
 * bound (30 MB over 20,000 requests, default budget) is the bench's.
 *
 * The echo tier holds no native memory. After the edge tier's collections its RSS rose as echo's
 * much faster allocation touched young-generation pages again (+15.0 and +21.0 MB over 3,000
 * requests after a warm-up of 500, with heap used falling in one of them; +2.0 MB after the
 * bench's 2,000): a longer warm-up (3,000, about a second) and the 30 MB.
 */
const EDGE_REQUESTS = 3_000;
const ECHO_REQUESTS = 3_000;
const BUDGET_MIB = 4;
const BUDGET_BYTES = BUDGET_MIB * 1024 * 1024;
const BOUND_MB = 14;
const ECHO_BOUND_MB = 30;
const SAMPLER_BYTES = 2048 * 12;

describe('memory soak over HTTP: edge and echo tiers', () => {
  let gw: SoakGateway;
  before(async () => {
    gw = await startSoakGateway(BUDGET_MIB);
  });
  after(async () => {
    await gw.stop();
  });
  /** Soaks one model 4 at a time, prints the figures, and checks every request was answered. */
  const run = async (label: string, model: string, requests: number, warmup: number): Promise<SoakResult> => {
    const r = await soak(gw, { model, requests, warmup, concurrency: 4 });
    console.log(formatSoak(label, r));
    assert.equal(r.failed, 0);
    return r;
  };

  test(`${EDGE_REQUESTS} edge requests: RSS grows by at most ${BOUND_MB} MB, sequences come back`, async () => {
    const reclaimsBefore = await gw.metric('tiergate_tier_native_reclaims_total{tier="edge"}');
    const r = await run('edge', 'tiergate-tiny-edge', EDGE_REQUESTS, 500);
    assert.ok(r.growth <= BOUND_MB, `RSS grew ${r.growth.toFixed(1)} MB`);
    assert.ok(r.peakGrowth <= BOUND_MB, `RSS peaked ${r.peakGrowth.toFixed(1)} MB above warm-up`);
    const reclaims = (await gw.metric('tiergate_tier_native_reclaims_total{tier="edge"}')) - reclaimsBefore;
    assert.ok(
      reclaims >= Math.floor((EDGE_REQUESTS * SAMPLER_BYTES) / BUDGET_BYTES),
      `${reclaims} collections for ${EDGE_REQUESTS} requests`,
    );
    assert.ok((await gw.metric('tiergate_tier_native_pending_bytes{tier="edge"}')) <= BUDGET_BYTES);
    assert.equal(await gw.metric('tiergate_tier_sequences_in_use{tier="edge"}'), 0);
  });

  test(`${ECHO_REQUESTS} echo requests: RSS grows by at most ${ECHO_BOUND_MB} MB`, async () => {
    const r = await run('echo', 'tiergate-echo', ECHO_REQUESTS, 3_000);
    assert.ok(r.growth <= ECHO_BOUND_MB, `RSS grew ${r.growth.toFixed(1)} MB`);
  });
});
