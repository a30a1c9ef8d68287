import type { RetryBudgetSettings } from '../config/resilience.js';

/** Number of buckets the window is cut into; deposits expire one bucket at a time. */
const BUCKETS = 10;

/**
 * A retry budget in the style of Finagle's RetryBudget: every request deposits `ratio` of a
 * retry, every retry withdraws one, and deposits expire after `windowMs`; `minPerSecond`
 * retries are always allowed so that a quiet gateway can still retry. This caps retries at
 * about ratio × requests, so a failing tier cannot turn into a retry storm on the others.
 */
export class RetryBudget {
  private requests = new Array<number>(BUCKETS).fill(0);
  private retries = new Array<number>(BUCKETS).fill(0);
  private bucketStart: number;
  private current = 0;

  constructor(
    private settings: RetryBudgetSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketStart = now();
  }

  update(settings: RetryBudgetSettings): void {
    this.settings = settings;
  }

  /** Records one request (first attempt). */
  deposit(): void {
    this.advance();
    this.requests[this.current]! += 1;
  }

  /** Takes one retry from the budget; false means the budget is spent and the retry must not happen. */
  tryWithdraw(): boolean {
    this.advance();
    if (sum(this.retries) + 1 > this.allowed()) return false;
    this.retries[this.current]! += 1;
    return true;
  }

  /**
   * Milliseconds until the oldest retry in the window expires and gives its share back (new
   * requests may refill the budget sooner): a Retry-After for a request refused by the budget.
   * One bucket's width when no retry is held (the floor alone refused).
   */
  refillMs(): number {
    this.advance();
    const width = this.settings.windowMs / BUCKETS;
    // Buckets are a ring; the one after `current` is the oldest. Its retries leave first.
    for (let age = BUCKETS - 1; age >= 0; age--) {
      const i = (this.current - age + BUCKETS) % BUCKETS;
      if (this.retries[i]! > 0) return this.bucketStart + (BUCKETS - age) * width - this.now();
    }
    return width;
  }

  private allowed(): number {
    return (
      this.settings.ratio * sum(this.requests) + (this.settings.minPerSecond * this.settings.windowMs) / 1000
    );
  }

  private advance(): void {
    const width = this.settings.windowMs / BUCKETS;
    const t = this.now();
    let steps = Math.floor((t - this.bucketStart) / width);
    if (steps <= 0) return;
    this.bucketStart += steps * width;
    steps = Math.min(steps, BUCKETS);
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % BUCKETS;
      this.requests[this.current] = 0;
      this.retries[this.current] = 0;
    }
  }
}

/**
 * One RetryBudget per tier (docs/resilience.md "Retry budget"): a request deposits into the
 * tier its first attempt ran on, and a retry is paid by the tier whose attempt failed. So the
 * retries a failing (or frozen) tier causes are bounded by its own traffic, and it cannot spend
 * the budget the healthy tiers keep for their own transient failures. `minPerSecond` applies to
 * each tier: the gateway's floor is the number of tiers times it.
 */
export class TierRetryBudgets {
  private readonly budgets = new Map<string, RetryBudget>();

  constructor(
    private settings: RetryBudgetSettings,
    private readonly now: () => number = Date.now,
  ) {}

  update(settings: RetryBudgetSettings): void {
    this.settings = settings;
    for (const b of this.budgets.values()) b.update(settings);
  }

  /** A request's first attempt runs on `tier`. */
  deposit(tier: string): void {
    this.of(tier).deposit();
  }

  /** A retry after `tier` failed; false when that tier's budget is spent. */
  tryWithdraw(tier: string): boolean {
    return this.of(tier).tryWithdraw();
  }

  /** Milliseconds until `tier`'s budget gets a retry back (RetryBudget.refillMs). */
  refillMs(tier: string): number {
    return this.of(tier).refillMs();
  }

  /** Created on first use; the executor only names configured tiers, so the map stays bounded. */
  private of(tier: string): RetryBudget {
    let b = this.budgets.get(tier);
    if (b === undefined) {
      b = new RetryBudget(this.settings, this.now);
      this.budgets.set(tier, b);
    }
    return b;
  }
}

function sum(a: readonly number[]): number {
  let s = 0;
  for (const x of a) s += x;
  return s;
}
