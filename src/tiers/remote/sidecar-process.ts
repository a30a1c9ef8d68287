import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

/** What starting one sidecar process needs. */
export interface SidecarCommand {
  readonly python: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/** How a sidecar process ended. */
export interface SidecarExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The spawn itself failed (e.g. the interpreter does not exist). */
  readonly spawnError?: string | undefined;
  /** The sidecar's last error log lines (JSON `msg`/`error`), or else its last raw output lines (a traceback). */
  readonly lastErrors: readonly string[];
}

// Sidecar log levels use pino's numbers (sidecar/tiergate_sidecar/jsonlog.py).
const LEVEL_NAMES: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * One run of the Python sidecar: spawns it, forwards its JSON log lines into the gateway's
 * logger, reports the address it listens on, and resolves `exited` when it ends. stdin stays
 * open as a lifeline: the sidecar (--exit-with-parent) exits when the gateway dies.
 */
export class SidecarProcess {
  readonly exited: Promise<SidecarExit>;
  /** Resolves with host:port from the sidecar's "listening" line; never rejects. */
  readonly listening: Promise<string | undefined>;
  private readonly child: ChildProcess;
  private readonly loggedErrors: string[] = [];
  private readonly rawLines: string[] = [];

  constructor(command: SidecarCommand, logger: Logger) {
    this.child = spawn(command.python, [...command.args], {
      cwd: command.cwd,
      env: command.env,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let resolveListening: (address: string | undefined) => void = () => undefined;
    this.listening = new Promise((r) => (resolveListening = r));
    let spawnError: string | undefined;
    this.child.on('error', (err) => {
      spawnError = `${command.python}: ${err.message}`;
    });
    // The pipe breaks when the sidecar dies first; that is reported through 'exit', not here.
    this.child.stdin?.on('error', () => undefined);
    const lines = createInterface({ input: this.child.stderr! });
    lines.on('line', (line) => {
      const record = parseRecord(line);
      if (record === undefined) {
        // Not JSON: an interpreter error before logging was set up (import error, traceback).
        if (line.trim() !== '') remember(this.rawLines, line.trim());
        logger.warn({ sidecarLine: line }, 'sidecar output');
        return;
      }
      const { level, msg, time: _time, ...fields } = record;
      const name = LEVEL_NAMES[typeof level === 'number' ? level : 30] ?? 'info';
      const message = typeof msg === 'string' ? msg : 'sidecar';
      if (level !== undefined && Number(level) >= 50) {
        remember(
          this.loggedErrors,
          typeof fields.error === 'string' ? `${message}: ${fields.error}` : message,
        );
      }
      if (message === 'listening' && typeof fields.address === 'string') resolveListening(fields.address);
      logger[name]({ sidecar: fields }, `sidecar: ${message}`);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        resolveListening(undefined);
        // The sidecar's own error lines explain more than interpreter noise printed after them.
        const lastErrors = this.loggedErrors.length > 0 ? this.loggedErrors : this.rawLines;
        resolve({ code, signal, spawnError, lastErrors: [...lastErrors] });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs: number): Promise<SidecarExit> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    return this.exited;
  }
}

function remember(into: string[], line: string): void {
  into.push(line);
  if (into.length > 5) into.shift();
}

function parseRecord(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** One line for logs and /readyz saying why a sidecar run ended. */
export function describeExit(exit: SidecarExit): string {
  if (exit.spawnError !== undefined) return `cannot start the sidecar (${exit.spawnError})`;
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const why = exit.lastErrors.length > 0 ? `: ${exit.lastErrors[exit.lastErrors.length - 1]}` : '';
  return `sidecar ${how}${why}`;
}
