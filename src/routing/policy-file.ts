import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/index.js';
import {
  RoutingSchema,
  routingProblems,
  withRoutingDefaults,
  type RoutingConfig,
} from '../config/policies.js';

/**
 * Validates a routing document: either the `routing:` section itself or a whole file holding one
 * under a `routing:` key (so a gateway config can be simulated as it is). Same schema and
 * cross-checks as the gateway's config; problems are reported as a ConfigError.
 */
export function parseRoutingDocument(
  raw: unknown,
  tierNames: readonly string[],
  source: string,
): RoutingConfig {
  const doc =
    typeof raw === 'object' && raw !== null && 'routing' in raw ? (raw as { routing: unknown }).routing : raw;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError(source, ['/: expected a mapping with `policies`']);
  }
  const value = Value.Default(RoutingSchema, withRoutingDefaults(structuredClone(doc)));
  const problems = [...Value.Errors(RoutingSchema, value)]
    .slice(0, 20)
    .map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length === 0) problems.push(...routingProblems(value as RoutingConfig, tierNames, ''));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return value as RoutingConfig;
}

export function loadRoutingFile(path: string, tierNames: readonly string[]): RoutingConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseRoutingDocument(raw, tierNames, path);
}
