import {
  makeCounter,
  whenAll,
  type Counter,
  type CounterStore,
  type Grant,
  type MaybePromise,
} from './counter-store.js';
import type { LimitName } from './key-usage.js';
import { windowAt, type WindowKind } from './window.js';

/** A counter a stream leases completion tokens from: its name, limit and window kind. */
export interface LeasedCounter {
  readonly name: string;
  readonly limit: number;
  readonly window: WindowKind;
  readonly limitName: LimitName;
}

/** What the meter does when the store fails mid-stream (`limits.onStoreError`). */
export interface MeterFailure {
  readonly mode: 'open' | 'closed';
  /** Called once per failure (metric and log line). */
  readonly report: (err: unknown) => void;
}

/**
 * The completion tokens of one request, charged to its key's token counters (per minute, and a
 * hard budget) as they are produced: the request holds a lease of reserved tokens and takes the
 * next lease (`limits.leaseTokens`) from the store when it has used it up. Tokens reach the
 * client only within what was granted, and every grant is atomic against the limit, so the
 * tokens charged to a window never pass its limit, whatever runs at the same time on any
 * replica (docs/governance.md "The bound"). What is leased and not used goes back at the end.
 */
export class TokenMeter {
  private granted: number;
  private delivered = 0;
  private open = false;
  /** A lease being taken: the next allow waits for it (the choices of one request share the meter). */
  private pending: Promise<unknown> | undefined;
  /** The limit that ran out, once one did (the generation ends there). */
  exhausted: LimitName | undefined;
  /** Each counter's leases, newest last (each in the window current when it was taken). */
  private readonly leases: { readonly counter: Counter; readonly amount: number }[][];

  constructor(
    private readonly store: CounterStore,
    private readonly counters: readonly LeasedCounter[],
    first: { readonly granted: number; readonly windows: readonly Counter[] },
    /** The most completion tokens the request can produce (max_tokens × choices). */
    private readonly maxCompletion: number,
    private readonly leaseTokens: number,
    private readonly failure: MeterFailure,
  ) {
    this.granted = first.granted;
    this.leases = first.windows.map((counter) =>
      first.granted > 0 ? [{ counter, amount: first.granted }] : [],
    );
  }

  /** Completion tokens let through so far. */
  get used(): number {
    return this.delivered;
  }

  /**
   * How many of `n` newly produced tokens may be delivered: all of them while the lease lasts
   * (synchronously), else after the next lease; fewer once a limit runs out.
   */
  allow(n: number): MaybePromise<number> {
    if (this.pending !== undefined) return this.pending.then(() => this.allow(n));
    const have = this.granted - this.delivered;
    if (this.open || n <= have) {
      this.delivered += n;
      return n;
    }
    const want = Math.min(Math.max(n - have, this.leaseTokens), this.maxCompletion - this.granted);
    if (this.exhausted !== undefined || want <= 0) return this.deliver(n);
    const now = Date.now();
    const windows = this.counters.map((c) => counterAt(c, now));
    let result: MaybePromise<number>;
    try {
      result = whenAll(
        windows.map((w) => this.store.take(w, want, true)),
        (grants) => this.leased(windows, want, grants, n),
      );
    } catch (err) {
      return this.failed(err, n);
    }
    if (!(result instanceof Promise)) return result;
    const settled = result.catch((err: unknown) => this.failed(err, n));
    this.pending = settled.finally(() => (this.pending = undefined));
    return settled;
  }

  /** Gives back what was leased and not delivered, newest lease first (its window is the current one). */
  end(): void {
    const unused = this.granted - this.delivered;
    this.granted = this.delivered;
    if (unused <= 0 || this.open) return;
    for (const list of this.leases) {
      let left = unused;
      for (let i = list.length - 1; i >= 0 && left > 0; i--) {
        const lease = list[i]!;
        const back = Math.min(lease.amount, left);
        this.store.give(lease.counter, back);
        left -= back;
      }
    }
  }

  private leased(windows: readonly Counter[], want: number, grants: readonly Grant[], n: number): number {
    let got = want;
    let short = 0;
    grants.forEach((g, i) => {
      if (g.granted < got) {
        got = g.granted;
        short = i;
      }
    });
    windows.forEach((counter, i) => {
      // Each counter keeps the same lease: what one granted beyond the others goes back.
      const extra = grants[i]!.granted - got;
      if (extra > 0) this.store.give(counter, extra);
      if (got > 0) this.leases[i]!.push({ counter, amount: got });
    });
    this.granted += got;
    if (got < want) this.exhausted = this.counters[short]!.limitName;
    return this.deliver(n);
  }

  private deliver(n: number): number {
    const allowed = Math.max(0, Math.min(n, this.granted - this.delivered));
    this.delivered += allowed;
    return allowed;
  }

  private failed(err: unknown, n: number): number {
    this.failure.report(err);
    if (this.failure.mode === 'open') {
      this.open = true;
      this.delivered += n;
      return n;
    }
    this.exhausted = 'store';
    return this.deliver(n);
  }
}

export function counterAt(
  c: { readonly name: string; readonly limit: number; readonly window: WindowKind },
  now: number,
): Counter {
  return makeCounter(c.name, c.limit, windowAt(c.window, now));
}
