import type { FaultSettings } from '../config/resilience.js';
import {
  firstTokens,
  type GenerateRequest,
  type Tier,
  type TierEvent,
  type TierHealth,
  type TierInfo,
} from '../tiers/tier.js';
import type {
  DraftResult,
  KeptSequence,
  OpenSequenceOptions,
  SequenceEdit,
  VerifyOptions,
  VerifyResult,
} from '../tiers/kept-sequence.js';
import { ResilienceError } from './errors.js';
import { sleepUnlessCancelled, type CancelSignal } from '../tiers/cancellation.js';

export type FaultKind = 'error' | 'delay' | 'fail_after_tokens' | 'hang';

/** What to do to one stream, decided when it starts. */
interface FaultPlan {
  readonly delayMs: number;
  readonly error: boolean;
  /** Fail (or hang) once this many tokens were passed through; undefined = never. */
  readonly failAfter: number | undefined;
  readonly hangAfter: number | undefined;
}

/**
 * Envoy fault-filter style injection around any Tier (llama.cpp, ONNX, remote alike): delay,
 * fail before the first token, fail after N tokens, or hang until aborted — each with its own
 * probability. Settings are read per stream from `settings()`, so a hot reload changes them live.
 * With every rate at 0 (the default) streams pass through untouched.
 */
export class FaultInjectingTier implements Tier {
  private readonly openKeptSequence = (
    options: OpenSequenceOptions,
    signal: CancelSignal,
  ): Promise<KeptSequence> => this.openKept(options, signal);

  constructor(
    private readonly inner: Tier,
    private readonly settings: () => FaultSettings,
    private readonly onFault: (kind: FaultKind) => void = () => {},
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Present while the inner tier keeps sequences (speculative decoding; a remote tier offers them
   * only while its server does): faults apply to them too.
   */
  get openSequence():
    ((options: OpenSequenceOptions, signal: CancelSignal) => Promise<KeptSequence>) | undefined {
    return this.inner.openSequence === undefined ? undefined : this.openKeptSequence;
  }

  /**
   * A kept sequence with the stream's faults, decided when it opens: the delay and the error
   * before it opens, and "after N tokens" counting the tokens its calls produced (drafted
   * tokens; a verify call's positions), the call that reaches N failing or hanging instead.
   */
  private async openKept(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence> {
    const plan = this.plan(this.settings());
    if (plan?.delayMs !== undefined && plan.delayMs > 0) {
      this.onFault('delay');
      await sleepUnlessCancelled(plan.delayMs, signal);
    }
    if (plan?.error === true) {
      this.onFault('error');
      throw this.injected('before the first token');
    }
    const inner = await this.inner.openSequence!(options, signal);
    if (plan === undefined || (plan.failAfter === undefined && plan.hangAfter === undefined)) return inner;
    let produced = 0;
    const guarded = async <T>(call: () => Promise<T>, count: (r: T) => number): Promise<T> => {
      if (plan.hangAfter !== undefined && produced >= plan.hangAfter) {
        await this.hang(signal);
        throw signal.reason;
      }
      const result = await call();
      produced += count(result);
      if (plan.failAfter !== undefined && produced >= plan.failAfter) {
        this.onFault('fail_after_tokens');
        throw this.injected(`after ${plan.failAfter} tokens`);
      }
      return result;
    };
    return {
      draft: (edit: SequenceEdit, k: number): Promise<DraftResult> =>
        guarded(
          () => inner.draft(edit, k),
          (r) => r.tokens.length,
        ),
      verify: (edit: SequenceEdit, draft: readonly number[], o: VerifyOptions): Promise<VerifyResult> =>
        guarded(
          () => inner.verify(edit, draft, o),
          (r) => r.positions.length,
        ),
      close: () => inner.close(),
    };
  }

  get name(): string {
    return this.inner.name;
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  generate(request: GenerateRequest, signal: CancelSignal): AsyncIterable<TierEvent> {
    const plan = this.plan(this.settings());
    if (plan === undefined) return this.inner.generate(request, signal);
    return this.faulty(plan, request, signal);
  }

  private plan(s: FaultSettings): FaultPlan | undefined {
    const hit = (rate: number): boolean => rate > 0 && (rate >= 1 || this.random() < rate);
    const delay = hit(s.delayRate) ? s.delayMs : 0;
    const error = hit(s.errorRate);
    const failAfter = hit(s.failAfterTokensRate) ? s.failAfterTokens : undefined;
    const hangAfter = hit(s.hangRate) ? s.hangAfterTokens : undefined;
    if (delay === 0 && !error && failAfter === undefined && hangAfter === undefined) return undefined;
    return { delayMs: delay, error, failAfter, hangAfter };
  }

  private async *faulty(
    plan: FaultPlan,
    request: GenerateRequest,
    signal: CancelSignal,
  ): AsyncGenerator<TierEvent> {
    if (plan.delayMs > 0) {
      this.onFault('delay');
      await sleepUnlessCancelled(plan.delayMs, signal);
    }
    if (plan.error) {
      this.onFault('error');
      throw this.injected('before the first token');
    }
    if (plan.hangAfter === 0) return this.hang(signal);
    if (plan.failAfter === 0) {
      this.onFault('fail_after_tokens');
      throw this.injected('after 0 tokens');
    }
    let tokens = 0;
    // The first of hangAfter / failAfter still ahead: where the stream is cut.
    const cutAt = Math.min(plan.hangAfter ?? Infinity, plan.failAfter ?? Infinity);
    for await (const event of this.inner.generate(request, signal)) {
      if (event.kind !== 'tokens' || tokens + event.tokens.length < cutAt) {
        if (event.kind === 'tokens') tokens += event.tokens.length;
        yield event;
        continue;
      }
      // The cut falls inside this event: pass its tokens up to the cut, then fail or hang.
      yield firstTokens(event, cutAt - tokens);
      tokens = cutAt;
      if (tokens === plan.hangAfter) return this.hang(signal);
      // Returning from the loop ends the inner stream, which frees its slot, like a crash would.
      this.onFault('fail_after_tokens');
      throw this.injected(`after ${tokens} tokens`);
    }
  }

  /** Never resolves; ends (by throwing the abort reason) only when the caller aborts. */
  private async hang(signal: CancelSignal): Promise<void> {
    this.onFault('hang');
    await sleepUnlessCancelled(Number.POSITIVE_INFINITY, signal);
  }

  private injected(when: string): ResilienceError {
    return new ResilienceError(
      'TIERGATE_ERR_FAULT_INJECTED',
      `tier "${this.name}": injected fault ${when}`,
      this.name,
    );
  }

  score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    return this.inner.score(tokens, signal);
  }

  info(): TierInfo {
    return this.inner.info();
  }

  health(): TierHealth {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
