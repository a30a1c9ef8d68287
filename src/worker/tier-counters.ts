import type { CountersMessage } from '../tiers/remote/proto-clients.js';

/**
 * The Info counters of tier.proto (monotonic since start, plus active requests), kept by the
 * worker so operators and tests see what happened inside it, not only what a client saw.
 */
export class TierCounters {
  private readonly c: CountersMessage = {
    generateStarted: 0,
    generateFinished: 0,
    generateCancelled: 0,
    generateDeadlineExceeded: 0,
    generateFailed: 0,
    tokensGenerated: 0,
    scoreRequests: 0,
    activeRequests: 0,
  };

  started(): void {
    this.c.generateStarted++;
    this.c.activeRequests++;
  }

  token(): void {
    this.c.tokensGenerated++;
  }

  /** Exactly one per started generation. */
  ended(outcome: 'finished' | 'cancelled' | 'deadline' | 'failed'): void {
    this.c.activeRequests--;
    if (outcome === 'finished') this.c.generateFinished++;
    else if (outcome === 'cancelled') this.c.generateCancelled++;
    else if (outcome === 'deadline') this.c.generateDeadlineExceeded++;
    else this.c.generateFailed++;
  }

  score(): void {
    this.c.scoreRequests++;
  }

  snapshot(): CountersMessage {
    return { ...this.c };
  }
}
