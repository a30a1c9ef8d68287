import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { LimitState, RateLimitInfo } from '../errors/rate-limit.js';
import type { MetricsService } from '../observability/metrics.js';
import {
  StoreUnavailableError,
  whenAll,
  type Counter,
  type CounterStore,
  type Grant,
  type MaybePromise,
  type SlotGrant,
  makeCounter,
} from './counter-store.js';
import { ANONYMOUS, KeyLimitTable, type EffectiveLimits } from './key-limits.js';
import { KeyUsage, type LimitName } from './key-usage.js';
import { MemoryCounterStore } from './memory-store.js';
import { RedisCounterStore } from './redis-store.js';
import { counterAt, TokenMeter, type LeasedCounter } from './token-meter.js';
import { windowAt, type WindowKind } from './window.js';

/** A request admitted under its key's limits; `end` once it is over, however it ended. */
export interface KeyAdmission {
  readonly key: string;
  /** The `key` label of the usage series. */
  readonly label: string;
  /** Where the key stands, for the x-ratelimit-* headers; undefined without RPM/TPM limits. */
  readonly rateLimit: RateLimitInfo | undefined;
  /** Present when completion tokens are metered (a per-minute token limit or a hard budget). */
  readonly meter: TokenMeter | undefined;
  /** Frees the stream slot, gives back unused leased tokens, counts a soft budget's tokens. */
  end(outputTokens: number): void;
}

/** What a request asks of its key: its prompt tokens and the most completion tokens it may produce. */
export interface KeyDemand {
  readonly promptTokens: number;
  readonly maxCompletionTokens: number;
}

/** One window of a key as the admin endpoint shows it. */
export interface WindowUsage {
  readonly limit: number;
  readonly used: number;
  readonly resetMs: number;
}

/** A counter that is not configured: grants everything, counts nothing. */
const NONE: Grant = { granted: Number.POSITIVE_INFINITY, used: 0 };
/** No streams limit: nothing to hold. */
const FREE_SLOT: SlotGrant = { granted: true, held: 0 };

interface Counters {
  readonly rpm: Counter | undefined;
  readonly tpm: Counter | undefined;
  readonly budget: Counter | undefined;
}

/**
 * Per-key limits (docs/governance.md), checked once per request by its Execution before it
 * runs: requests per minute, tokens per minute, streams at once and a token budget per day or
 * month. Counters live in the configured store (this process, or Redis for every replica). A
 * request takes its request, its prompt tokens and a first lease of completion tokens
 * atomically, each counter in one store operation, and its TokenMeter takes the rest as the
 * tokens are produced.
 */
export class KeyLimiter {
  readonly store: CounterStore;
  readonly usage: KeyUsage;
  private tableFor: Config | undefined;
  private table: KeyLimitTable | undefined;
  /** Generations running per key on this replica (one box per key ever seen: keys are few). */
  private readonly streams = new Map<string, { n: number }>();
  private readonly counters = new CounterCache();
  /** Stream-slot holders: this replica's id and a sequence number. */
  private readonly holderPrefix = randomUUID();
  private holders = 0;
  /** True while the store fails: one log line per outage, and one when it is back. */
  private failing = false;

  constructor(
    private readonly config: () => Config,
    metrics: MetricsService,
    private readonly log: Logger,
  ) {
    const c = config().limits;
    this.store = c.store === 'redis' ? new RedisCounterStore(c.redis, log) : new MemoryCounterStore();
    this.usage = new KeyUsage(metrics, () => ({ store: this.store.kind, up: this.store.up }));
  }

  /** The key's limits under the config in force (a hot reload applies to the next request). */
  limitsOf(key: string): EffectiveLimits | null {
    return this.tableNow().of(key);
  }

  /** Every key the config names. */
  keys(): string[] {
    return this.tableNow().keys();
  }

  /** Generations of `key` running on this replica now. */
  running(key: string): number {
    return this.streams.get(key)?.n ?? 0;
  }

