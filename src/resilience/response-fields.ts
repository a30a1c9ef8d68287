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
 * Before the first byte: the tiers known so far as headers, and for streams a `Trailer`
 * declaration, because a continuation can only be reported after the body (RFC 9110 §6.5).
 */
export function setResilienceHeaders(reply: FastifyReply, record: ExecutionRecord, stream: boolean): void {
  void reply.headers(resilienceFields(record));
  if (stream) void reply.header('trailer', `${SERVED_BY}, ${CONTINUED_FROM}`);
}
