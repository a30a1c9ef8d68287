/**
 * The gateway a memory soak measures, in a process of its own so that the load generator's memory
 * is not counted: started by bench/lib/soak.ts with `fork` and the runtime flags of `npm start`.
 * It serves a family's edge tier (Q4_K_M, 4 sequences) as `tiergate-<family>-edge` and the echo
 * tier as `tiergate-echo`, and answers its parent over IPC:
 *   { type: 'mem' }  -> { type: 'mem', usage: process.memoryUsage(), newSpace: bytes of V8's young generation }
 *   { type: 'stop' } -> shuts the gateway down and exits.
 * It exits when its parent goes away.
 * Options (env): SOAK_FAMILY (`tiny`; `small` needs its derived GGUFs, README "the small
 * family"), SOAK_RECLAIM_MIB, the edge tier's `reclaimEveryMiB` (unset: the default);
 * SOAK_EXTRA, more tiers to serve, comma-separated: `main` (ONNX FP32, `tiergate-<family>-main`)
 * and `tf` (TensorFlow.js FP32, `tiergate-<family>-tf`), one worker each as in config/tiergate.yaml.
 */
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { buildConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const family = process.env.SOAK_FAMILY ?? 'tiny';
const reclaim = process.env.SOAK_RECLAIM_MIB;
const extra = new Set((process.env.SOAK_EXTRA ?? '').split(',').filter((t) => t !== ''));
const EXTRA_TIERS: Record<string, { tier: Record<string, unknown>; model: string }> = {
  main: {
    tier: { kind: 'onnx', model: 'onnx-fp32', workers: 1, maxBatchSize: 16 },
    model: `tiergate-${family}-main`,
  },
  tf: {
    tier: { kind: 'tfjs', model: 'tensorflow-fp32', workers: 1, maxBatchSize: 16 },
    model: `tiergate-${family}-tf`,
  },
};
const extraTiers = Object.fromEntries(
  Object.entries(EXTRA_TIERS)
    .filter(([name]) => extra.has(name))
    .map(([name, e]) => [name, e.tier]),
);
const extraModels = Object.fromEntries(
  Object.entries(EXTRA_TIERS)
    .filter(([name]) => extra.has(name))
    .map(([name, e]) => [e.model, { tier: name }]),
);

const config = buildConfig(
  {
    logging: { level: 'silent' },
    server: { port: 0, host: '127.0.0.1' },
    family: { dir: `models/${family}` },
    tiers: {
      edge: {
        kind: 'llamacpp',
        model: `${family}-q4_k_m.gguf`,
        threads: 1,
        sequences: 4,
        ...(reclaim === undefined ? {} : { reclaimEveryMiB: Number(reclaim) }),
      },
      echo: { kind: 'echo' },
      ...extraTiers,
    },
    models: {
      [`tiergate-${family}-edge`]: { tier: 'edge' },
      'tiergate-echo': { tier: 'echo' },
      ...extraModels,
    },
  },
  { baseDir: ROOT, env: {} },
);
const server = await startServer(config, createLogger('silent'));

process.on('message', (msg: { type?: string }) => {
  if (msg.type === 'mem') {
    const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.send?.({ type: 'mem', usage: process.memoryUsage(), newSpace: newSpace?.space_size ?? 0 });
  }
  if (msg.type === 'stop') {
    void server.shutdown().finally(() => process.exit(0));
  }
});
// A parent that died without sending `stop` must not leave a gateway behind.
process.on('disconnect', () => {
  void server.shutdown().finally(() => process.exit(0));
});
process.send?.({ type: 'ready', url: server.url });
