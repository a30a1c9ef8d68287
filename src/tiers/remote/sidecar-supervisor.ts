import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChannelOptions } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { HealthProbe } from './health-probe.js';
import { RemoteTierError } from './remote-tier-error.js';
import { describeExit, SidecarProcess, type SidecarExit } from './sidecar-process.js';

/** sidecar/ at the repository root (the Python package's parent), from src/ and dist/ alike. */
export const SIDECAR_DIR = fileURLToPath(new URL('../../../sidecar', import.meta.url));

const STUBS = `${SIDECAR_DIR}/tiergate_sidecar/gen/tiergate/v1/tier_pb2.py`;
const PROTO = fileURLToPath(new URL('../../../proto/tiergate/v1/tier.proto', import.meta.url));

/**
 * The sidecar's Python stubs are generated, not committed (scripts/install.sh runs
 * sidecar/gen-stubs.sh). A checkout that skipped the install step gets them generated here, from
 * the local proto files with the local protoc — nothing is downloaded. Returns why that failed.
 */
function ensureStubs(logger: Logger): string | undefined {
  // Stubs older than the proto lack its newer RPCs (the sidecar would then not serve them).
  if (existsSync(STUBS) && statSync(STUBS).mtimeMs >= statSync(PROTO).mtimeMs) return undefined;
  logger.info('generating the sidecar gRPC stubs (sidecar/gen-stubs.sh)');
  const r = spawnSync('bash', [`${SIDECAR_DIR}/gen-stubs.sh`], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0 && existsSync(STUBS)) return undefined;
  const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
  return `Python gRPC stubs missing (${STUBS}) and sidecar/gen-stubs.sh failed: ${why}`;
}

export interface SupervisorOptions {
  readonly python: string;
  /** Absolute path of the GGUF the sidecar loads. */
  readonly modelPath: string;
  readonly modelId: string;
  readonly variant: string;
  readonly threads: number;
  readonly maxConcurrent: number;
  readonly listen: string;
  readonly env: Readonly<Record<string, string>>;
  readonly startTimeoutMs: number;
  readonly restart: {
    readonly initialDelayMs: number;
    readonly maxDelayMs: number;
    readonly resetAfterMs: number;
  };
  readonly healthIntervalMs: number;
  readonly channel: ChannelOptions;
  readonly logLevel: string;
}

export type SupervisorState = 'idle' | 'starting' | 'ready' | 'backoff' | 'stopped';

/**
 * Runs the PyTorch sidecar for one tier: starts it, declares it ready only once grpc.health.v1
 * says SERVING, restarts it with exponential backoff when it dies, and stops it on close.
 *
 * Events: 'ready' (address: string) each time a run becomes SERVING — the address can change
 * between runs when the port is chosen by the OS; 'down' (reason: string) when a ready run is lost;
 * 'restart' (attempt: number, delayMs: number) when a restart is scheduled.
 */
export class SidecarSupervisor extends EventEmitter {
  private stateValue: SupervisorState = 'idle';
  private reason = 'not started';
  private current: SidecarProcess | undefined;
  private probe: HealthProbe | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  private restartsTotal = 0;
  private stopping = false;

  constructor(
    private readonly options: SupervisorOptions,
    private readonly logger: Logger,
  ) {
    super();
  }

  get state(): SupervisorState {
    return this.stateValue;
  }

  /** Why the sidecar is not ready (or "serving at …"). */
  get detail(): string {
    return this.reason;
  }

  get restarts(): number {
    return this.restartsTotal;
  }

  get pid(): number | undefined {
    return this.current?.pid;
  }

  /**
   * Starts the first run and resolves with its address once SERVING. When that run fails, rejects
   * with TG_REMOTE_SPAWN_FAILED saying why — and keeps retrying in the background with backoff,
   * so a tier whose sidecar comes up later still becomes ready.
   */
  async start(): Promise<string> {
    const problem = ensureStubs(this.logger);
    if (problem !== undefined) {
      this.reason = problem;
      this.stateValue = 'stopped';
      throw new RemoteTierError('TG_REMOTE_SPAWN_FAILED', this.reason);
    }
    return new Promise<string>((resolve, reject) => {
      const onReady = (address: string): void => {
        this.off('failed-start', onFailed);
        resolve(address);
      };
      const onFailed = (reason: string): void => {
        this.off('ready', onReady);
        reject(new RemoteTierError('TG_REMOTE_SPAWN_FAILED', reason));
      };
      this.once('ready', onReady);
      this.once('failed-start', onFailed);
      this.run();
    });
  }

