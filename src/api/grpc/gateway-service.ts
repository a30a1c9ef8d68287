import type {
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { FinishReason } from '../../pipeline/types.js';
import type { Execution } from '../../service/execution.js';
import type { GenerationInput } from '../../service/generation-input.js';
import type { GenerationService } from '../../service/generation-service.js';
import { responseId } from '../openai/ids.js';
import { CallContext } from './call-context.js';
import { explain } from './explain.js';
import { generationInputOf, messagesOf, promptOf } from './ingress.js';
import type {
  ChatRequestMessage,
  CompletionChunkMessage,
  CompletionRequestMessage,
  CompletionResponseMessage,
  ExplainRequestMessage,
  RouteInfoMessage,
  UsageMessage,
} from './messages.js';

const SERVICE = '/tiergate.v1.Gateway';

type Ingress<Req> = (ctx: CallContext, request: Req, stream: boolean) => GenerationInput;

/**
 * tiergate.v1.Gateway (proto/tiergate/v1/gateway.proto): completion and chat, unary and
 * streamed, through the same generation service as the HTTP API (this file only parses and
 * formats); ListModels; Explain.
 */
export function gatewayService(service: GenerationService, log: Logger): UntypedServiceImplementation {
  const { gateway } = service;
  const completion: Ingress<CompletionRequestMessage> = (ctx, r, stream) =>
    generationInputOf(ctx, r.model, promptOf(r), r.options, stream);
  const chat: Ingress<ChatRequestMessage> = (ctx, r, stream) =>
    generationInputOf(ctx, r.model, messagesOf(r.messages), r.options, stream);
  return {
    Complete: unaryGeneration(service, log, 'Complete', completion),
    Chat: unaryGeneration(service, log, 'Chat', chat),
    CompleteStream: streamedGeneration(service, log, 'CompleteStream', completion),
    ChatStream: streamedGeneration(service, log, 'ChatStream', chat),
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
        const response = explain(service, ctx, call.request);
        ctx.finish(undefined);
        callback(null, response);
      } catch (err) {
        callback(ctx.finish(err)?.status ?? null);
      }
    },
  };
}

function routeInfo(exec: Execution): RouteInfoMessage {
  return {
    policy: exec.plan?.policy ?? '',
    code: exec.plan?.code ?? '',
    reason: exec.plan?.reason ?? '',
    tier: exec.tier ?? '',
    servedBy: [...exec.record.servedBy],
    budgetsNotApplied: exec.budgetsNotApplied ?? '',
    continuedFrom: exec.record.continuedFrom ?? '',
  };
}

function usageOf(exec: Execution): UsageMessage {
  const u = exec.usage();
  return {
    promptTokens: u.promptTokens,
    completionTokens: u.completionTokens,
    totalTokens: u.promptTokens + u.completionTokens,
  };
}

function unaryGeneration<Req extends { model: string }>(
  service: GenerationService,
  log: Logger,
  method: string,
  ingress: Ingress<Req>,
) {
  return (
    call: ServerUnaryCall<Req, CompletionResponseMessage>,
    callback: sendUnaryData<CompletionResponseMessage>,
  ) => {
    const ctx = new CallContext(service.gateway, `${SERVICE}/${method}`, call, log);
    void (async () => {
      try {
        const exec = service.generate(ingress(ctx, call.request, false));
        ctx.execution = exec;
        const choices = new Map<number, { index: number; text: string; finishReason: FinishReason }>();
        await exec.run((ev) => {
          const choice = choices.get(ev.index) ?? { index: ev.index, text: '', finishReason: 'length' };
          choices.set(ev.index, choice);
          if (ev.kind === 'delta') choice.text += ev.text;
          else choice.finishReason = ev.reason;
        });
        const response: CompletionResponseMessage = {
          id: responseId(method === 'Chat' ? 'chatcmpl' : 'cmpl'),
          model: call.request.model,
          choices: [...choices.values()].sort((a, b) => a.index - b.index),
          usage: usageOf(exec),
          route: routeInfo(exec),
        };
        ctx.finish(undefined);
        callback(null, response, ctx.successTrailers());
      } catch (err) {
        callback(ctx.finish(err)?.status ?? null);
      }
    })();
  };
}

function streamedGeneration<Req extends { model: string }>(
  service: GenerationService,
  log: Logger,
  method: string,
  ingress: Ingress<Req>,
) {
  return (call: ServerWritableStream<Req, CompletionChunkMessage>) => {
    const ctx = new CallContext(service.gateway, `${SERVICE}/${method}`, call, log);
    void (async () => {
      try {
        const exec = service.generate(ingress(ctx, call.request, true));
        ctx.execution = exec;
        const id = responseId(method === 'ChatStream' ? 'chatcmpl' : 'cmpl');
        const chunk = (index: number, text: string, finishReason: string): CompletionChunkMessage => ({
          id,
          index,
          text,
          finishReason,
          usage: null,
          route: null,
        });
        await exec.run((ev) => {
          // The call was cancelled: stop generating (the execution was aborted by the same signal).
          ctx.signal.throwIfAborted();
          if (ev.kind === 'delta')
            return ev.text === '' ? undefined : write(call, chunk(ev.index, ev.text, ''));
          return write(call, chunk(ev.index, '', ev.reason));
        });
        ctx.signal.throwIfAborted();
        await write(call, { ...chunk(0, '', ''), usage: usageOf(exec), route: routeInfo(exec) });
        ctx.finish(undefined);
        call.end(ctx.successTrailers());
      } catch (err) {
        const failure = ctx.finish(err);
        // grpc-js turns an 'error' event on a server stream into the call's status.
        if (!call.cancelled && failure !== undefined) call.emit('error', failure.status);
      }
    })();
  };
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
