import type { Gateway } from '../gateway/gateway.js';
import { KeyLimiter } from '../limits/key-limiter.js';
import { Tracing } from '../observability/tracing.js';
import type { ProfileSnapshot } from '../routing/tier-profiles.js';
import type { TierState } from '../routing/engine.js';
import { Execution, type ExecutionHost } from './execution.js';
import type { GenerationInput } from './generation-input.js';
import { planRequest, type PlannedRequest } from './plan-request.js';
import { RouteMetrics } from './route-metrics.js';

/** A tier's state as explain shows it: what the engine saw, and the tier's own health detail. */
export interface ExplainedTierState extends TierState {
  /** E.g. a multi-address remote tier's `2/2 addresses serving` (its replicas, docs/architecture.md). */
  readonly detail: string | undefined;
}

/** A plan as explain shows it: the plan, with the live profiles and tier states the engine saw. */
export interface Explanation extends PlannedRequest {
  readonly profiles: Readonly<Record<string, ProfileSnapshot>>;
  readonly states: Readonly<Record<string, ExplainedTierState>>;
}

/**
 * The generation service (docs/architecture.md): the one home of "run one generation for one
 * request", below every transport. The HTTP routes and the gRPC service parse their wire format
 * into a GenerationInput, call `generate` and format what the Execution hands them; explain on
 * both transports calls `explain`, the same planning entry without running anything.
 */
export class GenerationService implements ExecutionHost {
  readonly routeMetrics: RouteMetrics;
  /** Per-key limits, budgets and usage (src/limits/, docs/governance.md). */
  readonly limits: KeyLimiter;
  /** OpenTelemetry tracing (docs/tracing.md): built only with `tracing.enabled`. */
  readonly tracing: Tracing | undefined;
  private active = 0;

  constructor(readonly gateway: Gateway) {
    this.routeMetrics = new RouteMetrics(gateway.metrics);
    this.limits = new KeyLimiter(
      () => gateway.config,
      gateway.metrics,
      gateway.logger.child({ component: 'limits' }),
    );
    const tracing = gateway.config.tracing;
    this.tracing = tracing.enabled
      ? new Tracing(tracing, gateway.logger.child({ component: 'tracing' }))
      : undefined;
  }

  /**
   * Plans and prepares one generation; the returned Execution runs it (`run`). Never throws: a
   * request refused before it runs is an execution settled with its error (`run` rejects).
   */
  generate(input: GenerationInput): Execution {
    this.active++;
    return new Execution(this.gateway, this, input);
  }

  /** What a request would get, without admitting, running or counting it. */
  explain(input: Pick<GenerationInput, 'model' | 'prompt' | 'maxTokens' | 'route' | 'caller'>): Explanation {
    const planned = planRequest(this.gateway, input, false);
    const states: Record<string, ExplainedTierState> = {};
    for (const [name, state] of Object.entries(this.gateway.router.states()))
      states[name] = { ...state, detail: this.gateway.tiers.get(name)?.health().detail };
    return { ...planned, profiles: this.gateway.router.snapshot(), states };
  }

  /** Executions not yet settled, and streams running or waiting on tiers: all zero when idle. */
  occupancy(): { executions: number; running: number; queued: number } {
    return { executions: this.active, ...this.gateway.resilience.occupancy() };
  }

  settled(_execution: Execution): void {
    this.active--;
  }

  /** Closes what the service holds outside the gateway (the limits store's connection, the span exporter). */
  async close(): Promise<void> {
    await this.limits.close();
    // Exports the spans still buffered.
    await this.tracing?.shutdown();
  }
}
