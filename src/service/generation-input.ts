import type { RouteOptions } from '../routing/route-options.js';
import type { ChatMessage } from '../text/tokenizer.js';
import type { CancelSignal } from '../tiers/cancellation.js';

/** The prompt as a transport received it: text, token ids, or chat messages. */
export type PromptInput =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'tokens'; readonly tokens: readonly number[] }
  | { readonly kind: 'messages'; readonly messages: readonly ChatMessage[] };

/** A request's own routing wishes: a policy, budgets, or a tier pinned by name. */
export interface RouteWishes extends RouteOptions {
  /** `x-tiergate-tier` / gRPC `route.tier`: bypasses routing for this tier. */
  readonly tier?: string | undefined;
}

/** Who asks, and when: what the service needs of the transport's view of a request. */
export interface Caller {
  readonly requestId: string;
  /** Name of the API key the request authenticated with (auth on). */
  readonly apiKey?: string | undefined;
  /** performance.now() at arrival, for TTFT and the latency budget. */
  readonly arrivedAt: number;
  /** Absolute deadline of the whole request (ms since the epoch), e.g. a gRPC deadline. */
  readonly deadline?: number | undefined;
  /** The client's W3C trace context (`traceparent`, `tracestate`), continued when tracing is on. */
  readonly traceContext?: Readonly<Record<string, string>> | undefined;
}

/**
 * One generation as any transport can give it (docs/architecture.md "A request's path"): the
 * HTTP handlers and the gRPC service each parse their wire format into this and nothing else.
 * Optional sampling fields take OpenAI's defaults.
 */
export interface GenerationInput {
  /** The served model name the client asked for. */
  readonly model: string;
  readonly prompt: PromptInput;
  readonly maxTokens?: number | null | undefined;
  /** The request field that carried maxTokens, named in errors (`max_completion_tokens`). */
  readonly maxTokensParam?: string | undefined;
  readonly temperature?: number | null | undefined;
  readonly topP?: number | null | undefined;
  readonly topK?: number | null | undefined;
  readonly seed?: number | null | undefined;
  readonly stop?: readonly string[] | undefined;
  readonly n?: number | null | undefined;
  /** Per-token logprobs with `top` alternatives; `param` names the field in errors. */
  readonly logprobs?: { readonly top: number; readonly param: string } | undefined;
  /** True when the client reads deltas as they come; false: one delta per choice at its end. */
  readonly stream: boolean;
  readonly route: RouteWishes;
  readonly caller: Caller;
  /** Fires when the caller is gone (client disconnect, cancelled call): the execution stops. */
  readonly signal?: CancelSignal | undefined;
}
