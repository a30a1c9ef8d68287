import type { Counter, Gauge, Histogram } from 'prom-client';
import type { LlamaContext, LlamaModel, Token } from 'node-llama-cpp';
import type { LlamaCppTierConfig } from '../../config/index.js';
import { DEFAULT_STEP_LIVENESS, RECLAIM_EVERY_MIB } from '../../config/tiers/llamacpp.js';
import { resolveVariant, type VariantInfo } from '../../family/manifest.js';
import { TierStalledError, TierUnavailableError } from '../errors.js';
import type { TierDeps } from '../tier-deps.js';
import {
  tokenEvent,
  type GenerateRequest,
  type Tier,
  type TierEvent,
  type TierHealth,
  type TierInfo,
} from '../tier.js';
import { llamaRuntime } from '../../text/llama-runtime.js';
import { SequencePool } from './sequence-pool.js';
import { fullGc, NativeReclaim, SAMPLER_BYTES_PER_VOCAB_ENTRY, type ReclaimStats } from './native-reclaim.js';
import { type CancelSignal } from '../cancellation.js';
import { StepWatch } from './step-watch.js';
import { LlamaKeptSequence } from './llama-kept-sequence.js';
import type { KeptSequence, OpenSequenceOptions } from '../kept-sequence.js';
import { topOf } from './top-tokens.js';

/** What the edge tier holds of llama.cpp's native memory (LlamaCppTier.nativeState). */
export interface EdgeNativeState extends ReclaimStats {
  /** Context sequences the tier holds: its `sequences`, from start to close. */
  readonly sequences: number;
  readonly sequencesInUse: number;
  /** Idle sequences whose KV cells were not cleared (0 when every release cleared its sequence). */
  readonly idleSequencesWithHistory: number;
  /** Evaluations (each with its sampler) not yet ended. */
  readonly evaluationsLive: number;
}

/**
 * The edge tier: a GGUF variant run in process by llama.cpp (node-llama-cpp). Evaluation runs on
 * native threads, so the event loop stays free while tokens are computed (docs/gateway.md, edge
 * tier options). Concurrent requests each get a context sequence; llama.cpp evaluates all
 * active sequences in one batch.
 */
export class LlamaCppTier implements Tier {
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  private pool: SequencePool | undefined;
  private variant: VariantInfo | undefined;
  private state: 'new' | 'starting' | 'ready' | 'failed' | 'closed' = 'new';
  private failure: string | undefined;
  private readonly sequencesInUse: Gauge<'tier'>;
  private readonly queueDepth: Gauge<'tier'>;
  private readonly pendingNative: Gauge<'tier'>;
  private readonly reclaims: Counter<'tier'>;
  private readonly reclaimPause: Histogram<'tier'>;
  private reclaim: NativeReclaim | undefined;
  private evaluationsLive = 0;
  private readonly stalls: Counter<'tier'>;
  private readonly watch: StepWatch;
  /** Test hook (injectStall): steps asked for before this time wait until it, as a stuck native step would. */
  private stallUntil = 0;

  constructor(
    readonly name: string,
    private readonly options: LlamaCppTierConfig,
    private readonly deps: TierDeps,
  ) {
    this.sequencesInUse = deps.metrics.gauge({
      name: 'tier_sequences_in_use',
      help: 'llama.cpp context sequences currently generating.',
      labelNames: ['tier'],
    });
    this.queueDepth = deps.metrics.gauge({
      name: 'tier_queue_depth',
      help: 'Requests waiting for a free slot of the tier.',
      labelNames: ['tier'],
    });
    this.pendingNative = deps.metrics.gauge({
      name: 'tier_native_pending_bytes',
      help: 'Estimated native memory of ended llama.cpp evaluations that only a garbage collection frees.',
      labelNames: ['tier'],
    });
    this.reclaims = deps.metrics.counter({
      name: 'tier_native_reclaims_total',
      help: 'Full garbage collections the edge tier ran to free ended evaluations (reclaimEveryMiB).',
      labelNames: ['tier'],
    });
    this.reclaimPause = deps.metrics.histogram({
      name: 'tier_native_reclaim_seconds',
      help: 'Pause of each full garbage collection the edge tier ran.',
      labelNames: ['tier'],
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
    });
    this.stalls = deps.metrics.counter({
      name: 'tier_stalls_total',
      help: 'Steps of an in-process tier that passed their liveness limit (docs/resilience.md "A stalled edge tier").',
      labelNames: ['tier'],
    });
    this.watch = new StepWatch(options.liveness ?? DEFAULT_STEP_LIVENESS, undefined, (reason) => {
      this.stalls.inc({ tier: this.name });
      this.deps.logger.error(
        { tier: this.name, reason },
        'llama.cpp tier stalled: not ready until a step completes',
      );
    });
  }

