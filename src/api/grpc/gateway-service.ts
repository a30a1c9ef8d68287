import type {
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Gateway } from '../../gateway/gateway.js';
import type { FinishReason, GenerationRequest } from '../../pipeline/types.js';
import type { RouteDecision } from '../route-decision.js';
import { responseId } from '../openai/ids.js';
import { CallContext } from './call-context.js';
import { explain } from './explain.js';
import { chatTokensOf, prepareGrpcGeneration, promptTokensOf } from './ingress.js';
import type {
  ChatRequestMessage,
  CompletionChunkMessage,
  CompletionRequestMessage,
  CompletionResponseMessage,
  ExplainRequestMessage,
  RouteInfoMessage,
  UsageMessage,
} from './messages.js';
import { runGeneration, type Execution } from './run-generation.js';

const SERVICE = '/tiergate.v1.Gateway';

type Prepared = { gen: GenerationRequest; decision: RouteDecision };

/**
 * tiergate.v1.Gateway (proto/tiergate/v1/gateway.proto): completion and chat, unary and
 * streamed, over the same ingress, routing and pipeline as the HTTP API; ListModels; Explain.
 */
export function gatewayService(gateway: Gateway, log: Logger): UntypedServiceImplementation {
  const completion = (ctx: CallContext, r: CompletionRequestMessage): Prepared =>
    prepareGrpcGeneration(gateway, ctx, r.model, promptTokensOf(gateway, r), r.options);
  const chat = (ctx: CallContext, r: ChatRequestMessage): Prepared =>
    prepareGrpcGeneration(gateway, ctx, r.model, chatTokensOf(gateway, r.messages), r.options);
  return {
    Complete: unaryGeneration(gateway, log, 'Complete', completion),
    Chat: unaryGeneration(gateway, log, 'Chat', chat),
    CompleteStream: streamedGeneration(gateway, log, 'CompleteStream', completion),
    ChatStream: streamedGeneration(gateway, log, 'ChatStream', chat),
    ListModels(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      callback(null, {
        models: gateway.listModels().map((m) => {
          const info = m.tier.info();
          return {
            id: m.name,
            tier: m.tier.name,
            description: m.description ?? '',
            framework: info.framework,
            variant: info.variant,
            ready: m.tier.health().ready,
          };
        }),
      });
    },
    Explain(call: ServerUnaryCall<ExplainRequestMessage, unknown>, callback: sendUnaryData<unknown>) {
      const ctx = new CallContext(gateway, `${SERVICE}/Explain`, call, log);
      try {
        const response = explain(gateway, ctx, call.request);
        ctx.finish(undefined);
        callback(null, response);
      } catch (err) {
        callback(ctx.finish(err)?.status ?? null);
      }
    },
  };
}

function routeInfo(p: Prepared, execution: Execution | undefined): RouteInfoMessage {
  return {
    policy: p.decision.plan.policy,
    code: p.decision.plan.code,
    reason: p.decision.plan.reason,
    tier: p.gen.tier,
    servedBy: [...(execution?.record.servedBy ?? [])],
  };
}

function usageOf(p: Prepared, execution: Execution): UsageMessage {
  const promptTokens = p.gen.promptTokens.length * p.gen.n;
  const completionTokens = execution.summary.completionTokens;
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
}

function unaryGeneration<Req extends { model: string }>(
  gateway: Gateway,
  log: Logger,
  method: string,
  prepare: (ctx: CallContext, request: Req) => Prepared,
) {
  return (
    call: ServerUnaryCall<Req, CompletionResponseMessage>,
    callback: sendUnaryData<CompletionResponseMessage>,
  ) => {
    const ctx = new CallContext(gateway, `${SERVICE}/${method}`, call, log);
    void (async () => {
      let prepared: Prepared | undefined;
      let execution: Execution | undefined;
      try {
        prepared = prepare(ctx, call.request);
        execution = runGeneration(gateway, prepared.gen, ctx);
        const choices = new Map<number, { index: number; text: string; finishReason: FinishReason }>();
        await execution.run((ev) => {
          const choice = choices.get(ev.index) ?? { index: ev.index, text: '', finishReason: 'length' };
          choices.set(ev.index, choice);
          if (ev.kind === 'delta') choice.text += ev.text;
          else choice.finishReason = ctx.finishReason = ev.reason;
        });
        const response: CompletionResponseMessage = {
          id: responseId(method === 'Chat' ? 'chatcmpl' : 'cmpl'),
          model: call.request.model,
          choices: [...choices.values()].sort((a, b) => a.index - b.index),
          usage: usageOf(prepared, execution),
          route: routeInfo(prepared, execution),
        };
        settle(ctx, execution);
        ctx.finish(undefined);
        callback(null, response);
      } catch (err) {
        if (execution !== undefined) settle(ctx, execution);
        callback(ctx.finish(err)?.status ?? null);
      } finally {
        prepared?.decision.done();
      }
    })();
  };
}

function streamedGeneration<Req extends { model: string }>(
  gateway: Gateway,
  log: Logger,
  method: string,
  prepare: (ctx: CallContext, request: Req) => Prepared,
) {
  return (call: ServerWritableStream<Req, CompletionChunkMessage>) => {
    const ctx = new CallContext(gateway, `${SERVICE}/${method}`, call, log);
    void (async () => {
      let prepared: Prepared | undefined;
      let execution: Execution | undefined;
      try {
        prepared = prepare(ctx, call.request);
        execution = runGeneration(gateway, prepared.gen, ctx);
        const id = responseId(method === 'ChatStream' ? 'chatcmpl' : 'cmpl');
        const chunk = (index: number, text: string, finishReason: string): CompletionChunkMessage => ({
          id,
          index,
          text,
          finishReason,
          usage: null,
          route: null,
        });
        await execution.run((ev) => {
          // The call was cancelled: stop generating (the executor frees the tier).
          ctx.signal.throwIfAborted();
          if (ev.kind === 'delta')
            return ev.text === '' ? undefined : write(call, chunk(ev.index, ev.text, ''));
          ctx.finishReason = ev.reason;
          return write(call, chunk(ev.index, '', ev.reason));
        });
        ctx.signal.throwIfAborted();
        await write(call, {
          ...chunk(0, '', ''),
          usage: usageOf(prepared, execution),
          route: routeInfo(prepared, execution),
        });
        settle(ctx, execution);
        ctx.finish(undefined);
        call.end();
      } catch (err) {
        if (execution !== undefined) settle(ctx, execution);
        const failure = ctx.finish(err);
        // grpc-js turns an 'error' event on a server stream into the call's status.
        if (!call.cancelled && failure !== undefined) call.emit('error', failure.status);
      } finally {
        prepared?.decision.done();
      }
    })();
  };
}

/** Copies what the execution measured into the call's summary. */
function settle(ctx: CallContext, execution: Execution): void {
  ctx.completionTokens = execution.summary.completionTokens;
  ctx.ttftMs = execution.summary.ttftMs;
}

/**
 * Writes with backpressure: waits for 'drain' when the client reads slower than we generate, or
 * for the call to end (a cancelled call never drains; the caller then sees the aborted signal).
 */
function write<T>(call: ServerWritableStream<unknown, T>, message: T): void | Promise<void> {
  if (call.write(message)) return;
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
    call.once('close', done);
  });
}
