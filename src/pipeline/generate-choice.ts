import type { Tier } from '../tiers/tier.js';

/** What generates one choice: a Tier, or the resilience executor standing in front of several. */
export type GenerationSource = Pick<Tier, 'name' | 'generate'>;
import { IncrementalDetokenizer } from '../text/detokenizer.js';
import { StopMatcher } from '../text/stop-matcher.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { tokenText } from '../text/token-text.js';
import type { ChoiceEvent, GenerationRequest, TokenDetail } from './types.js';
import { type CancelSignal } from '../tiers/cancellation.js';
import type { TokenEvent } from '../tiers/tier.js';

/** Counters the caller reads after (or during) the stream, for usage and metrics. */
export interface ChoiceStats {
  completionTokens: number;
  /** performance.now() of the first token and the last one, for TTFT and time per output token. */
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
}

/**
 * Egress for one choice (DESIGN.md step 5): runs the tier, detokenises incrementally, applies
 * stop strings and yields text deltas with their tokens. Returning early (client gone, stop
 * string found) ends the tier's generator, which frees its slot.
 */
export async function* generateChoice(
  // The resilient executor (src/resilience/executor.ts) runs the request's attempt list behind
  // this `generate`: breakers, admission, retries and mid-stream continuation across tiers.
  tier: GenerationSource,
  tokenizer: Tokenizer,
  request: GenerationRequest,
  index: number,
  seed: number | undefined,
  stats: ChoiceStats,
  signal: CancelSignal,
  /** False when the client reads the whole answer at once: one delta per choice, not per token. */
  streamed = true,
): AsyncGenerator<ChoiceEvent> {
  const detok = new IncrementalDetokenizer(tokenizer, request.promptTokens);
  const stops = new StopMatcher(request.stop);
  let pendingTokens: TokenDetail[] = [];
  const events = tier.generate(
    {
      tokens: request.promptTokens,
      // Built field by field: an object spread here made V8 keep these per-request objects alive
      // across young-generation collections (node --import tsx bench/gc-pipeline.ts shows it).
      sampling: {
        temperature: request.sampling.temperature,
        topP: request.sampling.topP,
        topK: request.sampling.topK,
        seed,
      },
      maxTokens: request.maxTokens,
      stopTokens: tokenizer.stopTokens,
      topLogprobs: request.logprobs ? request.topLogprobs : 0,
      logprobs: request.logprobs,
      requestId: request.requestId,
    },
    signal,
  );
  let previous = request.promptTokens.at(-1);
  // Not streamed: text (and token details) are held and delivered once, with the finish.
  let held = '';
  for await (const event of events) {
    if (event.kind === 'finish') {
      const tail = stops.push(detok.flush());
      const text = held + (tail.stop === undefined ? tail.text + stops.flush() : tail.text);
      if (text !== '' || pendingTokens.length > 0) {
        yield { kind: 'delta', index, text, tokens: pendingTokens };
      }
      yield { kind: 'finish', index, reason: tail.stop === undefined ? event.reason : 'stop' };
      return;
    }
    const now = performance.now();
    stats.firstTokenAt ??= now;
    stats.lastTokenAt = now;
    // A tier may send several tokens in one event: the text of all of them is one delta.
    let text = '';
    for (let i = 0; i < event.tokens.length; i++) {
      const token = event.tokens[i]!;
      stats.completionTokens++;
      if (request.logprobs) pendingTokens.push(detail(tokenizer, event, i, previous));
      previous = token;
      const scan = stops.push(detok.push(token));
      text += scan.text;
      if (scan.stop !== undefined) {
        // Tokens after a stop string in the same event are dropped, as if never generated.
        yield { kind: 'delta', index, text: held + text, tokens: pendingTokens };
        yield { kind: 'finish', index, reason: 'stop' };
        return;
      }
    }
    if (!streamed) held += text;
    else if (text !== '') {
      yield { kind: 'delta', index, text, tokens: pendingTokens };
      pendingTokens = [];
    }
  }
  // The Tier contract ends every stream with a finish event; a tier that does not is broken.
  throw new Error(`tier "${tier.name}" ended its stream without a finish event`);
}

function detail(
  tokenizer: Tokenizer,
  event: TokenEvent,
  i: number,
  previous: number | undefined,
): TokenDetail {
  const token = event.tokens[i]!;
  return {
    token,
    text: tokenText(tokenizer, token, previous),
    logprob: event.logprobs[i]!,
    top: (event.top?.[i] ?? []).map((t) => ({
      token: t.token,
      text: tokenText(tokenizer, t.token, previous),
      logprob: t.logprob,
    })),
  };
}
