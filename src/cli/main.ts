import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildConfig, ConfigError, loadConfigFile, type Config } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { startServer } from '../server.js';

const USAGE = `Usage: tiergate serve [--config <file>]

Starts the gateway. Config: --config, else $TIERGATE_CONFIG, else config/tiergate.yaml.
Environment overrides: TIERGATE_PORT, TIERGATE_HOST, TIERGATE_LOG_LEVEL.
`;

/** Errors before the logger exists (bad config) go to stderr as plain text: a human reads them. */
function fail(message: string): never {
  process.stderr.write(`tiergate: ${message}\n`);
  process.exit(1);
}

function loadConfig(path: string | undefined): Config {
  const file = path ?? process.env.TIERGATE_CONFIG ?? 'config/tiergate.yaml';
  if (!existsSync(file)) {
    if (path !== undefined || process.env.TIERGATE_CONFIG !== undefined) fail(`config file not found: ${resolve(file)}`);
    // No config at all: defaults, relative to the working directory.
    return buildConfig({}, {}, 'defaults');
  }
  return loadConfigFile(file);
}

async function serve(configPath: string | undefined): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(configPath);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const logger = createLogger(config.logging.level);
  let server;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    logger.fatal({ err }, `start-up failed: ${(err as Error).message}`);
    logger.flush();
    process.exitCode = 1;
    return;
  }
  logger.info({ url: server.url, models: Object.keys(config.models), tiers: Object.keys(config.tiers) }, 'tiergate ready');
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    server.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help === true || positionals[0] !== 'serve') {
  process.stdout.write(USAGE);
  process.exitCode = values.help === true ? 0 : 1;
} else {
  await serve(values.config);
}
