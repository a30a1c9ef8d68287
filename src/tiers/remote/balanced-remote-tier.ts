import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Gauge } from 'prom-client';
import type { RemoteTierConfig } from '../../config/index.js';
import { MetricsService } from '../../observability/metrics.js';
import { TierUnavailableError } from '../errors.js';
import type { GenerateRequest, Tier, TierEvent, TierHealth, TierInfo } from '../tier.js';
import { resolveEndpoints, systemLookup, type HostLookup } from './endpoint-resolver.js';
import { RemoteTier, type RemoteTierDeps } from './remote-tier.js';
import { RemoteTierError } from './remote-tier-error.js';
import { sidecarMetrics } from './sidecar-metrics.js';
import { type CancelSignal } from '../cancellation.js';
import type { KeptSequence, OpenSequenceOptions } from '../kept-sequence.js';

interface Endpoint {
  readonly address: string;
  readonly tier: RemoteTier;
  /** Requests sent to it and not yet ended (the balancing key). */
  outstanding: number;
  /** After a connection-level failure, avoided until this time (ms) unless nothing else serves. */
  suspectUntil: number;
}

/**
 * One tier served by several tier servers (`tiergate worker` replicas, sidecars, pods behind a
 * headless Service). Each address is a RemoteTier of its own — its channel, its grpc.health.v1
 * probe — so an address that stops answering SERVING is taken out and comes back when it
 * answers SERVING again. Requests go to the serving address with the fewest outstanding
 * requests (ties in turn). A failure before the first token that another server could avoid
 * (unreachable, not serving, stream broken, at capacity) is retried on the next address; after
 * the first token the error goes up to the resilience layer, which continues on a fallback tier.
 */
export class BalancedRemoteTier implements Tier {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly targets: readonly string[];
  private next = 0;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly endpointGauge: Gauge<'tier' | 'state'>;

  constructor(
    readonly name: string,
    private readonly options: RemoteTierConfig,
    private readonly deps: RemoteTierDeps,
    private readonly hostLookup: HostLookup = systemLookup,
  ) {
    this.targets = options.addresses ?? (options.address === undefined ? [] : [options.address]);
    if (this.targets.length === 0) {
      throw new RemoteTierError('TG_REMOTE_CONFIG', `tier "${name}": give address or addresses`);
    }
    this.endpointGauge = deps.metrics.gauge({
      name: 'remote_endpoints',
      help: 'Tier server addresses behind a remote tier, by state (serving, not_serving).',
      labelNames: ['tier', 'state'],
    });
  }

  async start(): Promise<void> {
    await this.refresh();
    if (this.options.resolve) this.every(this.options.resolveIntervalMs, () => void this.refresh());
    this.every(this.options.healthIntervalMs, () => this.updateMetrics());
    // Ready as soon as one address serves; the others join when their probes say SERVING.
    const members = [...this.endpoints.values()];
    await new Promise<void>((resolve) => {
      let pending = members.length;
      const settle = (): void => {
        pending--;
        if (pending <= 0 || this.health().ready) resolve();
      };
      if (pending === 0) resolve();
      for (const m of members) void m.tier.start().then(settle, settle);
    });
    this.updateMetrics();
    if (!this.health().ready && this.options.required) {
      throw new RemoteTierError('TG_REMOTE_UNAVAILABLE', `tier "${this.name}": ${this.health().detail}`);
    }
  }

  async *generate(request: GenerateRequest, signal: CancelSignal): AsyncGenerator<TierEvent> {
    const tried = new Set<string>();
    let lastError: unknown;
    for (;;) {
      signal.throwIfAborted();
      const endpoint = this.pick(tried);
      if (endpoint === undefined) throw lastError ?? this.unavailable();
      tried.add(endpoint.address);
      endpoint.outstanding++;
      let streamed = false;
      try {
        for await (const event of endpoint.tier.generate(request, signal)) {
          streamed = true;
          yield event;
        }
        return;
      } catch (err) {
        if (streamed || signal.aborted || !avoidable(err)) throw err;
        this.suspect(endpoint, err);
        lastError = err;
      } finally {
        endpoint.outstanding--;
      }
    }
  }

