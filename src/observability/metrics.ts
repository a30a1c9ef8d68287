import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';
import {
  SeriesCounter,
  SeriesHistogram,
  type CounterSeries,
  type HistogramSeries,
} from './series-metrics.js';

/** Every metric name starts with this, so tiergate's series are easy to select. */
export const METRIC_PREFIX = 'tiergate_';

// Buckets sized for a gateway in front of small local models: sub-millisecond overheads up to
// multi-second generations (vLLM uses a similar spread for TTFT and e2e latency).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const GAUGES_NAMED_LIKE_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
const PER_TOKEN_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** One tier's series of the per-request metrics. */
export interface TierSeries {
  readonly inputTokens: CounterSeries;
  readonly outputTokens: CounterSeries;
  readonly timeToFirstToken: HistogramSeries;
  readonly timePerOutputToken: HistogramSeries;
  readonly aborted: CounterSeries;
}

/** The series of speculative decoding across tiers (docs/speculative.md "Metrics"), per tier pair ("edge>main"). */
export interface SpeculationSeries {
  readonly draftTokens: Counter<'pair' | 'result'>;
  readonly verifySteps: Counter<'pair'>;
  readonly requests: Counter<'pair' | 'outcome'>;
  readonly speedup: Histogram<'pair'>;
  readonly acceptance: Gauge<'pair'>;
  readonly k: Gauge<'pair'>;
}

export interface CascadeSeries {
  readonly requests: Counter<'cascade' | 'outcome'>;
  /** The probe's score, per judged choice. */
  readonly probe: Histogram<'cascade' | 'signal'>;
  /** Tokens the first tier generated for answers that were then escalated (paid for, not served). */
  readonly discarded: Counter<'cascade'>;
}

/**
 * Owns one prom-client Registry per gateway instance (never the global one, so several apps
 * in one process, e.g. in tests, do not collide). Names follow vLLM and the OpenTelemetry GenAI
 * semantic conventions where those define one (TTFT, time per output token, token usage by type).
 * Labels stay low-cardinality: tier, model (configured names only), route, status, type.
 */
export class MetricsService {
  readonly registry = new Registry();

