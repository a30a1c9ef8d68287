import type { ProfileSeed } from '../config/policies.js';

/** One completed request's timings on a tier, as the pipeline measured them. */
export interface LatencyObservation {
  readonly promptTokens: number;
  /** Arrival to first token, queue wait included. */
  readonly ttftMs: number;
  /** Mean time per output token after the first; undefined when fewer than 2 tokens were generated. */
  readonly perTokenMs?: number | undefined;
  /** Of ttftMs, the wait for an admission slot, when the executor knows it. */
  readonly queueMs?: number | undefined;
  /**
   * Mean number of requests the tier was running while this one decoded (itself included);
   * undefined when not known, taken as 1.
   */
  readonly concurrency?: number | undefined;
  /**
   * Mean number of other tiers running anything meanwhile (on one machine they share its cores);
   * undefined when not known, taken as 0.
   */
  readonly otherTiersBusy?: number | undefined;
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
  /** Added to ttftMs per other request the tier runs at once (0: not learned). */
  readonly ttftPerStreamMs: number;
  /** Added to ttftMs per other tier busy meanwhile (0: not learned). */
  readonly ttftPerBusyTierMs: number;
  readonly perOutputTokenMs: number;
  /** Added to perOutputTokenMs per other request the tier runs at once (0: not learned). */
  readonly perOutputTokenPerStreamMs: number;
  /** Added to perOutputTokenMs per other tier busy meanwhile (0: not learned, or none shares). */
  readonly perOutputTokenPerBusyTierMs: number;
  /**
   * The prior's queue wait; live: the quantile of observed admission waits (not part of ttftMs,
   * and not what the engine predicts with: it predicts queueing from the tier's load).
   */
  readonly queueMs: number;
  /** Whether the window holds loads of other tiers a whole tier apart (the busy-tier slopes could be learned). */
  readonly busyTiersSeen: boolean;
  /** Live observations in the window. */
  readonly samples: number;
  /** False while fewer than minSamples were seen and the configured prior answers. */
  readonly live: boolean;
}

/** Prompt lengths must vary by this many tokens before TTFT's slope per prompt token is fitted. */
const MIN_PROMPT_SPREAD = 16;

/** Longest time a live estimate may lag the window's newest observations. */
const REFRESH_MS = 1000;

/**
 * A tier's live latency model over a sliding window of recent requests. TTFT is modelled as
 * a + b·promptTokens (+ load terms, below): b is the least-squares slope over the window (prefill
 * cost per token is close to linear for small models), a is the configured quantile of the
 * residuals, so one slow outlier moves the tail estimate by at most one rank instead of dragging
 * a mean.
 * Time per output token is fitted the same way against how many requests the tier ran while each
 * one decoded (a batch's step, or a time-shared core, gets slower with every stream it carries)
 * and how many other tiers were busy meanwhile (tiers on one machine share its cores), so the
 * engine can predict it for the load a new request would meet rather than for the window's mix
 * of loads. Queue wait is a plain window quantile. Until `minSamples` requests have
 * been seen, the configured prior answers.
 */
