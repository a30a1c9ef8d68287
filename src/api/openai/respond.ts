import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway, ServedModel } from '../../gateway/gateway.js';
import { execute, type ChoiceEventHandler, type ExecutionSummary } from '../../pipeline/execute.js';
import type {
  ChoiceEvent,
  FinishReason,
  GenerationRequest,
  TokenDetail,
  Usage,
} from '../../pipeline/types.js';
import { ApiError, toApiError } from '../errors.js';
import { SseWriter } from '../sse.js';
import { DeltaMerger } from '../delta-merger.js';
import { Cancellation, type CancelSignal } from '../../tiers/cancellation.js';
import { newExecutionRecord, ResilientGeneration, type ExecutionRecord } from '../../resilience/executor.js';
import type { LatencyObservation } from '../../routing/latency-model.js';
import type { RequestContext } from '../request-context.js';
import {
  resilienceFields,
  setResilienceHeaders,
  setStreamResilienceHeaders,
} from '../../resilience/response-fields.js';

/** One finished choice, for non-streamed responses. */
export interface CollectedChoice {
  readonly index: number;
  text: string;
  tokens: TokenDetail[];
  finishReason: FinishReason;
}

/** What every response object and chunk of one request repeats. */
export interface ResponseBase {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
  /** The system_fingerprint to send now (the tier serving by then). */
  readonly fingerprint: () => string;
}

/** Turns pipeline events into one endpoint's wire shapes (completions or chat). */
export interface Formatter {
  /** Chunks sent before any generated text (chat: the assistant role; completions: echoed prompt). */
  openingChunks(n: number): unknown[];
  deltaChunk(event: Extract<ChoiceEvent, { kind: 'delta' }>): unknown;
  finishChunk(index: number, reason: FinishReason): unknown;
  usageChunk(usage: Usage): unknown;
  /** The whole (non-streamed) response as JSON text. */
  response(choices: readonly CollectedChoice[], usage: Usage): string;
}

/**
 * Runs a prepared request and answers it, streamed (SSE) or whole. No byte is written before the
 * first event, so failures before the first token (tier busy, tier down) still get a proper HTTP
 * status; later failures end the stream with an error event.
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
  ctx.execution = summary;
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
  const observe = (o: LatencyObservation): void => {
    const by = resilient.record.servedBy;
    if (by.length === 1 && by[0] !== undefined) gateway.router.observe(by[0], o);
  };
  const run = (onEvent: ChoiceEventHandler): Promise<void> =>
    execute(
      resilient,
      gateway.tokenizer,
      gateway.metrics,
      gen,
      signal,
      summary,
      onEvent,
      observe,
      options.stream,
    );
  const usage = (): Usage => ({
    promptTokens: gen.promptTokens.length * gen.n,
    completionTokens: summary.completionTokens,
  });
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener('abort', onShutdown);
  try {
    if (options.stream)
      await streamAnswer(
        request,
        reply,
        resilient.record,
        formatter,
        run,
        signal,
        gen.n,
        options.includeUsage ? usage : undefined,
        gateway.config.server.sseCoalesceMs,
      );
    else {
      const choices: CollectedChoice[] = [];
      try {
        // Awaited here rather than chained in a helper: one promise less per request.
        await run(collector(choices, ctx));
      } catch (err) {
        throw failureOf(signal, err);
      }
      setResilienceHeaders(reply, resilient.record);
      // Not awaited: a fastify reply is a thenable, and awaiting it costs two promises for nothing
      // (the body is handed to the socket synchronously).
      void reply.type(JSON_TYPE).send(formatter.response(inOrder(choices), usage()));
    }
  } finally {
    ctx.onClientGone = undefined;
    shutdown.removeEventListener('abort', onShutdown);
    ctx.completionTokens = summary.completionTokens;
    ctx.ttftMs = summary.ttftMs;
    ctx.aborted = summary.aborted;
  }
}

/** What fastify sets for a serialised object; the formatters write the JSON text themselves. */
const JSON_TYPE = 'application/json; charset=utf-8';

/** Once aborted, the reason (client gone, shutdown) is the error, not whatever the tier threw. */
function failureOf(signal: CancelSignal, err: unknown): unknown {
  return signal.aborted ? signal.reason : err;
}

/** A whole answer's handler: every choice's text (and token details) collected by index. */
function collector(choices: CollectedChoice[], ctx: RequestContext): ChoiceEventHandler {
  return (ev) => {
    let choice = choices[ev.index];
    if (choice === undefined) {
      choice = { index: ev.index, text: '', tokens: [], finishReason: 'length' };
      choices[ev.index] = choice;
    }
    if (ev.kind === 'delta') {
      choice.text += ev.text;
      for (const t of ev.tokens) choice.tokens.push(t);
    } else choice.finishReason = ctx.finishReason = ev.reason;
  };
}

/** The collected choices in index order (a choice that produced nothing has no entry). */
function inOrder(choices: readonly (CollectedChoice | undefined)[]): CollectedChoice[] {
  return choices.filter((c): c is CollectedChoice => c !== undefined);
}

/**
 * An SSE answer. Headers leave with the first event, so a failure before it (tier busy, tier
 * down) still gets a proper HTTP status; a later failure ends the stream with an error event,
 * OpenAI's convention once headers are gone.
 */
async function streamAnswer(
  request: FastifyRequest,
  reply: FastifyReply,
  record: ExecutionRecord,
  formatter: Formatter,
  run: (onEvent: ChoiceEventHandler) => Promise<void>,
  signal: CancelSignal,
  n: number,
  usage: (() => Usage) | undefined,
  coalesceMs: number,
): Promise<void> {
  const ctx = request.tiergate;
  let sse: SseWriter | undefined;
  // Deltas that wait for the next write are merged there: one chunk per choice per write.
  const deltas = new DeltaMerger();
  const pendingChunks = (): unknown[] => deltas.take().map((d) => formatter.deltaChunk(d));
  const open = (): SseWriter => {
    // A whole answer sets the resilience headers once, at the end; a stream before its first byte.
    setStreamResilienceHeaders(reply, record);
    const writer = new SseWriter(reply, coalesceMs, pendingChunks);
    // Held, not sent: they leave together with the first event.
    for (const chunk of formatter.openingChunks(n)) writer.hold(chunk);
    return writer;
  };
  try {
    await run((ev) => {
      sse ??= open();
      // The client went away: stop generating (its cancellation has fired too).
      if (sse.closed) signal.throwIfAborted();
      if (ev.kind === 'delta') {
        deltas.add(ev);
        return sse.schedule();
      }
      ctx.finishReason = ev.reason;
      return sse.send(formatter.finishChunk(ev.index, ev.reason));
    });
    if (sse === undefined) sse = open();
    if (usage !== undefined && !sse.closed) await sse.send(formatter.usageChunk(usage()));
  } catch (err) {
    const failure = failureOf(signal, err);
    if (sse === undefined) throw failure;
    // Nobody is left to tell: the summary line records the request as aborted.
    if (sse.closed) return;
    const apiError = toApiError(failure);
    if (apiError.kind === 'internal') request.log.error({ err }, 'stream failed');
    ctx.errorCode = apiError.code ?? apiError.type;
    await sse.send(apiError.toBody());
  } finally {
    // A mid-stream continuation happens after the headers left: report it in trailers.
    if (sse !== undefined) {
      if (!sse.closed) reply.raw.addTrailers(resilienceFields(record));
      sse.end();
    }
  }
}
