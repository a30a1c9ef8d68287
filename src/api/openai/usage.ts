import type { Usage } from '../../pipeline/types.js';

/** OpenAI's usage object. */
function usageBody(u: Usage): {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
} {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** The same object as JSON text (whole responses are written as text: see CompletionFormatter). */
export function usageJson(u: Usage): string {
  return `{"prompt_tokens":${u.promptTokens},"completion_tokens":${u.completionTokens},"total_tokens":${u.promptTokens + u.completionTokens}}`;
}

/** The stream's last chunk: a chunk's envelope (no choices) with the usage after them. */
export function withUsage<T extends object>(
  envelope: T,
  u: Usage,
): T & { usage: ReturnType<typeof usageBody> } {
  return Object.assign(envelope, { usage: usageBody(u) });
}