  async score(tokens: readonly number[], signal?: CancelSignal): Promise<Float64Array> {
    const tried = new Set<string>();
    let lastError: unknown;
    for (;;) {
      signal?.throwIfAborted();
      const endpoint = this.pick(tried);
      if (endpoint === undefined) throw lastError ?? this.unavailable();
      tried.add(endpoint.address);
      endpoint.outstanding++;
      try {
        return await endpoint.tier.score(tokens, signal);
      } catch (err) {
        if (signal?.aborted || !avoidable(err)) throw err;
        this.suspect(endpoint, err);
        lastError = err;
      } finally {
        endpoint.outstanding--;
      }
    }
  }

  /**
   * Kept sequences when a serving address offers them (RemoteTier.openSequence). A sequence is
   * pinned to the address it opened on — its KV cache lives there — and counts as one of that
   * address's outstanding requests until it is closed or its signal aborts. Opening retries the
   * next address on a failure another server could avoid, as a request before its first token.
   */
  get openSequence():
    ((options: OpenSequenceOptions, signal: CancelSignal) => Promise<KeptSequence>) | undefined {
    const any = [...this.endpoints.values()].some((m) => m.tier.health().ready && m.tier.openSequence);
    return any ? (options, signal) => this.openKept(options, signal) : undefined;
  }

