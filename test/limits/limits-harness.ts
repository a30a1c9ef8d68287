import { setTimeout as sleep } from 'node:timers/promises';

/** API keys of the limit tests, one per limit so each test's counters start empty. */
export const KEYS = {
  rpm: 'sk-limit-rpm-0001',
  tpm: 'sk-limit-tpm-0001',
  budget: 'sk-limit-budget-01',
  streams: 'sk-limit-streams-1',
  soft: 'sk-limit-soft-0001',
  scoped: 'sk-limit-scoped-01',
  admin: 'sk-limit-admin-001',
  meter: 'sk-limit-meter-001',
} as const;

export const RPM = 20;
export const TPM = 3_000;
export const BUDGET = 2_000;
export const STREAMS = 3;
export const SCOPE_RPM = 7;

/**
 * A gateway on the echo tier (byte tokenizer: a prompt of n ASCII characters is n tokens) with
 * API keys, each with one limit; the `inference` scope's default is SCOPE_RPM requests a minute.
 */
export function limitsConfig(
  limits: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    tokenizer: { kind: 'bytes' },
    family: { dir: 'models/tiny' },
    tiers: {
      echo: { kind: 'echo', contextLength: 512 },
      slow: { kind: 'echo', contextLength: 512, tokenDelayMs: 20 },
    },
    models: { 'tiergate-echo': { tier: 'echo' }, 'tiergate-slow': { tier: 'slow' } },
    auth: {
      enabled: true,
      keys: [
        { name: 'rpm', key: KEYS.rpm },
        { name: 'tpm', key: KEYS.tpm },
        { name: 'budget', key: KEYS.budget },
        { name: 'streams', key: KEYS.streams },
        { name: 'soft', key: KEYS.soft },
        { name: 'scoped', key: KEYS.scoped },
        { name: 'ops', key: KEYS.admin, scopes: ['admin'] },
        { name: 'meter', key: KEYS.meter },
      ],
    },
    limits: {
      leaseTokens: 16,
      byScope: { inference: { requestsPerMinute: SCOPE_RPM } },
      byKey: {
        rpm: { requestsPerMinute: RPM, metricsLabel: true },
        tpm: { requestsPerMinute: 10_000, tokensPerMinute: TPM },
        budget: { requestsPerMinute: 10_000, budget: { tokens: BUDGET, period: 'day', policy: 'hard' } },
        streams: { requestsPerMinute: 10_000, concurrentStreams: STREAMS },
        soft: { requestsPerMinute: 10_000, budget: { tokens: 100, period: 'day', policy: 'soft' } },
        // Metered (a token limit far above its use): its streams take leases as they go.
        meter: { requestsPerMinute: 10_000, tokensPerMinute: 1_000_000 },
      },
      ...limits,
    },
    ...extra,
  };
}

/**
 * Per-minute windows are calendar minutes (src/limits/window.ts): a burst that straddled a
 * minute's end would count into two windows. Waits for the next minute when less than
 * `needMs` is left of this one, so the burst's requests share one window.
 */
export async function withinOneMinute(needMs = 15_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await sleep(left + 50);
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: {
    usage?: { prompt_tokens: number; completion_tokens: number };
    choices?: { finish_reason: string; text: string }[];
    error?: { message: string; type: string; code: string | null };
  };
}

/** One completion through plain fetch (headers matter here, so not the SDK). */
export async function complete(baseUrl: string, key: string, body: Record<string, unknown>): Promise<Answer> {
  const res = await fetch(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiergate-echo', temperature: 0, ...body }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

/** Seconds of an OpenAI reset duration (`20ms`, `1.5s`, `6m0s`, `1h2m3s`). */
export function resetSeconds(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)s)?(?:(\d+)ms)?$/.exec(text);
  if (m === null || text === '') throw new Error(`not a reset duration: ${text}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) + Number(m[4] ?? 0) / 1000;
}

export function tokensOf(a: Answer): number {
  return (a.body.usage?.prompt_tokens ?? 0) + (a.body.usage?.completion_tokens ?? 0);
}
