import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { startWorker } from '../worker/worker-server.js';
import { exitOnSignal } from './exit-on-signal.js';

export const WORKER_USAGE = `Usage: tiergate worker --tier <name> [--config <file>] [--host <host>] [--port <port>]

Serves one local tier of the config (llamacpp, onnx or echo) over proto/tiergate/v1/tier.proto
with grpc.health.v1, for a gateway's \`remote\` tier to connect to. Defaults: --host 0.0.0.0
(or $TIERGATE_WORKER_HOST), --port 50061 (or $TIERGATE_WORKER_PORT; 0 picks a free one).
The bound address is logged and printed on stdout as "listening <host:port>".
`;

/**
 * `tiergate worker …`: `args` are the arguments after "worker"; `loadConfig` is the CLI's config
 * loader (--config, $TIERGATE_CONFIG, config/tiergate.yaml), shared with `serve`.
 */
export async function workerCommand(
  args: string[],
  loadConfig: (path: string | undefined) => Config,
): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tier: { type: 'string', short: 't' },
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string', short: 'p' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true || values.tier === undefined) {
    process.stdout.write(WORKER_USAGE);
    process.exitCode = values.help === true ? 0 : 1;
    return;
  }
  const port = Number(values.port ?? process.env.TIERGATE_WORKER_PORT ?? 50061);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`tiergate: --port must be an integer in [0, 65535] (got ${values.port})\n`);
    process.exitCode = 1;
    return;
  }
  const config = loadConfig(values.config);
  const logger = createLogger(config.logging.level, undefined, config.logging.redact);
  let worker;
  try {
    worker = await startWorker(
      config,
      {
        tier: values.tier,
        host: values.host ?? process.env.TIERGATE_WORKER_HOST ?? '0.0.0.0',
        port,
        shutdownGraceMs: config.server.shutdownGraceMs,
      },
      logger,
    );
  } catch (err) {
    logger.fatal({ err }, `worker start-up failed: ${(err as Error).message}`);
    logger.flush();
    process.exitCode = 1;
    return;
  }
  // Scripts and tests read the bound port (with --port 0) from this line.
  process.stdout.write(`listening ${worker.address}\n`);
  exitOnSignal(logger, () => worker.shutdown());
}
