import type { TokenMeter } from '../limits/token-meter.js';
import type { Flow, GenerationSource, TierEventSink } from '../pipeline/source.js';
import type { CancelSignal } from '../tiers/cancellation.js';
import { firstTokens, type GenerateRequest, type TierEvent, type TokenEvent } from '../tiers/tier.js';

const LIMIT_FINISH: TierEvent = { kind: 'finish', reason: 'length' };

/**
 * A request's source with its key's token limits applied as the tokens come
 * (docs/governance.md): each token event passes only as far as the TokenMeter grants, and when a
 * limit runs out the choice finishes there (`length`, as when max_tokens is reached) and the
 * tier's stream ends. Tokens the client never saw are never charged.
 */
export class MeteredSource implements GenerationSource {
  readonly name: string;

  constructor(
    private readonly inner: GenerationSource,
    private readonly meter: TokenMeter,
  ) {
    this.name = inner.name;
  }

  run(request: GenerateRequest, signal: CancelSignal, sink: TierEventSink): Promise<void> {
    let ended = false;
    const end = (): void => {
      ended = true;
    };
    return this.inner.run(request, signal, (event) => {
      // After the finish the meter ended this choice with, the tier's last events are dropped.
      if (ended) return 'stop';
      if (event.kind !== 'tokens') return sink(event);
      const allowed = this.meter.allow(event.tokens.length);
      if (typeof allowed === 'number') return pass(event, allowed, sink, end);
      return allowed.then((n) => (ended ? 'stop' : pass(event, n, sink, end)));
    });
  }
}

function pass(event: TokenEvent, allowed: number, sink: TierEventSink, end: () => void): Flow {
  if (allowed >= event.tokens.length) return sink(event);
  end();
  const flow = allowed > 0 ? sink(firstTokens(event, allowed)) : undefined;
  if (flow === 'stop') return 'stop';
  if (flow === undefined) return finish(sink);
  return flow.then((f) => (f === 'stop' ? 'stop' : finish(sink)));
}

/** The choice's finish, then the end of the tier's stream. */
function finish(sink: TierEventSink): Flow {
  const flow = sink(LIMIT_FINISH);
  if (flow === undefined || flow === 'stop') return 'stop';
  return flow.then(() => 'stop' as const);
}
