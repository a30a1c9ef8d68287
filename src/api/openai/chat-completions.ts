import type { FastifyInstance } from 'fastify';
import type { GenerationService } from '../../service/generation-service.js';
import type { ChoiceEvent, FinishReason, TokenDetail, Usage } from '../../pipeline/types.js';
import { jsonString } from '../../text/json-string.js';
import { responseId, servingFingerprint } from './ids.js';
import { setRouteHeaders } from '../route-headers.js';
import { generationInput, toMessages } from './normalise.js';
import { ChatBodySchema, parseBody } from './request-schemas.js';
import { respond, type CollectedChoice, type Formatter, type ResponseBase } from './respond.js';
import { usageJson, withUsage } from './usage.js';

/** POST /v1/chat/completions (https://platform.openai.com/docs/api-reference/chat). */
export function chatCompletionsRoute(app: FastifyInstance, service: GenerationService): void {
  const { gateway } = service;
  // Not an async function: see completions.ts.
  app.post('/v1/chat/completions', (request, reply): Promise<void> => {
    const body = parseBody(ChatBodySchema, request.body);
    const wantLogprobs = body.logprobs === true;
    const exec = service.generate(
      generationInput(
        request,
        body,
        { kind: 'messages', messages: toMessages(body.messages) },
        body.max_completion_tokens != null
          ? { value: body.max_completion_tokens, param: 'max_completion_tokens' }
          : { value: body.max_tokens, param: 'max_tokens' },
        wantLogprobs ? { top: body.top_logprobs ?? 0, param: 'top_logprobs' } : undefined,
      ),
    );
    request.tiergate.execution = exec;
    setRouteHeaders(reply, exec);
    const base: ResponseBase = {
      id: responseId('chatcmpl'),
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      // Read when each chunk or the response is built: the tier serving by then (a function, not
      // a getter: see completions.ts).
      fingerprint: () => servingFingerprint(gateway, exec),
    };
    return respond(request, reply, exec, new ChatFormatter(base, wantLogprobs), {
      includeUsage: body.stream_options?.include_usage === true,
      coalesceMs: gateway.config.server.sseCoalesceMs,
    });
  });
}

function bytesOf(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

function chatLogprobs(tokens: readonly TokenDetail[]) {
  return {
    content: tokens.map((t) => ({
      token: t.text,
      logprob: t.logprob,
      bytes: bytesOf(t.text),
      top_logprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob, bytes: bytesOf(a.text) })),
    })),
    refusal: null,
  };
}

/**
 * The chat endpoint's wire shapes: one object per request, the whole response written as JSON
 * text in OpenAI's key order (see CompletionFormatter in completions.ts).
 */
export class ChatFormatter implements Formatter {
  constructor(
    private readonly base: ResponseBase,
    private readonly logprobs: boolean,
  ) {}

  openingChunks(n: number): unknown[] {
    return Array.from({ length: n }, (_, i) => this.chunk(i, { role: 'assistant', content: '' }, null, []));
  }

  deltaChunk(ev: Extract<ChoiceEvent, { kind: 'delta' }>): unknown {
    return this.chunk(ev.index, { content: ev.text }, null, ev.tokens);
  }

  finishChunk(index: number, reason: FinishReason): unknown {
    return this.chunk(index, {}, reason, []);
  }

  usageChunk(u: Usage): unknown {
    return withUsage(this.envelope([]), u);
  }

  response(choices: readonly CollectedChoice[], u: Usage): string {
    const b = this.base;
    let json = `{"id":${jsonString(b.id)},"created":${b.created},"model":${jsonString(b.model)},"system_fingerprint":${jsonString(b.fingerprint())},"object":"chat.completion","choices":[`;
    for (let i = 0; i < choices.length; i++) {
      const c = choices[i]!;
      const logprobs = this.logprobs ? JSON.stringify(chatLogprobs(c.tokens)) : 'null';
      json += `${i === 0 ? '' : ','}{"index":${c.index},"message":{"role":"assistant","content":${jsonString(c.text)},"refusal":null},"logprobs":${logprobs},"finish_reason":${jsonString(c.finishReason)}}`;
    }
    return `${json}],"usage":${usageJson(u)}}`;
  }

  private chunk(
    index: number,
    delta: Record<string, unknown>,
    finish: FinishReason | null,
    tokens: readonly TokenDetail[],
  ) {
    return this.envelope([
      {
        index,
        delta,
        logprobs: this.logprobs && tokens.length > 0 ? chatLogprobs(tokens) : null,
        finish_reason: finish,
      },
    ]);
  }

  /** What every chunk repeats, in OpenAI's key order, around its choices. */
  private envelope(choices: unknown[]) {
    const b = this.base;
    return {
      id: b.id,
      created: b.created,
      model: b.model,
      system_fingerprint: b.fingerprint(),
      object: 'chat.completion.chunk',
      choices,
    };
  }
}
