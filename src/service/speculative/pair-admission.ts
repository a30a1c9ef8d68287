import type { ResilienceRuntime, TierGuard } from '../../resilience/resilience-runtime.js';
import type { BreakerTicket } from '../../resilience/tier-breaker.js';
import type { SpeculativeRoute } from '../../routing/plan.js';

/** One tier of the pair, admitted: its breaker ticket and admission slot. */
export interface HeldTier {
  readonly guard: TierGuard;
  readonly ticket: BreakerTicket;
}

/** Both tiers admitted; `release` gives both slots back (once), `neutral` settles open tickets. */
export interface Held {
  readonly verify: HeldTier;
  readonly draft: HeldTier;
  release(): void;
  neutral(): void;
}

/** Why speculation did not start (the request then runs the plain attempt list). */
export type Refusal = 'plain_saturated' | 'plain_unavailable';

/**
 * Admission of a speculative request on its two tiers (docs/speculative.md):
 * both must keep sequences, have a closed breaker and a free slot now — speculation never waits
 * in a queue: a tier with no free slot is busy, and busy tiers are where plain decoding (the
 * verify tier batching its streams) pays more. It does not start, and stops, when the verify
 * tier's load reaches the route's `stopAtLoad` (default: the tier's capacity).
 */
export class PairAdmission {
  private readonly verify: TierGuard | undefined;
  private readonly draft: TierGuard | undefined;

  constructor(
    private readonly runtime: ResilienceRuntime,
    private readonly route: SpeculativeRoute,
  ) {
    this.verify = runtime.guard(route.verify);
    this.draft = runtime.guard(route.draft);
  }

  /** Streams on the verify tier (running or waiting) at which speculation gives way. */
  get stopAtLoad(): number {
    return this.route.stopAtLoad ?? this.verify?.tier.info().capacity ?? Number.POSITIVE_INFINITY;
  }

  /** Whether the verify tier is saturated now, counting this request's own stream. */
  saturated(): boolean {
    return this.runtime.load(this.route.verify) > this.stopAtLoad;
  }

  tryAdmit(): Held | { readonly refused: Refusal } {
    const { verify, draft } = this;
    if (verify === undefined || draft === undefined) return { refused: 'plain_unavailable' };
    if (verify.tier.openSequence === undefined || draft.tier.openSequence === undefined)
      return { refused: 'plain_unavailable' };
    if (this.runtime.load(this.route.verify) >= this.stopAtLoad) return { refused: 'plain_saturated' };
    const verifyTicket = verify.breaker.tryAcquire();
    const draftTicket = verifyTicket === undefined ? undefined : draft.breaker.tryAcquire();
    if (verifyTicket === undefined || draftTicket === undefined) {
      verifyTicket?.neutral();
      return { refused: 'plain_unavailable' };
    }
    const verifySlot = verify.admission.tryAcquire();
    const draftSlot = verifySlot === undefined ? undefined : draft.admission.tryAcquire();
    if (verifySlot === undefined || draftSlot === undefined) {
      verifySlot?.();
      verifyTicket.neutral();
      draftTicket.neutral();
      return { refused: 'plain_unavailable' };
    }
    return {
      verify: { guard: verify, ticket: verifyTicket },
      draft: { guard: draft, ticket: draftTicket },
      release: () => {
        verifySlot();
        draftSlot();
      },
      neutral: () => {
        verifyTicket.neutral();
        draftTicket.neutral();
      },
    };
  }
}
