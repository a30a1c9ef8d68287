import type { FastifyReply } from 'fastify';
import type { RateLimitInfo } from '../errors/rate-limit.js';
import type { ExecutionRecord } from '../resilience/executor.js';
import type { Execution } from '../service/execution.js';
import { resetDuration } from './rate-limit-headers.js';
import { CONTINUED_FROM, FALLBACKS, fallbacksValue, headerSafe, SERVED_BY } from './resilience-fields.js';

export { CONTINUED_FROM, FALLBACKS, resilienceFields, SERVED_BY } from './resilience-fields.js';

/** Set when the request's own budgets were not applied, with the reason (a pinned model or tier). */
export const BUDGETS_NOT_APPLIED = 'x-tiergate-budgets-not-applied';

/**
 * What routing decided, as response headers (docs/routing.md "What a response carries"): the
 * policy, the reason, the first attempt's tier, and a notice when the request's budgets were
 * not applied. Set before any body byte, also on a refusal (422, 503) once a plan exists.
 */
export function setRouteHeaders(reply: FastifyReply, exec: Execution): void {
  const plan = exec.plan;
  if (plan !== undefined) {
    void reply.header('x-tiergate-policy', plan.policy);
    void reply.header('x-tiergate-route-reason', headerSafe(plan.reason));
  }
  if (exec.chosenTier !== undefined) void reply.header('x-tiergate-tier', exec.chosenTier.name);
  if (exec.budgetsNotApplied !== undefined)
    void reply.header(BUDGETS_NOT_APPLIED, headerSafe(exec.budgetsNotApplied));
}

/**
 * The key's x-ratelimit-* headers (docs/governance.md), as OpenAI sends them on every answer of
 * a key with per-minute limits: from a refusal's error, else from the request's admission.
 */
export function setRateLimitHeaders(
  reply: FastifyReply,
  exec: Execution | undefined,
  refusal?: RateLimitInfo,
): void {
  const info = refusal ?? exec?.rateLimit;
  if (info === undefined) return;
  const r = info.requests;
  if (r !== undefined) {
    void reply.header('x-ratelimit-limit-requests', String(r.limit));
    void reply.header('x-ratelimit-remaining-requests', String(r.remaining));
    void reply.header('x-ratelimit-reset-requests', resetDuration(r.resetMs));
  }
  const t = info.tokens;
  if (t !== undefined) {
    void reply.header('x-ratelimit-limit-tokens', String(t.limit));
    void reply.header('x-ratelimit-remaining-tokens', String(t.remaining));
    void reply.header('x-ratelimit-reset-tokens', resetDuration(t.resetMs));
  }
}

/** The same fields set as response headers, one by one (a whole answer, once it is complete). */
export function setResilienceHeaders(reply: FastifyReply, record: ExecutionRecord): void {
  const by = record.servedBy;
  if (by.length > 0) void reply.header(SERVED_BY, by.length === 1 ? by[0]! : by.join(', '));
  if (record.continuedFrom !== undefined) void reply.header(CONTINUED_FROM, record.continuedFrom);
  if (record.fallbacks.length > 0) void reply.header(FALLBACKS, fallbacksValue(record));
}

/**
 * Before a stream's first byte: the tiers known so far as headers, and a `Trailer` declaration,
 * because a continuation can only be reported after the body (RFC 9110 §6.5).
 */
export function setStreamResilienceHeaders(reply: FastifyReply, record: ExecutionRecord): void {
  setResilienceHeaders(reply, record);
  void reply.header('trailer', `${SERVED_BY}, ${CONTINUED_FROM}, ${FALLBACKS}`);
}
