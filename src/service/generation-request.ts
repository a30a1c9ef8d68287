import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/gateway-error.js';
import { budgetFor } from '../pipeline/prepare.js';
import type { GenerationRequest } from '../pipeline/types.js';
import type { RoutePlan } from '../routing/plan.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { Tier } from '../tiers/tier.js';
import type { GenerationInput } from './generation-input.js';

const NO_STOP: readonly string[] = [];

/**
 * The request limits (stop strings, choices, logprobs, context and max tokens) checked against
 * the tier routing chose, and the GenerationRequest the pipeline runs: OpenAI's defaults for
 * sampling, the plan's attempts when the engine made it (a static or pinned plan keeps the
 * tier's configured fallbacks), and the caller's deadline.
 */
export function buildGenerationRequest(
  config: Config,
  tokenizer: Tokenizer,
  tier: Tier,
  input: GenerationInput,
  promptTokens: readonly number[],
  plan: RoutePlan,
): GenerationRequest {
  const { limits } = config;
  const stop = input.stop ?? NO_STOP;
  if (stop.length > limits.maxStopSequences) {
    throw new GatewayError('bad_request', `At most ${limits.maxStopSequences} stop sequences are allowed.`, {
      param: 'stop',
    });
  }
  if (stop.some((s) => s === '')) {
    throw new GatewayError('bad_request', 'Stop sequences must not be empty.', { param: 'stop' });
  }
  const n = input.n ?? 1;
  if (n > limits.maxChoices) {
    throw new GatewayError('bad_request', `'n' must be at most ${limits.maxChoices} (got ${n}).`, {
      param: 'n',
    });
  }
  const logprobs = input.logprobs;
  if (logprobs !== undefined && logprobs.top > limits.maxTopLogprobs) {
    throw new GatewayError('bad_request', `'${logprobs.param}' must be at most ${limits.maxTopLogprobs}.`, {
      param: logprobs.param,
    });
  }
  const budget = budgetFor(
    config,
    tier,
    tokenizer,
    promptTokens,
    input.maxTokens,
    input.maxTokensParam ?? 'max_tokens',
  );
  const engine = plan.code !== 'static' && plan.code !== 'override';
  // Built field by field, not with spreads: per-request copies made V8 keep such objects alive
  // across young-generation collections (docs/gateway.md, first round of the benchmark).
  return {
    requestId: input.caller.requestId,
    model: input.model,
    tier: tier.name,
    promptTokens,
    maxTokens: budget.maxTokens,
    sampling: {
      // OpenAI's default temperature and top_p are 1.
      temperature: input.temperature ?? 1,
      topP: input.topP ?? 1,
      topK: input.topK ?? 0,
      seed: input.seed ?? undefined,
    },
    stop,
    n,
    logprobs: logprobs !== undefined,
    topLogprobs: logprobs?.top ?? 0,
    arrivedAt: input.caller.arrivedAt,
    attempts: engine ? plan.attempts : undefined,
    deadline: input.caller.deadline,
  };
}
