import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/index.js';
import { stdoutLines } from './line-writer.js';

export type { Logger };

/** Always hidden: the credentials a request might carry, in case a header is ever logged. */
const ALWAYS_REDACTED = ['req.headers.authorization', 'headers.authorization'];

/**
 * The root pino logger: JSON lines on stdout (or the given stream), with the secrets a request
 * might carry and the configured `logging.redact` paths censored by pino's own `redact`, which
 * sees every line (the per-request summary is an ordinary `info` line). Stdout lines go through
 * one LineWriter (src/observability/line-writer.ts): written together once per event-loop turn,
 * and whatever is left is written on exit.
 */
export function createLogger(
  level: LogLevel,
  destination?: DestinationStream,
  redact: readonly string[] = [],
): Logger {
  const options = {
    level,
    base: { service: 'tiergate' },
    redact: { paths: [...ALWAYS_REDACTED, ...redact], censor: '[redacted]' },
  };
  return pino(options, destination ?? stdoutLines());
}