  /** Stops the sidecar (SIGTERM, SIGKILL after `graceMs`) and any pending restart. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    this.stateValue = 'stopped';
    this.reason = 'stopped';
    clearTimeout(this.restartTimer);
    clearInterval(this.healthTimer);
    this.probe?.close();
    await this.current?.stop(graceMs);
  }

  private run(): void {
    if (this.stopping) return;
    const o = this.options;
    this.stateValue = 'starting';
    this.reason = 'sidecar starting';
    const startedAt = Date.now();
    const args = [
      '-m',
      'tiergate_sidecar',
      '--model',
      o.modelPath,
      '--listen',
      o.listen,
      '--threads',
      String(o.threads),
      '--max-concurrent',
      String(o.maxConcurrent),
      '--model-id',
      o.modelId,
      '--variant',
      o.variant,
      '--log-level',
      o.logLevel,
      '--exit-with-parent',
    ];
    const env = {
      ...process.env,
      // OpenBLAS (under Debian's torch) starts one spinning thread per core unless told
      // otherwise, which fights torch's own threads and every other process on a small machine.
      OPENBLAS_NUM_THREADS: String(o.threads),
      OMP_NUM_THREADS: String(o.threads),
      ...o.env,
      PYTHONPATH: SIDECAR_DIR,
      PYTHONUNBUFFERED: '1',
    };
    const proc = new SidecarProcess({ python: o.python, args, cwd: SIDECAR_DIR, env }, this.logger);
    this.current = proc;
    this.logger.info({ pid: proc.pid, python: o.python, model: o.modelPath }, 'sidecar spawned');
    let becameReady = false;

    void proc.exited.then((exit) => this.onExit(proc, exit, startedAt, becameReady));
    void (async () => {
      const address = await proc.listening;
      if (address === undefined || this.current !== proc || this.stopping) return;
      this.probe?.close();
      const probe = new HealthProbe(address, o.channel);
      this.probe = probe;
      const left = o.startTimeoutMs - (Date.now() - startedAt);
      const result = await probe.waitServing(left, 100, () => this.current !== proc || this.stopping);
      if (this.current !== proc || this.stopping) return;
      if (result.status !== 'SERVING') {
        const why = result.status === 'ERROR' ? result.error : result.status;
        this.logger.error(
          { pid: proc.pid, timeoutMs: o.startTimeoutMs, last: why },
          'sidecar not SERVING in time',
        );
        this.reason = `sidecar did not report SERVING within ${o.startTimeoutMs} ms (last: ${why})`;
        // Killing it hands over to onExit, which schedules the restart.
        void proc.stop(1_000);
        return;
      }
      becameReady = true;
      this.stateValue = 'ready';
      this.reason = `serving at ${address}`;
      this.logger.info({ pid: proc.pid, address, startMs: Date.now() - startedAt }, 'sidecar ready');
      this.watchHealth(proc, probe);
      this.emit('ready', address);
    })();
  }

  private watchHealth(proc: SidecarProcess, probe: HealthProbe): void {
    clearInterval(this.healthTimer);
    this.healthTimer = setInterval(() => {
      void probe.check(Math.max(500, this.options.healthIntervalMs)).then((r) => {
        if (this.current !== proc || this.stopping) return;
        if (r.status === 'SERVING') {
          if (this.stateValue !== 'ready') this.reason = `serving at ${probe.address}`;
          this.stateValue = 'ready';
        } else {
          this.stateValue = 'starting';
          this.reason = `sidecar health check: ${r.status === 'ERROR' ? r.error : r.status}`;
        }
      });
    }, this.options.healthIntervalMs);
    this.healthTimer.unref();
  }

  private onExit(proc: SidecarProcess, exit: SidecarExit, startedAt: number, wasReady: boolean): void {
    if (this.current !== proc) return;
    clearInterval(this.healthTimer);
    const why = describeExit(exit);
    if (this.stopping) {
      this.logger.info({ pid: proc.pid, code: exit.code, signal: exit.signal }, 'sidecar stopped');
      return;
    }
    const uptime = Date.now() - startedAt;
    if (wasReady && uptime >= this.options.restart.resetAfterMs) this.consecutiveFailures = 0;
    const { initialDelayMs, maxDelayMs } = this.options.restart;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** this.consecutiveFailures);
    this.consecutiveFailures++;
    this.restartsTotal++;
    this.stateValue = 'backoff';
    // Keep the more specific reason when the run was killed for not becoming healthy.
    this.reason = wasReady || !this.reason.startsWith('sidecar did not') ? why : this.reason;
    this.logger.error(
      { pid: proc.pid, code: exit.code, signal: exit.signal, uptimeMs: uptime, restartInMs: delay },
      `sidecar down: ${this.reason}`,
    );
    if (wasReady) this.emit('down', this.reason);
    else this.emit('failed-start', this.reason);
    this.emit('restart', this.restartsTotal, delay);
    this.restartTimer = setTimeout(() => this.run(), delay);
    this.restartTimer.unref();
  }
}
