import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import {
  counterKey,
  StoreUnavailableError,
  type Counter,
  type CounterStore,
  type Grant,
  type SlotGrant,
} from './counter-store.js';

export interface RedisStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** How long a stream's slot outlives its replica's last renewal (renewed every third of it). */
  readonly streamLeaseMs: number;
}

/**
 * A key's stream slots are a sorted set of holders scored by their lease's expiry, in Redis's
 * own clock (TIME), so replicas' clocks do not matter. Acquire: drop expired leases, then add
 * this holder if fewer than the limit remain — in one script, so concurrent acquires on any
 * replica never hold more than the limit. rate-limiter-flexible counts per window and has no
 * such semaphore, hence these two short scripts (run through ioredis's defineCommand).
 */
const ACQUIRE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return {1, held + 1}`;

/** Renews the leases of the holders given (ARGV[2..]) that still hold a slot (XX: never re-adds). */
const RENEW_SLOTS = `
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 0`;

/** The two scripts as ioredis commands (defineCommand adds them to the client at run time). */
interface SlotCommands {
  tiergateAcquireSlot(key: string, holder: string, limit: number, leaseMs: number): Promise<[number, number]>;
  tiergateRenewSlots(key: string, leaseMs: number, ...holders: string[]): Promise<number>;
}

/** Reconnect attempts back off up to this; ioredis keeps trying for as long as the gateway runs. */
const MAX_RECONNECT_DELAY_MS = 500;
/** A window's key outlives its window by this much, so a late give() never recreates it empty. */
const TTL_SLACK_S = 60;

/**
 * Counters in Redis (`limits.store: redis`), shared by every gateway replica. A take is
 * rate-limiter-flexible's atomic increment (one Lua script: increment, read, set the expiry):
 * the grant is the part of this take's own increment that lies below the limit, computed from
 * the value right after it, so concurrent takes on any number of replicas never grant more in
 * total than the limit; the part above the line is given back. The client has no offline queue:
 * while Redis is unreachable every command fails at once (the key limiter then follows
 * `limits.onStoreError`), and ioredis reconnects by itself.
 */
export class RedisCounterStore implements CounterStore {
  readonly kind = 'redis';
  private readonly client: Redis;
  /** One limiter per (limit, window length): rate-limiter-flexible fixes both per instance. */
  private readonly limiters = new Map<string, RateLimiterRedis>();
  private connected = false;
  private closed = false;
  /** Resolves at the first connection: requests at start-up wait for it rather than fail. */
  private readonly firstConnection: Promise<void>;
  private everConnected = false;
  /** Slots this replica holds, per sorted-set key: their leases are renewed while they run. */
  private readonly held = new Map<string, Set<string>>();
  private readonly renewer: NodeJS.Timeout;

  constructor(
    private readonly options: RedisStoreOptions,
    private readonly log: Logger,
  ) {
    this.client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: options.connectTimeoutMs,
      retryStrategy: (attempt) => (this.closed ? null : Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS)),
    });
    let connectedOnce = (): void => undefined;
    this.firstConnection = new Promise((resolve) => (connectedOnce = resolve));
    this.client.on('ready', () => {
      log.info('limits store: connected to redis');
      this.connected = true;
      this.everConnected = true;
      connectedOnce();
    });
    // ioredis emits an error per failed reconnect: one line per outage is enough.
    this.client.on('error', (err: Error) => {
      if (this.connected) log.warn({ err: err.message }, 'limits store: redis unreachable; reconnecting');
      this.connected = false;
    });
    this.client.on('close', () => {
      if (this.connected && !this.closed) log.warn('limits store: redis connection closed; reconnecting');
      this.connected = false;
    });
    this.client.defineCommand('tiergateAcquireSlot', { numberOfKeys: 1, lua: ACQUIRE_SLOT });
    this.client.defineCommand('tiergateRenewSlots', { numberOfKeys: 1, lua: RENEW_SLOTS });
    this.renewer = setInterval(() => this.renew(), Math.max(1, Math.floor(options.streamLeaseMs / 3)));
    this.renewer.unref();
  }

  get up(): boolean {
    return this.client.status === 'ready';
  }

  async take(counter: Counter, amount: number, partial: boolean): Promise<Grant> {
    if (!this.everConnected) await this.started();
    const limiter = this.limiter(counter);
    const key = counterKey(counter);
    try {
      const res = await limiter.consume(key, amount);
      return { granted: amount, used: res.consumedPoints };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw unavailable(err);
      // Over the limit after this take's increment: only the part below the line is ours.
      const below = Math.max(0, Math.min(amount, amount - (err.consumedPoints - counter.limit)));
      const granted = partial || below === amount ? below : 0;
      if (granted < amount) this.give(counter, amount - granted);
      return { granted, used: err.consumedPoints - (amount - granted) };
    }
  }

  give(counter: Counter, amount: number): void {
    if (amount <= 0) return;
    this.limiter(counter)
      .reward(counterKey(counter), amount)
      .catch((err: unknown) =>
        this.log.debug({ err: String(err) }, 'limits store: could not give tokens back'),
      );
  }

  async used(counter: Counter): Promise<number> {
    if (!this.everConnected) await this.started();
    try {
      const res = await this.limiter(counter).get(counterKey(counter));
      return res?.consumedPoints ?? 0;
    } catch (err) {
      throw unavailable(err);
    }
  }

  async acquire(name: string, holder: string, limit: number): Promise<SlotGrant> {
    if (!this.everConnected) await this.started();
    const key = this.slotKey(name);
    try {
      const [granted, held] = await this.commands.tiergateAcquireSlot(
        key,
        holder,
        limit,
        this.options.streamLeaseMs,
      );
      if (granted === 1) {
        let set = this.held.get(key);
        if (set === undefined) this.held.set(key, (set = new Set()));
        set.add(holder);
      }
      return { granted: granted === 1, held };
    } catch (err) {
      throw unavailable(err);
    }
  }

  release(name: string, holder: string): void {
    const key = this.slotKey(name);
    const set = this.held.get(key);
    set?.delete(holder);
    if (set?.size === 0) this.held.delete(key);
    this.client
      .zrem(key, holder)
      .catch((err: unknown) =>
        this.log.debug({ err: String(err) }, 'limits store: could not free a stream slot'),
      );
  }

  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.renewer);
    this.client.disconnect();
    return Promise.resolve();
  }

  private get commands(): SlotCommands {
    return this.client as unknown as SlotCommands;
  }

  private slotKey(name: string): string {
    return `${this.options.keyPrefix}:${name}`;
  }

  /** Renews every held lease, one script per key; a failed renewal is retried at the next tick. */
  private renew(): void {
    if (this.client.status !== 'ready') return;
    for (const [key, holders] of this.held) {
      this.commands
        .tiergateRenewSlots(key, this.options.streamLeaseMs, ...holders)
        .catch((err: unknown) =>
          this.log.debug({ err: String(err) }, 'limits store: could not renew stream slots'),
        );
    }
  }

  /** The first connection, or the connect timeout: after that, a failure is a store failure. */
  private async started(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.connectTimeoutMs);
    });
    await Promise.race([this.firstConnection, timeout]);
    clearTimeout(timer);
  }

  private limiter(counter: Counter): RateLimiterRedis {
    const seconds = Math.ceil((counter.window.end - counter.window.start) / 1000) + TTL_SLACK_S;
    // A counter without a limit (a soft budget) only counts: the largest integer Lua handles exactly.
    const points = Number.isFinite(counter.limit) ? counter.limit : Number.MAX_SAFE_INTEGER;
    const id = `${points}:${seconds}`;
    let limiter = this.limiters.get(id);
    if (limiter === undefined) {
      limiter = new RateLimiterRedis({
        storeClient: this.client,
        keyPrefix: this.options.keyPrefix,
        points,
        duration: seconds,
        rejectIfRedisNotReady: true,
      });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }
}

function unavailable(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`redis: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
