/**
 * Messages between a worker-pooled tier (main thread) and its inference workers, shared by the
 * ONNX and TensorFlow.js tiers: plain structured-clone data. Token events go out once per decode
 * step for the whole batch, so the message rate is per step, not per sequence.
 */
import type { DraftResult, SequenceEdit, VerifyOptions, VerifyResult } from '../kept-sequence.js';
import type { SamplingParams, TierFinishReason, TokenLogprob } from '../tier.js';

/** What every inference worker receives besides its tier's own init (see run-gate.ts). */
export interface HostInit {
  /** The run gate's shared memory: run state, last sign of life, the current run's start. */
  readonly gate: SharedArrayBuffer;
  /** How often the worker's event loop writes a heartbeat into the gate. */
  readonly heartbeatMs: number;
}

export interface SequenceRequest {
  readonly id: number;
  readonly tokens: readonly number[];
  readonly sampling: SamplingParams;
  readonly maxTokens: number;
  readonly stopTokens: readonly number[];
  readonly topLogprobs: number;
  /** False: the caller reads no logprobs, so an engine may skip the per-token softmax (NaN). */
  readonly logprobs?: boolean | undefined;
}

/**
 * Test-only faults a worker can be told to inject (WorkerPool.injectFault; no API route or config
 * key reaches them): block the worker's event loop for `ms` (`inRun`: while the gate says it is in
 * a run, as a native call that does not return would), throw an uncaught exception between runs,
 * or call process.exit.
 */
export type WorkerFault =
  | { readonly kind: 'freeze'; readonly ms: number; readonly inRun?: boolean | undefined }
  | { readonly kind: 'throw' }
  | { readonly kind: 'exit'; readonly code: number };

/** One call on a kept sequence (src/tiers/kept-sequence.ts): edit its cache, then draft or verify. */
export type KeptCall =
  | { readonly op: 'draft'; readonly edit: SequenceEdit; readonly k: number }
  | {
      readonly op: 'verify';
      readonly edit: SequenceEdit;
      readonly draft: readonly number[];
      readonly options: VerifyOptions;
    };

export type KeptReply = DraftResult | VerifyResult;

/** Kept-sequence messages: a sequence whose cache stays in the worker between calls. */
export type KeptMessage =
  | { readonly type: 'kept-open'; readonly id: number; readonly stopTokens: readonly number[] }
  | { readonly type: 'kept-call'; readonly id: number; readonly call: number; readonly request: KeptCall }
  | { readonly type: 'kept-close'; readonly id: number };

export type MainToWorker =
  | KeptMessage
  | { readonly type: 'generate'; readonly request: SequenceRequest }
  | { readonly type: 'cancel'; readonly id: number }
  | { readonly type: 'score'; readonly id: number; readonly tokens: readonly number[] }
  | { readonly type: 'fault'; readonly fault: WorkerFault }
  /** Stop after the current step: no further run starts (the main thread then terminates it). */
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

/** Messages a worker's engine emits while serving. */
export type EngineMessage =
  /** Events of one scheduler round; `batchSize` sequences ran in its decode step (0: none). */
  | { readonly type: 'events'; readonly batchSize: number; readonly events: readonly SequenceEvent[] }
  | { readonly type: 'scored'; readonly id: number; readonly logprobs: Float64Array }
  | { readonly type: 'score-error'; readonly id: number; readonly message: string }
  | { readonly type: 'kept-result'; readonly id: number; readonly call: number; readonly result: KeptReply }
  | { readonly type: 'kept-error'; readonly id: number; readonly call: number; readonly message: string };

/** Everything a worker sends; `R` is what its tier learns at start (the decoder's shape). */
export type WorkerToMain<R> =
  | { readonly type: 'ready'; readonly ready: R }
  | { readonly type: 'fatal'; readonly code: string; readonly message: string }
  | EngineMessage;
