import { StreamClock, type StreamTiming } from './load-run.js';

export interface HttpStreamRequest {
  /** Gateway base URL, e.g. http://127.0.0.1:41234 */
  readonly baseUrl: string;
  readonly model: string;
  readonly prompt: readonly number[];
  readonly maxTokens: number;
  readonly apiKey?: string | undefined;
}

/**
 * One streamed /v1/completions request (OpenAI SSE: `data: {json}` events, then `data: [DONE]`),
 * timed the way a client sees it: every event carrying text is a token arrival; the token count
 * comes from the final usage chunk (stream_options.include_usage) when the gateway sends one.
 */
export async function httpStream(req: HttpStreamRequest): Promise<StreamTiming> {
  const clock = new StreamClock();
  const res = await fetch(`${req.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(req.apiKey === undefined ? {} : { authorization: `Bearer ${req.apiKey}` }),
    },
    body: JSON.stringify({
      model: req.model,
      prompt: req.prompt,
      max_tokens: req.maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let usageTokens: number | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        const parsed = JSON.parse(data) as {
          choices?: { text?: string }[];
          usage?: { completion_tokens?: number } | null;
          error?: { message?: string };
        };
        if (parsed.error !== undefined) throw new Error(parsed.error.message ?? 'stream error');
        if (parsed.choices?.some((c) => (c.text ?? '') !== '') === true) clock.token();
        if (typeof parsed.usage?.completion_tokens === 'number') usageTokens = parsed.usage.completion_tokens;
      }
    }
  }
  const timing = clock.done();
  return usageTokens === undefined ? timing : { ...timing, tokens: usageTokens };
}
