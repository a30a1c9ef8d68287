/** One watched deadline; pass it back to `DeadlineWatch.cancel` when the work ends first. */
export interface WatchedDeadline {
  /** Milliseconds since the epoch (Date.now()) at which `onExpire` runs. */
  readonly at: number;
  readonly onExpire: () => void;
}

/**
 * The deadlines of every in-flight attempt, watched by one timer armed for the earliest of them.
 *
 * Why not a setTimeout per attempt: nearly every attempt ends long before its deadline, so each
 * timer is created, inserted into Node's timer lists and removed for nothing, on every request.
 * Here starting and ending an attempt is a Set insert and delete. When the timer fires it runs
 * what expired and re-arms for the earliest deadline left; an ended attempt is simply gone by
 * then, so the timer is not moved when one ends (it may fire once for nothing). A new deadline
 * earlier than the armed one re-arms it.
 *
 * The timer keeps the process alive only while some deadline is watched, as the attempts' own
 * timers did: it is unref'd when the last one is cancelled rather than cleared (cheaper than
 * re-arming when the next request starts).
 */
export class DeadlineWatch {
  private readonly watched = new Set<WatchedDeadline>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity when it is not armed. */
  private armedAt = Number.POSITIVE_INFINITY;

  /** Runs `onExpire` once at `at` (ms since the epoch) unless cancelled first. */
  watch(at: number, onExpire: () => void): WatchedDeadline {
    const entry: WatchedDeadline = { at, onExpire };
    this.watched.add(entry);
    if (at < this.armedAt) this.arm(at);
    else if (this.watched.size === 1) this.timer?.ref();
    return entry;
  }

  cancel(entry: WatchedDeadline): void {
    if (this.watched.delete(entry) && this.watched.size === 0) this.timer?.unref();
  }

  /** Deadlines being watched (tests, diagnostics). */
  get size(): number {
    return this.watched.size;
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(this.fire, Math.max(0, at - Date.now()));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const expired: WatchedDeadline[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.watched) {
      if (entry.at <= now) expired.push(entry);
      else if (entry.at < next) next = entry.at;
    }
    for (const entry of expired) this.watched.delete(entry);
    // Re-armed before the callbacks run, so a deadline they add is compared with the right time.
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    for (const entry of expired) {
      try {
        entry.onExpire();
      } catch (err) {
        // One failing callback must not stop the others nor take the gateway down.
        process.emitWarning(err instanceof Error ? err : String(err), 'DeadlineCallbackError');
      }
    }
  };
}
