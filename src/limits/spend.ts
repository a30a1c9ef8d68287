import type { Config } from '../config/index.js';
import type { ServedPart } from '../resilience/executor.js';

/**
 * What a request cost at its routing policy's `costPer1kTokens` (docs/governance.md "Usage"):
 * the prompt at the price of the tier that first served it, each tier's completion tokens at
 * that tier's price. A request no policy routed (static or pinned) costs 0, as it does for the
 * policy engine.
 */
export function spendOf(
  config: Config,
  policy: string | undefined,
  promptTokens: number,
  parts: readonly ServedPart[],
  firstTier: string | undefined,
): number {
  const prices = policy === undefined ? undefined : config.routing.policies[policy]?.costPer1kTokens;
  if (prices === undefined) return 0;
  const price = (tier: string | undefined): number => (tier === undefined ? 0 : (prices[tier] ?? 0));
  let spend = promptTokens * price(parts[0]?.tier ?? firstTier);
  for (const part of parts) spend += part.tokens * price(part.tier);
  return spend / 1000;
}
