/**
 * Calendar windows in UTC: a key's counters are kept per window (the window's start is part of
 * the counter's store key), so every replica counts into the same window and a window resets at
 * the same time everywhere (replicas' clocks must agree; NTP does that to milliseconds).
 */
export type WindowKind = 'minute' | 'day' | 'month';

export interface Window {
  /** ms since the epoch, inclusive. */
  readonly start: number;
  /** ms since the epoch, exclusive. */
  readonly end: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

export function windowAt(kind: WindowKind, now: number): Window {
  if (kind === 'minute') {
    const start = now - (now % MINUTE);
    return { start, end: start + MINUTE };
  }
  if (kind === 'day') {
    const start = now - (now % DAY);
    return { start, end: start + DAY };
  }
  const d = new Date(now);
  return {
    start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}
