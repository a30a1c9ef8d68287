/**
 * Messages between the TfjsTier (main thread) and its inference workers: plain structured-clone
 * data. As in the ONNX tier (src/tiers/onnx/worker-protocol.ts), token events go out once per
 * decode step for the whole batch, so the message rate is per step, not per sequence.
 */
import type { SamplingParams, TierFinishReason, TokenLogprob } from '../tier.js';
import type { LlamaShape } from './llama-weights.js';

export interface WorkerInit {
  /** The F32 or F16 GGUF the weights are read from. */
  readonly modelPath: string;
  /** Asked of the wasm backend (setThreadsCount); see wasm-backend.ts for what Node allows. */
  readonly threads: number;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Tokens per sequence (prompt + generated). */
  readonly contextLength: number;
}

/** What a worker reports once its model is loaded. */
export interface WorkerReady {
  readonly shape: LlamaShape;
  /** Threads the wasm backend really computes with. */
  readonly threads: number;
  readonly simd: boolean;
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
  | { readonly type: 'ready'; readonly ready: WorkerReady }
  | {
      readonly type: 'fatal';
      readonly code: 'TG_TFJS_MODEL_INVALID' | 'TG_TFJS_WORKER_FAILED';
      readonly message: string;
    }
  /** Events of one scheduler round; `batchSize` sequences ran in its decode step (0: none). */
  | { readonly type: 'events'; readonly batchSize: number; readonly events: readonly SequenceEvent[] }
  | { readonly type: 'scored'; readonly id: number; readonly logprobs: Float64Array }
  | { readonly type: 'score-error'; readonly id: number; readonly message: string };