  private async openKept(options: OpenSequenceOptions, signal: CancelSignal): Promise<KeptSequence> {
    const tried = new Set<string>();
    let lastError: unknown;
    for (;;) {
      signal.throwIfAborted();
      const endpoint = this.pick(tried, (m) => m.tier.openSequence !== undefined);
      if (endpoint === undefined) throw lastError ?? this.unavailable();
      tried.add(endpoint.address);
      const open = endpoint.tier.openSequence;
      if (open === undefined) continue;
      endpoint.outstanding++;
      let kept: KeptSequence;
      try {
        kept = await open(options, signal);
      } catch (err) {
        endpoint.outstanding--;
        if (signal.aborted || !avoidable(err)) throw err;
        this.suspect(endpoint, err);
        lastError = err;
        continue;
      }
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        endpoint.outstanding--;
        signal.removeEventListener('abort', release);
      };
      signal.addEventListener('abort', release, { once: true });
      return {
        draft: (edit, k) => kept.draft(edit, k),
        verify: (edit, draft, o) => kept.verify(edit, draft, o),
        close: () => {
          kept.close();
          release();
        },
      };
    }
  }

  info(): TierInfo {
    const members = [...this.endpoints.values()];
    const source = members.find((m) => m.tier.health().ready) ?? members[0];
    const info = source?.tier.info();
    return info === undefined
      ? {
          name: this.name,
          framework: 'pytorch',
          modelId: this.deps.family.id,
          variant: this.options.model,
          precision: 'unknown',
          contextLength: 0,
          vocabSize: 0,
          capacity: this.options.maxConcurrent,
        }
      : { ...info, name: this.name, capacity: this.options.maxConcurrent };
  }

  health(): TierHealth {
    if (this.closed) return { ready: false, detail: 'closed' };
    const members = [...this.endpoints.values()];
    const serving = members.filter((m) => m.tier.health().ready);
    const down = members
      .filter((m) => !m.tier.health().ready)
      .map((m) => `${m.address}: ${m.tier.health().detail ?? 'not ready'}`);
    const detail =
      members.length === 0
        ? `no address resolved for ${this.targets.join(', ')}`
        : `${serving.length}/${members.length} addresses serving${down.length > 0 ? ` (${down.join('; ')})` : ''}`;
    return { ready: serving.length > 0, detail };
  }

  /** Outstanding requests per address, for operators and tests. */
  endpointLoad(): Record<string, { outstanding: number; ready: boolean }> {
    const out: Record<string, { outstanding: number; ready: boolean }> = {};
    for (const m of this.endpoints.values())
      out[m.address] = { outstanding: m.outstanding, ready: m.tier.health().ready };
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.allSettled([...this.endpoints.values()].map((m) => m.tier.close()));
    this.endpoints.clear();
    this.updateMetrics();
  }

  /** Least outstanding among serving, untried, unsuspected addresses; ties go in turn. */
  private pick(
    tried: ReadonlySet<string>,
    also: (m: Endpoint) => boolean = () => true,
  ): Endpoint | undefined {
    const now = Date.now();
    const candidates = [...this.endpoints.values()].filter(
      (m) => !tried.has(m.address) && m.tier.health().ready && also(m),
    );
    const trusted = candidates.filter((m) => m.suspectUntil <= now);
    const pool = trusted.length > 0 ? trusted : candidates;
    if (pool.length === 0) return undefined;
    const start = this.next++ % pool.length;
    let best: Endpoint | undefined;
    for (let i = 0; i < pool.length; i++) {
      const m = pool[(start + i) % pool.length]!;
      if (best === undefined || m.outstanding < best.outstanding) best = m;
    }
    return best;
  }

  private suspect(endpoint: Endpoint, err: unknown): void {
    // Until its health probe has had a chance to look, prefer the other addresses.
    endpoint.suspectUntil = Date.now() + Math.max(1_000, 2 * this.options.healthIntervalMs);
    this.deps.logger.warn(
      { address: endpoint.address, err: (err as Error).message },
      'remote tier address failed before the first token; trying another',
    );
  }

  private unavailable(): TierUnavailableError {
    return new TierUnavailableError(
      this.name,
      `tier "${this.name}": no address serving (${this.health().detail})`,
    );
  }

  /** (Re-)resolves the targets: starts new addresses, closes ones that disappeared. */
  private async refresh(): Promise<void> {
    const { endpoints, errors } = await resolveEndpoints(this.targets, this.options.resolve, this.hostLookup);
    if (this.closed) return;
    if (errors.length > 0) this.deps.logger.warn({ errors }, 'remote tier: name resolution failed');
    // A failed lookup must not empty a working tier: keep what we have until names resolve again.
    if (endpoints.length === 0) return;
    const wanted = new Set(endpoints);
    for (const address of endpoints) {
      if (this.endpoints.has(address)) continue;
      const tier = new RemoteTier(
        this.name,
        { ...this.options, address, addresses: undefined, resolve: false, spawn: false, required: false },
        // Members report into a private registry: the tier-level series are this class's.
        {
          ...this.deps,
          logger: this.deps.logger.child({ address }),
          metrics: new MetricsService({ defaultMetrics: false }),
        },
      );
      this.endpoints.set(address, { address, tier, outstanding: 0, suspectUntil: 0 });
      // Addresses found after start() begin probing at once (start of the first ones is awaited there).
      if (this.timers.length > 0) void tier.start();
      this.deps.logger.info({ address }, 'remote tier address added');
    }
    for (const [address, m] of this.endpoints) {
      if (wanted.has(address)) continue;
      this.endpoints.delete(address);
      // In-flight calls on its channel finish; new ones go elsewhere.
      void m.tier.close();
      this.deps.logger.info({ address }, 'remote tier address removed');
    }
  }

  private updateMetrics(): void {
    const members = [...this.endpoints.values()];
    const serving = members.filter((m) => m.tier.health().ready).length;
    this.endpointGauge.set({ tier: this.name, state: 'serving' }, serving);
    this.endpointGauge.set({ tier: this.name, state: 'not_serving' }, members.length - serving);
    sidecarMetrics(this.deps.metrics).up.set({ tier: this.name }, serving > 0 ? 1 : 0);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}

/** Failures another address may not have: unreachable / not serving / broken stream / at capacity. */
function avoidable(err: unknown): boolean {
  if (err instanceof TierUnavailableError) return true;
  if (err instanceof RemoteTierError) {
    return err.retryable || err.grpcCode === GrpcStatus.RESOURCE_EXHAUSTED;
  }
  return false;
}
