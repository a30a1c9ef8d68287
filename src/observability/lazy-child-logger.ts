import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

/**
 * A request's logger (fastify's `request.log`) that becomes a real pino child only when
 * something logs through it. fastify makes a child per request; building one (bindings
 * serialised into its prefix) is wasted on the many requests that log nothing but their summary
 * line, which request-context.ts writes through the root logger with the request id.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  private child_: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The pino child, built on first use (from the parent's own, when the parent is lazy too). */
  private get real(): FastifyBaseLogger {
    const parent = this.parent instanceof LazyChildLogger ? this.parent.real : this.parent;
    return (this.child_ ??= parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.child_?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  // Prototype methods, not arrow-function fields: nothing allocated per request but this object.
  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  private log(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    const real = this.real;
    Reflect.apply(real[level], real, args);
  }

  /**
   * Lazy too: fastify's own root logger is `loggerInstance.child({})`, and the per-request
   * loggers are children of that.
   */
  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return new LazyChildLogger(this, bindings, options ?? {});
  }
}

/**
 * The root logger to give fastify (`loggerInstance`): pino itself for everything, except that its
 * `child()` returns a LazyChildLogger, whose own children are lazy too. fastify takes
 * `loggerInstance.child({})` as its logger and calls `child()` on that once per request. An object
 * whose prototype is the root, as pino makes its own children: a level set on the root applies.
 *
 * Why not fastify's `childLoggerFactory` option: fastify then checks the returned object's seven
 * logging methods on every request, which it skips for its default factory (`child()`).
 */
export function withLazyRequestLoggers(root: Logger): FastifyBaseLogger {
  const logger = Object.create(root) as FastifyBaseLogger;
  Object.defineProperty(logger, 'child', {
    value: (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger =>
      new LazyChildLogger(root as FastifyBaseLogger, bindings, options ?? {}),
  });
  return logger;
}