  async start(): Promise<void> {
    this.state = 'starting';
    try {
      this.variant = resolveVariant(this.deps.family, this.options.model, '.gguf');
      const llama = await llamaRuntime();
      this.model = await llama.loadModel({ modelPath: this.variant.file });
      this.context = await this.model.createContext({
        sequences: this.options.sequences,
        threads: this.options.threads,
        batchSize: this.options.batchSize,
        flashAttention: this.options.flashAttention,
        contextSize: this.options.contextSize > 0 ? this.options.contextSize : this.model.trainContextSize,
      });
      this.pool = new SequencePool(this.context, this.name, this.options.maxQueue, (inUse, queued) => {
        this.sequencesInUse.set({ tier: this.name }, inUse);
        this.queueDepth.set({ tier: this.name }, queued);
      });
      this.sequencesInUse.set({ tier: this.name }, 0);
      this.queueDepth.set({ tier: this.name }, 0);
      const budget = (this.options.reclaimEveryMiB ?? RECLAIM_EVERY_MIB) * 1024 * 1024;
      this.reclaim = new NativeReclaim(
        this.deps.tokenizer.vocabSize * SAMPLER_BYTES_PER_VOCAB_ENTRY,
        budget,
        budget > 0 ? fullGc() : undefined,
        (pauseMs) => {
          this.pendingNative.set({ tier: this.name }, 0);
          this.reclaims.inc({ tier: this.name });
          this.reclaimPause.observe({ tier: this.name }, pauseMs / 1000);
        },
      );
      this.reclaims.inc({ tier: this.name }, 0);
      this.pendingNative.set({ tier: this.name }, 0);
      this.state = 'ready';
      this.deps.logger.info(
        {
          file: this.variant.file,
          contextSize: this.context.contextSize,
          sequences: this.options.sequences,
          flashAttention: this.context.flashAttention,
          reclaimEveryMiB: budget > 0 && fullGc() === undefined ? 'unavailable' : budget / 1024 / 1024,
        },
        'llama.cpp tier loaded',
      );
    } catch (err) {
      this.state = 'failed';
      this.failure = (err as Error).message;
      throw err;
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    const { pool, model } = this.ready();
    const seq = await pool.acquire(signal);
    /** Set when a step stalled: the native call that still holds the sequence. */
    let stuck: Promise<unknown> | undefined;
    try {
      // Stop at the end of the context instead of letting llama.cpp shift it (which would
      // silently drop the start of the prompt).
      const room = seq.contextSize - request.tokens.length;
      const limit = Math.max(0, Math.min(request.maxTokens, room));
      if (limit === 0) {
        yield { kind: 'finish', reason: 'length' };
        return;
      }
      const stops = new Set(request.stopTokens);
      const { sampling } = request;
      // Confidence (the sampled token's probability) costs a softmax per step: only when read.
      const wantLogprob = request.logprobs !== false || request.topLogprobs > 0;
      const metadata = { confidence: wantLogprob, probabilities: request.topLogprobs > 0 };
      let produced = 0;
      this.evaluationStarted();
      // Every way out of this loop (finish, abort, an error, the caller returning) ends the
      // stream, which ends llama.cpp's evaluation and disposes its sampler. A stalled step is
      // left to finish on its own: its native call still holds the sequence, which is released
      // only when it returns.
      try {
        const stream = seq.evaluateWithMetadata([...request.tokens] as Token[], metadata, {
          temperature: sampling.temperature,
          // Always explicit: left out, node-llama-cpp applies its own defaults (top-k 40,
          // top-p 0.95), not OpenAI's "no truncation". top-k 0 means the whole vocabulary.
          topP: sampling.topP,
          topK: sampling.topK,
          seed: sampling.seed,
          yieldEogToken: true,
        });
        const steps = stream[Symbol.asyncIterator]();
        const stall = new StallLatch();
        let promptTokens = request.tokens.length;
        let native: Promise<IteratorResult<unknown>> | undefined;
        try {
          for (;;) {
            native = this.nextStep(steps, promptTokens, stall);
            promptTokens = 0;
            const step = await Promise.race([native, stall.tripped]);
            if (step.done === true || signal.aborted) break;
            const out = step.value as EvaluateOutput;
            const token = out.token as number;
            if (stops.has(token) || model.isEogToken(out.token)) {
              yield { kind: 'finish', reason: 'stop' };
              return;
            }
            const top =
              out.probabilities === undefined ? undefined : topOf(out.probabilities, request.topLogprobs);
            const logprob = out.confidence === undefined ? NaN : Math.log(out.confidence);
            yield tokenEvent(token, logprob, top);
            if (++produced >= limit) {
              yield { kind: 'finish', reason: 'length' };
              return;
            }
          }
        } finally {
          if (stall.reason !== undefined && native !== undefined) {
            stuck = native.then(
              () => steps.return?.(),
              () => undefined,
            );
          } else await steps.return?.();
        }
      } finally {
        this.evaluationEnded();
      }
      signal.throwIfAborted();
    } finally {
      // Leaving the loop (finish, abort or error) ends llama.cpp's evaluation; disposing the
      // sequence frees its KV cells so a waiting request can start at once.
      if (stuck === undefined) await pool.release(seq);
      else {
        const held = stuck;
        void held
          .then(() => pool.release(seq))
          .catch((err: unknown) => {
            this.deps.logger.warn(
              { tier: this.name, err },
              'releasing a sequence after a stalled step failed',
            );
          });
      }
    }
  }

  /**
   * Test hook, like the ONNX tier's injectWorkerFault: every step asked for during the next `ms`
   * waits until then, as when llama.cpp's batch is stuck in native code.
   */
  injectStall(ms: number): void {
    this.stallUntil = performance.now() + ms;
  }

  /** The iterator's next step, watched by the liveness rule (step-watch.ts). */
  private nextStep(
    steps: AsyncIterator<unknown>,
    promptTokens: number,
    stall: StallLatch,
  ): Promise<IteratorResult<unknown>> {
    return this.watchedCall(promptTokens, () => steps.next(), stall);
  }

  /** A kept sequence's native call under the same rule (llama-kept-sequence.ts). */
  private watched<T>(
    promptTokens: number,
    call: () => Promise<T>,
  ): { native: Promise<T>; result: Promise<T> } {
    const stall = new StallLatch();
    const native = this.watchedCall(promptTokens, call, stall);
    return { native, result: Promise.race([native, stall.tripped]) };
  }

  /** Runs `call` (after an injected stall, in tests) and reports it to the step watch. */
  private watchedCall<T>(promptTokens: number, call: () => Promise<T>, stall: StallLatch): Promise<T> {
    const id = this.watch.begin(promptTokens, (reason) =>
      stall.trip(new TierStalledError(this.name, reason)),
    );
    const wait = this.stallUntil - performance.now();
    const native = wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)).then(call) : call();
    native.then(
      () => this.watch.completed(id, promptTokens),
      () => this.watch.completed(id, promptTokens, false),
    );
    return native;
  }

  /**
   * A pooled sequence kept for speculative decoding (drafter or verifier) until closed
   * (llama-kept-sequence.ts, docs/speculative.md). It takes a slot of the pool like a stream.
   */
  async openSequence(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence> {
    const { pool, model } = this.ready();
    const seq = await pool.acquire(signal);
    const kept = new LlamaKeptSequence(
      {
        tier: this.name,
        model,
        release: (s) => pool.release(s),
        evaluationStarted: () => this.evaluationStarted(),
        evaluationEnded: () => this.evaluationEnded(),
        watched: (promptTokens, call) => this.watched(promptTokens, call),
      },
      seq,
      this.deps.tokenizer.vocabSize,
      options,
      signal,
    );
    if (signal.aborted) {
      kept.close();
      throw signal.reason;
    }
    return kept;
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    const { pool } = this.ready();
    const out = new Float64Array(Math.max(0, tokens.length - 1));
    if (tokens.length < 2) return out;
    const seq = await pool.acquire(signal ?? new AbortController().signal);
    try {
      const input = tokens.map((t, i) =>
        i < tokens.length - 1
          ? ([t as Token, { generateNext: { probabilities: true } }] as const)
          : (t as Token),
      );
      this.evaluationStarted();
      const results = await seq
        .controlledEvaluate(input as Parameters<typeof seq.controlledEvaluate>[0])
        .finally(() => this.evaluationEnded());
      for (let i = 0; i < tokens.length - 1; i++) {
        const p = results[i]?.next.probabilities?.get(tokens[i + 1] as Token) ?? 0;
        out[i] = Math.log(p);
      }
      return out;
    } finally {
      await pool.release(seq);
    }
  }

  info(): TierInfo {
    return {
      name: this.name,
      framework: 'llama.cpp',
      modelId: this.deps.family.id,
      variant: this.variant?.id ?? this.options.model,
      precision: this.variant?.precision ?? 'unknown',
      contextLength: this.context?.contextSize ?? 0,
      vocabSize: this.deps.tokenizer.vocabSize,
      capacity: this.options.sequences,
      maxQueue: this.options.maxQueue,
      batchSpeedup: Math.min(this.options.batchSpeedup, this.options.sequences),
    };
  }

  /** What the tier holds of llama.cpp's native memory now (tests, docs/gateway.md). */
  nativeState(): EdgeNativeState {
    const reclaim = this.reclaim?.stats() ?? { pendingBytes: 0, reclaims: 0, evaluations: 0 };
    return {
      ...reclaim,
      sequences: this.pool?.size ?? 0,
      sequencesInUse: this.pool?.inUse ?? 0,
      idleSequencesWithHistory: this.pool?.idleWithHistory ?? 0,
      evaluationsLive: this.evaluationsLive,
    };
  }

  health(): TierHealth {
    if (this.state === 'ready') {
      const stall = this.watch.stall;
      return stall === undefined ? { ready: true } : { ready: false, detail: `stalled: ${stall}` };
    }
    return { ready: false, detail: this.state === 'failed' ? `failed: ${this.failure}` : this.state };
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.watch.close();
    this.pool?.rejectAll(new TierUnavailableError(this.name, `tier "${this.name}" is closing`));
    await this.context?.dispose();
    await this.model?.dispose();
  }

  private evaluationStarted(): void {
    this.evaluationsLive++;
    this.reclaim?.evaluationStarted();
    this.pendingNative.set({ tier: this.name }, this.reclaim?.stats().pendingBytes ?? 0);
  }

  private evaluationEnded(): void {
    this.evaluationsLive--;
  }

  private ready(): { pool: SequencePool; model: LlamaModel } {
    if (this.state !== 'ready' || this.pool === undefined || this.model === undefined) {
      throw new TierUnavailableError(this.name, `tier "${this.name}" is not ready (${this.state})`);
    }
    return { pool: this.pool, model: this.model };
  }
}

/** Rejects `tripped` once, when a step of one evaluation stalls; never rejects otherwise. */
class StallLatch {
  reason: Error | undefined;
  private reject!: (err: Error) => void;
  readonly tripped = new Promise<never>((_, reject) => {
    this.reject = reject;
  });

  constructor() {
    this.tripped.catch(() => undefined); // raced per step; a trip between steps must not go unhandled
  }

  trip(err: Error): void {
    if (this.reason !== undefined) return;
    this.reason = err;
    this.reject(err);
  }
}

/** One step of evaluateWithMetadata; `probabilities` is present only when asked for. */
interface EvaluateOutput {
  readonly token: Token;
  readonly confidence?: number;
  readonly probabilities?: ReadonlyMap<Token, number>;
}
