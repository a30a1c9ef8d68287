/**
 * Messages between the OnnxTier (main thread) and its inference workers. Plain structured-clone
 * data only. Token events are sent once per decoder step for the whole batch, so the message rate
 * is per step, not per sequence.
 */
import type { SamplingParams, TierFinishReason, TokenLogprob } from '../tier.js';
import type { DecoderSpec } from './decoder-spec.js';

export interface WorkerInit {
  readonly modelPath: string;
  readonly intraOpThreads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  readonly contextLength: number;
}

export interface SequenceRequest {
  readonly id: number;
  readonly tokens: readonly number[];
  readonly sampling: SamplingParams;
  readonly maxTokens: number;
  readonly stopTokens: readonly number[];
  readonly topLogprobs: number;
}

export type MainToWorker =
  | { readonly type: 'generate'; readonly request: SequenceRequest }
  | { readonly type: 'cancel'; readonly id: number }
  | { readonly type: 'score'; readonly id: number; readonly tokens: readonly number[] }
  | { readonly type: 'close' };

export type SequenceEvent =
  | {
      readonly id: number;
      readonly kind: 'token';
      readonly token: number;
      readonly logprob: number;
      readonly top?: readonly TokenLogprob[] | undefined;
    }
  | { readonly id: number; readonly kind: 'finish'; readonly reason: TierFinishReason }
  | { readonly id: number; readonly kind: 'error'; readonly message: string };

export type WorkerToMain =
  | { readonly type: 'ready'; readonly spec: DecoderSpec }
  | { readonly type: 'fatal'; readonly code: string; readonly message: string }
  /** Events of one scheduler round; `batchSize` sequences ran in its decode step (0: none). */
  | { readonly type: 'events'; readonly batchSize: number; readonly events: readonly SequenceEvent[] }
  | { readonly type: 'scored'; readonly id: number; readonly logprobs: Float64Array }
  | { readonly type: 'score-error'; readonly id: number; readonly message: string };
