import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { routingProblems, withRoutingDefaults, type RoutingConfig } from './policies.js';
import { ConfigSchema, type Config } from './schema.js';
import { keyLimitProblems } from './key-limits.js';
import { checkResilience, type ResilienceConfig } from './resilience.js';
import { isTierKind, tierSchemas, type TierConfig } from './tiers/index.js';

/** Thrown for any invalid configuration; `problems` lists each bad path with what is wrong. */
export class ConfigError extends Error {
  readonly code = 'TIERGATE_ERR_CONFIG';
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid configuration (${source}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /**
   * Environment for overrides (TIERGATE_PORT, TIERGATE_HOST, TIERGATE_GRPC_PORT, TIERGATE_LOG_LEVEL)
   * and key lookup.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Directory that relative paths resolve against; default: the config file's directory. */
  readonly baseDir?: string;
}

/** Reads, validates and freezes a YAML config file. */
export function loadConfigFile(path: string, options: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    // The parser's message quotes the offending lines of the file, which may hold a key: only its
    // first line (what is wrong, at which line and column) is kept.
    const first = (err as Error).message.split('\n', 1)[0]?.replace(/:$/, '') ?? '';
    throw new ConfigError(path, [`not valid YAML: ${first}`]);
  }
  return buildConfig(raw, { ...options, baseDir: options.baseDir ?? dirname(resolve(path)) }, path);
}

/** Validates a config object (as parsed from YAML) and returns the frozen, defaulted result. */
export function buildConfig(raw: unknown, options: LoadOptions = {}, source = 'config'): Config {
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, ['/: expected a mapping at the top level']);
  }
  const input = structuredClone(raw) as Record<string, unknown>;
  applyEnvOverrides(input, env);
  if (input.routing !== undefined) input.routing = withRoutingDefaults(input.routing);

  const problems: string[] = [];
  const root = validate(ConfigSchema, input, '', problems) as Record<string, unknown> | undefined;
  const tiers: Record<string, TierConfig> = {};
  const rawTiers = (input.tiers ?? {}) as Record<string, unknown>;
  if (typeof rawTiers === 'object' && rawTiers !== null) {
    for (const [name, tier] of Object.entries(rawTiers)) {
      const kind = (tier as { kind?: unknown } | null)?.kind;
      if (!isTierKind(kind)) {
        problems.push(
          `/tiers/${name}/kind: must be one of ${Object.keys(tierSchemas).join(', ')} (got ${JSON.stringify(kind)})`,
        );
        continue;
      }
      const checked = validate(tierSchemas[kind], tier, `/tiers/${name}`, problems);
      if (checked !== undefined) tiers[name] = checked as TierConfig;
    }
  }
  if (problems.length > 0 || root === undefined) throw new ConfigError(source, problems);

  const config = { ...root, tiers } as unknown as MutableConfig;
  crossValidate(config, env, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  resolvePaths(config, baseDir);
  return deepFreeze(config) as Config;
}

type MutableConfig = {
  -readonly [K in keyof Config]: Config[K] extends object
    ? { -readonly [P in keyof Config[K]]: unknown }
    : Config[K];
} & Record<string, unknown>;

function validate(schema: TSchema, value: unknown, prefix: string, problems: string[]): unknown {
  const withDefaults = Value.Default(schema, structuredClone(value ?? {}));
  const errors = [...Value.Errors(schema, withDefaults)];
  if (errors.length === 0) return withDefaults;
  for (const e of errors.slice(0, 20)) {
    const message = e.schema.anyOf === undefined ? e.message : `Expected ${alternatives(e.schema.anyOf)}`;
    const path = `${prefix}${e.path || '/'}`;
    problems.push(`${path}: ${message}${got(path, e.value)}`);
  }
  return undefined;
}

/**
 * Config paths that hold secrets (docs/gateway.md, API keys): a problem there names the path, what
 * was expected and the type of what was found, never the value. This covers a key written where
 * an entry was expected (`- sk-...` instead of `- { name, key }`) and a key under a mistyped field.
 */
const SECRET_PATHS: readonly RegExp[] = [/^\/auth(?:\/|$)/];

function got(path: string, value: unknown): string {
  if (value === undefined) return '';
  if (SECRET_PATHS.some((p) => p.test(path))) return ` (got ${typeName(value)}, value redacted)`;
  return ` (got ${short(value)})`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A union's members in words (TypeBox's own message is only "Expected union value"). */
