import type { ServedPart } from '../resilience/executor.js';
import type { LatencyObservation } from '../routing/latency-model.js';

/**
 * What a finished request teaches the latency models: one observation per tier that served part
 * of it, each from that tier's own timings (a continuation teaches the tier that took over its
 * part, with the longer prompt it was given). The first tier's time to first token counts from
 * the request's arrival (queueing included, as the engine predicts it); a later tier's from its
 * own attempt's start, and its wait for admission is reported apart. Per-token time is the mean
 * over the parts that made more than one token.
 */
export function latencyCredits(
  parts: readonly ServedPart[],
  arrivedAt: number,
): { readonly tier: string; readonly observation: LatencyObservation }[] {
  const out: { tier: string; observation: LatencyObservation }[] = [];
  const first = parts[0]?.tier;
  for (let i = 0; i < parts.length; i++) {
    const tier = parts[i]!.tier;
    if (out.some((o) => o.tier === tier)) continue;
    let firstToken = Infinity;
    let started = Infinity;
    let prompt = Infinity;
    let perTokenSum = 0;
    let perTokenCount = 0;
    let occupancySum = 0;
    let othersBusySum = 0;
    let occupancySamples = 0;
    for (const p of parts) {
      if (p.tier !== tier || p.tokens === 0) continue;
      firstToken = Math.min(firstToken, p.firstTokenAt);
      started = Math.min(started, p.startedAt);
      prompt = Math.min(prompt, p.promptTokens);
      if (p.tokens > 1) {
        perTokenSum += (p.lastTokenAt - p.firstTokenAt) / (p.tokens - 1);
        perTokenCount++;
      }
      occupancySum += p.occupancySum ?? 0;
      othersBusySum += p.othersBusySum ?? 0;
      occupancySamples += p.occupancySamples ?? 0;
    }
    if (firstToken === Infinity) continue;
    out.push({
      tier,
      observation: {
        promptTokens: prompt,
        ttftMs: firstToken - (tier === first ? arrivedAt : started),
        // The first tier's wait for an admission slot (and the routing before it): the engine
        // predicts that part from the tier's load now, not from what earlier requests waited.
        queueMs: tier === first ? Math.max(0, started - arrivedAt) : undefined,
        perTokenMs: perTokenCount > 0 ? perTokenSum / perTokenCount : undefined,
        concurrency: occupancySamples > 0 ? occupancySum / occupancySamples : undefined,
        otherTiersBusy: occupancySamples > 0 ? othersBusySum / occupancySamples : undefined,
      },
    });
  }
  return out;
}
