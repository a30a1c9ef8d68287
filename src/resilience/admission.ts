import type { AdmissionSettings } from '../config/resilience.js';
import { ResilienceError } from './errors.js';
import { type CancelSignal } from '../tiers/cancellation.js';

/** Gives the slot back; safe to call more than once. */
export type Release = () => void;

interface Waiter {
  readonly grant: (release: Release) => void;
  readonly reject: (err: unknown) => void;
}

/** Weight of the newest observation in the service-time average (about the last 10 streams). */
const EWMA_ALPHA = 0.1;

/**
 * Per-tier admission control: at most `maxConcurrent` streams run, at most `maxQueue` wait
 * (FIFO). A request is shed at once — never after waiting — when the queue is full (429) or when
 * its expected wait (queue position × mean service time / slots) would outlast its deadline (503):
 * shedding early lets the client or the next tier use the time that is left.
 */
export class AdmissionController {
  private active = 0;
  private readonly queue: Waiter[] = [];
  private serviceMs: number;

  constructor(
    readonly tier: string,
    private settings: AdmissionSettings,
  ) {
    this.serviceMs = settings.initialServiceMs;
  }

  get queued(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.active;
  }

  /** New limits apply to the next decision; a raised limit admits waiters at once. */
  update(settings: AdmissionSettings): void {
    this.settings = settings;
    this.drain();
  }

  /** Expected wait for a request joining the queue now, in ms. */
  expectedWaitMs(): number {
    const slots = Math.max(1, this.settings.maxConcurrent);
    return ((this.queue.length + 1) * this.serviceMs) / slots;
  }

  /** A slot at once when one is free and nobody waits (no promise, no turn of the event loop). */
  tryAcquire(): Release | undefined {
    const { maxConcurrent } = this.settings;
    if (maxConcurrent === 0 || (this.active < maxConcurrent && this.queue.length === 0)) return this.grant();
    return undefined;
  }

  /**
   * Waits for a slot. `deadline` is absolute (ms since the epoch). Rejects with a
   * ResilienceError (shed) or the signal's reason.
   */
  acquire(deadline: number | undefined, signal: CancelSignal): Promise<Release> {
    const { maxQueue } = this.settings;
    const free = this.tryAcquire();
    if (free !== undefined) return Promise.resolve(free);
    const retryAfter = Math.max(1, Math.ceil(this.expectedWaitMs() / 1000));
    if (this.queue.length >= maxQueue) {
      return Promise.reject(
        new ResilienceError(
          'TIERGATE_ERR_SHED_QUEUE_FULL',
          `tier "${this.tier}" is at capacity (queue full)`,
          this.tier,
          retryAfter,
        ),
      );
    }
    if (deadline !== undefined && Date.now() + this.expectedWaitMs() > deadline) {
      return Promise.reject(this.deadlineError(retryAfter));
    }
    return new Promise<Release>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: (release) => {
          cleanup();
          resolve(release);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const leave = (err: unknown): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        waiter.reject(err);
      };
      const onAbort = (): void => leave(signal.reason);
      if (signal.aborted) return leave(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      // The estimate can be wrong (a long stream ahead); the deadline still bounds the wait.
      if (deadline !== undefined)
        timer = setTimeout(() => leave(this.deadlineError(1)), Math.max(0, deadline - Date.now()));
      this.queue.push(waiter);
    });
  }

  private deadlineError(retryAfter: number): ResilienceError {
    return new ResilienceError(
      'TIERGATE_ERR_SHED_DEADLINE',
      `tier "${this.tier}" cannot start the request before its deadline`,
      this.tier,
      retryAfter,
    );
  }

  private grant(): Release {
    this.active++;
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.serviceMs += EWMA_ALPHA * (performance.now() - started - this.serviceMs);
      this.drain();
    };
  }

  private drain(): void {
    const limit = this.settings.maxConcurrent;
    while (this.queue.length > 0 && (limit === 0 || this.active < limit)) {
      const waiter = this.queue.shift()!;
      waiter.grant(this.grant());
    }
  }
}
