import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../gateway/gateway.js';
import type { GenerationService } from '../../service/generation-service.js';
import { setRouteHeaders } from '../route-headers.js';
import type { ChoiceEvent, FinishReason, TokenDetail, Usage } from '../../pipeline/types.js';
import { jsonString } from '../../text/json-string.js';
import { tokenText } from '../../text/token-text.js';
import { responseId, servingFingerprint } from './ids.js';
import { generationInput, promptInput } from './normalise.js';
import { CompletionBodySchema, parseBody } from './request-schemas.js';
import { respond, type CollectedChoice, type Formatter, type ResponseBase } from './respond.js';
import { usageJson, withUsage } from './usage.js';

/** POST /v1/completions (https://platform.openai.com/docs/api-reference/completions). */
export function completionsRoute(app: FastifyInstance, service: GenerationService): void {
  const { gateway } = service;
  // Not an async function: a synchronous throw reaches the error handler all the same, and the
  // promise returned is respond's own (one promise and one microtask turn less per request).
  app.post('/v1/completions', (request, reply): Promise<void> => {
    const body = parseBody(CompletionBodySchema, request.body);
    const wantLogprobs = body.logprobs != null;
    const exec = service.generate(
      generationInput(
        request,
        body,
        promptInput(body.prompt),
        { value: body.max_tokens, param: 'max_tokens' },
        wantLogprobs ? { top: body.logprobs ?? 0, param: 'logprobs' } : undefined,
      ),
    );
    request.tiergate.execution = exec;
    setRouteHeaders(reply, exec);
    const base: ResponseBase = {
      id: responseId('cmpl'),
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      // Read when each chunk or the response is built: the tier serving by then. A function, not
      // an object-literal getter: V8 gives each such object its own hidden class, which lives in
      // old space and kept every request's objects alive across young-generation collections
      // (4 KB promoted per request; node --import tsx bench/gc-pipeline.ts shows the effect).
      fingerprint: () => servingFingerprint(gateway, exec),
    };
    const promptTokens = exec.request?.promptTokens ?? [];
    const echoText =
      body.echo === true ? gateway.tokenizer.detokenize(withoutBos(gateway, promptTokens)) : '';
    const options = {
      includeUsage: body.stream_options?.include_usage === true,
      coalesceMs: gateway.config.server.sseCoalesceMs,
    };
    const answer = (echoTokens: readonly TokenDetail[]): Promise<void> =>
      respond(
        request,
        reply,
        exec,
        new CompletionFormatter(base, echoText, echoTokens, wantLogprobs),
        options,
      );
    // Echo with logprobs also reports the prompt's tokens (how eval harnesses score a text).
    if (body.echo === true && wantLogprobs)
      return exec.scorePrompt().then((scores) => answer(promptDetails(gateway, promptTokens, scores)));
    return answer([]);
  });
}

/**
 * The echoed prompt's tokens with their logprobs, scored by the routed tier (the Tier contract's
 * `score`): each token given the ones before it; the first has none unless a BOS precedes it.
 * `score` reports no alternatives, so a prompt token's top_logprobs holds only itself.
 */
function promptDetails(
  gateway: Gateway,
  promptTokens: readonly number[],
  scores: Float64Array,
): TokenDetail[] {
  const from = promptTokens[0] === gateway.tokenizer.bos ? 1 : 0;
  const details: TokenDetail[] = [];
  for (let i = from; i < promptTokens.length; i++) {
    const token = promptTokens[i]!;
    // The first echoed token is decoded alone, as the echoed text starts with it.
    const text = tokenText(gateway.tokenizer, token, i === from ? undefined : promptTokens[i - 1]);
    // scores[i - 1] is the logprob of token i given tokens 0..i-1; NaN: no context to score.
    const logprob = i === 0 ? Number.NaN : scores[i - 1]!;
    details.push({ token, text, logprob, top: Number.isNaN(logprob) ? [] : [{ token, text, logprob }] });
  }
  return details;
}

