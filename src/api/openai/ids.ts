import { createHash, randomBytes } from 'node:crypto';
import type { TierInfo } from '../../tiers/tier.js';

/** OpenAI-looking ids: a prefix and 24 random base62-ish characters. */
export function responseId(prefix: 'cmpl' | 'chatcmpl'): string {
  return `${prefix}-${randomBytes(18).toString('base64url')}`;
}

/**
 * `system_fingerprint` identifies the backend configuration that produced a response (OpenAI:
 * "use with seed to understand when backend changes have been made"): here framework + variant.
 */
export function systemFingerprint(info: TierInfo): string {
  const digest = createHash('sha256')
    .update(`${info.framework}|${info.modelId}|${info.variant}|${info.precision}`)
    .digest('hex');
  return `fp_${digest.slice(0, 10)}`;
}
