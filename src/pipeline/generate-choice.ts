import { IncrementalDetokenizer } from '../text/detokenizer.js';
import { StopMatcher } from '../text/stop-matcher.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { tokenText } from '../text/token-text.js';
import type { ChoiceEvent, GenerationRequest, TokenDetail } from './types.js';
import type { GenerateRequest, TierEvent, TokenEvent } from '../tiers/tier.js';

/** Counters the caller reads after (or during) the stream, for usage and metrics. */
export interface ChoiceStats {
  completionTokens: number;
  /** performance.now() of the first token and the last one, for TTFT and time per output token. */
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
}

/**
 * Egress for one choice (docs/architecture.md "A request's path", step 5), synchronously: detokenises a tier's events
 * incrementally, applies stop strings and turns them into text deltas with their tokens. It is
 * driven by whoever iterates the tier (execute.ts), so a request's events pass through one
 * async generator less per layer of the pipeline.
 */
export class ChoiceDecoder {
  /** True once the choice has finished (finish event, or a stop string): stop the tier now. */
  done = false;
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopMatcher;
  private readonly scanStops: boolean;
  private pendingTokens: TokenDetail[] = [];
  private previous: number | undefined;
  /** Not streamed: text (and token details) are held and delivered once, with the finish. */
  private held = '';

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly request: GenerationRequest,
    readonly index: number,
    private readonly stats: ChoiceStats,
    /** False when the client reads the whole answer at once: one delta per choice, not per token. */
    private readonly streamed = true,
  ) {
    this.detok = new IncrementalDetokenizer(tokenizer, request.promptTokens);
    this.stops = new StopMatcher(request.stop);
    this.scanStops = request.stop.length > 0;
    this.previous = request.promptTokens.at(-1);
  }

  /** What to ask the tier for this choice (its own seed: n > 1 gives different samples). */
  tierRequest(seed: number | undefined): GenerateRequest {
    const { request } = this;
    return {
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
      stopTokens: this.tokenizer.stopTokens,
      topLogprobs: request.logprobs ? request.topLogprobs : 0,
      logprobs: request.logprobs,
      requestId: request.requestId,
    };
  }

  /** The choice events for one tier event (none, a delta, and/or the finish). */
  push(event: TierEvent): ChoiceEvent[] {
    const { index, stops, detok, stats } = this;
    if (event.kind === 'finish') {
      this.done = true;
      const tail = stops.push(detok.flush());
      const text = this.held + (tail.stop === undefined ? tail.text + stops.flush() : tail.text);
      const finish: ChoiceEvent = {
        kind: 'finish',
        index,
        reason: tail.stop === undefined ? event.reason : 'stop',
      };
      if (text === '' && this.pendingTokens.length === 0) return [finish];
      return [{ kind: 'delta', index, text, tokens: this.pendingTokens }, finish];
    }
    const now = performance.now();
    stats.firstTokenAt ??= now;
    stats.lastTokenAt = now;
    // A tier may send several tokens in one event: the text of all of them is one delta.
    let text = '';
    for (let i = 0; i < event.tokens.length; i++) {
      const token = event.tokens[i]!;
      stats.completionTokens++;
      if (this.request.logprobs) this.pendingTokens.push(detail(this.tokenizer, event, i, this.previous));
      this.previous = token;
      // Without stop strings there is nothing to scan (and no result object per token).
      if (!this.scanStops) {
        text += detok.push(token);
        continue;
      }
      const scan = stops.push(detok.push(token));
      text += scan.text;
      if (scan.stop !== undefined) {
        // Tokens after a stop string in the same event are dropped, as if never generated.
        this.done = true;
        return [
          { kind: 'delta', index, text: this.held + text, tokens: this.pendingTokens },
          { kind: 'finish', index, reason: 'stop' },
        ];
      }
    }
    if (!this.streamed) {
      this.held += text;
      return NONE;
    }
    if (text === '') return NONE;
    const delta: ChoiceEvent = { kind: 'delta', index, text, tokens: this.pendingTokens };
    this.pendingTokens = [];
    return [delta];
  }
}

const NONE: ChoiceEvent[] = [];

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
