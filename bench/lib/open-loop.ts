/**
 * Open-loop, constant-rate HTTP load (wrk2-style) for the gateway benchmarks.
 *
 * Request i is due at t0 + i / rate, evenly spaced, whether or not earlier requests have been
 * answered. Latency runs from the due time to the last response byte, so a server that stalls is
 * charged for every request it delayed, including the ones that sat in this client's queue
 * because all connections were busy (no coordinated omission). Times come from performance.now(),
 * so resolution is microseconds, not autocannon's whole milliseconds.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface OpenLoopOptions {
  url: string;
  method?: 'POST' | 'GET';
  headers?: Record<string, string>;
  body?: string;
  /** Requests per second, spread evenly. */
  rate: number;
  /** Length of the measured window. */
  durationSeconds: number;
  /** Keep-alive connections; requests that find none free wait in a FIFO. */
  connections: number;
  /** Same load before the measured window, not recorded (default 1 s). */
  warmupSeconds?: number;
  /** Socket idle timeout per request, counted as an error (default 10 s). */
  timeoutMs?: number;
  /**
   * How close to the next due time the scheduler stops sleeping on a timer and polls with
   * setImmediate instead (default 2 ms). Node timers have 1 ms granularity and often fire late,
   * which would batch sends and charge up to ~1 ms of client lateness to the server; polling keeps
   * sends within microseconds of their due time but keeps this process's core busy at rates above
   * ~500 req/s (I/O still runs between polls). 0 = timers only: little CPU, ~1 ms coarser.
   */
  spinMs?: number;
}

/** Latency percentiles in milliseconds (nearest rank over all samples). */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface OpenLoopResult {
  rate: number;
  durationSeconds: number;
  /** Requests of the measured window that were actually sent. */
  sent: number;
  /** 2xx responses read to the end. */
  completed: number;
  /** Non-2xx, socket errors, timeouts, and requests still unsent when the drain gave up. */
  errors: number;
  /** Completions per second from the window start to the last measured completion. */
  achievedRate: number;
  /** Due time to last response byte (what a client of an open system sees). */
  latency: Percentiles;
  /** Actual send to last response byte (server plus network only; for diagnosis). */
  serviceLatency: Percentiles;
  /** Sends that started more than 1 ms after their due time (no free connection, or a late loop). */
  lateStarts: number;
  /** This process's CPU time over the measured window, % of one core (includes spinMs polling). */
  clientCpuPercent: number;
}

const LATE_MS = 1;

