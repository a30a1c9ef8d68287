import { counterKey, type Counter, type CounterStore, type Grant, type SlotGrant } from './counter-store.js';

interface Entry {
  used: number;
  readonly end: number;
}

/** Ended windows are dropped this often (a key's counters are one entry per window). */
const SWEEP_MS = 60_000;

/**
 * Counters in this process (`limits.store: memory`, one replica). Synchronous: the event loop
 * makes every take atomic, and a request pays no promise for its limits.
 */
export class MemoryCounterStore implements CounterStore {
  readonly kind = 'memory';
  readonly up = true;
  private readonly entries = new Map<string, Entry>();
  private readonly slots = new Map<string, Set<string>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  take(counter: Counter, amount: number, partial: boolean): Grant {
    const key = counterKey(counter);
    let e = this.entries.get(key);
    if (e === undefined) {
      e = { used: 0, end: counter.window.end };
      this.entries.set(key, e);
    }
    const room = Math.max(0, counter.limit - e.used);
    const granted = amount <= room ? amount : partial ? room : 0;
    e.used += granted;
    return { granted, used: e.used };
  }

  give(counter: Counter, amount: number): void {
    const e = this.entries.get(counterKey(counter));
    if (e !== undefined) e.used = Math.max(0, e.used - amount);
  }

  used(counter: Counter): number {
    return this.entries.get(counterKey(counter))?.used ?? 0;
  }

  acquire(name: string, holder: string, limit: number): SlotGrant {
    let held = this.slots.get(name);
    if (held === undefined) {
      held = new Set();
      this.slots.set(name, held);
    }
    if (held.size >= limit) return { granted: false, held: held.size };
    held.add(holder);
    return { granted: true, held: held.size };
  }

  release(name: string, holder: string): void {
    const held = this.slots.get(name);
    if (held === undefined) return;
    held.delete(holder);
    if (held.size === 0) this.slots.delete(name);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
    this.slots.clear();
    return Promise.resolve();
  }

  private sweep(now: number): void {
    for (const [key, e] of this.entries) if (e.end <= now) this.entries.delete(key);
  }
}
