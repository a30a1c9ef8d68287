import type { CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest, TierEvent } from '../tiers/tier.js';

/**
 * How a consumer answers a pushed event: nothing (go on), 'stop' (it has what it needs, e.g. a
 * stop string was found: end the stream now and free the tier), or a promise (wait for it, e.g.
 * for a full socket to drain) before the next event.
 */
export type Flow = void | 'stop' | Promise<void | 'stop'>;

export type TierEventSink = (event: TierEvent) => Flow;

/**
 * What generates one choice, pushing its events to a sink: the resilience executor in front of
 * the request's tiers (src/resilience/executor.ts). Resolves after the finish event (or a
 * 'stop'); rejects when generation fails. An error thrown by the sink is rethrown as it is.
 */
export interface GenerationSource {
  readonly name: string;
  run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void>;
}

/** The Tier contract ends every stream with a finish event; a tier that does not is broken. */
export function unfinished(tier: string): Error {
  return new Error(`tier "${tier}" ended its stream without a finish event`);
}
