/**
 * npm run bench:soak — memory soak of the real gateway over HTTP (issue 20): SOAK_REQUESTS small
 * completions (8 tokens, 4 at a time) after SOAK_WARMUP, on the edge tier (llama.cpp, the
 * family's Q4_K_M) and on the echo tier, each gateway in a child process started like `npm start`
 * (bench/lib/soak.ts). Prints RSS after warm-up, at the end, the peak and the growth, and the
 * heap; first for the edge tier with `reclaimEveryMiB: 0` (the behaviour before the tier bounded
 * its native memory), then with the default, so the baseline and the fix come from one run.
 *
 * Options (env): SOAK_REQUESTS (20000), SOAK_WARMUP (2000), SOAK_CONCURRENCY (4),
 * SOAK_FAMILY (tiny; small once its GGUFs are derived), SOAK_BASELINE (1; 0 skips the reclaimEveryMiB: 0 gateway), SOAK_EXTRA (e.g. `main,tf`: also
 * soak the ONNX and TensorFlow.js tiers on the second gateway, bench/lib/soak-gateway.ts).
 */
import { formatSoak, soak, startSoakGateway, type SoakGateway } from './lib/soak.js';

const REQUESTS = Number(process.env.SOAK_REQUESTS ?? 20_000);
const WARMUP = Number(process.env.SOAK_WARMUP ?? 2_000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 4);
const BASELINE = process.env.SOAK_BASELINE !== '0';
const FAMILY = process.env.SOAK_FAMILY ?? 'tiny';
const EDGE = `tiergate-${FAMILY}-edge`;

async function reclaimLine(gw: SoakGateway): Promise<string> {
  const edge = '{tier="edge"}';
  const count = await gw.metric(`tiergate_tier_native_reclaims_total${edge}`);
  const pauseSum = await gw.metric(`tiergate_tier_native_reclaim_seconds_sum${edge}`);
  const pending = await gw.metric(`tiergate_tier_native_pending_bytes${edge}`);
  const mean = count > 0 ? ((pauseSum / count) * 1000).toFixed(1) : '-';
  return `  edge tier: ${count} full collections (mean pause ${mean} ms), ${(pending / 1024 / 1024).toFixed(1)} MB pending at the end`;
}

const opts = { requests: REQUESTS, warmup: WARMUP, concurrency: CONCURRENCY };
console.log(`memory soak: ${REQUESTS} requests after ${WARMUP} of warm-up, ${CONCURRENCY} at a time`);
if (BASELINE) {
  const gw = await startSoakGateway(0);
  try {
    console.log(formatSoak('edge, reclaimEveryMiB 0 (before)', await soak(gw, { ...opts, model: EDGE })));
    console.log(await reclaimLine(gw));
  } finally {
    await gw.stop();
  }
}
const gw = await startSoakGateway();
try {
  console.log(formatSoak('edge, default reclaimEveryMiB', await soak(gw, { ...opts, model: EDGE })));
  console.log(await reclaimLine(gw));
  console.log(formatSoak('echo', await soak(gw, { ...opts, model: 'tiergate-echo' })));
  for (const name of (process.env.SOAK_EXTRA ?? '').split(',').filter((t) => t !== '')) {
    const model = `tiergate-${FAMILY}-${name}`;
    console.log(formatSoak(name, await soak(gw, { ...opts, model })));
  }
} finally {
  await gw.stop();
}
