import { createHash, randomBytes } from 'node:crypto';
import type { Gateway } from '../../gateway/gateway.js';
import type { Execution } from '../../service/execution.js';
import type { TierInfo } from '../../tiers/tier.js';

// Ids are a random per-process part plus a counter: unique without a random draw per request.
const processPart = randomBytes(9).toString('base64url');
let counter = 0;

/** OpenAI-looking ids: a prefix and 24 URL-safe characters. */
export function responseId(prefix: 'cmpl' | 'chatcmpl'): string {
  counter = (counter + 1) % 0x1000000000;
  return `${prefix}-${processPart}${counter.toString(36).padStart(12, '0')}`;
}

/**
 * `system_fingerprint` identifies the backend configuration that produced a response (OpenAI:
 * "use with seed to understand when backend changes have been made"): here framework + variant.
 */
const fingerprints = new Map<string, string>();

export function systemFingerprint(info: TierInfo): string {
  const key = `${info.framework}|${info.modelId}|${info.variant}|${info.precision}`;
  const cached = fingerprints.get(key);
  if (cached !== undefined) return cached;
  const digest = createHash('sha256').update(key).digest('hex');
  const fingerprint = `fp_${digest.slice(0, 10)}`;
  fingerprints.set(key, fingerprint);
  return fingerprint;
}

/**
 * The fingerprint of the tier that produced the tokens being sent: the latest tier that served the
 * request (after a mid-stream continuation, the one that continued), else the routed tier. Read
 * when each chunk or the response is built, so it names the framework that actually answered.
 */
export function servingFingerprint(gateway: Gateway, exec: Execution): string {
  const name = exec.servingTier;
  const tier = name === undefined ? undefined : gateway.tiers.get(name);
  if (tier === undefined) return '';
  // A tier's identity is fixed once started: its fingerprint is computed once, not per chunk.
  let fingerprint = tierFingerprints.get(tier);
  if (fingerprint === undefined) {
    fingerprint = systemFingerprint(tier.info());
    tierFingerprints.set(tier, fingerprint);
  }
  return fingerprint;
}

const tierFingerprints = new WeakMap<object, string>();
