/**
 * What a request's execution record says about the tiers that served it, as header/trailer or
 * gRPC metadata fields: one form for both transports (docs/resilience.md "What a response tells
 * you").
 */
import type { ExecutionRecord } from '../resilience/executor.js';

/** Response fields naming the tiers that served a request and any mid-stream continuation. */
export const SERVED_BY = 'x-tiergate-served-by';
export const CONTINUED_FROM = 'x-tiergate-continued-from';
/**
 * Each move from one tier to the next and why, e.g. `edge -> main (shed)` for an overflow: says
 * why `x-tiergate-served-by` is not `x-tiergate-tier` (docs/resilience.md "What a response tells you").
 */
export const FALLBACKS = 'x-tiergate-fallbacks';

/** Header/trailer values for a record; empty fields are left out. */
export function resilienceFields(record: ExecutionRecord): Record<string, string> {
  const out: Record<string, string> = {};
  if (record.servedBy.length > 0) out[SERVED_BY] = record.servedBy.join(', ');
  if (record.continuedFrom !== undefined) out[CONTINUED_FROM] = record.continuedFrom;
  if (record.fallbacks.length > 0) out[FALLBACKS] = fallbacksValue(record);
  return out;
}

/** `from -> to (cause)` per move; a move with no next tier (the request failed there) ends in `-`. */
export function fallbacksValue(record: ExecutionRecord): string {
  return headerSafe(record.fallbacks.map((f) => `${f.from} -> ${f.to ?? '-'} (${f.cause})`).join(', '));
}

const VISIBLE_ASCII = /^[\x20-\x7e]*$/;

/** Header values must be visible ASCII; reasons are built from ASCII but tier names come from config. */
export function headerSafe(text: string): string {
  if (text.length <= 200 && VISIBLE_ASCII.test(text)) return text;
  const ascii = text.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 200 ? `${ascii.slice(0, 197)}...` : ascii;
}
