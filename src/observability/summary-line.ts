import { symbols, type Logger } from 'pino';
import { jsonString } from '../text/json-string.js';

/** The fields of a request's summary line, in the order they are written. */
export interface SummaryFields {
  readonly requestId: string;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  /** Name of the API key that matched (never the key). */
  readonly apiKey: string | undefined;
  /** Why auth refused the request (src/api/auth.ts). */
  readonly denied: string | undefined;
  readonly model: string | undefined;
  readonly tier: string | undefined;
  readonly policy: string | undefined;
  readonly routeReason: string | undefined;
  readonly stream: boolean;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly ttftMs: number | undefined;
  readonly durationMs: number;
  readonly finishReason: string | undefined;
  readonly error: string | undefined;
  readonly aborted: true | undefined;
  readonly servedBy: readonly string[] | undefined;
  readonly continuedFrom: string | undefined;
  readonly fallbacks: readonly object[] | undefined;
}

/** pino's numeric level for info lines. */
const INFO = 30;

/**
 * Writes the one summary line per request straight to the logger's destination, as pino itself
 * would write `logger.info(fields, 'request')`: same keys, order, level, time and bindings
 * (test/observability/summary-line.test.ts checks it against pino byte for byte). pino's generic
 * serialiser walks and type-checks an object per line; this line is the only one every request
 * writes, and its fields are known, so it is built as a string directly.
 */
export function writeSummaryLine(logger: Logger, fields: SummaryFields): void {
  if (!logger.isLevelEnabled('info')) return;
  // pino's public symbols for a logger's destination and serialised bindings.
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[symbols.streamSym] as { write(line: string): void };
  stream.write(summaryLine(internals[symbols.chindingsSym] as string, Date.now(), fields));
}

/** The line itself: `bindings` is the logger's serialised bindings (`,"service":"tiergate"`). */
export function summaryLine(bindings: string, time: number, f: SummaryFields): string {
  let line = `{"level":${INFO},"time":${time}${bindings},"requestId":${str(f.requestId)},"method":${known(f.method)},"route":${known(f.route)},"status":${f.status}`;
  if (f.apiKey !== undefined) line += `,"apiKey":${known(f.apiKey)}`;
  if (f.denied !== undefined) line += `,"denied":${known(f.denied)}`;
  if (f.model !== undefined) line += `,"model":${known(f.model)}`;
  if (f.tier !== undefined) line += `,"tier":${known(f.tier)}`;
  if (f.policy !== undefined) line += `,"policy":${known(f.policy)}`;
  if (f.routeReason !== undefined) line += `,"routeReason":${known(f.routeReason)}`;
  line += `,"stream":${f.stream},"promptTokens":${num(f.promptTokens)},"completionTokens":${num(f.completionTokens)}`;
  if (f.ttftMs !== undefined) line += `,"ttftMs":${num(f.ttftMs)}`;
  line += `,"durationMs":${num(f.durationMs)}`;
  if (f.finishReason !== undefined) line += `,"finishReason":${known(f.finishReason)}`;
  if (f.error !== undefined) line += `,"error":${known(f.error)}`;
  if (f.aborted !== undefined) line += `,"aborted":true`;
  if (f.servedBy !== undefined) line += `,"servedBy":${JSON.stringify(f.servedBy)}`;
  if (f.continuedFrom !== undefined) line += `,"continuedFrom":${str(f.continuedFrom)}`;
  if (f.fallbacks !== undefined) line += `,"fallbacks":${JSON.stringify(f.fallbacks)}`;
  return `${line},"msg":"request"}\n`;
}

const str = jsonString;

/**
 * Values from a small set (methods, route templates, configured models and tiers, reason and
 * error codes) are quoted once and remembered; the set is capped in case one is not so small.
 */
function known(s: string): string {
  let q = quoted.get(s);
  if (q === undefined) {
    q = str(s);
    if (quoted.size < 4096) quoted.set(s, q);
  }
  return q;
}
const quoted = new Map<string, string>();
// As pino writes numbers: non-finite ones as null.
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');
