import { writeSync } from 'node:fs';

/** How the writer reaches the file descriptor (replaceable in tests). */
export type WriteFn = (fd: number, data: string | Buffer) => number;

export interface LineWriterOptions {
  /** Lines beyond this many queued characters are dropped (and counted) while the fd is blocked. */
  readonly maxQueuedChars?: number;
  /** Retry delay after the fd refused a write (EAGAIN: a full pipe). */
  readonly retryMs?: number;
  readonly write?: WriteFn;
}

/**
 * The log destination for stdout: pino's lines are queued and written together once per
 * event-loop turn with one synchronous write. Under load that is one system call for many
 * lines; an idle gateway still writes each line at once (the next turn).
 *
 * Why not pino.destination: its synchronous mode makes one system call per line, and its
 * asynchronous mode hands each batch to libuv's thread pool (a cross-thread wake-up per write,
 * on a 2-core machine) and measures the pending batch with Buffer.byteLength on every line,
 * which flattens the growing string each time: kilobytes copied per request under load.
 *
 * A full non-blocking pipe (EAGAIN) keeps the lines queued and retries shortly; past
 * `maxQueuedChars` new lines are dropped and counted rather than growing memory without bound.
 * Whatever is queued at exit is written synchronously.
 */
export class LineWriter {
  private queue: string[] = [];
  private queuedChars = 0;
  /** Bytes a full pipe refused, written before anything queued after them. */
  private pending: Buffer | undefined;
  private scheduled = false;
  private warned = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly maxQueuedChars: number;
  private readonly retryMs: number;
  private readonly writeFn: WriteFn;
  /** Lines dropped because the destination was blocked and the queue full. */
  dropped = 0;

  constructor(
    private readonly fd: number,
    options: LineWriterOptions = {},
  ) {
    this.maxQueuedChars = options.maxQueuedChars ?? 16 * 1024 * 1024;
    this.retryMs = options.retryMs ?? 10;
    this.writeFn =
      options.write ?? ((fd, data) => (typeof data === 'string' ? writeSync(fd, data) : writeSync(fd, data)));
    process.once('exit', this.onExit);
  }

  /** pino's DestinationStream contract: one serialised line (with its newline) per call. */
  write(line: string): void {
    if (this.queuedChars + (this.pending?.length ?? 0) + line.length > this.maxQueuedChars) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.queuedChars += line.length;
    if (!this.scheduled && this.retryTimer === undefined) {
      this.scheduled = true;
      setImmediate(this.onTurn);
    }
  }

  private readonly onTurn = (): void => {
    this.scheduled = false;
    this.flushOrDrop();
  };

  /** A destination that fails for good (EPIPE: stdout closed) loses its lines, not the gateway. */
  private flushOrDrop(): void {
    try {
      this.writeQueued();
    } catch (err) {
      this.dropped += this.queue.length;
      this.queue = [];
      this.queuedChars = 0;
      this.pending = undefined;
      if (!this.warned) {
        this.warned = true;
        process.emitWarning(`log lines dropped: ${(err as Error).message}`, 'LogWriteError');
      }
    }
  }

  /** pino's `logger.flush(cb)`: writes what is queued now (a full pipe keeps its rest queued). */
  flush(cb?: (err?: Error) => void): void {
    this.flushOrDrop();
    cb?.();
  }

  /** Writes everything queued now; on EAGAIN keeps the rest and retries after retryMs. */
  private writeQueued(): void {
    if (this.pending !== undefined) {
      const rest = this.writeAll(this.pending);
      this.pending = rest;
      if (rest !== undefined) return this.retryLater();
    }
    if (this.queue.length === 0) return;
    const lines = this.queue.length;
    const text = lines === 1 ? this.queue[0]! : this.queue.join('');
    this.queue = [];
    this.queuedChars = 0;
    let rest: Buffer | undefined;
    try {
      rest = this.writeAll(text);
    } catch (err) {
      this.dropped += lines;
      throw err;
    }
    if (rest !== undefined) {
      this.pending = rest;
      this.retryLater();
    }
  }

  /** Writes `data`; returns what the fd refused (EAGAIN), as bytes, or undefined when all went. */
  private writeAll(data: string | Buffer): Buffer | undefined {
    for (;;) {
      let written: number;
      try {
        written = this.writeFn(this.fd, data);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        return typeof data === 'string' ? Buffer.from(data) : data;
      }
      // A partial write (a nearly full pipe) counts bytes: go on with the encoded rest.
      if (typeof data === 'string') {
        if (written >= Buffer.byteLength(data)) return undefined;
        data = Buffer.from(data).subarray(written);
      } else {
        if (written >= data.length) return undefined;
        data = data.subarray(written);
      }
    }
  }

  private retryLater(): void {
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      this.flushOrDrop();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private readonly onExit = (): void => {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // At exit a blocked pipe cannot be waited for: what it refuses now is lost.
    this.flushOrDrop();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
  };

  /** Stops listening for process exit (tests; loggers that are thrown away). */
  close(): void {
    this.flushOrDrop();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    process.off('exit', this.onExit);
  }
}

let stdoutWriter: LineWriter | undefined;

/** The process's one writer for stdout, shared by every logger that writes there. */
export function stdoutLines(): LineWriter {
  stdoutWriter ??= new LineWriter(1);
  return stdoutWriter;
}
