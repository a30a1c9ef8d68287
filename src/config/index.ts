export { loadConfigFile, buildConfig, ConfigError, sha256Hex, type LoadOptions } from './load.js';
export type { Config, ApiKeyConfig, ServedModelConfig, LogLevel } from './schema.js';
export * from './tiers/index.js';
export {
  RoutingSchema,
  routingProblems,
  type RoutingConfig,
  type PolicyConfig,
  type ProfileSeed,
} from './policies.js';
