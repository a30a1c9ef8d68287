import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';
import { TierOverloadedError } from '../errors.js';

interface Waiter {
  resolve(seq: LlamaContextSequence): void;
  reject(err: unknown): void;
}

/**
 * Hands out the context's sequences (one per concurrent generation) and queues requests when
 * all are busy. A released sequence is disposed, which frees its KV cache cells at once, and
 * the next waiter gets a fresh one.
 */
export class SequencePool {
  private readonly waiters: Waiter[] = [];
  private busy = 0;

  constructor(
    private readonly context: LlamaContext,
    private readonly tierName: string,
    private readonly maxQueue: number,
    private readonly onChange: (inUse: number, queued: number) => void,
  ) {}

  get inUse(): number {
    return this.busy;
  }

  get queued(): number {
    return this.waiters.length;
  }

  async acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    signal.throwIfAborted();
    if (this.context.sequencesLeft > 0) return this.take();
    if (this.waiters.length >= this.maxQueue) throw new TierOverloadedError(this.tierName);
    return new Promise<LlamaContextSequence>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (seq) => {
          signal.removeEventListener('abort', onAbort);
          resolve(seq);
        },
        reject,
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

  release(seq: LlamaContextSequence): void {
    seq.dispose();
    this.busy--;
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(this.take());
    else this.report();
  }

  /** Fails every waiter (tier closing). */
  rejectAll(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.report();
  }

  private take(): LlamaContextSequence {
    const seq = this.context.getSequence();
    this.busy++;
    this.report();
    return seq;
  }

  private report(): void {
    this.onChange(this.busy, this.waiters.length);
  }
}
