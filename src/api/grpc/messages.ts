/**
 * Message shapes of proto/tiergate/v1/gateway.proto as proto-loader presents them (camelCase,
 * enums as names, 64-bit as numbers, defaults filled in, oneof names set). proto3 `optional`
 * fields and sub-messages may arrive as undefined or null when absent.
 */
export interface RouteOptionsMessage {
  policy: string;
  latencyBudgetMs?: number | null;
  accuracyFloor?: number | null;
  tier: string;
}

export interface GenerationOptionsMessage {
  maxTokens?: number | null;
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  seed?: number | null;
  stop: string[];
  n?: number | null;
  route?: RouteOptionsMessage | null;
}

export interface CompletionRequestMessage {
  model: string;
  input?: 'prompt' | 'promptTokens';
  prompt?: string;
  promptTokens?: { ids: number[] } | null;
  options?: GenerationOptionsMessage | null;
}

export interface ChatRequestMessage {
  model: string;
  messages: { role: string; content: string }[];
  options?: GenerationOptionsMessage | null;
}

export interface ExplainRequestMessage {
  model: string;
  input?: 'prompt' | 'promptTokens';
  prompt?: string;
  promptTokens?: { ids: number[] } | null;
  maxTokens?: number | null;
  route?: RouteOptionsMessage | null;
  messages: { role: string; content: string }[];
}

export interface UsageMessage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface RouteInfoMessage {
  policy: string;
  code: string;
  reason: string;
  tier: string;
  servedBy: string[];
  budgetsNotApplied: string;
  continuedFrom: string;
}

export interface CompletionResponseMessage {
  id: string;
  model: string;
  choices: { index: number; text: string; finishReason: string }[];
  usage: UsageMessage;
  route: RouteInfoMessage;
}

export interface CompletionChunkMessage {
  id: string;
  index: number;
  text: string;
  finishReason: string;
  usage: UsageMessage | null;
  route: RouteInfoMessage | null;
}
