import type { TierEventSink } from '../../pipeline/source.js';
import { causeOf, isRetryable } from '../../resilience/errors.js';
import type { ServedPart } from '../../resilience/executor.js';
import type { SpeculativeRoute } from '../../routing/plan.js';
import { createRng } from '../../text/sampling.js';
import type { CancelSignal } from '../../tiers/cancellation.js';
import type { KeptSequence, OpenSequenceOptions } from '../../tiers/kept-sequence.js';
import type { GenerateRequest, TierFinishReason, TokenEvent } from '../../tiers/tier.js';
import type { AcceptedRun } from './acceptance.js';
import { nextK, type PairStats } from './adaptive-k.js';
import type { Held, HeldTier } from './pair-admission.js';
import { SideFailure, SpeculativeSession } from './session.js';
import type { SpeculationMetrics, SpeculationOutcome } from './speculation-metrics.js';

/** How the loop ended: served to the end, or what the source continues without. */
export type Ending =
  | { readonly kind: 'served' }
  | { readonly kind: 'saturated'; readonly outcome: SpeculationOutcome }
  | { readonly kind: 'draft_failed'; readonly outcome: SpeculationOutcome; readonly error: unknown }
  | { readonly kind: 'verify_failed'; readonly outcome: SpeculationOutcome; readonly error: unknown };

export interface SpeculateInput {
  readonly request: GenerateRequest;
  /** Aborted by the caller, the attempt's timer or the request's deadline: frees both sequences. */
  readonly signal: CancelSignal;
  readonly sink: TierEventSink;
  readonly held: Held;
  readonly route: SpeculativeRoute;
  /** Tokens sent to the sink so far (the source continues from them). */
  readonly sent: number[];
  /** Records the pair as serving, at its first token. */
  readonly part: () => ServedPart;
  readonly metrics: SpeculationMetrics;
  readonly pair: string;
  readonly deadline: number;
  /** Whether the verify tier is saturated now (pair-admission.ts). */
  readonly saturated: () => boolean;
}

/**
 * The draft/verify loop of one choice (docs/speculative.md): opens a kept sequence on each tier,
 * then per step drafts k tokens, verifies them in one pass, emits the accepted run with the
 * verify tier's log-probabilities, and ends at a stop token, max tokens or the context's end.
 * k adapts to the pair's measured acceptance and step costs (adaptive-k.ts).
 */
export async function speculate(input: SpeculateInput): Promise<Ending> {
  const { request, signal, held } = input;
  const open: OpenSequenceOptions = {
    stopTokens: request.stopTokens,
    deadline: input.deadline,
    requestId: request.requestId,
  };
  const [verifySeq, draftSeq] = await Promise.allSettled([
    held.verify.guard.tier.openSequence!(open, signal),
    held.draft.guard.tier.openSequence!(open, signal),
  ]);
  if (verifySeq.status === 'rejected' || draftSeq.status === 'rejected') {
    closeOpened(verifySeq, draftSeq);
    if (signal.aborted) throw signal.reason;
    return verifySeq.status === 'rejected'
      ? failed(input, 'verify', verifySeq.reason)
      : failed(input, 'draft', (draftSeq as PromiseRejectedResult).reason);
  }
  const session = new SpeculativeSession(verifySeq.value, draftSeq.value, input.route.draft);
  try {
    return await loop(input, session);
  } finally {
    session.close();
  }
}

async function loop(input: SpeculateInput, session: SpeculativeSession): Promise<Ending> {
  const { request, signal, route, metrics, pair, sent } = input;
  const stats = metrics.pair(pair);
  const stops = new Set(request.stopTokens);
  const room = contextRoom(input.held);
  const committed = [...request.tokens];
  // One seeded generator per choice: the acceptance draws and each verify call's seed come from
  // it, so a seeded sampling request repeats exactly.
  const rng = createRng(request.sampling.seed);
  const uniform = (): number => rng.next();
  const options = {
    sampling: request.sampling,
    topLogprobs: request.topLogprobs,
    logprobs: request.logprobs !== false,
  };
  let part: ServedPart | undefined;
  let k = Math.max(1, Math.min(route.k, route.maxK));
  for (let steps = 0; ; steps++) {
    const remaining = request.maxTokens - sent.length;
    if (remaining <= 0 || committed.length >= room.verify) return finish(input, part, 'length', stats);
    if (steps > 0 && input.saturated()) return { kind: 'saturated', outcome: 'handed_over_saturated' };
    const draftable = Math.min(
      k,
      remaining - 1,
      room.verify - committed.length - 1,
      room.draft - committed.length,
    );
    let step;
    try {
      const seed = Math.floor(rng.next() * 0x1_0000_0000);
      step = await session.step(
        committed,
        Math.max(0, draftable),
        { ...options, seed },
        uniform,
        draftLimit(stats, draftable),
        route.lookahead,
      );
    } catch (err) {
      if (!(err instanceof SideFailure)) throw err;
      // Aborted (caller, deadline, the attempt's limit): whichever side noticed, the request ends.
      if (signal.aborted) throw signal.reason;
      return failed(input, err.side, err.error);
    }
    const { run, drafted } = step;
    if (drafted > 0) {
      stats.observeDraft(step.draftMs, drafted);
      stats.observeAcceptance(run.accepted, drafted);
      metrics.draftTokens.inc({ pair, result: 'proposed' }, drafted);
      metrics.draftTokens.inc({ pair, result: 'accepted' }, run.accepted);
    }
    stats.observeVerify(step.verifyMs, drafted + 1);
    metrics.verifySteps.inc({ pair });
    const { event, reason } = cut(run, stops, remaining);
    if (event !== undefined) {
      part ??= input.part();
      part.tokens += event.tokens.length;
      if (part.tokens > event.tokens.length) part.lastTokenAt = performance.now();
      sent.push(...event.tokens);
      committed.push(...event.tokens);
      let flow = input.sink(event);
      if (flow instanceof Promise) flow = await flow;
      // The consumer is done (a stop string): not an outcome of either tier.
      if (flow === 'stop') return served(input, part, stats, false);
    }
    if (reason !== undefined) return finish(input, part, reason, stats);
    if (route.adaptive) k = nextK(stats, route.maxK, steps, k);
  }
}

