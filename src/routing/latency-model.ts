import type { ProfileSeed } from '../config/policies.js';

/** One completed request's timings on a tier, as the pipeline measured them. */
export interface LatencyObservation {
  readonly promptTokens: number;
  /** Arrival to first token, queue wait included. */
  readonly ttftMs: number;
  /** Mean time per output token after the first; undefined when fewer than 2 tokens were generated. */
  readonly perTokenMs?: number | undefined;
  /** Time spent waiting for a slot, when the executor knows it. */
  readonly queueMs?: number | undefined;
}

export interface LatencyModelOptions {
  readonly window: number;
  readonly quantile: number;
  readonly minSamples: number;
}

/** The model's current prediction terms (see TierProfile in engine.ts). */
export interface LatencyEstimate {
  readonly ttftMs: number;
  readonly ttftPerPromptTokenMs: number;
  readonly perOutputTokenMs: number;
  readonly queueMs: number;
  /** Live observations in the window. */
  readonly samples: number;
  /** False while fewer than minSamples were seen and the configured prior answers. */
  readonly live: boolean;
}

/** Longest time a live estimate may lag the window's newest observations. */
const REFRESH_MS = 1000;

/**
 * A tier's live latency model over a sliding window of recent requests. TTFT is modelled as
 * a + b·promptTokens: b is the least-squares slope over the window (prefill cost per token is
 * close to linear for small models), a is the configured quantile of the residuals ttft − b·tokens,
 * so one slow outlier moves the tail estimate by at most one rank instead of dragging a mean.
 * Time per output token and queue wait are plain window quantiles. Until `minSamples` requests
 * have been seen, the configured prior answers.
 */
export class LatencyModel {
  private prompt: Float64Array;
  private ttft: Float64Array;
  private perToken: Float64Array;
  private queue: Float64Array;
  private count = 0;
  private next = 0;
  private cached: LatencyEstimate | undefined;
  /** Observations since `cached` was computed, and when (performance.now()). */
  private sinceCompute = 0;
  private computedAt = 0;

  constructor(
    private prior: ProfileSeed,
    private options: LatencyModelOptions,
  ) {
    this.prompt = new Float64Array(options.window);
    this.ttft = new Float64Array(options.window);
    this.perToken = new Float64Array(options.window).fill(Number.NaN);
    this.queue = new Float64Array(options.window);
  }

  /**
   * New prior and options (hot reload). The window keeps its most recent observations, as many
   * as the new size holds, oldest first; the estimate is recomputed on the next ask.
   */
  reconfigure(prior: ProfileSeed, options: LatencyModelOptions): void {
    const { window, quantile, minSamples } = options;
    this.prior = prior;
    this.options = { window, quantile, minSamples };
    if (window !== this.prompt.length) {
      const keep = Math.min(this.count, window);
      const old = this.prompt.length;
      const resize = (from: Float64Array, fill: number): Float64Array => {
        const to = new Float64Array(window).fill(fill);
        // The newest `keep` samples end just before `next` in the ring.
        for (let k = 0; k < keep; k++) to[k] = from[(this.next - keep + k + old) % old]!;
        return to;
      };
      this.prompt = resize(this.prompt, 0);
      this.ttft = resize(this.ttft, 0);
      this.perToken = resize(this.perToken, Number.NaN);
      this.queue = resize(this.queue, 0);
      this.count = keep;
      this.next = keep % window;
    }
    this.cached = undefined;
  }

  observe(o: LatencyObservation): void {
    if (!Number.isFinite(o.ttftMs) || o.ttftMs < 0) return;
    const i = this.next;
    this.prompt[i] = Math.max(0, o.promptTokens);
    this.ttft[i] = o.ttftMs;
    const perToken =
      o.perTokenMs !== undefined && Number.isFinite(o.perTokenMs) && o.perTokenMs >= 0
        ? o.perTokenMs
        : Number.NaN;
    this.perToken[i] = perToken;
    this.queue[i] = o.queueMs !== undefined && o.queueMs >= 0 ? o.queueMs : 0;
    this.next = (i + 1) % this.options.window;
    this.count = Math.min(this.count + 1, this.options.window);
    this.sinceCompute++;
  }

  /**
   * Recomputed (sorting the window) only when enough has changed: every new observation while the
   * window holds fewer than 32, then every count/16 observations (16 for the default window of
   * 256) or after REFRESH_MS. Recomputing after every request cost more than the whole routing
   * decision under load (every request observes once), while a quantile over 256 samples moves
   * by at most one rank per observation.
   */
  estimate(): LatencyEstimate {
    const c = this.cached;
    if (
      c === undefined ||
      (this.sinceCompute > 0 &&
        (this.sinceCompute >= Math.max(1, this.count >> 4) ||
          c.live !== this.count >= this.options.minSamples ||
          performance.now() - this.computedAt >= REFRESH_MS))
    ) {
      this.cached = this.compute();
      this.sinceCompute = 0;
      this.computedAt = performance.now();
    }
    return this.cached!;
  }

  private compute(): LatencyEstimate {
    const { quantile, minSamples } = this.options;
    const n = this.count;
    if (n < minSamples) {
      return { ...this.priorTerms(), samples: n, live: false };
    }
    const prompt = this.prompt.subarray(0, n);
    const ttft = this.ttft.subarray(0, n);
    const slope = Math.max(0, leastSquaresSlope(prompt, ttft));
    const residuals = new Float64Array(n);
    for (let i = 0; i < n; i++) residuals[i] = ttft[i]! - slope * prompt[i]!;
    const perTokens = [...this.perToken.subarray(0, n)].filter((v) => !Number.isNaN(v));
    const queue = quantileOf(this.queue.subarray(0, n), quantile);
    return {
      // The TTFT residual includes queue wait already; queueMs is reported for the trace only,
      // so the base excludes it to avoid counting it twice.
      ttftMs: Math.max(0, quantileOf(residuals, quantile) - queue),
      ttftPerPromptTokenMs: slope,
      perOutputTokenMs:
        perTokens.length >= minSamples
          ? quantileOf(Float64Array.from(perTokens), quantile)
          : this.prior.perOutputTokenMs,
      queueMs: queue,
      samples: n,
      live: true,
    };
  }

  private priorTerms(): Omit<LatencyEstimate, 'samples' | 'live'> {
    const p = this.prior;
    return {
      ttftMs: p.ttftMs,
      ttftPerPromptTokenMs: p.ttftPerPromptTokenMs,
      perOutputTokenMs: p.perOutputTokenMs,
      queueMs: p.queueMs,
    };
  }
}

/** Slope of the least-squares line through (x, y); 0 when x does not vary. */
export function leastSquaresSlope(x: Float64Array, y: Float64Array): number {
  const n = x.length;
  if (n < 2) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

/** The q-quantile with linear interpolation between order statistics (type 7, as NumPy's default). */
export function quantileOf(values: Float64Array, q: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