  // The series every request touches are SeriesCounter/SeriesHistogram (series-metrics.ts):
  // label values resolved once, not validated and hashed on every update.
  /** HTTP requests by route template, tier and status code. */
  readonly requests: SeriesCounter<'route' | 'tier' | 'status'>;
  /** Whole-request duration (gen_ai.server.request.duration / vllm e2e_request_latency). */
  readonly requestDuration: SeriesHistogram<'route' | 'tier' | 'status'>;
  /** Time from the request's arrival to its first generated token (gen_ai.server.time_to_first_token). */
  readonly timeToFirstToken: SeriesHistogram<'tier'>;
  /** Mean decode time per output token after the first (gen_ai.server.time_per_output_token). */
  readonly timePerOutputToken: SeriesHistogram<'tier'>;
  /** Tokens processed, by type input|output (gen_ai.client.token.usage). */
  readonly tokens: SeriesCounter<'tier' | 'type'>;
  /** Generation requests currently being served (from `generating`, read at scrape time). */
  readonly inFlight: Gauge<'tier'>;
  /**
   * Requests generating now, per tier: a plain count updated twice per request; the gauge reads
   * it when /metrics is scraped instead of hashing its labels on every change.
   */
  readonly generating = new Map<string, number>();
  /** Requests that ended early because the client went away. */
  readonly aborted: SeriesCounter<'tier'>;
  private readonly perTier = new Map<string, TierSeries>();
  /** Time spent loading each tier's model at start-up. */
  readonly tierStartSeconds: Gauge<'tier'>;
  /** 1 when the tier reports ready. */
  readonly tierReady: Gauge<'tier'>;
  /** Speculative decoding (src/service/speculative/), registered up front so the catalogue sees it. */
  readonly speculation: SpeculationSeries;
  /** Cascades (src/service/cascade/), registered up front for the same reason. */
  readonly cascade: CascadeSeries;
  /** Set by the gateway: updates `tierReady` from the tiers' health (called on every scrape). */
  tierReadyProbe: (() => void) | undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
      // prom-client's gauges named *_total break the Prometheus naming rule that `promtool check
      // metrics` enforces (only counters end in _total); each duplicates the sum over its
      // by-type sibling (e.g. sum(tiergate_nodejs_active_handles)), so they are dropped.
      for (const name of GAUGES_NAMED_LIKE_COUNTERS) {
        this.registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
      }
    }
    this.requests = this.seriesCounter({
      name: 'requests_total',
      help: 'HTTP requests by route, tier and status code.',
      labelNames: ['route', 'tier', 'status'],
    });
    this.requestDuration = this.seriesHistogram({
      name: 'request_duration_seconds',
      help: 'End-to-end request duration in seconds.',
      labelNames: ['route', 'tier', 'status'],
      buckets: LATENCY_BUCKETS,
    });
    this.timeToFirstToken = this.seriesHistogram({
      name: 'time_to_first_token_seconds',
      help: 'Time from request arrival to the first generated token, in seconds.',
      labelNames: ['tier'],
      buckets: LATENCY_BUCKETS,
    });
    this.timePerOutputToken = this.seriesHistogram({
      name: 'time_per_output_token_seconds',
      help: 'Mean time per output token after the first, per request, in seconds.',
      labelNames: ['tier'],
      buckets: PER_TOKEN_BUCKETS,
    });
    this.tokens = this.seriesCounter({
      name: 'tokens_total',
      help: 'Tokens processed, by type (input = prompt, output = generated).',
      labelNames: ['tier', 'type'],
    });
    const generating = this.generating;
    this.inFlight = this.gauge({
      name: 'requests_in_flight',
      help: 'Generation requests currently being served.',
      labelNames: ['tier'],
      collect() {
        for (const [tier, n] of generating) this.set({ tier }, n);
      },
    });
    this.aborted = this.seriesCounter({
      name: 'requests_aborted_total',
      help: 'Generations stopped because the client disconnected.',
      labelNames: ['tier'],
    });
    this.tierStartSeconds = this.gauge({
      name: 'tier_start_seconds',
      help: 'Time the tier took to load its model and become ready, in seconds.',
      labelNames: ['tier'],
    });
    this.tierReady = this.gauge({
      name: 'tier_ready',
      help: '1 when the tier reports ready, else 0.',
      labelNames: ['tier'],
      // Refreshed at scrape time, so the gauge is current even when nothing calls /readyz.
      collect: () => this.tierReadyProbe?.(),
    });
    this.speculation = {
      draftTokens: this.counter({
        name: 'speculative_draft_tokens_total',
        help: 'Draft tokens proposed by the draft tier (result="proposed") and accepted by the verify tier (result="accepted"), per tier pair.',
        labelNames: ['pair', 'result'],
      }),
      verifySteps: this.counter({
        name: 'speculative_verify_steps_total',
        help: 'Verify passes (one forward pass over a draft) per tier pair.',
        labelNames: ['pair'],
      }),
      requests: this.counter({
        name: 'speculative_requests_total',
        help: 'Choices planned speculatively, by how they ran.',
        labelNames: ['pair', 'outcome'],
      }),
      speedup: this.histogram({
        name: 'speculative_speedup',
        help: "Per speculated choice: its decode rate over the verify tier's own one-token pass measured on the same sequences.",
        labelNames: ['pair'],
        buckets: [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4, 6],
      }),
      acceptance: this.gauge({
        name: 'speculative_acceptance_rate',
        help: 'Measured share of draft positions the verify tier accepts, per tier pair.',
        labelNames: ['pair'],
      }),
      k: this.gauge({
        name: 'speculative_k',
        help: 'Draft tokens per verify step the measured acceptance and costs favour, per tier pair.',
        labelNames: ['pair'],
      }),
    };
    this.cascade = {
      requests: this.counter({
        name: 'cascade_requests_total',
        help: 'Choices planned as a cascade ("first>>then"), by how they ran: kept, escalated, first_failed.',
        labelNames: ['cascade', 'outcome'],
      }),
      probe: this.histogram({
        name: 'cascade_probe_score',
        help: "The first tier's probe score per judged choice: its tokens' mean logprob (signal=mean_logprob) or smallest top-1/top-2 logprob gap (signal=min_margin).",
        labelNames: ['cascade', 'signal'],
        buckets: [-6, -4, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.1, 0.25, 0.5, 1, 2, 4, 8],
      }),
      discarded: this.counter({
        name: 'cascade_discarded_tokens_total',
        help: "Tokens the first tier generated for choices that escalated (the cascade's cost of a wrong guess).",
        labelNames: ['cascade'],
      }),
    };
  }

  /** Registers a counter in this instance's registry; `name` is given without the prefix. */
  // Registering returns the existing metric when the name is taken, so several tiers of one kind
  // can each ask for the same series (distinguished by their `tier` label).
  counter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
    const name = this.prefixed(config.name);
    return (
      (this.existing(name) as Counter<L> | undefined) ??
      new Counter({ ...config, name, registers: [this.registry] })
    );
  }

  gauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L> {
    const name = this.prefixed(config.name);
    return (
      (this.existing(name) as Gauge<L> | undefined) ??
      new Gauge({ ...config, name, registers: [this.registry] })
    );
  }

  histogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L> {
    const name = this.prefixed(config.name);
    return (
      (this.existing(name) as Histogram<L> | undefined) ??
      new Histogram({ ...config, name, registers: [this.registry] })
    );
  }

  /** A hot-path counter (series-metrics.ts); same naming and sharing rules as counter(). */
  seriesCounter<L extends string>(config: {
    name: string;
    help: string;
    labelNames: readonly L[];
  }): SeriesCounter<L> {
    const name = this.prefixed(config.name);
    const found = this.existing(name);
    if (found instanceof SeriesCounter) return found as SeriesCounter<L>;
    return new SeriesCounter(name, config.help, config.labelNames).registerIn(this.registry);
  }

  /** A hot-path histogram (series-metrics.ts); same naming and sharing rules as histogram(). */
  seriesHistogram<L extends string>(config: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: readonly number[];
  }): SeriesHistogram<L> {
    const name = this.prefixed(config.name);
    const found = this.existing(name);
    if (found instanceof SeriesHistogram) return found as SeriesHistogram<L>;
    return new SeriesHistogram(name, config.help, config.labelNames, config.buckets).registerIn(
      this.registry,
    );
  }

  /** The per-tier series the pipeline updates for every request, resolved once per tier. */
  tier(name: string): TierSeries {
    let t = this.perTier.get(name);
    if (t === undefined) {
      t = {
        inputTokens: this.tokens.labels(name, 'input'),
        outputTokens: this.tokens.labels(name, 'output'),
        timeToFirstToken: this.timeToFirstToken.labels(name),
        timePerOutputToken: this.timePerOutputToken.labels(name),
        aborted: this.aborted.labels(name),
      };
      this.perTier.set(name, t);
    }
    return t;
  }

  private existing(name: string): unknown {
    return this.registry.getSingleMetric(name);
  }

  /** The Prometheus text exposition of every metric in this instance. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private prefixed(name: string): string {
    return name.startsWith(METRIC_PREFIX) ? name : `${METRIC_PREFIX}${name}`;
  }
}
