/** Result of feeding text to a StopMatcher. */
export interface StopScan {
  /** Text that can safely be sent to the client now. */
  readonly text: string;
  /** The stop string that matched, if one did; nothing after it is ever emitted. */
  readonly stop?: string | undefined;
}

/**
 * Finds stop strings in streamed text, including ones that straddle token boundaries: the tail
 * that could still be the start of a stop string is held back until the next delta decides it.
 * The stop string itself is not emitted (OpenAI semantics).
 */
export class StopMatcher {
  private pending = '';
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  push(delta: string): StopScan {
    if (this.stops.length === 0) return { text: delta };
    this.pending += delta;
    let first = -1;
    let matched: string | undefined;
    for (const stop of this.stops) {
      const at = this.pending.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) {
        first = at;
        matched = stop;
      }
    }
    if (matched !== undefined) {
      const text = this.pending.slice(0, first);
      this.pending = '';
      return { text, stop: matched };
    }
    const hold = this.heldBack();
    const text = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text };
  }

  /** End of generation without a stop: the held-back tail is ordinary text after all. */
  flush(): string {
    const text = this.pending;
    this.pending = '';
    return text;
  }

  /** Length of the longest suffix of `pending` that is a proper prefix of some stop string. */
  private heldBack(): number {
    const max = Math.min(this.longest - 1, this.pending.length);
    for (let n = max; n > 0; n--) {
      const tail = this.pending.slice(this.pending.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) return n;
    }
    return 0;
  }
}
