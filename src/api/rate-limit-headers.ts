import type { RateLimitInfo } from '../errors/rate-limit.js';

/**
 * The x-ratelimit-* fields as OpenAI sends them: limit and remaining as integers, reset as a
 * duration in Go's form (`1s`, `6m0s`, `20ms`). HTTP sends them as response headers (every
 * answer of a key with per-minute limits, refusals included), gRPC as trailers of a call.
 */
export function rateLimitFields(info: RateLimitInfo | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (info === undefined) return out;
  const r = info.requests;
  if (r !== undefined) {
    out['x-ratelimit-limit-requests'] = String(r.limit);
    out['x-ratelimit-remaining-requests'] = String(r.remaining);
    out['x-ratelimit-reset-requests'] = resetDuration(r.resetMs);
  }
  const t = info.tokens;
  if (t !== undefined) {
    out['x-ratelimit-limit-tokens'] = String(t.limit);
    out['x-ratelimit-remaining-tokens'] = String(t.remaining);
    out['x-ratelimit-reset-tokens'] = resetDuration(t.resetMs);
  }
  return out;
}

/** A duration as OpenAI writes it (Go's time.Duration form): `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function resetDuration(ms: number): string {
  // Integer arithmetic on whole milliseconds: this runs for every answer of a limited key.
  const total = ms > 0 ? Math.round(ms) : 0;
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const msOfMinute = total % 60_000;
  const whole = Math.floor(msOfMinute / 1000);
  const frac = msOfMinute % 1000;
  // Go drops trailing zeros of the fraction: 1.5s, 1.05s, 1.005s.
  const sec =
    frac === 0
      ? `${whole}s`
      : frac % 100 === 0
        ? `${whole}.${frac / 100}s`
        : frac % 10 === 0
          ? `${whole}.${String(frac / 10).padStart(2, '0')}s`
          : `${whole}.${String(frac).padStart(3, '0')}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}
