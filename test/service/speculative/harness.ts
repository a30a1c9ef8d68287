import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILY_DIR, startGateway, type TestGateway } from '../../helpers/start-gateway.js';

/**
 * Two llama.cpp tiers of the tiny family for speculation tests: `draft` on the Q4_K_M GGUF and
 * `main` on the F32 one. Policies: `k1`, `k3`, `k6` fixed k (`k3` without lookahead), `adapt`
 * adaptive from 4, `busy` giving way at a load of 1 on main. The served model's tier is `main`,
 * so `x-tiergate-tier: main` is the verifier alone.
 */
export function speculativeConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const spec = (k: number, adaptive: boolean, lookahead = true): Record<string, unknown> => ({
    tiers: ['main'],
    speculative: { draft: 'draft', verify: 'main', k, adaptive, lookahead },
  });
  return {
    family: { dir: 'models/tiny' },
    tiers: {
      draft: { kind: 'llamacpp', model: 'tiny-q4_k_m.gguf', threads: 1, sequences: 2 },
      main: { kind: 'llamacpp', model: 'tiny-f32.gguf', threads: 1, sequences: 2 },
    },
    models: { 'tiergate-tiny': { tier: 'main' } },
    routing: {
      policies: {
        k1: spec(1, false),
        k3: spec(3, false, false),
        k6: spec(6, false),
        adapt: spec(4, true),
        // Gives way to plain decoding once a second stream runs on main.
        busy: { tiers: ['main'], speculative: { draft: 'draft', verify: 'main', k: 4, stopAtLoad: 1 } },
      },
    },
    ...extra,
  };
}

export function startSpeculative(extra: Record<string, unknown> = {}): Promise<TestGateway> {
  return startGateway(speculativeConfig(extra));
}

/** Prompts as token ids: slices of the family's evaluation windows, BOS first. */
export function prompts(count: number): number[][] {
  const slice = JSON.parse(readFileSync(join(FAMILY_DIR, 'eval-slice.json'), 'utf8')) as {
    windows: number[][];
  };
  const out: number[][] = [];
  for (let i = 0; out.length < count; i++) {
    const w = slice.windows[i % slice.windows.length]!;
    const at = 1 + ((Math.floor(i / slice.windows.length) * 97) % 200);
    out.push([1, ...w.slice(at, at + 6 + (i % 9))]);
  }
  return out;
}

export interface Completion {
  readonly status: number;
  readonly text: string;
  readonly completionTokens: number | undefined;
  readonly logprobs: number[] | undefined;
  readonly finish: string | undefined;
  readonly headers: Headers;
  /** Trailer-like fields of a stream (x-tiergate-served-by arrives in the last chunk or a trailer). */
}

/** One /v1/completions request; streaming answers are read to the end and joined. */
export async function complete(
  gw: TestGateway,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Completion> {
  const res = await fetch(`${gw.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'tiergate-tiny', ...body }),
  });
  if (body.stream !== true) {
    const json = (await res.json()) as {
      choices?: { text: string; finish_reason: string; logprobs?: { token_logprobs: number[] } | null }[];
      usage?: { completion_tokens: number };
    };
    const c = json.choices?.[0];
    return {
      status: res.status,
      text: c?.text ?? '',
      completionTokens: json.usage?.completion_tokens,
      logprobs: c?.logprobs?.token_logprobs,
      finish: c?.finish_reason,
      headers: res.headers,
    };
  }
  const raw = await res.text();
  let text = '';
  let finish: string | undefined;
  let completionTokens: number | undefined;
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = JSON.parse(line.slice(6)) as {
      choices?: { text: string; finish_reason: string | null }[];
      usage?: { completion_tokens: number } | null;
    };
    const c = chunk.choices?.[0];
    if (c !== undefined) {
      text += c.text;
      finish = c.finish_reason ?? finish;
    }
    if (chunk.usage != null) completionTokens = chunk.usage.completion_tokens;
  }
  return { status: res.status, text, completionTokens, logprobs: undefined, finish, headers: res.headers };
}
