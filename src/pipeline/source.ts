import type { CancelSignal } from '../tiers/cancellation.js';
import type { GenerateRequest, Tier, TierEvent } from '../tiers/tier.js';

/**
 * How a consumer answers a pushed event: nothing (go on), 'stop' (it has what it needs, e.g. a
 * stop string was found: end the stream now and free the tier), or a promise (wait for it, e.g.
 * for a full socket to drain) before the next event.
 */
export type Flow = void | 'stop' | Promise<void | 'stop'>;

export type TierEventSink = (event: TierEvent) => Flow;

/**
 * What generates one choice, pushing its events to a sink: the resilience executor in front of
 * the request's tiers, or one plain tier (tierSource). Resolves after the finish event (or a
 * 'stop'); rejects when generation fails. An error thrown by the sink is rethrown as it is.
 */
export interface GenerationSource {
  readonly name: string;
  run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void>;
}

/** A plain tier as a GenerationSource, without breakers or fallbacks (tests and benchmarks). */
export function tierSource(tier: Pick<Tier, 'name' | 'generate'>): GenerationSource {
  return {
    name: tier.name,
    async run(request, signal, sink) {
      for await (const event of tier.generate(request, signal)) {
        const flow = sink(event);
        if (flow === 'stop' || (flow !== undefined && (await flow) === 'stop')) return;
        if (event.kind === 'finish') return;
      }
      throw unfinished(tier.name);
    },
  };
}

/** The Tier contract ends every stream with a finish event; a tier that does not is broken. */
export function unfinished(tier: string): Error {
  return new Error(`tier "${tier}" ended its stream without a finish event`);
}
