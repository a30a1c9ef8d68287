/**
 * The liveness rule of an inference worker (docs/main-tier.md "Worker liveness"), a pure function
 * of what its run gate says and the time: outside a run the worker's event loop must show a sign
 * of life (a heartbeat, a message handled, a run starting or ending) at least every `stallMs`, or
 * it takes no new sequences until it does; silent for `replaceAfterMs` it is stalled. A run may
 * take `runStallFactor` times what the worker expects of it (its recent runs of the same kind)
 * plus `runStallMs`; past that the worker is stalled.
 */
import type { GateSnapshot } from './run-gate.js';

export interface LivenessOptions {
  /** The worker's heartbeat period, and how often the main thread looks. */
  readonly heartbeatMs: number;
  /** Silence of the worker's event loop outside a run after which it takes no new sequences. */
  readonly stallMs: number;
  /** Silence after which it is stalled (at least stallMs). */
  readonly replaceAfterMs: number;
  /** A run is stalled past runStallFactor × its expected time + runStallMs. */
  readonly runStallFactor: number;
  readonly runStallMs: number;
}

export type Verdict =
  | {
      readonly alive: true;
      /** Why the worker should take no new sequences for now (silent past stallMs), if so. */
      readonly suspect?: string | undefined;
    }
  | {
      readonly alive: false;
      /** Stalled inside a run: possibly native code, which must not be terminated. */
      readonly inRun: boolean;
      readonly reason: string;
    };

const ALIVE: Verdict = { alive: true };

/**
 * `slackMs`: how late the main thread's own looks have been lately. On an oversubscribed machine
 * every thread waits for a core, the worker's as much as the one judging it, so the limits grow
 * by what the judge itself was held up.
 */
export function judge(gate: GateSnapshot, now: number, options: LivenessOptions, slackMs = 0): Verdict {
  if (gate.state === 'sealed') return ALIVE; // being stopped: no longer judged
  if (gate.state === 'in-run') {
    const limit = Math.round(options.runStallFactor * gate.expectedMs + options.runStallMs + slackMs);
    const took = now - gate.runStartedAt;
    if (took <= limit) return ALIVE;
    return {
      alive: false,
      inRun: true,
      reason: `a run has taken ${took} ms (expected ${gate.expectedMs} ms, limit ${limit} ms)`,
    };
  }
  const silent = now - gate.lastSignAt;
  const limit = Math.round(options.stallMs + slackMs);
  if (silent <= limit) return ALIVE;
  const replaceAfter = Math.round(Math.max(options.stallMs, options.replaceAfterMs) + slackMs);
  if (silent <= replaceAfter) {
    return { alive: true, suspect: `its event loop has been silent for ${silent} ms (limit ${limit} ms)` };
  }
  return {
    alive: false,
    inRun: false,
    reason: `its event loop has been silent for ${silent} ms (limit ${replaceAfter} ms)`,
  };
}
