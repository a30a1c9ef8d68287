import type { Gateway } from '../../gateway/gateway.js';
import { execute, type ExecutionSummary } from '../../pipeline/execute.js';
import type { ChoiceEvent, GenerationRequest } from '../../pipeline/types.js';
import { newExecutionRecord, ResilientGeneration, type ExecutionRecord } from '../../resilience/executor.js';
import type { CallContext } from './call-context.js';
import { type CancelSignal } from '../../tiers/cancellation.js';

export interface Execution {
  readonly events: AsyncGenerator<ChoiceEvent>;
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
  const events = execute(resilient, gateway.tokenizer, gateway.metrics, gen, ctx.signal, summary, (o) =>
    gateway.router.observe(tierName, o),
  );
  return { events, record: resilient.record, summary };
}

/** Next event; once the call is cancelled, its reason is the error, not what the tier threw. */
export async function nextEvent(
  events: AsyncGenerator<ChoiceEvent>,
  signal: CancelSignal,
): Promise<IteratorResult<ChoiceEvent>> {
  try {
    return await events.next();
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  }
}
