/**
 * One gateway replica as its own process, for the Redis limit tests: the config comes as JSON
 * in argv[2]; the process prints `{"url": ...}` once it listens and shuts down when its parent
 * closes stdin (or on SIGTERM).
 */
import { buildConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';
import { REPO_ROOT } from '../helpers/start-gateway.js';

const raw = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const config = buildConfig(
  {
    logging: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
    ...raw,
    server: { port: 0, host: '127.0.0.1' },
  },
  { baseDir: REPO_ROOT, env: {} },
);
const server = await startServer(
  config,
  createLogger(config.logging.level, undefined, config.logging.redact),
);
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
const stop = (): void => {
  void server.shutdown().then(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
