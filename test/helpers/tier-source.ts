import { unfinished, type GenerationSource } from '../../src/pipeline/source.js';
import type { Tier } from '../../src/tiers/tier.js';

/** A plain tier as a GenerationSource, without breakers or fallbacks (the pipeline's tests). */
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
