import type { LevelResult } from './load-run.js';

/** The measurement file `tiergate bench` writes and `tiergate report` reads. */
export const BENCH_FORMAT = 'tiergate-bench/1';

export interface BenchOptions {
  readonly concurrency: readonly number[];
  /** Closed-loop time per concurrency level and path. */
  readonly durationMs: number;
  readonly maxTokens: number;
  readonly promptTokens: number;
}

export interface TargetBench {
  readonly target: string;
  readonly tier: string;
  readonly kind: string;
  readonly framework: string;
  /** Manifest variant id; undefined for echo. */
  readonly variant?: string | undefined;
  readonly precision: string;
  readonly fileBytes?: number | undefined;
  /** Tier.start() time: model load, worker threads, sidecar spawn and readiness. */
  readonly loadMs: number;
  /** VmHWM of the process that holds the model: this process for in-process tiers, else the sidecar. */
  readonly peakRssBytes?: number | undefined;
  readonly rssOf: 'gateway' | 'sidecar';
  /** Straight through the Tier interface. */
  readonly direct: readonly LevelResult[];
  /** Through the real gateway over HTTP SSE (same tier config). */
  readonly gateway: readonly LevelResult[];
  /** Set when the target could not be measured; the rest is then partial. */
  readonly error?: string | undefined;
}

export interface BenchFile {
  readonly format: typeof BENCH_FORMAT;
  readonly generatedAt: string;
  readonly machine: {
    readonly cpu: string;
    readonly cores: number;
    readonly node: string;
    readonly platform: string;
    /** GPUs tiergate could use; none of its tiers run on a GPU in this build. */
    readonly gpu: 'none';
    /** 1-minute load average before and after the run: other work on the machine skews figures. */
    readonly loadAverage?: readonly [number, number] | undefined;
  };
  readonly options: BenchOptions;
  readonly targets: readonly TargetBench[];
}
