import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';
import { TierOverloadedError } from '../errors.js';
import { type CancelSignal } from '../cancellation.js';

interface Waiter {
  resolve(seq: LlamaContextSequence): void;
  reject(err: unknown): void;
}

/**
 * Hands out the context's sequences (one per concurrent generation) and queues requests when
 * all are busy. Sequences are created once and reused: a released sequence has its KV cache
 * cleared and goes straight to the next waiter.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiters: Waiter[] = [];
  private busy = 0;
  /** Sequences taken from the context at start; none is created or disposed per request. */
  readonly size: number;

  constructor(
    context: LlamaContext,
    private readonly tierName: string,
    private readonly maxQueue: number,
    private readonly onChange: (inUse: number, queued: number) => void,
  ) {
    while (context.sequencesLeft > 0) this.free.push(context.getSequence());
    this.size = this.free.length;
  }

  /** Idle sequences that still hold tokens (KV cells): 0 unless a release failed to clear one. */
  get idleWithHistory(): number {
    return this.free.filter((s) => s.nextTokenIndex > 0).length;
  }

  get inUse(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiters.length;
  }

  async acquire(signal: CancelSignal): Promise<LlamaContextSequence> {
    signal.throwIfAborted();
    const seq = this.free.pop();
    if (seq !== undefined) {
      this.busy++;
      this.report();
      return seq;
    }
    if (this.waiters.length >= this.maxQueue) throw new TierOverloadedError(this.tierName);
    return new Promise<LlamaContextSequence>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (s) => {
          signal.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        this.report();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.report();
    });
  }

  /** Returns a sequence: its KV cells are cleared first, so the next user starts empty. */
  async release(seq: LlamaContextSequence): Promise<void> {
    try {
      await seq.clearHistory();
    } catch {
      // A sequence whose context was disposed (tier closing) cannot be cleared; it is not reused.
      this.busy--;
      this.report();
      return;
    }
    const next = this.waiters.shift();
    if (next !== undefined) {
      next.resolve(seq);
      this.report();
      return;
    }
    this.busy--;
    this.free.push(seq);
    this.report();
  }

  /** Fails every waiter (tier closing). */
  rejectAll(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.report();
  }

  private report(): void {
    this.onChange(this.busy, this.waiters.length);
  }
}
