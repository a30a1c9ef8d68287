import type { Window } from './window.js';

/** One counter of one key in one window, e.g. the requests of key "alice" in this minute. */
export interface Counter {
  /** `<limit>:<key name>`, e.g. `rpm:alice`; the store adds the window's start. */
  readonly name: string;
  /** Most it may reach; Infinity for a counter that only counts (a soft budget). */
  readonly limit: number;
  readonly window: Window;
  /** `<name>:<window start>`: the counter's key in the store (made once, with the counter). */
  readonly id: string;
}

/** What a take got: `granted` of the amount asked, and the counter's value after it. */
export interface Grant {
  readonly granted: number;
  readonly used: number;
}

/** What an acquire got: a slot or not, and how many are held now (this one included). */
export interface SlotGrant {
  readonly granted: boolean;
  readonly held: number;
}

/** A value now (the in-process store) or later (Redis). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Where the counters live: this process (`memory`) or Redis, shared by every replica (`redis`).
 * The memory store answers synchronously, so a request pays no promise for its limits; a
 * failing store rejects with a StoreUnavailableError.
 */
export interface CounterStore {
  readonly kind: 'memory' | 'redis';
  /**
   * Adds to the counter atomically without passing its limit: the whole amount or nothing
   * (`partial` false), or as much as fits (`partial` true). Concurrent takes, on any replica,
   * never grant more in total than the limit leaves.
   */
  take(counter: Counter, amount: number, partial: boolean): MaybePromise<Grant>;
  /** Gives back what was taken and not used (best effort: a failure only over-counts). */
  give(counter: Counter, amount: number): void;
  /** The counter's value now (0 when it has none). */
  used(counter: Counter): MaybePromise<number>;
  /**
   * Holds one of `limit` slots of `name` (a key's streams at once) for `holder`, atomically
   * against every other acquire on any replica; none when all are held. A holder keeps its slot
   * until release(); in Redis a slot is a lease the replica renews while it runs, so the slots of
   * a replica that died come free by themselves.
   */
  acquire(name: string, holder: string, limit: number): MaybePromise<SlotGrant>;
  /** Frees `holder`'s slot of `name` (best effort in Redis: a lost release expires). */
  release(name: string, holder: string): void;
  /** Whether the store answers now (a gauge and the admin endpoint read it). */
  readonly up: boolean;
  close(): Promise<void>;
}

/** The store could not be reached or did not answer in time. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** f over values, called at once when none is a promise (no promise for the in-process store). */
export function whenAll<T, R>(
  values: readonly MaybePromise<T>[],
  f: (values: readonly T[]) => R,
): MaybePromise<R> {
  if (values.some((v) => v instanceof Promise)) return Promise.all(values).then(f);
  return f(values as readonly T[]);
}

export function counterKey(counter: Counter): string {
  return counter.id;
}

/** The counter `name` with limit `limit` in `window`. */
export function makeCounter(name: string, limit: number, window: Window): Counter {
  return { name, limit, window, id: `${name}:${window.start}` };
}
