import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import type { DestinationStream } from 'pino';
import { buildConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FAMILY_DIR = fileURLToPath(new URL('../../models/tiny/', import.meta.url));

export interface TestGateway extends RunningServer {
  readonly client: OpenAI;
  readonly baseUrl: string;
}

/**
 * Starts the real gateway on a free port (port 0 unless `raw.server` names one) from a config
 * object, logs silenced unless `raw.logging` or TEST_LOG_LEVEL says otherwise, with an official
 * OpenAI SDK client pointed at it. Relative paths resolve against the repo root.
 */
export async function startGateway(
  raw: Record<string, unknown>,
  apiKey = 'unused',
  /** Where log lines go (default stdout), at the config's `logging.level`. */
  log?: DestinationStream,
): Promise<TestGateway> {
  const config = buildConfig(
    {
      logging: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
      ...raw,
      // A free port on loopback, whatever else the test sets for the server.
      server: { port: 0, host: '127.0.0.1', ...(raw.server as Record<string, unknown> | undefined) },
    },
    { baseDir: REPO_ROOT, env: {} },
  );
  const server = await startServer(config, createLogger(config.logging.level, log, config.logging.redact));
  const baseUrl = server.url;
  const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
  return Object.assign(server, { client, baseUrl });
}

/** A gateway on the zero-work echo tier with the byte tokenizer: no model files needed. */
export function echoConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tokenizer: { kind: 'bytes' },
    family: { dir: 'models/tiny' },
    tiers: { echo: { kind: 'echo', contextLength: 256 } },
    models: { 'tiergate-echo': { tier: 'echo' } },
    ...extra,
  };
}

/** The real edge tier on the committed Q4_K_M GGUF. */
export function edgeConfig(
  tier: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    tiers: { edge: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 4, ...tier } },
    models: { 'tiergate-tiny': { tier: 'edge' } },
    ...extra,
  };
}

/** Reads one sample value from the Prometheus text, e.g. metric('tiergate_tier_sequences_in_use{tier="edge"}'). */
export async function metricValue(
  baseUrl: string,
  series: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}
