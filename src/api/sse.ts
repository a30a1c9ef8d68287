import type { FastifyReply } from 'fastify';

/**
 * Server-sent events on a hijacked reply, OpenAI style: `data: <json>\n\n` per chunk, then
 * `data: [DONE]`. Writes wait for the socket to drain, so a slow client slows its own generation
 * instead of buffering it all in memory.
 *
 * Writes are coalesced (`server.sseCoalesceMs`, W): an event that comes less than W after the
 * last socket write is held, and goes out with the first event that comes W or more after that
 * write, or at the latest W after it was held (a timer that a steady stream clears before it
 * fires). A stream slower than one event per W is written event by event, as if W were 0; a
 * faster one (a small model on CPU: one token every few hundred µs) is written in batches, each
 * event late by at most W. Every socket write costs the gateway's core the kernel's TCP send
 * path (and, for a client on the same host, its receive path and wake-up), so fewer of them
 * leave that core to the tier. W = 0 writes every event at once.
 *
 * Events can also wait outside the writer, in a `pending` source it drains before each write
 * (the stream's text deltas, merged per choice while they wait: see DeltaMerger); `schedule()`
 * tells the writer that the source has something, and the same window applies.
 */
export class SseWriter {
  private readonly raw: FastifyReply['raw'];
  /** Events not yet handed to the socket. */
  private held = '';
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() of the last socket write. */
  private lastWrite = -Infinity;
  /** Set while the socket is full: resolves once it drains (or closes). */
  private drained: Promise<void> | undefined;

  constructor(
    reply: FastifyReply,
    private readonly coalesceMs: number,
    /** Events waiting outside the writer, taken (and so emptied) before each write. */
    private readonly pending: () => readonly unknown[] = NOTHING,
  ) {
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

  /** Holds one event to leave with the next one sent (the chunks that open a stream). */
  hold(data: unknown): void {
    this.held += `data: ${JSON.stringify(data)}\n\n`;
  }

  /**
   * Sends one event, now or within `coalesceMs`. Returns a promise only while the socket is full
   * (resolved once it drains).
   */
  send(data: unknown): void | Promise<void> {
    if (this.closed) return;
    // After what waits in the pending source, which came first.
    this.takePending();
    this.hold(data);
    return this.schedule();
  }

  /**
   * Writes what waits (held here or in the pending source) now if the window since the last
   * write has passed, else within it. Returns a promise only while the socket is full.
   */
  schedule(): void | Promise<void> {
    if (this.closed) return;
    if (performance.now() - this.lastWrite >= this.coalesceMs) return this.write();
    this.timer ??= setTimeout(this.flushHeld, this.coalesceMs);
    return this.drained;
  }

  /** Ends the stream; what waits leaves with its end. */
  end(): void {
    this.stopTimer();
    if (this.closed) return;
    this.takePending();
    this.raw.end(`${this.held}data: [DONE]\n\n`);
    this.held = '';
  }

  private readonly flushHeld = (): void => {
    this.timer = undefined;
    void this.write();
  };

  private takePending(): void {
    for (const data of this.pending()) this.hold(data);
  }

  private write(): void | Promise<void> {
    this.stopTimer();
    if (this.closed) return;
    this.takePending();
    if (this.held === '') return this.drained;
    const ok = this.raw.write(this.held);
    this.held = '';
    this.lastWrite = performance.now();
    if (ok || this.drained !== undefined) return this.drained;
    this.drained = new Promise<void>((resolve) => {
      const done = (): void => {
        this.raw.off('drain', done);
        this.raw.off('close', done);
        this.drained = undefined;
        resolve();
      };
      this.raw.on('drain', done);
      this.raw.on('close', done);
    });
    return this.drained;
  }

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

const NOTHING = (): readonly unknown[] => [];
