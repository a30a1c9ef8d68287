import type { FinishEvent, TierEvent, TokenLogprob } from '../../src/tiers/tier.js';

/** One token of a TokenEvent, for tests that look at tokens one at a time. */
export interface SingleToken {
  readonly kind: 'token';
  readonly token: number;
  readonly logprob: number;
  readonly top?: readonly TokenLogprob[] | undefined;
}

export type FlatEvent = SingleToken | FinishEvent;

function* split(e: TierEvent): Generator<FlatEvent> {
  if (e.kind === 'finish') {
    yield e;
    return;
  }
  for (let i = 0; i < e.tokens.length; i++) {
    yield { kind: 'token', token: e.tokens[i]!, logprob: e.logprobs[i]!, top: e.top?.[i] };
  }
}

/** A tier's stream, one token per event (a tier may send several per event). */
export async function* flat(events: AsyncIterable<TierEvent>): AsyncGenerator<FlatEvent> {
  for await (const e of events) yield* split(e);
}

/** Collected events, one token per event. */
export function flatten(events: readonly TierEvent[]): FlatEvent[] {
  return events.flatMap((e) => [...split(e)]);
}
