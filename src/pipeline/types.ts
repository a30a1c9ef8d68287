import type { SamplingParams } from '../tiers/tier.js';

/**
 * A request after ingress: validated, normalised, tokenised — the same for completions and chat,
 * and for any future transport (gRPC).
 */
export interface GenerationRequest {
  readonly requestId: string;
  /** The served model name the client asked for. */
  readonly model: string;
  /** The tier chosen for it. */
  readonly tier: string;
  readonly promptTokens: readonly number[];
  readonly maxTokens: number;
  readonly sampling: SamplingParams;
  readonly stop: readonly string[];
  /** Number of choices to generate. */
  readonly n: number;
  /** Alternatives per token to report (0 = none), and whether to report logprobs at all. */
  readonly logprobs: boolean;
  readonly topLogprobs: number;
  /** When the request arrived (performance.now()), for TTFT. */
  readonly arrivedAt: number;
  /**
   * Ordered attempts (chosen tier first, then fallbacks; a RoutePlan's `attempts`) for the
   * resilience executor; default: the tier and its `resilience` fallbacks.
   */
  readonly attempts?: readonly { readonly tier: string; readonly deadlineMs: number }[] | undefined;
  /** Absolute deadline of the whole request (ms since the epoch); default: resilience.requestTimeoutMs. */
  readonly deadline?: number | undefined;
}

export interface TokenDetail {
  readonly token: number;
  readonly text: string;
  readonly logprob: number;
  readonly top: readonly { readonly token: number; readonly text: string; readonly logprob: number }[];
}

/** What the pipeline emits for one choice: text deltas, then exactly one finish. */
export type ChoiceEvent =
  | {
      readonly kind: 'delta';
      readonly index: number;
      readonly text: string;
      readonly tokens: readonly TokenDetail[];
    }
  | { readonly kind: 'finish'; readonly index: number; readonly reason: FinishReason };

/** OpenAI's finish reasons that this gateway produces. */
export type FinishReason = 'stop' | 'length';

export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/**
 * `gen` with the plan's attempts. Built field by field, not with a spread: a spread copy of a
 * per-request object made V8 keep such objects alive across young-generation collections (see
 * generate-choice.ts). test/pipeline/types.test.ts checks that no field is lost.
 */
export function withAttempts(
  gen: GenerationRequest,
  attempts: GenerationRequest['attempts'],
): GenerationRequest {
  return {
    requestId: gen.requestId,
    model: gen.model,
    tier: gen.tier,
    promptTokens: gen.promptTokens,
    maxTokens: gen.maxTokens,
    sampling: gen.sampling,
    stop: gen.stop,
    n: gen.n,
    logprobs: gen.logprobs,
    topLogprobs: gen.topLogprobs,
    arrivedAt: gen.arrivedAt,
    attempts,
    deadline: gen.deadline,
  };
}
