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
    const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
    const allowed =
      this.settings.ratio * sum(this.requests) + (this.settings.minPerSecond * this.settings.windowMs) / 1000;
    if (sum(this.retries) + 1 > allowed) return false;
    this.retries[this.current]! += 1;
    return true;
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
