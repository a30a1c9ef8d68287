import type { FastifyReply } from 'fastify';
import type { ExecutionRecord } from './executor.js';

/** Response fields naming the tiers that served a request and any mid-stream continuation. */
export const SERVED_BY = 'x-tiergate-served-by';
export const CONTINUED_FROM = 'x-tiergate-continued-from';

/** Header/trailer values for a record; empty fields are left out. */
export function resilienceFields(record: ExecutionRecord): Record<string, string> {
  const out: Record<string, string> = {};
  if (record.servedBy.length > 0) out[SERVED_BY] = record.servedBy.join(', ');
  if (record.continuedFrom !== undefined) out[CONTINUED_FROM] = record.continuedFrom;
  return out;
}

/**
 * Before a stream's first byte: the tiers known so far as headers, and a `Trailer` declaration,
 * because a continuation can only be reported after the body (RFC 9110 §6.5). A whole answer
 * sets `resilienceFields` as headers once, when it is complete.
 */
export function setStreamResilienceHeaders(reply: FastifyReply, record: ExecutionRecord): void {
  void reply.headers(resilienceFields(record));
  void reply.header('trailer', `${SERVED_BY}, ${CONTINUED_FROM}`);
}
