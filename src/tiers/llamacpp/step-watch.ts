/**
 * The liveness rule of the in-process llama.cpp tier (docs/resilience.md "A stalled edge tier").
 * Its evaluation runs on native threads that cannot be interrupted or replaced, and one context
 * evaluates all its sequences in one batch, so a step that never returns stalls every sequence of
 * the tier. The rule is the ONNX worker's run rule (src/tiers/worker-host/liveness.ts): a step may
 * take `runStallFactor` × what recent steps predict plus `runStallMs`; past that the step is
 * stalled, its request fails with a retryable error (the gateway continues it on another tier),
 * and the tier is not ready until a step completes again. A first token is predicted from the
 * prompt's length (prefill), later ones from recent decode steps.
 */

export interface StepLiveness {
  /** How often active steps are looked at. */
  readonly checkMs: number;
  readonly runStallFactor: number;
  readonly runStallMs: number;
}

/** Priors before anything was measured: generous, so a cold start is not called a stall. */
const PRIOR_STEP_MS = 5;
const PRIOR_PREFILL_MS_PER_TOKEN = 1;
/** Weight of the newest measurement in the running means. */
const ALPHA = 0.1;

interface Waiting {
  readonly since: number;
  readonly expectedMs: number;
  readonly onStall: (reason: string) => void;
  /** Reported stalled already: reported once, and its late duration is not learned. */
  readonly reported: boolean;
}

export class StepWatch {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private stepMs = PRIOR_STEP_MS;
  private prefillMsPerToken = PRIOR_PREFILL_MS_PER_TOKEN;
  private timer: NodeJS.Timeout | undefined;
  /** Why the tier is stalled now; cleared by the next step that completes. */
  private stalled: string | undefined;

  constructor(
    private readonly options: StepLiveness,
    private readonly now: () => number = () => performance.now(),
    private readonly onStalled?: (reason: string) => void,
  ) {}

  /** The stall, if a step is stalled and none has completed since. */
  get stall(): string | undefined {
    return this.stalled;
  }

  /**
   * A step is awaited: the first of an evaluation (`promptTokens` > 0, prefill included) or a
   * decode step. `onStall` runs once if it passes its limit. Returns the id for `completed`.
   */
  begin(promptTokens: number, onStall: (reason: string) => void): number {
    const expectedMs = this.stepMs + (promptTokens > 0 ? promptTokens * this.prefillMsPerToken : 0);
    const id = this.nextId++;
    this.waiting.set(id, { since: this.now(), expectedMs, onStall, reported: false });
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.check(), this.options.checkMs);
      this.timer.unref();
    }
    return id;
  }

  /** The step came back (a sign of life) or its waiter left; learns its duration if it ran. */
  completed(id: number, promptTokens: number, ran = true): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    if (this.waiting.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!ran) return;
    this.stalled = undefined;
    if (w.reported) return;
    const took = this.now() - w.since;
    if (promptTokens > 0) {
      const perToken = Math.max(0, took - this.stepMs) / promptTokens;
      this.prefillMsPerToken += ALPHA * (perToken - this.prefillMsPerToken);
    } else this.stepMs += ALPHA * (took - this.stepMs);
  }

  /** Looks at every awaited step; exposed for tests that drive time by hand. */
  check(): void {
    const now = this.now();
    for (const [id, w] of this.waiting) {
      if (w.reported) continue;
      const limit = Math.round(this.options.runStallFactor * w.expectedMs + this.options.runStallMs);
      const took = Math.round(now - w.since);
      if (took <= limit) continue;
      const reason = `a llama.cpp step has taken ${took} ms (expected ${Math.round(w.expectedMs)} ms, limit ${limit} ms)`;
      // Stays awaited (its native call still holds the sequence) but is reported only once.
      this.waiting.set(id, { ...w, reported: true });
      if (this.stalled === undefined) this.onStalled?.(reason);
      this.stalled = reason;
      w.onStall(reason);
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }
}