  /**
   * Admits a request of `key` (undefined: no API key) or refuses it with `rate_limited` /
   * `quota_exceeded`: thrown, or a rejected promise with a store that answers later. A store
   * that cannot be reached follows `limits.onStoreError`.
   */
  admit(apiKey: string | undefined, demand: KeyDemand): MaybePromise<KeyAdmission> {
    const key = apiKey ?? ANONYMOUS;
    const limits = this.limitsOf(key);
    if (limits === null) {
      this.usage.admitted(key, 'other');
      return this.admission(key, 'other', undefined, undefined, false, () => undefined);
    }
    // Counted now, before the store answers, so /admin/usage sees it at once.
    this.streamCount(key).n++;
    // The key's streams at once: one slot per running generation, held in the store (on this
    // replica, or across all of them with Redis) until the admission ends.
    const max = limits.concurrentStreams;
    const holder = max === undefined ? undefined : `${this.holderPrefix}:${++this.holders}`;
    let slot: MaybePromise<SlotGrant> = FREE_SLOT;
    if (holder !== undefined) {
      try {
        slot = this.store.acquire(slotName(key), holder, max!);
      } catch (err) {
        return this.admitFailed(err, key, limits.label, holder);
      }
      if (!(slot instanceof Promise) && !slot.granted) {
        this.freeStream(key);
        throw this.concurrencyRefusal(key, limits);
      }
    }
    const now = Date.now();
    const firstLease = Math.min(this.config().limits.leaseTokens, demand.maxCompletionTokens);
    const need = demand.promptTokens + firstLease;
    const budget = limits.budget;
    const c: Counters = {
      rpm: this.counters.get('rpm', key, limits.requestsPerMinute, 'minute', now),
      tpm: this.counters.get('tpm', key, limits.tokensPerMinute, 'minute', now),
      budget:
        budget === undefined
          ? undefined
          : this.counters.get(
              'budget',
              key,
              budget.hard ? budget.tokens : Number.POSITIVE_INFINITY,
              budget.period,
              now,
            ),
    };
    const s = this.store;
    let result: MaybePromise<KeyAdmission>;
    try {
      result = whenAll<Grant | SlotGrant, KeyAdmission>(
        [
          c.rpm === undefined ? NONE : s.take(c.rpm, 1, false),
          c.tpm === undefined ? NONE : s.take(c.tpm, need, true),
          // A soft budget only counts: the prompt now, the completion at the end.
          c.budget === undefined ? NONE : s.take(c.budget, budget!.hard ? need : demand.promptTokens, true),
          slot,
        ],
        ([r, t, b, streams]) =>
          this.decide(key, limits, demand, now, c, r as Grant, t as Grant, b as Grant, {
            holder,
            granted: (streams as SlotGrant).granted,
          }),
      );
    } catch (err) {
      return this.admitFailed(err, key, limits.label, holder);
    }
    if (!(result instanceof Promise)) {
      this.recovered();
      return result;
    }
    return result.then(
      (admission) => {
        this.recovered();
        return admission;
      },
      (err: unknown) => this.admitFailed(err, key, limits.label, holder),
    );
  }