function withoutBos(gateway: Gateway, tokens: readonly number[]): readonly number[] {
  return tokens[0] === gateway.tokenizer.bos ? tokens.slice(1) : tokens;
}

/** OpenAI's legacy completions logprobs object. */
function legacyLogprobs(tokens: readonly TokenDetail[], startOffset: number) {
  let offset = startOffset;
  const textOffset: number[] = [];
  for (const t of tokens) {
    textOffset.push(offset);
    offset += t.text.length;
  }
  // A token without a logprob (the first of an echoed prompt) reports null, as OpenAI does.
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => (Number.isNaN(t.logprob) ? null : t.logprob)),
    top_logprobs: tokens.map((t) =>
      Number.isNaN(t.logprob) ? null : Object.fromEntries(t.top.map((a) => [a.text, a.logprob])),
    ),
    text_offset: textOffset,
  };
}

/**
 * The completions endpoint's wire shapes. A class, not an object of closures: one object per
 * request. The whole (non-streamed) response is written as JSON text directly, in OpenAI's key
 * order; JSON.stringify walks a generic object, and this is the body of every request.
 */
export class CompletionFormatter implements Formatter {
  /** Streamed: the text offset each choice has reached (legacy logprobs' text_offset). */
  private offsets: Map<number, number> | undefined;

  constructor(
    private readonly base: ResponseBase,
    private readonly echoText: string,
    /** The echoed prompt's tokens, when logprobs were asked for with echo. */
    private readonly echoTokens: readonly TokenDetail[],
    private readonly logprobs: boolean,
  ) {}

  openingChunks(n: number): unknown[] {
    if (this.echoText === '') return [];
    return Array.from({ length: n }, (_, i) => this.choiceChunk(i, this.echoText, null, this.echoTokens));
  }

  deltaChunk(ev: Extract<ChoiceEvent, { kind: 'delta' }>): unknown {
    return this.choiceChunk(ev.index, ev.text, null, ev.tokens);
  }

  finishChunk(index: number, reason: FinishReason): unknown {
    return this.choiceChunk(index, '', reason, []);
  }

  usageChunk(u: Usage): unknown {
    return withUsage(this.envelope([]), u);
  }

  response(choices: readonly CollectedChoice[], u: Usage): string {
    const b = this.base;
    let json = `{"id":${jsonString(b.id)},"object":"text_completion","created":${b.created},"model":${jsonString(b.model)},"system_fingerprint":${jsonString(b.fingerprint())},"choices":[`;
    for (let i = 0; i < choices.length; i++) {
      const c = choices[i]!;
      const logprobs = !this.logprobs
        ? 'null'
        : JSON.stringify(
            this.echoTokens.length > 0
              ? legacyLogprobs([...this.echoTokens, ...c.tokens], 0)
              : legacyLogprobs(c.tokens, this.echoText.length),
          );
      json += `${i === 0 ? '' : ','}{"text":${jsonString(this.echoText + c.text)},"index":${c.index},"logprobs":${logprobs},"finish_reason":${jsonString(c.finishReason)}}`;
    }
    return `${json}],"usage":${usageJson(u)}}`;
  }

  private choiceChunk(
    index: number,
    text: string,
    finish: FinishReason | null,
    tokens: readonly TokenDetail[],
  ) {
    const offsets = (this.offsets ??= new Map());
    const start = offsets.get(index) ?? 0;
    offsets.set(index, start + text.length);
    return this.envelope([
      { text, index, logprobs: this.logprobs ? legacyLogprobs(tokens, start) : null, finish_reason: finish },
    ]);
  }

  /** What every chunk repeats, in OpenAI's key order, around its choices. */
  private envelope(choices: unknown[]) {
    const b = this.base;
    return {
      id: b.id,
      object: 'text_completion',
      created: b.created,
      model: b.model,
      system_fingerprint: b.fingerprint(),
      choices,
    };
  }
}
