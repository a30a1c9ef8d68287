import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildConfig, ConfigError, loadConfigFile, type Config } from '../config/index.js';
import { createLogger } from '../observability/logger.js';
import { startServer, type RunningServer } from '../server.js';
import { simulateCommand } from './simulate-command.js';
import { workerCommand } from './worker-command.js';
import { exitOnSignal } from './exit-on-signal.js';
import { isMeasureCommand, MEASURE_USAGE, runMeasureCommand } from './measure-commands.js';
import { convertCommand } from './convert-command.js';
import { ConfigReloader } from '../config/config-reloader.js';
import type { Logger } from 'pino';

const USAGE = `Usage: tiergate serve [--config <file>]
       tiergate worker --tier <name> [--config <file>] [--host <host>] [--port <port>]
       tiergate simulate --policy <file> --traffic <file.jsonl> [--config <file>] [--json]
       tiergate convert --from <checkpoint> --out <family dir> [--variants a,b] [--eval-text file]
${MEASURE_USAGE}
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
    if (path !== undefined || process.env.TIERGATE_CONFIG !== undefined)
      fail(`config file not found: ${resolve(file)}`);
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
  const logger = createLogger(config.logging.level, undefined, config.logging.redact);
  let server;
  try {
    server = await startServer(config, logger);
  } catch (err) {
    logger.fatal({ err }, `start-up failed: ${(err as Error).message}`);
    logger.flush();
    process.exitCode = 1;
    return;
  }
  logger.info(
    {
      url: server.url,
      grpc: server.grpcAddress,
      models: Object.keys(config.models),
      tiers: Object.keys(config.tiers),
    },
    'tiergate ready',
  );
  exitOnSignal(logger, () => server.shutdown());
  startHotReload(configPath ?? process.env.TIERGATE_CONFIG ?? 'config/tiergate.yaml', server.gateway, logger);
}

/** SIGHUP (and, unless resilience.watchConfig is off, a change of the file) reloads the config. */
function startHotReload(file: string, gateway: RunningServer['gateway'], logger: Logger): void {
  if (!existsSync(file)) return;
  const metrics = gateway.resilience.metrics;
  const reloader = new ConfigReloader(file, gateway, logger.child({ component: 'config' }), (result) =>
    metrics.configReloads.inc({ result }),
  );
  process.on('SIGHUP', () => reloader.reload('SIGHUP'));
  if (gateway.config.resilience.watchConfig) reloader.watch();
}

// `simulate` has options of its own (simulate-command.ts); only the sub-command is read here.
const simulating = process.argv[2] === 'simulate';
// `worker` parses its own options (worker-command.ts).
const working = process.argv[2] === 'worker';
// eval / bench / report parse their own options (measure-commands.ts).
const measuring = process.argv[2];
// `convert` parses its own options (convert-command.ts).
const converting = process.argv[2] === 'convert';
const { positionals, values } = parseArgs({
  allowPositionals: true,
  args: simulating || working || converting || isMeasureCommand(measuring) ? [] : process.argv.slice(2),
  options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
});
if (isMeasureCommand(measuring)) {
  process.exitCode = await runMeasureCommand(measuring, process.argv.slice(3));
} else if (converting) {
  process.exitCode = await convertCommand(process.argv.slice(3));
} else if (working) {
  try {
    await workerCommand(process.argv.slice(3), loadConfig);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
} else if (simulating) {
  try {
    process.exitCode = simulateCommand(process.argv.slice(3), loadConfig, process.stdout);
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: unknown }).code === 'TIERGATE_ERR_TRAFFIC')
      fail((err as Error).message);
    throw err;
  }
} else if (values.help === true || positionals[0] !== 'serve') {
  process.stdout.write(USAGE);
  process.exitCode = values.help === true ? 0 : 1;
} else {
  await serve(values.config);
}
