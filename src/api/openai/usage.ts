import type { Usage } from '../../pipeline/types.js';

/** OpenAI's usage object. */
export function usageBody(u: Usage): {
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
