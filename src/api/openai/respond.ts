import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../../errors/gateway-error.js';
import type { ChoiceEventHandler } from '../../pipeline/execute.js';
import type { ChoiceEvent, FinishReason, TokenDetail, Usage } from '../../pipeline/types.js';
import type { Execution } from '../../service/execution.js';
import { DeltaMerger } from '../delta-merger.js';
import { toApiError } from '../errors.js';
import {
  resilienceFields,
  setRateLimitHeaders,
  setResilienceHeaders,
  setStreamResilienceHeaders,
} from '../route-headers.js';
import { SseWriter } from '../sse.js';

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
 * Runs an execution and answers it, streamed (SSE) or whole: the HTTP side only formats. No byte
 * is written before the first event, so failures before the first token (tier busy, tier down)
 * still get a proper HTTP status through the error handler; later failures end the stream with
 * an error event.
 */
export async function respond(
  request: FastifyRequest,
  reply: FastifyReply,
  exec: Execution,
  formatter: Formatter,
  options: { includeUsage: boolean; coalesceMs: number },
): Promise<void> {
  if (exec.input.stream) return streamAnswer(request, reply, exec, formatter, options);
  const choices: CollectedChoice[] = [];
  // Awaited here rather than chained in a helper: one promise less per request.
  await exec.run(collector(choices));
  setResilienceHeaders(reply, exec.record);
  setRateLimitHeaders(reply, exec);
  // Not awaited: a fastify reply is a thenable, and awaiting it costs two promises for nothing
  // (the body is handed to the socket synchronously).
  void reply.type(JSON_TYPE).send(formatter.response(inOrder(choices), exec.usage()));
}

/** What fastify sets for a serialised object; the formatters write the JSON text themselves. */
const JSON_TYPE = 'application/json; charset=utf-8';

/** A whole answer's handler: every choice's text (and token details) collected by index. */
function collector(choices: CollectedChoice[]): ChoiceEventHandler {
  return (ev) => {
    let choice = choices[ev.index];
    if (choice === undefined) {
      choice = { index: ev.index, text: '', tokens: [], finishReason: 'length' };
      choices[ev.index] = choice;
    }
    if (ev.kind === 'delta') {
      choice.text += ev.text;
      for (const t of ev.tokens) choice.tokens.push(t);
    } else choice.finishReason = ev.reason;
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
  exec: Execution,
  formatter: Formatter,
  options: { includeUsage: boolean; coalesceMs: number },
): Promise<void> {
  let sse: SseWriter | undefined;
  // Deltas that wait for the next write are merged there: one chunk per choice per write.
  const deltas = new DeltaMerger();
  const pendingChunks = (): unknown[] => deltas.take().map((d) => formatter.deltaChunk(d));
  const n = exec.request?.n ?? 1;
  const open = (): SseWriter => {
    // A whole answer sets the resilience headers once, at the end; a stream before its first byte.
    setStreamResilienceHeaders(reply, exec.record);
    setRateLimitHeaders(reply, exec);
    const writer = new SseWriter(reply, options.coalesceMs, pendingChunks);
    // Held, not sent: they leave together with the first event.
    for (const chunk of formatter.openingChunks(n)) writer.hold(chunk);
    return writer;
  };
  try {
    await exec.run((ev) => {
      sse ??= open();
      // The client went away: stop generating (the execution was aborted too).
      if (sse.closed) throw CLIENT_GONE;
      if (ev.kind === 'delta') {
        deltas.add(ev);
        return sse.schedule();
      }
      return sse.send(formatter.finishChunk(ev.index, ev.reason));
    });
    if (sse === undefined) sse = open();
    if (options.includeUsage && !sse.closed) await sse.send(formatter.usageChunk(exec.usage()));
  } catch (err) {
    if (sse === undefined) throw err;
    // Nobody is left to tell: the summary line records the request as aborted.
    if (sse.closed) return;
    const apiError = toApiError(err);
    if (apiError.kind === 'internal') request.log.error({ err }, 'stream failed');
    request.tiergate.errorCode = apiError.code ?? apiError.type;
    await sse.send(apiError.toBody());
  } finally {
    // A mid-stream continuation happens after the headers left: report it in trailers.
    if (sse !== undefined) {
      if (!sse.closed) reply.raw.addTrailers(resilienceFields(exec.record));
      sse.end();
    }
  }
}

/** Thrown from the handler when the socket closed before the close listener aborted the execution. */
const CLIENT_GONE = new GatewayError('cancelled', 'The client went away before the request completed.');
