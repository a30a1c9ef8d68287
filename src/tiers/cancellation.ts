/**
 * Cancellation on the request path. Tiers and the pipeline use only this part of AbortSignal,
 * and a real AbortSignal satisfies it (tests, gRPC calls, callers that have one).
 *
 * Why not AbortController per request: in Node 20 creating a signal costs microseconds and live
 * signals make each young-generation GC several times slower (they survive scavenges), which
 * showed up as the largest single cost of a request on the echo tier
 * (`node --import tsx bench/cancellation.ts` prints the comparison).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Raised by a Cancellation aborted without a reason. */
export class CancelledError extends Error {
  override readonly name = 'AbortError';

  constructor() {
    super('The operation was aborted');
  }
}

/**
 * A one-shot cancellation: `abort()` once, listeners run synchronously in registration order
 * (every listener is "once": the event cannot fire twice). The object is its own signal.
 */
export class Cancellation implements CancelSignal {
  private state: { reason: unknown } | undefined;
  // Most cancellations get at most one listener: it is held as is, and a Set is made only for a
  // second one (as EventTarget, adding the same listener twice registers it once).
  private listener: (() => void) | undefined;
  private listeners: Set<() => void> | undefined;

  get signal(): CancelSignal {
    return this;
  }

  get aborted(): boolean {
    return this.state !== undefined;
  }

  get reason(): unknown {
    return this.state?.reason;
  }

  throwIfAborted(): void {
    if (this.state !== undefined) throw this.state.reason;
  }

  addEventListener(_type: 'abort', listener: () => void, _options?: { readonly once?: boolean }): void {
    // As with AbortSignal, a listener added after the abort is never called.
    if (this.state !== undefined) return;
    if (this.listeners !== undefined) this.listeners.add(listener);
    else if (this.listener === undefined) this.listener = listener;
    else if (this.listener !== listener) {
      this.listeners = new Set([this.listener, listener]);
      this.listener = undefined;
    }
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listeners !== undefined) this.listeners.delete(listener);
    else if (this.listener === listener) this.listener = undefined;
  }

  abort(reason?: unknown): void {
    if (this.state !== undefined) return;
    this.state = { reason: reason === undefined ? new CancelledError() : reason };
    const one = this.listener;
    const list = this.listeners;
    this.listener = undefined;
    this.listeners = undefined;
    if (one !== undefined) notify(one);
    if (list !== undefined) for (const listener of list) notify(listener);
  }
}

function notify(listener: () => void): void {
  try {
    listener();
  } catch (err) {
    // A throwing listener stops neither the others nor the caller of abort(), and must not
    // take the gateway down: it is reported as a process warning.
    process.emitWarning(err instanceof Error ? err : String(err), 'CancellationListenerError');
  }
}

/** Resolves after `ms` (never for Infinity), or rejects with the signal's reason once aborted. */
export function sleepUnlessCancelled(ms: number, signal: CancelSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = Number.isFinite(ms)
      ? setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, ms)
      : undefined;
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
