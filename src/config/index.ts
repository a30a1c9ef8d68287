export { loadConfigFile, buildConfig, ConfigError, sha256Hex, type LoadOptions } from './load.js';
export type { Config, ApiKeyConfig, ServedModelConfig, LogLevel } from './schema.js';
export * from './tiers/index.js';
