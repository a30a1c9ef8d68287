import { totalCpuMs } from './proc-stats.js';

/** Arrival times of one stream's tokens, measured by whoever consumed it. */
export interface StreamTiming {
  /** Request start → first token. */
  readonly ttftMs: number;
  /** Gaps between consecutive tokens. */
  readonly gapsMs: readonly number[];
  readonly tokens: number;
  /** Request start → last byte of the response. */
  readonly totalMs: number;
}

/** Runs one generation and times it. */
export type StreamFn = () => Promise<StreamTiming>;

export interface LevelResult {
  readonly concurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly tokens: number;
  readonly wallMs: number;
  /** Generated tokens of all streams / wall time: the throughput at this concurrency. */
  readonly tokensPerSec: number;
  readonly ttftP50Ms: number;
  readonly ttftP95Ms: number;
  /** Inter-token latency over every gap of every stream. */
  readonly itlP50Ms: number;
  readonly itlP95Ms: number;
  readonly e2eP50Ms: number;
  readonly e2eP95Ms: number;
  /** CPU time of the serving processes / wall time, in % of one core. */
  readonly cpuPct: number;
}

export interface LevelOptions {
  readonly concurrency: number;
  /** Keep issuing requests until this much time has passed (each worker finishes at least one). */
  readonly durationMs: number;
  /** Processes whose CPU time counts (this one and e.g. the sidecar). */
  readonly pids: readonly number[];
}

/**
 * Closed-loop load: `concurrency` workers each issue one request after another until the
 * duration is over, so the tier always has exactly that many streams in flight.
 */
export async function runLevel(stream: StreamFn, options: LevelOptions): Promise<LevelResult> {
  const timings: StreamTiming[] = [];
  let errors = 0;
  const cpu0 = totalCpuMs(options.pids);
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    do {
      try {
        timings.push(await stream());
      } catch {
        errors++;
      }
    } while (performance.now() - t0 < options.durationMs);
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const wallMs = performance.now() - t0;
  const cpuMs = totalCpuMs(options.pids) - cpu0;
  const tokens = timings.reduce((n, t) => n + t.tokens, 0);
  const gaps = timings.flatMap((t) => t.gapsMs);
  const ttft = timings.map((t) => t.ttftMs);
  const e2e = timings.map((t) => t.totalMs);
  return {
    concurrency: options.concurrency,
    requests: timings.length,
    errors,
    tokens,
    wallMs,
    tokensPerSec: (tokens * 1000) / wallMs,
    ttftP50Ms: percentile(ttft, 50),
    ttftP95Ms: percentile(ttft, 95),
    itlP50Ms: percentile(gaps, 50),
    itlP95Ms: percentile(gaps, 95),
    e2eP50Ms: percentile(e2e, 50),
    e2eP95Ms: percentile(e2e, 95),
    cpuPct: (cpuMs / wallMs) * 100,
  };
}

/** p in [0, 100] by nearest rank; NaN for no values (serialised as null). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Records token arrival times; call `token()` as each arrives and `done()` at the end. */
export class StreamClock {
  private readonly t0 = performance.now();
  private first: number | undefined;
  private last = this.t0;
  private readonly gaps: number[] = [];
  private n = 0;

  token(count = 1): void {
    const now = performance.now();
    if (this.first === undefined) this.first = now;
    else this.gaps.push(now - this.last);
    this.last = now;
    this.n += count;
  }

  done(): StreamTiming {
    const end = performance.now();
    return {
      ttftMs: (this.first ?? end) - this.t0,
      gapsMs: this.gaps,
      tokens: this.n,
      totalMs: end - this.t0,
    };
  }
}