  /** The key's windows now (limit, used, time to reset), for the admin endpoint. */
  async windows(key: string): Promise<Record<string, WindowUsage>> {
    const limits = this.limitsOf(key);
    const out: Record<string, WindowUsage> = {};
    if (limits === null) return out;
    const now = Date.now();
    const b = limits.budget;
    const each: [string, Counter | undefined][] = [
      ['requestsPerMinute', this.counters.get('rpm', key, limits.requestsPerMinute, 'minute', now)],
      ['tokensPerMinute', this.counters.get('tpm', key, limits.tokensPerMinute, 'minute', now)],
      ['budget', b === undefined ? undefined : this.counters.get('budget', key, b.tokens, b.period, now)],
    ];
    for (const [name, c] of each) {
      if (c === undefined) continue;
      out[name] = { limit: c.limit, used: await this.store.used(c), resetMs: c.window.end - now };
    }
    return out;
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private tableNow(): KeyLimitTable {
    const config = this.config();
    if (this.tableFor !== config || this.table === undefined) {
      this.table = new KeyLimitTable(config);
      this.tableFor = config;
    }
    return this.table;
  }

  private decide(
    key: string,
    limits: EffectiveLimits,
    demand: KeyDemand,
    now: number,
    c: Counters,
    r: Grant,
    t: Grant,
    b: Grant,
    slot: { readonly holder: string | undefined; readonly granted: boolean },
  ): KeyAdmission {
    const s = this.store;
    const hard = limits.budget?.hard === true;
    // A refusal here is thrown to admit(), whose admitFailed() frees the stream slot.
    if (!slot.granted) {
      // Another replica holds every slot: what this request took of the counters goes back.
      if (c.rpm !== undefined) s.give(c.rpm, r.granted);
      if (c.tpm !== undefined) s.give(c.tpm, t.granted);
      if (c.budget !== undefined) s.give(c.budget, b.granted);
      throw this.concurrencyRefusal(key, limits);
    }
    // Enough for the prompt and at least one completion token (none when none was asked for).
    const least = demand.promptTokens + Math.min(1, demand.maxCompletionTokens);
    const refused: LimitName | undefined =
      r.granted < 1
        ? 'requests_per_minute'
        : t.granted < least
          ? 'tokens_per_minute'
          : hard && b.granted < least
            ? 'budget'
            : undefined;
    if (refused !== undefined) {
      // Nothing of a refused request counts: what it took goes back.
      if (c.rpm !== undefined) s.give(c.rpm, r.granted);
      if (c.tpm !== undefined) s.give(c.tpm, t.granted);
      if (c.budget !== undefined) s.give(c.budget, b.granted);
      throw this.refusal(key, limits, refused, c, { r: r.used - r.granted, t: t.used - t.granted }, now);
    }
    const tokens = Math.min(t.granted, hard ? b.granted : Number.POSITIVE_INFINITY);
    const lease = Math.max(
      0,
      Math.min(tokens, demand.promptTokens + demand.maxCompletionTokens) - demand.promptTokens,
    );
    // Each token counter keeps the same lease: what one granted beyond it goes back.
    const kept = demand.promptTokens + lease;
    if (c.tpm !== undefined && t.granted > kept) s.give(c.tpm, t.granted - kept);
    if (hard && b.granted > kept) s.give(c.budget!, b.granted - kept);
    const leased: LeasedCounter[] = [];
    const windows: Counter[] = [];
    if (c.tpm !== undefined) {
      leased.push({ name: c.tpm.name, limit: c.tpm.limit, window: 'minute', limitName: 'tokens_per_minute' });
      windows.push(c.tpm);
    }
    if (hard) {
      leased.push({
        name: c.budget!.name,
        limit: c.budget!.limit,
        window: limits.budget!.period,
        limitName: 'budget',
      });
      windows.push(c.budget!);
    }
    const cfg = this.config().limits;
    const meter =
      leased.length === 0
        ? undefined
        : new TokenMeter(
            s,
            leased,
            { granted: lease, windows },
            demand.maxCompletionTokens,
            cfg.leaseTokens,
            {
              mode: cfg.onStoreError,
              report: (err) => this.storeFailed(err, key, limits.label, true),
            },
          );
    const info = rateLimitInfo(c, { r: r.used, t: t.used - Math.max(0, t.granted - kept) }, now);
    this.usage.admitted(key, limits.label);
    const soft = limits.budget !== undefined && !hard ? limits.budget : undefined;
    if (soft !== undefined) this.overrun(key, limits, b.used, demand.promptTokens);
    return this.admission(key, limits.label, info, meter, true, (outputTokens) => {
      if (slot.holder !== undefined) s.release(slotName(key), slot.holder);
      meter?.end();
      if (meter?.exhausted !== undefined) this.usage.truncated(key, limits.label, meter.exhausted);
      if (soft === undefined || outputTokens <= 0) return;
      const counted = counterAt(
        { name: `budget:${key}`, limit: Number.POSITIVE_INFINITY, window: soft.period },
        Date.now(),
      );
      try {
        const taken = this.store.take(counted, outputTokens, true);
        if (taken instanceof Promise)
          taken.then(
            (g) => this.overrun(key, limits, g.used, outputTokens),
            () => undefined,
          );
        else this.overrun(key, limits, taken.used, outputTokens);
      } catch {
        // Only counting is lost: a soft budget never refuses.
      }
    });
  }

  /** The admission object; `end` frees the stream slot once, then runs `after`. */
  private admission(
    key: string,
    label: string,
    rateLimit: RateLimitInfo | undefined,
    meter: TokenMeter | undefined,
    holdsSlot: boolean,
    after: (outputTokens: number) => void,
  ): KeyAdmission {
    let ended = false;
    return {
      key,
      label,
      rateLimit,
      meter,
      end: (outputTokens) => {
        if (ended) return;
        ended = true;
        if (holdsSlot) this.freeStream(key);
        after(outputTokens);
      },
    };
  }

  /** A soft budget passed: the tokens of this take beyond it are counted, for alerting. */
  private overrun(key: string, limits: EffectiveLimits, used: number, taken: number): void {
    const over = Math.min(taken, used - limits.budget!.tokens);
    if (over > 0) this.usage.overrun(key, limits.label, over);
  }

  private refusal(
    key: string,
    limits: EffectiveLimits,
    refused: LimitName,
    c: Counters,
    used: { r: number; t: number },
    now: number,
  ): GatewayError {
    this.usage.rejected(key, limits.label, refused);
    const info = rateLimitInfo(c, used, now);
    if (refused === 'budget') {
      const end = c.budget!.window.end;
      return new GatewayError(
        'quota_exceeded',
        `This API key's token budget for the ${limits.budget!.period} is spent (${limits.budget!.tokens} tokens); it renews at ${new Date(end).toISOString()}.`,
        { retryAfter: Math.ceil((end - now) / 1000), rateLimit: info, code: 'TIERGATE_ERR_KEY_BUDGET' },
      );
    }
    const which = refused === 'requests_per_minute' ? info?.requests : info?.tokens;
    const unit = refused === 'requests_per_minute' ? 'requests' : 'tokens';
    const resetMs = which?.resetMs ?? 1000;
    const retryAfter = Math.max(1, Math.ceil(resetMs / 1000));
    return new GatewayError(
      'rate_limited',
      `Rate limit reached for this API key on ${unit} per min: limit ${which?.limit ?? 0}, remaining ${which?.remaining ?? 0}. Please try again in ${retryAfter}s.`,
      {
        retryAfter,
        rateLimit: info,
        code: refused === 'requests_per_minute' ? 'TIERGATE_ERR_KEY_RPM' : 'TIERGATE_ERR_KEY_TPM',
      },
    );
  }

  private concurrencyRefusal(key: string, limits: EffectiveLimits): GatewayError {
    this.usage.rejected(key, limits.label, 'concurrent_streams');
    return new GatewayError(
      'rate_limited',
      `Too many concurrent requests for this API key: limit ${limits.concurrentStreams}. Retry when one has finished.`,
      { retryAfter: 1, code: 'TIERGATE_ERR_KEY_CONCURRENCY' },
    );
  }

  /** A refusal or a store failure at admission: the stream slot goes back; `open` admits anyway. */
  private admitFailed(err: unknown, key: string, label: string, holder?: string): KeyAdmission {
    if (holder !== undefined) this.store.release(slotName(key), holder);
    this.freeStream(key);
    this.storeFailed(err, key, label, false);
    // Fail-open: admitted without limits (and without a stream slot's count beyond this one).
    this.streamCount(key).n++;
    this.usage.admitted(key, label);
    return this.admission(key, label, undefined, undefined, true, () => undefined);
  }

  private freeStream(key: string): void {
    const box = this.streams.get(key);
    if (box !== undefined && box.n > 0) box.n--;
  }

  private streamCount(key: string): { n: number } {
    let box = this.streams.get(key);
    if (box === undefined) this.streams.set(key, (box = { n: 0 }));
    return box;
  }

  /**
   * The store did not answer: `open` goes on without limits (returns), `closed` refuses a new
   * request with 503 (throws); anything but a store failure is rethrown as it is.
   */
  private storeFailed(err: unknown, key: string, label: string, midStream: boolean): void {
    if (!(err instanceof StoreUnavailableError)) throw err;
    const mode = this.config().limits.onStoreError;
    this.usage.storeErrors.inc({ store: this.store.kind, mode });
    if (!this.failing) {
      this.failing = true;
      this.log.error(
        { err: err.message, mode, key: label, midStream },
        mode === 'open'
          ? 'limits store unreachable: admitting requests without key limits until it is back (limits.onStoreError: open)'
          : 'limits store unreachable: refusing requests until it is back (limits.onStoreError: closed)',
      );
    }
    if (mode === 'closed' && !midStream) {
      throw new GatewayError('unavailable', 'The rate-limit store is unreachable; please retry shortly.', {
        retryAfter: 1,
        code: 'TIERGATE_ERR_LIMIT_STORE',
      });
    }
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.log.info('limits store answers again: key limits enforced');
  }
}

/**
 * Counters of one key under one config, reused within their window: a request then allocates no
 * counter of its own (they were a measurable part of a limited request's cost, bench/governance.ts).
 */
class CounterCache {
  private readonly cache = new Map<string, Counter>();

  get(
    prefix: string,
    key: string,
    limit: number | undefined,
    window: WindowKind,
    now: number,
  ): Counter | undefined {
    if (limit === undefined) return undefined;
    const name = `${prefix}:${key}`;
    // The window kind is part of the entry: a reload may turn a daily budget into a monthly one.
    const entry = `${name}|${window}`;
    const c = this.cache.get(entry);
    if (c !== undefined && c.limit === limit && now >= c.window.start && now < c.window.end) return c;
    const made = makeCounter(name, limit, windowAt(window, now));
    this.cache.set(entry, made);
    return made;
  }
}

/** The store's name of a key's stream slots (concurrentStreams). */
function slotName(key: string): string {
  return `streams:${key}`;
}

function state(c: Counter | undefined, used: number, now: number): LimitState | undefined {
  if (c === undefined) return undefined;
  return { limit: c.limit, remaining: Math.max(0, c.limit - used), resetMs: c.window.end - now };
}

function rateLimitInfo(c: Counters, used: { r: number; t: number }, now: number): RateLimitInfo | undefined {
  if (c.rpm === undefined && c.tpm === undefined) return undefined;
  return { requests: state(c.rpm, used.r, now), tokens: state(c.tpm, used.t, now) };
}