function alternatives(members: readonly TSchema[]): string {
  const words = members.map((m) =>
    m.const !== undefined
      ? JSON.stringify(m.const)
      : typeof m.type === 'string'
        ? `a ${m.type}`
        : 'another shape',
  );
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words.at(-1)!}`;
}

function short(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function applyEnvOverrides(input: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const section = (key: string): Record<string, unknown> => {
    const existing = input[key];
    if (typeof existing === 'object' && existing !== null) return existing as Record<string, unknown>;
    const created: Record<string, unknown> = {};
    input[key] = created;
    return created;
  };
  // Environment strings are coerced here so the schema sees the right type and can reject
  // nonsense; empty values count as unset (as in `TIERGATE_PORT= tiergate serve`).
  const port = (value: string): number | string => {
    const n = Number(value);
    return Number.isFinite(n) && value.trim() !== '' ? n : value;
  };
  if (env.TIERGATE_PORT !== undefined && env.TIERGATE_PORT !== '') {
    section('server').port = port(env.TIERGATE_PORT);
  }
  if (env.TIERGATE_GRPC_PORT !== undefined && env.TIERGATE_GRPC_PORT !== '') {
    section('grpc').port = port(env.TIERGATE_GRPC_PORT);
  }
  if (env.TIERGATE_HOST !== undefined && env.TIERGATE_HOST !== '') section('server').host = env.TIERGATE_HOST;
  if (env.TIERGATE_LOG_LEVEL !== undefined && env.TIERGATE_LOG_LEVEL !== '')
    section('logging').level = env.TIERGATE_LOG_LEVEL;
}

function crossValidate(config: MutableConfig, env: NodeJS.ProcessEnv, problems: string[]): void {
  const tiers = config.tiers as Record<string, TierConfig>;
  const models = config.models as Record<string, { tier: string }>;
  for (const [model, served] of Object.entries(models)) {
    if (!Object.hasOwn(tiers, served.tier)) {
      const known = Object.keys(tiers).join(', ') || '(none)';
      problems.push(`/models/${model}/tier: no tier named "${served.tier}" (tiers: ${known})`);
    }
  }
  if (Object.keys(models).length === 0) problems.push('/models: at least one served model is required');
  const server = config.server as { headersTimeoutMs: number; requestTimeoutMs: number };
  if (server.requestTimeoutMs > 0 && server.headersTimeoutMs > server.requestTimeoutMs) {
    problems.push(
      `/server/headersTimeoutMs: must not exceed server.requestTimeoutMs (${server.requestTimeoutMs}) unless that is 0`,
    );
  }
  problems.push(...routingProblems(config.routing as RoutingConfig, Object.keys(tiers)));
  problems.push(...checkResilience(config.resilience as ResilienceConfig, Object.keys(tiers)));
  const auth = config.auth as {
    enabled: boolean;
    keys: { name: string; sha256?: string; env?: string; key?: string }[];
  };
  auth.keys.forEach((k, i) => {
    const given = [k.sha256, k.env, k.key].filter((v) => v !== undefined).length;
    if (given !== 1) {
      problems.push(`/auth/keys/${i}: give exactly one of sha256, env or key (key "${k.name}" has ${given})`);
      return;
    }
    if (k.env !== undefined) {
      const value = env[k.env];
      if (value === undefined || value === '') {
        if (auth.enabled) problems.push(`/auth/keys/${i}/env: environment variable ${k.env} is not set`);
        return;
      }
      k.sha256 = sha256Hex(value);
    } else if (k.key !== undefined) {
      k.sha256 = sha256Hex(k.key);
    }
    // Only the hash is kept in memory; the plain-text key is dropped once hashed.
    delete k.key;
    k.sha256 = k.sha256?.toLowerCase();
  });
  if (auth.enabled && auth.keys.every((k) => k.sha256 === undefined)) {
    problems.push('/auth/keys: auth is enabled but no usable key is configured');
  }
  const limits = config.limits as { byKey: Record<string, unknown> };
  problems.push(
    ...keyLimitProblems(
      limits.byKey,
      auth.keys.map((k) => k.name),
    ),
  );
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function resolvePaths(config: MutableConfig, baseDir: string): void {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const family = config.family as { dir: string };
  family.dir = abs(family.dir);
  // Tier `model` values may be variant ids, bare file names (looked up in the family directory)
  // or paths; only values with a directory part are resolved here.
  const looksLikePath = (p: string): boolean => p.includes('/');
  for (const tier of Object.values(config.tiers as Record<string, { model?: string }>)) {
    if (tier.model !== undefined && looksLikePath(tier.model)) tier.model = abs(tier.model);
  }
  const tokenizer = config.tokenizer as { model?: string };
  if (tokenizer.model !== undefined && looksLikePath(tokenizer.model)) tokenizer.model = abs(tokenizer.model);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
