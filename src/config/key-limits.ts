import { Type, type Static } from '@sinclair/typebox';

/**
 * Per-key governance (docs/governance.md): what each API key may use, and where the counters
 * live. These fields sit in the `limits` section next to the per-request limits (schema.ts).
 * Everything but `store` and `redis` applies on a hot reload. Defaults inside `byKey` entries
 * are applied by src/limits/key-limits.ts (TypeBox's Value.Default does not descend into
 * Record values).
 */

const BudgetSchema = Type.Object(
  {
    /** Tokens (prompt + completion) the key may use per period. */
    tokens: Type.Integer({ minimum: 1 }),
    /** Calendar period in UTC: a day starts at 00:00, a month on its 1st. Default `month`. */
    period: Type.Optional(Type.Union([Type.Literal('day'), Type.Literal('month')])),
    /**
     * `hard` (default): a request that cannot get its prompt and one token is refused (429
     * insufficient_quota) and a stream stops where the budget ends. `soft`: requests go on; the
     * tokens beyond the budget are counted (tiergate_budget_overrun_tokens_total) for alerting.
     */
    policy: Type.Optional(Type.Union([Type.Literal('hard'), Type.Literal('soft')])),
  },
  { additionalProperties: false },
);

/** One key's (or one scope's default) limits; an absent field is no limit. */
export const KeyLimitSchema = Type.Object(
  {
    requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Prompt + completion tokens per minute, charged as they are produced. */
    tokensPerMinute: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Generations the key runs at once: on this replica, or on all of them with the Redis store. */
    concurrentStreams: Type.Optional(Type.Integer({ minimum: 1 })),
    budget: Type.Optional(BudgetSchema),
    /** Show this key's name as the `key` label of the usage series (keep such keys few). */
    metricsLabel: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const RedisSchema = Type.Object(
  {
    /** `redis://[:password@]host:port[/db]`. */
    url: Type.String({ minLength: 1, default: 'redis://127.0.0.1:6379' }),
    /** Prefix of every key the gateway writes, so several deployments can share one Redis. */
    keyPrefix: Type.String({ minLength: 1, default: 'tiergate' }),
    /** A command not answered within this is a store failure (then `onStoreError` applies). */
    commandTimeoutMs: Type.Integer({ minimum: 1, default: 500 }),
    connectTimeoutMs: Type.Integer({ minimum: 1, default: 2_000 }),
    /**
     * A key's concurrent streams are leases in Redis that each replica renews every third of
     * this while they run: the slots of a replica that died come free after at most this long.
     */
    streamLeaseMs: Type.Integer({ minimum: 300, default: 15_000 }),
  },
  { additionalProperties: false, default: {} },
);

/** The governance fields of the `limits` section. */
export const KEY_LIMIT_FIELDS = {
  /** `memory`: counters in this process (one replica). `redis`: shared by every replica. */
  store: Type.Union([Type.Literal('memory'), Type.Literal('redis')], { default: 'memory' }),
  redis: RedisSchema,
  /**
   * When the store cannot be reached: `open` admits (counted in
   * tiergate_limit_store_errors_total and logged once per outage), `closed` refuses with 503.
   */
  onStoreError: Type.Union([Type.Literal('open'), Type.Literal('closed')], { default: 'open' }),
  /**
   * Completion tokens a stream reserves at a time from its key's token counters (per minute
   * and a hard budget): one store round trip per lease, and at most this many reserved but
   * unused tokens per running stream (given back when it ends).
   */
  leaseTokens: Type.Integer({ minimum: 1, maximum: 65_536, default: 32 }),
  /** Defaults per scope; a key with the `inference` scope takes `inference`'s, else `admin`'s. */
  byScope: Type.Object(
    { inference: Type.Optional(KeyLimitSchema), admin: Type.Optional(KeyLimitSchema) },
    { additionalProperties: false, default: {} },
  ),
  /**
   * Per key name (auth.keys[].name), field by field over its scope's defaults. Without API keys
   * every request is the key `anonymous` with the `inference` defaults.
   */
  byKey: Type.Record(Type.String({ minLength: 1 }), KeyLimitSchema, { default: {} }),
} as const;

export type KeyLimitConfig = Static<typeof KeyLimitSchema>;

/** The key name of requests without an API key (auth off). */
export const ANONYMOUS = 'anonymous';

/**
 * `limits.byKey` entries must name a key of `auth.keys` (or `anonymous`): a misspelt name would
 * otherwise leave the real key on its scope's defaults without a word.
 */
export function keyLimitProblems(
  byKey: Readonly<Record<string, unknown>>,
  keyNames: readonly string[],
): string[] {
  const known = new Set(keyNames);
  const listed = keyNames.length > 0 ? keyNames.map((n) => `"${n}"`).join(', ') : '(none)';
  return Object.keys(byKey)
    .filter((name) => name !== ANONYMOUS && !known.has(name))
    .map(
      (name) =>
        `/limits/byKey/${name}: no API key named "${name}" in auth.keys (names: ${listed}; "${ANONYMOUS}" is the key of requests without one)`,
    );
}
