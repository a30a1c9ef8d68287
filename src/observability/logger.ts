import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/index.js';

export type { Logger };

/**
 * The root pino logger: JSON lines on stdout (or the given stream), with the secrets a request
 * might carry redacted in case a header is ever logged. Stdout is written asynchronously: a
 * synchronous write per summary line was one system call per request (a visible share of the
 * echo tier's per-request CPU in profiles); lines logged while a write is in flight go out
 * together in the next one, and pino flushes what is left synchronously on exit (lost only on
 * SIGKILL).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'tiergate' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
