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

/** Bytes the queue starts with, and shrinks back to once a large backlog has been written. */
const INITIAL_BYTES = 64 * 1024;

/**
 * The log destination for stdout: pino's lines are queued and written together once per
 * event-loop turn with one synchronous write. Under load that is one system call for many
 * lines; an idle gateway still writes each line at once (the next turn).
 *
 * Lines are encoded into one reused byte buffer as they come, so a turn's lines cost no joined
 * string, no second encoding inside the write and no garbage: the summary line of every request
 * passes through here.
 *
 * Why not pino.destination: its synchronous mode makes one system call per line, and its
 * asynchronous mode hands each batch to libuv's thread pool (a cross-thread wake-up per write,
 * on a 2-core machine) and measures the pending batch with Buffer.byteLength on every line,
 * which flattens the growing string each time: kilobytes copied per request under load.
 *
 * A full non-blocking pipe (EAGAIN) keeps the bytes queued and retries shortly; past
 * `maxQueuedChars` new lines are dropped and counted rather than growing memory without bound.
 * Whatever is queued at exit is written synchronously.
 */
export class LineWriter {
  /** Queued bytes are buf[0, used): what a full pipe refused first, then newer lines. */
  private buf = Buffer.allocUnsafe(INITIAL_BYTES);
  private used = 0;
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
    if (this.used + line.length > this.maxQueuedChars) {
      this.dropped++;
      return;
    }
    // Room for the worst case: three UTF-8 bytes per UTF-16 code unit.
    const need = this.used + line.length * 3;
    if (need > this.buf.length) this.grow(need);
    this.used += this.buf.write(line, this.used);
    if (!this.scheduled && this.retryTimer === undefined) {
      this.scheduled = true;
      setImmediate(this.onTurn);
    }
  }

  private grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
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
      this.used = 0;
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
    if (this.used === 0) return;
    let written: number;
    try {
      written = this.writeAll(this.buf.subarray(0, this.used));
    } catch (err) {
      this.dropped += countLines(this.buf, this.used);
      throw err;
    }
    if (written < this.used) {
      this.buf.copyWithin(0, written, this.used);
      this.used -= written;
      this.retryLater();
      return;
    }
    this.used = 0;
    // A backlog (a pipe that was full for a while) does not keep its memory afterwards.
    if (this.buf.length > INITIAL_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BYTES);
  }

  /** Writes `data`; returns how many bytes went before the fd refused more (EAGAIN). */
  private writeAll(data: Buffer): number {
    let done = 0;
    while (done < data.length) {
      try {
        // A partial write (a nearly full pipe) goes on with the rest.
        done += this.writeFn(this.fd, done === 0 ? data : data.subarray(done));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        return done;
      }
    }
    return done;
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

/** Lines (newlines) in buf[0, end): what a failed write loses. */
function countLines(buf: Buffer, end: number): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1 && i < end; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

let stdoutWriter: LineWriter | undefined;

/** The process's one writer for stdout, shared by every logger that writes there. */
export function stdoutLines(): LineWriter {
  stdoutWriter ??= new LineWriter(1);
  return stdoutWriter;
}
