/**
 * Starts the real gateway in this process from a YAML config of the repo (config/tiergate.yaml by
 * default) with overrides merged over it, on a free loopback port with logs silenced: what the
 * resilience benches (bench/burst.ts, bench/frozen-tier.ts) drive with real tiers.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { buildConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base`: mappings key by key, anything else replaced. */
export function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over))
    out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  return out;
}

export async function startConfigGateway(
  overrides: Tree = {},
  file = 'config/tiergate.yaml',
): Promise<{ server: RunningServer; config: Config }> {
  const path = resolve(REPO_ROOT, file);
  const raw = merge(parseYaml(readFileSync(path, 'utf8')) as Tree, {
    ...overrides,
    logging: { level: 'silent' },
    server: { port: 0, host: '127.0.0.1' },
  });
  const config = buildConfig(raw, { baseDir: dirname(path), env: {} });
  return { server: await startServer(config, createLogger(config.logging.level)), config };
}

/** Every sample of a metric family in the Prometheus text, keyed by its label set. */
export async function samples(baseUrl: string, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(name.length, at), Number(line.slice(at + 1)));
  }
  return out;
}
