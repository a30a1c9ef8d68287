/**
 * The gateway a memory soak measures, in a process of its own so that the load generator's memory
 * is not counted: started by bench/lib/soak.ts with `fork` and the runtime flags of `npm start`.
 * It serves the tiny family's edge tier (Q4_K_M, 4 sequences) as `tiergate-tiny-edge` and the
 * echo tier as `tiergate-echo`, and answers its parent over IPC:
 *   { type: 'mem' }  -> { type: 'mem', usage: process.memoryUsage(), newSpace: bytes of V8's young generation }
 *   { type: 'stop' } -> shuts the gateway down and exits.
 * Option (env): SOAK_RECLAIM_MIB, the edge tier's `reclaimEveryMiB` (unset: the default).
 */
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { buildConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const reclaim = process.env.SOAK_RECLAIM_MIB;

const config = buildConfig(
  {
    logging: { level: 'silent' },
    server: { port: 0, host: '127.0.0.1' },
    family: { dir: 'models/tiny' },
    tiers: {
      edge: {
        kind: 'llamacpp',
        model: 'tiny-q4_k_m.gguf',
        threads: 1,
        sequences: 4,
        ...(reclaim === undefined ? {} : { reclaimEveryMiB: Number(reclaim) }),
      },
      echo: { kind: 'echo' },
    },
    models: { 'tiergate-tiny-edge': { tier: 'edge' }, 'tiergate-echo': { tier: 'echo' } },
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
process.send?.({ type: 'ready', url: server.url });
