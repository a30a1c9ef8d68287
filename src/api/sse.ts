import type { FastifyReply } from 'fastify';

/**
 * Server-sent events on a hijacked reply, OpenAI style: `data: <json>\n\n` per chunk, then
 * `data: [DONE]`. Writes wait for the socket to drain, so a slow client slows its own generation
 * instead of buffering it all in memory.
 */
export class SseWriter {
  private readonly raw: FastifyReply['raw'];

  constructor(reply: FastifyReply) {
    this.raw = reply.raw;
    const headers: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
    reply.hijack();
    this.raw.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
  }

  get closed(): boolean {
    return this.raw.destroyed || this.raw.writableEnded;
  }

  /** Writes one event; returns a promise only when the socket is full (resolved once it drains). */
  send(data: unknown): void | Promise<void> {
    if (this.closed) return;
    if (!this.raw.write(`data: ${JSON.stringify(data)}\n\n`)) {
      return new Promise<void>((resolve) => {
        const done = (): void => {
          this.raw.off('drain', done);
          this.raw.off('close', done);
          resolve();
        };
        this.raw.on('drain', done);
        this.raw.on('close', done);
      });
    }
  }

  end(): void {
    if (this.closed) return;
    this.raw.end('data: [DONE]\n\n');
  }
}
