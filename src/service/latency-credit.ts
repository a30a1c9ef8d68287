import type { ServedPart } from '../resilience/executor.js';
import type { LatencyObservation } from '../routing/latency-model.js';

/**
 * What a finished request teaches the latency models: one observation per tier that served part
 * of it, each from that tier's own timings (a continuation teaches the tier that took over its
 * part, with the longer prompt it was given). The first tier's time to first token counts from
 * the request's arrival (queueing included, as the engine predicts it); a later tier's from its
 * own attempt's start. Per-token time is the mean over the parts that made more than one token.
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
    for (const p of parts) {
      if (p.tier !== tier || p.tokens === 0) continue;
      firstToken = Math.min(firstToken, p.firstTokenAt);
      started = Math.min(started, p.startedAt);
      prompt = Math.min(prompt, p.promptTokens);
      if (p.tokens > 1) {
        perTokenSum += (p.lastTokenAt - p.firstTokenAt) / (p.tokens - 1);
        perTokenCount++;
      }
    }
    if (firstToken === Infinity) continue;
    out.push({
      tier,
      observation: {
        promptTokens: prompt,
        ttftMs: firstToken - (tier === first ? arrivedAt : started),
        perTokenMs: perTokenCount > 0 ? perTokenSum / perTokenCount : undefined,
      },
    });
  }
  return out;
}
