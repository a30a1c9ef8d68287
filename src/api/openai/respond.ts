import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway, ServedModel } from '../../gateway/gateway.js';
import { execute, type ExecutionSummary } from '../../pipeline/execute.js';
import type {
  ChoiceEvent,
  FinishReason,
  GenerationRequest,
  TokenDetail,
  Usage,
} from '../../pipeline/types.js';
import { ApiError, toApiError } from '../errors.js';
import { SseWriter } from '../sse.js';
import { Cancellation } from '../../tiers/cancellation.js';
import { newExecutionRecord, ResilientGeneration } from '../../resilience/executor.js';
import { resilienceFields, setStreamResilienceHeaders } from '../../resilience/response-fields.js';

/** One finished choice, for non-streamed responses. */
export interface CollectedChoice {
  readonly index: number;
  text: string;
  tokens: TokenDetail[];
  finishReason: FinishReason;
}

/** Turns pipeline events into one endpoint's wire shapes (completions or chat). */
export interface Formatter {
  /** Chunks sent before any generated text (chat: the assistant role; completions: echoed prompt). */
  openingChunks(n: number): unknown[];
  deltaChunk(event: Extract<ChoiceEvent, { kind: 'delta' }>): unknown;
  finishChunk(index: number, reason: FinishReason): unknown;
  usageChunk(usage: Usage): unknown;
  response(choices: readonly CollectedChoice[], usage: Usage): unknown;
}

/**
 * Runs a prepared request and answers it, streamed (SSE) or whole. The first event is awaited
 * before any byte is written, so failures before the first token (tier busy, tier down) still
 * get a proper HTTP status; later failures end the stream with an error event.
 */
export async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  gateway: Gateway,
  served: ServedModel,
  gen: GenerationRequest,
  formatter: Formatter,
  options: { stream: boolean; includeUsage: boolean },
): Promise<void> {
  const ctx = request.tiergate;
  ctx.stream = options.stream;
  ctx.promptTokens = gen.promptTokens.length;
  const client = new Cancellation();
  // The response's 'close' before it finished means the client went away: stop generating now.
  // (Called by the request's one 'close' listener, request-context.ts.)
  ctx.onClientGone = (): void => client.abort(new ApiError('invalid_request', 'client disconnected'));
  // Shutdown is forwarded into the request's own cancellation (registered just before the try
  // below, removed in its finally).
  const shutdown = gateway.shutdownSignal;
  const onShutdown = (): void => client.abort(shutdown.reason);
  const signal = client.signal;
  const summary: ExecutionSummary = { completionTokens: 0, ttftMs: undefined, aborted: false };
  // Routing may have chosen another tier than the model's (gen.tier).
  const tier = gateway.tiers.get(gen.tier) ?? served.tier;
  // The resilience executor runs the attempt list (breakers, admission, retries, continuation).
  const resilient = new ResilientGeneration(
    gateway.resilience,
    gen.attempts ?? gateway.resilience.defaultAttempts(tier.name),
    newExecutionRecord(),
    gen.deadline,
  );
  ctx.resilience = resilient.record;
  // Only a request served by one tier teaches that tier's latency model (a continuation's
  // timings mix two tiers).
  const events = execute(
    resilient,
    gateway.tokenizer,
    gateway.metrics,
    gen,
    signal,
    summary,
    (o) => {
      const by = resilient.record.servedBy;
      if (by.length === 1 && by[0] !== undefined) gateway.router.observe(by[0], o);
    },
    options.stream,
  );
  const usage = (): Usage => ({
    promptTokens: gen.promptTokens.length * gen.n,
    completionTokens: summary.completionTokens,
  });
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener('abort', onShutdown, { once: true });
  try {
    // Once aborted, the reason (client gone, shutdown) is the error, not whatever the tier threw.
    const first = await events.next().catch((err: unknown) => {
      throw signal.aborted ? signal.reason : err;
    });
    if (options.stream) {
      // Headers leave with the first chunk; a whole answer sets them once, at the end.
      setStreamResilienceHeaders(reply, resilient.record);
      const sse = new SseWriter(reply);
      try {
        for (const chunk of formatter.openingChunks(gen.n)) await sse.send(chunk);
        for (let r = first; !r.done; r = await events.next()) {
          if (sse.closed) break;
          const ev = r.value;
          if (ev.kind === 'delta') {
            await sse.send(formatter.deltaChunk(ev));
          } else {
            ctx.finishReason = ev.reason;
            await sse.send(formatter.finishChunk(ev.index, ev.reason));
          }
        }
        if (options.includeUsage && !sse.closed) await sse.send(formatter.usageChunk(usage()));
      } catch (err) {
        // Headers are gone; OpenAI's convention is an error object as the last event.
        const apiError = toApiError(signal.aborted ? signal.reason : err);
        if (apiError.kind === 'internal') request.log.error({ err }, 'stream failed');
        ctx.errorCode = apiError.code ?? apiError.type;
        await sse.send(apiError.toBody());
      } finally {
        // A mid-stream continuation happens after the headers left: report it in trailers.
        if (!sse.closed) reply.raw.addTrailers(resilienceFields(resilient.record));
        sse.end();
      }
    } else {
      const choices = new Map<number, CollectedChoice>();
      const next = () =>
        events.next().catch((err: unknown) => {
          throw signal.aborted ? signal.reason : err;
        });
      for (let r = first; !r.done; r = await next()) {
        const ev = r.value;
        let choice = choices.get(ev.index);
        if (choice === undefined) {
          choice = { index: ev.index, text: '', tokens: [], finishReason: 'length' };
          choices.set(ev.index, choice);
        }
        if (ev.kind === 'delta') {
          choice.text += ev.text;
          choice.tokens.push(...ev.tokens);
        } else {
          choice.finishReason = ev.reason;
          ctx.finishReason = ev.reason;
        }
      }
      const ordered = [...choices.values()].sort((a, b) => a.index - b.index);
      void reply.headers(resilienceFields(resilient.record));
      await reply.send(formatter.response(ordered, usage()));
    }
  } finally {
    await events.return(undefined);
    ctx.onClientGone = undefined;
    shutdown.removeEventListener('abort', onShutdown);
    ctx.completionTokens = summary.completionTokens;
    ctx.ttftMs = summary.ttftMs;
    ctx.aborted = summary.aborted;
  }
}