export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { rate, durationSeconds, connections } = options;
  if (!(rate > 0) || !(durationSeconds > 0) || !(connections >= 1)) {
    throw new Error('openLoop: rate, durationSeconds and connections must be positive');
  }
  const warmupSeconds = options.warmupSeconds ?? 1;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const spinMs = options.spinMs ?? 2;
  const url = new URL(options.url);
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const headers: Record<string, string> = { ...options.headers };
  if (body !== undefined) headers['content-length'] = String(body.length);
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const requestOptions = {
    agent,
    host: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    method,
    headers,
  };

  const intervalMs = 1000 / rate;
  const warmupCount = Math.round(warmupSeconds * rate);
  const measuredCount = Math.max(1, Math.round(durationSeconds * rate));
  const total = warmupCount + measuredCount;

  const latency = new Float64Array(measuredCount);
  const service = new Float64Array(measuredCount);
  let samples = 0;
  let sent = 0;
  let errors = 0;
  let lateStarts = 0;
  let lastCompletion = 0;

  // Requests are queued and dispatched in index order, so the FIFO is the index range
  // [dispatched, scheduled): no array needed.
  let scheduled = 0;
  let dispatched = 0;
  let inFlight = 0;
  let stopped = false;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));

  // A short lead so the first due times are not already past when the loop starts.
  const t0 = performance.now() + 5;
  const measureStart = t0 + warmupCount * intervalMs;
  const dueOf = (i: number): number => t0 + i * intervalMs;
  let cpuStart: NodeJS.CpuUsage | undefined;

  const settle = (): void => {
    inFlight--;
    if (!stopped) dispatch();
    if (!stopped && scheduled === total && dispatched === total && inFlight === 0) finish();
  };

  const send = (i: number): void => {
    const due = dueOf(i);
    const start = performance.now();
    const measured = i >= warmupCount;
    if (measured) {
      sent++;
      if (start - due > LATE_MS) lateStarts++;
    }
    inFlight++;
    let done = false;
    const fail = (): void => {
      // After the drain gave up, the leftovers are counted in one go; ignore their socket errors.
      if (done || stopped) return;
      done = true;
      if (measured) errors++;
      settle();
    };
    const req = request(requestOptions, (res: IncomingMessage) => {
      const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
      res.on('end', () => {
        if (done || stopped) return;
        done = true;
        const end = performance.now();
        if (ok && measured) {
          latency[samples] = end - due;
          service[samples] = end - start;
          samples++;
          lastCompletion = end;
        } else if (measured) {
          errors++;
        }
        settle();
      });
      res.on('error', fail);
      // A connection closed mid-body ends the response without 'end'.
      res.on('close', () => {
        if (!res.complete) fail();
      });
      // Consume the body without buffering it; 'end' fires after its last byte.
      res.resume();
    });
    req.on('error', fail);
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.end(body);
  };

  const dispatch = (): void => {
    while (dispatched < scheduled && inFlight < connections) send(dispatched++);
  };

  const tick = (): void => {
    if (stopped) return;
    const now = performance.now();
    if (cpuStart === undefined && now >= measureStart) cpuStart = process.cpuUsage();
    while (scheduled < total && dueOf(scheduled) <= now) scheduled++;
    dispatch();
    if (scheduled === total) {
      if (dispatched === total && inFlight === 0) finish();
      return;
    }
    const wait = dueOf(scheduled) - performance.now();
    if (wait > spinMs) setTimeout(tick, wait - spinMs);
    else if (spinMs > 0) setImmediate(tick);
    else setTimeout(tick, 0);
  };

  const scheduleEnd = dueOf(total);
  const wait = t0 - performance.now();
  setTimeout(tick, Math.max(0, wait - spinMs));

  // Give requests still queued or in flight at the end of the schedule one timeout to finish.
  let drainTimer: NodeJS.Timeout | undefined;
  const drained = new Promise<void>((resolve) => {
    drainTimer = setTimeout(resolve, scheduleEnd - performance.now() + timeoutMs);
  });
  await Promise.race([finished, drained]);
  clearTimeout(drainTimer);
  stopped = true;
  const cpu = process.cpuUsage(cpuStart);
  const cpuWindowMs = performance.now() - Math.max(measureStart, t0);
  // Whatever is left was due in the run and never answered.
  const unsent = total - Math.max(dispatched, warmupCount);
  errors +=
    Math.max(0, unsent) + (inFlight > 0 ? countMeasuredInFlight(dispatched, inFlight, warmupCount) : 0);
  agent.destroy();

  const windowMs = Math.max(durationSeconds * 1000, lastCompletion - measureStart);
  return {
    rate,
    durationSeconds,
    sent,
    completed: samples,
    errors,
    achievedRate: samples / (windowMs / 1000),
    latency: percentiles(latency.subarray(0, samples)),
    serviceLatency: percentiles(service.subarray(0, samples)),
    lateStarts,
    clientCpuPercent: cpuStart === undefined ? 0 : ((cpu.user + cpu.system) / 1000 / cpuWindowMs) * 100,
  };
}

/** In-flight requests are the most recently dispatched ones; count those in the measured window. */
function countMeasuredInFlight(dispatched: number, inFlight: number, warmupCount: number): number {
  return Math.max(0, Math.min(inFlight, dispatched - warmupCount));
}

/** Nearest-rank percentiles of the samples (sorted in place). */
export function percentiles(samples: Float64Array): Percentiles {
  const n = samples.length;
  if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  samples.sort();
  const at = (p: number): number => samples[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: samples[n - 1]! };
}

/** One line for logs: rates, errors, latency from due time and service latency, in ms. */
export function formatOpenLoop(r: OpenLoopResult): string {
  const ms = (x: number): string => x.toFixed(3);
  const p = (q: Percentiles): string =>
    `p50 ${ms(q.p50)} p90 ${ms(q.p90)} p99 ${ms(q.p99)} p99.9 ${ms(q.p999)} max ${ms(q.max)}`;
  return (
    `${r.rate} req/s x ${r.durationSeconds}s: achieved ${r.achievedRate.toFixed(0)}/s, ` +
    `sent ${r.sent}, ok ${r.completed}, errors ${r.errors}, late starts ${r.lateStarts}, ` +
    `client cpu ${r.clientCpuPercent.toFixed(0)}% | latency ${p(r.latency)} | service ${p(r.serviceLatency)}`
  );
}
