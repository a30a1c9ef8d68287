import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Bytes of native memory one llama.cpp evaluation leaves behind until V8 collects it, per token of
 * the vocabulary. node-llama-cpp creates a sampler for every `evaluate*` / `controlledEvaluate`
 * call and disposes it when the evaluation ends, but the sampler's candidate buffer (one
 * `llama_token_data` of 12 bytes per vocabulary entry) is freed only by the destructor of its
 * JavaScript wrapper, i.e. by V8's garbage collector (llama/addon/AddonSampler.cpp in the
 * installed package). V8 is not told about that memory, and the wrappers are not freed by
 * scavenges (0 of 2,000 over 11: bench/edge-native-memory.ts), so it piles up until a full GC
 * (docs/gateway.md, "Native memory of the edge tier").
 */
export const SAMPLER_BYTES_PER_VOCAB_ENTRY = 12;

/** What a tier's reclaim has done so far. */
export interface ReclaimStats {
  /** Estimated native bytes of finished evaluations not yet collected. */
  readonly pendingBytes: number;
  /** Full collections run by this tier. */
  readonly reclaims: number;
  /** Evaluations started (one sampler each). */
  readonly evaluations: number;
}

/**
 * Bounds the native memory that finished evaluations hold until V8 collects their wrappers: each
 * evaluation adds its estimate, and when the total reaches the budget a full collection runs (on
 * the next turn of the event loop, outside any request's code). With a budget of 0, or where V8's
 * collector cannot be reached, nothing is collected explicitly (the behaviour before the bound).
 */
export class NativeReclaim {
  private pending = 0;
  private count = 0;
  private started = 0;
  private scheduled = false;

  constructor(
    private readonly bytesPerEvaluation: number,
    private readonly budgetBytes: number,
    private readonly collect: (() => void) | undefined,
    /** Called after each collection with its pause in milliseconds. */
    private readonly onReclaim: (pauseMs: number) => void = () => undefined,
  ) {}

  /** One evaluation is starting: its sampler's buffer will wait for a collection. */
  evaluationStarted(): void {
    this.started++;
    this.pending += this.bytesPerEvaluation;
    if (this.budgetBytes <= 0 || this.collect === undefined) return;
    if (this.pending < this.budgetBytes || this.scheduled) return;
    this.scheduled = true;
    const collect = this.collect;
    setImmediate(() => {
      this.scheduled = false;
      // Everything counted so far is unreachable or about to be (its evaluation ends within
      // the request); what is still in use is collected by the next round.
      this.pending = 0;
      const begin = performance.now();
      collect();
      this.count++;
      this.onReclaim(performance.now() - begin);
    });
  }

  stats(): ReclaimStats {
    return { pendingBytes: this.pending, reclaims: this.count, evaluations: this.started };
  }
}

let collector: (() => void) | null | undefined;

/**
 * V8's full garbage collection as a function: `globalThis.gc` when Node runs with --expose-gc,
 * otherwise the same function taken from a fresh context after setting the flag (node:v8 and
 * node:vm, both public API; a context created after the flag is set carries the `gc` extension).
 * Undefined when neither works; looked up once per process.
 */
export function fullGc(): (() => void) | undefined {
  if (collector !== undefined) return collector ?? undefined;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    collector = () => void (exposed as () => unknown)();
    return collector;
  }
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('gc');
    collector = typeof fn === 'function' ? () => void (fn as () => unknown)() : null;
  } catch {
    collector = null;
  }
  return collector ?? undefined;
}
