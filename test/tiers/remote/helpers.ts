/**
 * Shared set-up for the remote tier tests: a real sidecar process (spawned by RemoteTier's
 * supervisor) serving either a small random-weight GGUF written by the shared model definition
 * (fast, no dependency on the trained family) or the model family's F32 GGUF.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { Value } from '@sinclair/typebox/value';
import { pino, type Logger } from 'pino';
import { RemoteTierSchema, type RemoteTierConfig } from '../../../src/config/tiers/remote.js';
import { loadModelFamily, type ModelFamily } from '../../../src/family/manifest.js';
import { MetricsService } from '../../../src/observability/metrics.js';
import { RemoteTier } from '../../../src/tiers/remote/remote-tier.js';
import { SIDECAR_DIR } from '../../../src/tiers/remote/sidecar-supervisor.js';
import type { GenerateRequest, TierEvent } from '../../../src/tiers/tier.js';
import { flat } from '../../helpers/tier-events.js';

export const PYTHON = '/usr/bin/python3';
export const REPO = resolve(import.meta.dirname, '../../..');
export const FAMILY_DIR = join(REPO, 'models/tiny');

/**
 * A random 2-layer LLaMA GGUF with a 4096-token context (f32 or f16), written by
 * test/sidecar/make_random_gguf.py. Cached in the temp directory under the script's hash, so test
 * files (separate processes) share one file instead of each paying for a torch start-up.
 */
export function randomModel(dtype: 'f32' | 'f16' = 'f32'): string {
  const script = join(REPO, 'test/sidecar/make_random_gguf.py');
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 12);
  const path = join(tmpdir(), `tiergate-random-${hash}-${dtype}.gguf`);
  if (!existsSync(path)) {
    // Write to a unique name, then rename: concurrent test files never see a partial file.
    const partial = join(mkdtempSync(join(tmpdir(), 'tiergate-remote-')), 'model.gguf');
    const r = spawnSync(PYTHON, [script, partial, dtype, '1'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_random_gguf.py failed: ${r.stderr}`);
    renameSync(partial, path);
  }
  return path;
}

/** A pino logger that keeps every line so tests can read what the gateway and sidecar logged. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

export function remoteConfig(overrides: Partial<RemoteTierConfig>): RemoteTierConfig {
  return Value.Default(RemoteTierSchema, { kind: 'remote', ...overrides }) as RemoteTierConfig;
}

export interface TierHarness {
  tier: RemoteTier;
  metrics: MetricsService;
  lines: Record<string, unknown>[];
}

export function makeTier(
  overrides: Partial<RemoteTierConfig>,
  family?: ModelFamily,
  name = 'fallback',
): TierHarness {
  const { logger, lines } = captureLogger();
  const metrics = new MetricsService({ defaultMetrics: false });
  const fam = family ?? { dir: tmpdir(), id: 'random', variants: [], manifest: undefined };
  const tier = new RemoteTier(name, remoteConfig(overrides), { logger, metrics, family: fam });
  return { tier, metrics, lines };
}

export function hasFamily(): boolean {
  return existsSync(join(FAMILY_DIR, 'golden.json')) && existsSync(join(FAMILY_DIR, 'manifest.json'));
}

export function family(): ModelFamily {
  return loadModelFamily(FAMILY_DIR);
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export const GREEDY = { temperature: 0, topP: 1, topK: 0 } as const;

export function request(
  tokens: readonly number[],
  maxTokens: number,
  extra: Partial<GenerateRequest> = {},
): GenerateRequest {
  return { tokens, sampling: GREEDY, maxTokens, stopTokens: [], topLogprobs: 0, ...extra };
}

/** Runs a generation to its end; returns the tokens and the finish reason. */
export async function collect(
  events: AsyncIterable<TierEvent>,
): Promise<{ tokens: number[]; logprobs: number[]; reason: string | undefined }> {
  const tokens: number[] = [];
  const logprobs: number[] = [];
  let reason: string | undefined;
  for await (const e of flat(events)) {
    if (e.kind === 'token') {
      tokens.push(e.token);
      logprobs.push(e.logprob);
    } else reason = e.reason;
  }
  return { tokens, logprobs, reason };
}

/** Polls `check` every 25 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Starts a sidecar by hand (external mode: `python3 -m tiergate_sidecar --listen 127.0.0.1:0`
 * plus `args`) and resolves with the process and the address from its "listening" log line.
 */
export async function startExternalSidecar(
  args: readonly string[],
): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(PYTHON, ['-m', 'tiergate_sidecar', '--listen', '127.0.0.1:0', ...args], {
    cwd: SIDECAR_DIR,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      const record = JSON.parse(line) as { msg: string; address?: string };
      if (record.msg === 'listening' && record.address !== undefined) resolve(record.address);
    });
    child.on('exit', (code) => reject(new Error(`sidecar exited with ${code}`)));
  });
  return { child, address };
}
