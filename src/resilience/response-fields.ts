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

/** The same fields set as response headers, one by one (a whole answer, once it is complete). */
export function setResilienceHeaders(reply: FastifyReply, record: ExecutionRecord): void {
  const by = record.servedBy;
  if (by.length > 0) void reply.header(SERVED_BY, by.length === 1 ? by[0]! : by.join(', '));
  if (record.continuedFrom !== undefined) void reply.header(CONTINUED_FROM, record.continuedFrom);
}

/**
 * Before a stream's first byte: the tiers known so far as headers, and a `Trailer` declaration,
 * because a continuation can only be reported after the body (RFC 9110 §6.5). A whole answer
 * sets `resilienceFields` as headers once, when it is complete.
 */
export function setStreamResilienceHeaders(reply: FastifyReply, record: ExecutionRecord): void {
  setResilienceHeaders(reply, record);
  void reply.header('trailer', `${SERVED_BY}, ${CONTINUED_FROM}`);
}
