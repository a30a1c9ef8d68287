import type { Config } from '../config/index.js';
import { ANONYMOUS, type KeyLimitConfig } from '../config/key-limits.js';

/** What one key may use, after its scope's defaults and its own entry are merged. */
export interface EffectiveLimits {
  readonly requestsPerMinute: number | undefined;
  readonly tokensPerMinute: number | undefined;
  readonly concurrentStreams: number | undefined;
  readonly budget:
    { readonly tokens: number; readonly period: 'day' | 'month'; readonly hard: boolean } | undefined;
  /** The `key` label of the usage series: the key's name with metricsLabel, else `other`. */
  readonly label: string;
}

export { ANONYMOUS } from '../config/key-limits.js';

/**
 * The limits of each key under one config: `limits.byKey.<name>` field by field over the
 * defaults of the key's scope (`inference` when the key has it, else `admin`), computed once per
 * key and config (a hot reload brings a new config, so new answers).
 */
export class KeyLimitTable {
  private readonly cache = new Map<string, EffectiveLimits | null>();

  constructor(private readonly config: Config) {}

  /** Null: the key has no limit at all (its requests only count usage, under `other`). */
  of(key: string): EffectiveLimits | null {
    let found = this.cache.get(key);
    if (found === undefined) {
      found = this.resolve(key);
      this.cache.set(key, found);
    }
    return found;
  }

  /** Every key the config names (auth keys, limit entries; `anonymous` without auth). */
  keys(): string[] {
    const { auth, limits } = this.config;
    const names = new Set<string>(Object.keys(limits.byKey));
    for (const k of auth.keys) names.add(k.name);
    if (!auth.enabled) names.add(ANONYMOUS);
    return [...names];
  }

  private resolve(key: string): EffectiveLimits | null {
    const { auth, limits } = this.config;
    const entry = auth.keys.find((k) => k.name === key);
    const scope = entry === undefined || entry.scopes.includes('inference') ? 'inference' : 'admin';
    const base: Readonly<KeyLimitConfig> = limits.byScope[scope] ?? {};
    const own: Readonly<KeyLimitConfig> = Object.hasOwn(limits.byKey, key) ? limits.byKey[key]! : {};
    const budget = own.budget ?? base.budget;
    const out: EffectiveLimits = {
      requestsPerMinute: own.requestsPerMinute ?? base.requestsPerMinute,
      tokensPerMinute: own.tokensPerMinute ?? base.tokensPerMinute,
      concurrentStreams: own.concurrentStreams ?? base.concurrentStreams,
      budget:
        budget === undefined
          ? undefined
          : { tokens: budget.tokens, period: budget.period ?? 'month', hard: budget.policy !== 'soft' },
      label: (own.metricsLabel ?? base.metricsLabel) === true ? key : 'other',
    };
    const limited =
      out.requestsPerMinute !== undefined ||
      out.tokensPerMinute !== undefined ||
      out.concurrentStreams !== undefined ||
      out.budget !== undefined;
    return limited || out.label !== 'other' ? out : null;
  }
}
