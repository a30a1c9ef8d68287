import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/index.js';

export type { Logger };

/**
 * The root pino logger: JSON lines on stdout (or the given stream), with the secrets a request
 * might carry redacted in case a header is ever logged.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'tiergate' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
