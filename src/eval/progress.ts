import cliProgress from 'cli-progress';

/** Progress of a long eval/bench run: a bar on a TTY, one plain line per step otherwise (CI logs). */
export interface Progress {
  /** Starts a phase of `total` steps. */
  begin(label: string, total: number): void;
  tick(detail?: string): void;
  end(summary?: string): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  if (quiet) return { begin: () => undefined, tick: () => undefined, end: () => undefined };
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

class BarProgress implements Progress {
  private bar: cliProgress.SingleBar | undefined;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  begin(label: string, total: number): void {
    this.bar = new cliProgress.SingleBar(
      { stream: this.stream, format: `${label} [{bar}] {value}/{total} {detail}`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { detail: '' });
  }

  tick(detail = ''): void {
    this.bar?.increment(1, { detail });
  }

  end(summary?: string): void {
    this.bar?.stop();
    this.bar = undefined;
    if (summary !== undefined) this.stream.write(`${summary}\n`);
  }
}

class LineProgress implements Progress {
  private label = '';
  private total = 0;
  private done = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  begin(label: string, total: number): void {
    [this.label, this.total, this.done] = [label, total, 0];
  }

  tick(detail = ''): void {
    this.done++;
    this.stream.write(`${this.label} ${this.done}/${this.total} ${detail}\n`);
  }

  end(summary?: string): void {
    if (summary !== undefined) this.stream.write(`${summary}\n`);
  }
}
