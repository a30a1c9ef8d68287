import CircuitBreaker from 'opossum';
import type { BreakerSettings } from '../config/resilience.js';

/** The outcome of one stream, reported to the breaker once (later calls are ignored). */
export interface BreakerTicket {
  /** The stream finished normally. */
  success(): void;
  /** The stream failed because of the tier (counts towards opening the breaker). */
  failure(err: unknown): void;
  /** Neither: the client went away, or the request itself was bad. Releases the trial slot. */
  neutral(): void;
}

export type BreakerState = 'closed' | 'half_open' | 'open';
export type BreakerEvent = 'open' | 'half_open' | 'close' | 'success' | 'failure' | 'reject';

/** Marks a neutral outcome so opossum's errorFilter counts it as a non-failure. */
const NEUTRAL = Symbol('neutral');

const ignore = (): void => {};

/** A stream's ticket: the first outcome reported settles the breaker's promise; later ones are ignored. */
class StreamTicket implements BreakerTicket {
  private settle: ((outcome: unknown) => void) | undefined;

  constructor(settle: (outcome: unknown) => void) {
    this.settle = settle;
  }

  success(): void {
    this.end(undefined);
  }

  failure(err: unknown): void {
    this.end(err ?? new Error('stream failed'));
  }

  neutral(): void {
    this.end(NEUTRAL);
  }

  private end(outcome: unknown): void {
    const settle = this.settle;
    this.settle = undefined;
    settle?.(outcome);
  }
}

/**
 * One opossum breaker per tier. opossum measures promises, but a tier's work is a stream whose
 * start says nothing about how it ends (a stream can fail after 20 tokens). So each stream
 * fires the breaker with a promise that settles only when the stream ends: resolve on finish,
 * reject on a tier failure. opossum then does the rolling-window accounting, the thresholds and
 * the open → half-open → closed cycle (one trial stream at a time) exactly as documented, and
 * its own timeout is off because deadlines are enforced per attempt by the executor.
 */
export class TierBreaker {
  private breaker: CircuitBreaker<[Promise<void>], void>;

  constructor(
    readonly tier: string,
    private settings: BreakerSettings,
    private readonly onEvent: (event: BreakerEvent, state: BreakerState) => void = () => {},
  ) {
    this.breaker = this.build(settings);
  }

  get state(): BreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'half_open';
    return 'closed';
  }

  /**
   * New thresholds need a new opossum instance (it reads them at construction); the current
   * state carries over so a reload never closes an open breaker by accident.
   */
  update(settings: BreakerSettings): void {
    if (JSON.stringify(settings) === JSON.stringify(this.settings)) return;
    const wasOpen = this.breaker.opened || this.breaker.halfOpen;
    this.breaker.shutdown();
    this.settings = settings;
    this.breaker = this.build(settings);
    if (wasOpen && settings.enabled) this.breaker.open();
    // Disabled while open: the new instance starts closed; say so (the state gauge follows events).
    else if (wasOpen) this.onEvent('close', 'closed');
  }

  /**
   * A ticket when the breaker lets a stream through (closed, or the one half-open trial);
   * undefined when it is open and the caller must go elsewhere.
   */
  tryAcquire(): BreakerTicket | undefined {
    const b = this.breaker;
    // Same test opossum's call() makes first, synchronously: closed, or half-open with the
    // trial slot still free. Checking here lets the caller skip the tier before any work.
    if (!b.closed && !b.pendingClose && this.settings.enabled) {
      this.onEvent('reject', this.state);
      return undefined;
    }
    let settle!: (outcome: unknown) => void;
    const outcome = new Promise<void>((resolve, reject) => {
      settle = (o) => (o === undefined ? resolve() : reject(o as Error));
    });
    // The returned promise only mirrors `outcome`; its rejection is already accounted for.
    b.fire(outcome).catch(ignore);
    return new StreamTicket(settle);
  }

  shutdown(): void {
    this.breaker.shutdown();
  }

  private build(s: BreakerSettings): CircuitBreaker<[Promise<void>], void> {
    const breaker = new CircuitBreaker<[Promise<void>], void>((p) => p, {
      name: this.tier,
      enabled: s.enabled,
      timeout: false,
      errorThresholdPercentage: s.errorThresholdPercentage,
      volumeThreshold: s.volumeThreshold,
      resetTimeout: s.resetTimeoutMs,
      rollingCountTimeout: s.rollingWindowMs,
      rollingCountBuckets: s.rollingBuckets,
      // A neutral outcome is "not a failure": opossum then counts it as a success, which in
      // half-open closes the breaker — the tier did serve, the client just left early.
      errorFilter: (err: unknown) => err === NEUTRAL,
      // Only the error rate is used. opossum's latency percentiles keep every call's latency for
      // the whole rolling window, and its snapshot concatenates and sorts them every bucket
      // interval: a pause of milliseconds per second under load (request latency has its own
      // histograms in /metrics).
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    breaker.on('open', () => this.onEvent('open', 'open'));
    breaker.on('halfOpen', () => this.onEvent('half_open', 'half_open'));
    breaker.on('close', () => this.onEvent('close', 'closed'));
    breaker.on('success', () => this.onEvent('success', this.state));
    breaker.on('failure', () => this.onEvent('failure', this.state));
    return breaker;
  }
}