/**
 * How long a draft call may take before the draft side counts as failed: DRAFT_STALL_FACTOR times
 * its measured cost (at least DRAFT_STALL_MIN_MS), or DRAFT_STALL_MIN_MS until measured. Generous on
 * purpose: a slow step on a loaded machine must not end speculation, a hung drafter must.
 */
function draftLimit(stats: PairStats, k: number): number {
  const perToken = stats.draftMsPerToken;
  if (perToken === undefined) return DRAFT_STALL_MIN_MS;
  return Math.max(DRAFT_STALL_MIN_MS, DRAFT_STALL_FACTOR * perToken * Math.max(1, k));
}

const DRAFT_STALL_MIN_MS = 2000;
const DRAFT_STALL_FACTOR = 50;

/** The run as one event: cut before a stop token, and at the tokens the request may still take. */
export function cut(
  run: AcceptedRun,
  stops: ReadonlySet<number>,
  remaining: number,
): { event: TokenEvent | undefined; reason: TierFinishReason | undefined } {
  let n = run.tokens.findIndex((t) => stops.has(t));
  let reason: TierFinishReason | undefined = n >= 0 ? 'stop' : undefined;
  if (n < 0) n = run.tokens.length;
  if (n >= remaining) [n, reason] = [remaining, 'length'];
  if (n === 0) return { event: undefined, reason };
  const event: TokenEvent = {
    kind: 'tokens',
    tokens: n === run.tokens.length ? run.tokens : run.tokens.slice(0, n),
    logprobs: run.logprobs.slice(0, n),
    top: run.top?.slice(0, n),
  };
  return { event, reason };
}

async function finish(
  input: SpeculateInput,
  part: ServedPart | undefined,
  reason: TierFinishReason,
  stats: PairStats,
): Promise<Ending> {
  const p = part ?? input.part();
  p.finished = true;
  input.held.verify.ticket.success();
  input.held.draft.ticket.success();
  await input.sink({ kind: 'finish', reason });
  return served(input, p, stats, true);
}

/** The pair served the choice: its speed-up over the verify tier alone, and the pair's gauges. */
function served(
  input: SpeculateInput,
  part: ServedPart | undefined,
  stats: PairStats,
  finished: boolean,
): Ending {
  const { metrics, pair } = input;
  metrics.requests.inc({ pair, outcome: 'speculated' });
  metrics.acceptance.set({ pair }, stats.acceptance);
  const costs = stats.costs();
  if (costs !== undefined) metrics.k.set({ pair }, stats.bestK(input.route.maxK));
  // The speed-up over plain decoding on the verify tier: its one-position pass (measured on the
  // same sequences) per token, against the time this choice took per token.
  if (finished && part !== undefined && part.tokens > 8 && costs !== undefined) {
    const plainMs = costs.verifyMs(1) * (part.tokens - 1);
    metrics.speedup.observe({ pair }, plainMs / Math.max(part.lastTokenAt - part.firstTokenAt, 1e-3));
  }
  return { kind: 'served' };
}

/** A side failed: its breaker hears of it (unless the cause is not the tier's), the loop ends. */
function failed(input: SpeculateInput, side: 'draft' | 'verify', error: unknown): Ending {
  const tier: HeldTier = side === 'draft' ? input.held.draft : input.held.verify;
  if (!isRetryable(error) || causeOf(error) === 'overloaded') tier.ticket.neutral();
  else tier.ticket.failure(error);
  return side === 'draft'
    ? { kind: 'draft_failed', outcome: 'handed_over_draft_failed', error }
    : { kind: 'verify_failed', outcome: 'handed_over_verify_failed', error };
}

/** Each side's context length (0 means unknown: no limit from that side). */
function contextRoom(held: Held): { verify: number; draft: number } {
  const of = (t: HeldTier): number => t.guard.tier.info().contextLength || Number.POSITIVE_INFINITY;
  return { verify: of(held.verify), draft: of(held.draft) };
}

function closeOpened(...results: PromiseSettledResult<KeptSequence>[]): void {
  for (const r of results) if (r.status === 'fulfilled') r.value.close();
}
