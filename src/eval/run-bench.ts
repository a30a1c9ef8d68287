import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { loadModelFamily } from '../family/manifest.js';
import { BENCH_FORMAT, type BenchFile, type BenchOptions, type TargetBench } from './bench-types.js';
import type { Progress } from './progress.js';
import { selectTargets, type Target } from './targets.js';

export interface BenchRunOptions extends BenchOptions {
  readonly tiers?: readonly string[] | undefined;
  readonly allVariants: boolean;
  /** argv of this CLI (node flags, script) to re-run it as `bench --child <target>`. */
  readonly self: readonly string[];
  /** Arguments the child needs to rebuild the same config and options. */
  readonly childArgs: readonly string[];
}

export function benchTargets(
  config: Config,
  options: { tiers?: readonly string[] | undefined; allVariants: boolean },
): Target[] {
  return selectTargets(config, loadModelFamily(config.family.dir), { ...options, includeEcho: true });
}

/**
 * Benchmarks every target, each in a fresh child process: peak RSS (VmHWM) is per process and
 * only ever grows, so one process per target is the only way to read each target's own peak.
 */
export async function runBench(
  config: Config,
  options: BenchRunOptions,
  progress: Progress,
): Promise<BenchFile> {
  const targets = benchTargets(config, options);
  const loadBefore = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'tiergate-bench-'));
  const results: TargetBench[] = [];
  try {
    for (const [i, target] of targets.entries()) {
      progress.end(`[${i + 1}/${targets.length}] ${target.name}`);
      const out = join(dir, `${i}.json`);
      const error = await runChild(options, target.name, out);
      if (error === undefined) {
        results.push(JSON.parse(readFileSync(out, 'utf8')) as TargetBench);
      } else {
        results.push(failed(target, error));
        progress.end(`${target.name}: FAILED ${error}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    format: BENCH_FORMAT,
    generatedAt: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      gpu: 'none',
      loadAverage: [loadBefore, loadavg()[0] ?? 0],
    },
    options: {
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      maxTokens: options.maxTokens,
      promptTokens: options.promptTokens,
    },
    targets: results,
  };
}

/** Runs one child; resolves undefined on success, else the reason (its stderr's last lines). */
function runChild(options: BenchRunOptions, target: string, out: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const args = [...options.self, 'bench', ...options.childArgs, '--child', target, '--child-out', out];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      // The child's progress lines pass through so a long run shows where it is.
      process.stderr.write(d);
    });
    child.on('error', (err) => resolve(err.message));
    child.on('close', (code) => {
      resolve(code === 0 ? undefined : stderr.trim().split('\n').slice(-3).join(' | ') || `exit ${code}`);
    });
  });
}

function failed(target: Target, error: string): TargetBench {
  return {
    target: target.name,
    tier: target.tier,
    kind: target.config.kind,
    framework: target.config.kind,
    precision: 'unknown',
    loadMs: Number.NaN,
    rssOf: 'gateway',
    direct: [],
    gateway: [],
    error,
  };
}
