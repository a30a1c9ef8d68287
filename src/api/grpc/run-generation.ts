import type { Gateway } from '../../gateway/gateway.js';
import { execute, type ChoiceEventHandler, type ExecutionSummary } from '../../pipeline/execute.js';
import type { GenerationRequest } from '../../pipeline/types.js';
import { newExecutionRecord, ResilientGeneration, type ExecutionRecord } from '../../resilience/executor.js';
import type { CallContext } from './call-context.js';

export interface Execution {
  /**
   * Runs the request, handing each choice event to `onEvent`; resolves when every choice
   * finished. Once the call is cancelled, its reason is the error, not what the tier threw.
   */
  run(onEvent: ChoiceEventHandler): Promise<void>;
  readonly record: ExecutionRecord;
  readonly summary: ExecutionSummary;
}

/**
 * Step 4 for a gRPC call, wired exactly as the HTTP responder (src/api/openai/respond.ts) wires
 * it: the resilience executor over the request's attempts, the pipeline's execute() for
 * detokenising, stops and metrics, and the router's latency model fed on completion.
 */
export function runGeneration(gateway: Gateway, gen: GenerationRequest, ctx: CallContext): Execution {
  const summary: ExecutionSummary = { completionTokens: 0, ttftMs: undefined, aborted: false };
  const tierName = gen.tier;
  const resilient = new ResilientGeneration(
    gateway.resilience,
    gen.attempts ?? gateway.resilience.defaultAttempts(tierName),
    newExecutionRecord(),
    gen.deadline,
  );
  const run = async (onEvent: ChoiceEventHandler): Promise<void> => {
    try {
      await execute(resilient, gateway.tokenizer, gateway.metrics, gen, ctx.signal, summary, onEvent, (o) =>
        gateway.router.observe(tierName, o),
      );
    } catch (err) {
      throw ctx.signal.aborted ? ctx.signal.reason : err;
    }
  };
  return { run, record: resilient.record, summary };
}
