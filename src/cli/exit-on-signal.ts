import type { Logger } from 'pino';

/**
 * SIGTERM / SIGINT run the process's graceful shutdown once, then exit 0 (or 1 when shutdown
 * itself fails) — the contract Kubernetes and systemd expect from `serve` and `worker` alike.
 */
export function exitOnSignal(logger: Logger, shutdown: () => Promise<void>): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    shutdown().then(
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
