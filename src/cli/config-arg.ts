import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildConfig, loadConfigFile, type Config } from '../config/index.js';

/** Raised for operator mistakes on the command line; main prints the message, no stack. */
export class CliError extends Error {
  readonly code = 'TIERGATE_ERR_CLI';
}

/**
 * The gateway config the eval/bench subcommands measure: --config, else $TIERGATE_CONFIG, else
 * config/tiergate.yaml — the same resolution as `tiergate serve`, so they measure what is served.
 */
export function loadCliConfig(path: string | undefined): Config {
  const file = path ?? process.env.TIERGATE_CONFIG ?? 'config/tiergate.yaml';
  if (!existsSync(file)) {
    if (path !== undefined || process.env.TIERGATE_CONFIG !== undefined) {
      throw new CliError(`config file not found: ${resolve(file)}`);
    }
    return buildConfig({}, {}, 'defaults');
  }
  return loadConfigFile(file);
}

/** "a,b" → ["a", "b"]; undefined stays undefined. */
export function listArg(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
}

export function intArg(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new CliError(`--${name} must be an integer >= ${min} (got "${value}")`);
  return n;
}
