/**
 * A single-consumer async queue: the worker client pushes a sequence's events as they arrive,
 * and the tier's generate() iterator pulls them. Unbounded on purpose: a sequence produces at
 * most maxTokens events, and slowing the shared batch for one slow reader would hurt the others.
 */
export class EventChannel<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;
  private failure: { error: unknown } | undefined;
  private ended = false;

  push(item: T): void {
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.notify();
  }

  /** The next item, undefined once ended and drained; rejects with the failure if any. */
  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (this.items.length > 0) return this.items.shift();
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  private notify(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