export class LatencyModel {
  private prompt: Float64Array;
  private ttft: Float64Array;
  private perToken: Float64Array;
  private concurrency: Float64Array;
  private othersBusy: Float64Array;
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
    this.concurrency = new Float64Array(options.window).fill(1);
    this.othersBusy = new Float64Array(options.window);
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
      this.concurrency = resize(this.concurrency, 1);
      this.othersBusy = resize(this.othersBusy, 0);
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
    this.concurrency[i] =
      o.concurrency !== undefined && Number.isFinite(o.concurrency) && o.concurrency >= 1 ? o.concurrency : 1;
    this.othersBusy[i] =
      o.otherTiersBusy !== undefined && Number.isFinite(o.otherTiersBusy) && o.otherTiersBusy >= 0
        ? o.otherTiersBusy
        : 0;
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
      return { ...this.priorTerms(), busyTiersSeen: false, samples: n, live: false };
    }
    const prompt = this.prompt.subarray(0, n);
    // TTFT without the wait for admission: the engine predicts that from the tier's load at the
    // time (queue waves), and a wait learned from a past burst would keep a tier looking slow
    // long after it is idle — for good, when the router then stops sending it requests.
    const service = new Float64Array(n);
    for (let i = 0; i < n; i++) service[i] = Math.max(0, this.ttft[i]! - this.queue[i]!);
    // Fitted against the prompt's length and the load the request met, as time per token is.
    const streams = this.concurrency.subarray(0, n);
    const others = this.othersBusy.subarray(0, n);
    const [slope, perStream, perBusyTier] = nonNegativeSlopes([prompt, streams, others], service, [
      MIN_PROMPT_SPREAD,
      1,
      1,
    ]) as [number, number, number];
    const residuals = new Float64Array(n);
    for (let i = 0; i < n; i++)
      residuals[i] = service[i]! - slope * prompt[i]! - perStream * streams[i]! - perBusyTier * others[i]!;
    const decode = this.decodeTerms(n);
    const queue = quantileOf(this.queue.subarray(0, n), quantile);
    return {
      ttftMs: Math.max(0, quantileOf(residuals, quantile) + perStream),
      ttftPerPromptTokenMs: slope,
      ttftPerStreamMs: perStream,
      ttftPerBusyTierMs: perBusyTier,
      ...(decode ?? {
        perOutputTokenMs: this.prior.perOutputTokenMs,
        perOutputTokenPerStreamMs: 0,
        perOutputTokenPerBusyTierMs: 0,
      }),
      queueMs: queue,
      busyTiersSeen: spread(others) >= 1,
      samples: n,
      live: true,
    };
  }

  /**
   * Per-token time as a + b·concurrency + c·otherTiersBusy over the window's requests that made
   * more than one token: b and c by least squares (each 0 when its load never varied, and never
   * negative), a the quantile of the residuals. Reported for one stream with nothing else busy
   * (a + b), per extra stream (b) and per other busy tier (c). Undefined below minSamples.
   */
  private decodeTerms(
    n: number,
  ):
    | Pick<LatencyEstimate, 'perOutputTokenMs' | 'perOutputTokenPerStreamMs' | 'perOutputTokenPerBusyTierMs'>
    | undefined {
    const { quantile, minSamples } = this.options;
    let m = 0;
    for (let i = 0; i < n; i++) if (!Number.isNaN(this.perToken[i]!)) m++;
    if (m < minSamples) return undefined;
    const x = new Float64Array(m);
    const z = new Float64Array(m);
    const y = new Float64Array(m);
    for (let i = 0, j = 0; i < n; i++) {
      if (Number.isNaN(this.perToken[i]!)) continue;
      x[j] = this.concurrency[i]!;
      z[j] = this.othersBusy[i]!;
      y[j++] = this.perToken[i]!;
    }
    const [perStream, perBusyTier] = nonNegativeSlopes([x, z], y, [1, 1]) as [number, number];
    for (let j = 0; j < m; j++) y[j] = y[j]! - perStream * x[j]! - perBusyTier * z[j]!;
    return {
      perOutputTokenMs: Math.max(0, quantileOf(y, quantile) + perStream),
      perOutputTokenPerStreamMs: perStream,
      perOutputTokenPerBusyTierMs: perBusyTier,
    };
  }

  private priorTerms(): Omit<LatencyEstimate, 'samples' | 'live' | 'busyTiersSeen'> {
    const p = this.prior;
    return {
      ttftMs: p.ttftMs,
      ttftPerPromptTokenMs: p.ttftPerPromptTokenMs,
      ttftPerStreamMs: 0,
      ttftPerBusyTierMs: 0,
      perOutputTokenMs: p.perOutputTokenMs,
      perOutputTokenPerStreamMs: 0,
      perOutputTokenPerBusyTierMs: 0,
      queueMs: p.queueMs,
    };
  }
}

/**
 * Least-squares slopes of y on each column (with an intercept), each non-negative (a tier does
 * not get faster with load or a longer prompt) and 0 unless its column varies by at least its
 * `minSpread` across the window (within less it is noise: a slope over prompts of 11 to 13 tokens
 * can come out at 18 ms per token). A column whose joint slope comes out negative, or that moves
 * with an earlier one (collinear), is dropped and the rest refitted; earlier columns win.
 */
export function nonNegativeSlopes(
  columns: readonly Float64Array[],
  y: Float64Array,
  minSpread: readonly number[],
): number[] {
  const k = columns.length;
  const out = new Array<number>(k).fill(0);
  let active = columns.map((_, j) => j).filter((j) => spread(columns[j]!) >= minSpread[j]!);
  while (active.length > 0) {
    const b = leastSquares(
      active.map((j) => columns[j]!),
      y,
    );
    if (b === undefined) {
      active = active.slice(0, -1);
      continue;
    }
    let worst = -1;
    for (let i = 0; i < b.length; i++) if (b[i]! < 0 && (worst < 0 || b[i]! < b[worst]!)) worst = i;
    if (worst < 0) {
      active.forEach((j, i) => (out[j] = b[i]!));
      return out;
    }
    active = active.filter((_, i) => i !== worst);
  }
  return out;
}

/** Slopes of the least-squares fit of y on the columns plus an intercept; undefined if singular. */
function leastSquares(columns: readonly Float64Array[], y: Float64Array): number[] | undefined {
  const k = columns.length;
  const n = y.length;
  const mean = (v: Float64Array): number => v.reduce((a, b) => a + b, 0) / n;
  const mx = columns.map(mean);
  const my = mean(y);
  // Normal equations on centred data: A b = r, A k×k.
  const a = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  for (let i = 0; i < n; i++) {
    const dy = y[i]! - my;
    for (let p = 0; p < k; p++) {
      const dp = columns[p]![i]! - mx[p]!;
      for (let q = p; q < k; q++) a[p]![q]! += dp * (columns[q]![i]! - mx[q]!);
      a[p]![k]! += dp * dy;
    }
  }
  for (let p = 0; p < k; p++) for (let q = 0; q < p; q++) a[p]![q] = a[q]![p]!;
  const scale = Math.max(...a.map((row, p) => Math.abs(row[p]!)));
  // Gaussian elimination with partial pivoting.
  for (let c = 0; c < k; c++) {
    let pivot = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[pivot]![c]!)) pivot = r;
    if (Math.abs(a[pivot]![c]!) <= 1e-9 * scale) return undefined;
    [a[c], a[pivot]] = [a[pivot]!, a[c]!];
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let q = c; q <= k; q++) a[r]![q]! -= f * a[c]![q]!;
    }
  }
  return a.map((row, p) => row[k]! / row[p]!);
}

function spread(x: Float64Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
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
