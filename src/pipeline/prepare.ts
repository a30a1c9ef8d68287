import { GatewayError } from '../errors/gateway-error.js';
import type { Config } from '../config/index.js';
import type { Tier } from '../tiers/tier.js';
import type { Tokenizer } from '../text/tokenizer.js';

export interface Budget {
  readonly maxTokens: number;
  readonly contextLength: number;
}

/**
 * Checks a tokenised prompt against the tier's context and the configured limits, and settles
 * max_tokens (docs/architecture.md, step 2 of a request's path). Errors name the limit, as OpenAI's do.
 */
export function budgetFor(
  config: Config,
  tier: Tier,
  tokenizer: Tokenizer,
  promptTokens: readonly number[],
  requestedMaxTokens: number | null | undefined,
  maxTokensParam: string,
): Budget {
  const contextLength = tier.info().contextLength || tokenizer.trainContextLength || Number.MAX_SAFE_INTEGER;
  const prompt = promptTokens.length;
  if (prompt === 0)
    throw new GatewayError('bad_request', 'The prompt must not be empty.', { param: 'prompt' });
  const bad = promptTokens.find((t) => t >= tokenizer.vocabSize || t < 0);
  if (bad !== undefined && tokenizer.vocabSize > 0) {
    throw new GatewayError(
      'bad_request',
      `Token id ${bad} is outside the vocabulary (size ${tokenizer.vocabSize}).`,
      { param: 'prompt' },
    );
  }
  if (requestedMaxTokens != null && requestedMaxTokens > config.limits.maxTokens) {
    throw new GatewayError(
      'bad_request',
      `'${maxTokensParam}' is too large: ${requestedMaxTokens}. This server allows at most ${config.limits.maxTokens}.`,
      { param: maxTokensParam },
    );
  }
  if (
    prompt >= contextLength ||
    (requestedMaxTokens != null && prompt + requestedMaxTokens > contextLength)
  ) {
    const want = requestedMaxTokens ?? 0;
    throw new GatewayError(
      'context_length',
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${prompt + want} tokens ` +
        `(${prompt} in the messages, ${want} in the completion). Please reduce the length of the messages or completion.`,
      { param: requestedMaxTokens != null && prompt < contextLength ? maxTokensParam : 'messages' },
    );
  }
  const maxTokens = requestedMaxTokens ?? Math.min(config.limits.defaultMaxTokens, contextLength - prompt);
  return { maxTokens, contextLength };
}
