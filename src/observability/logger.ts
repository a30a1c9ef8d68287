import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/index.js';
import { stdoutLines } from './line-writer.js';

export type { Logger };

/**
 * The root pino logger: JSON lines on stdout (or the given stream), with the secrets a request
 * might carry redacted in case a header is ever logged. Stdout lines go through one LineWriter
 * (src/observability/line-writer.ts): written together once per event-loop turn, and whatever
 * is left is written on exit.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'tiergate' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return pino(options, destination ?? stdoutLines());
}
