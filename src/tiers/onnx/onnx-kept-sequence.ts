/**
 * The main thread's side of a kept sequence on the ONNX tier (src/tiers/kept-sequence.ts): its
 * calls go to the worker that holds its cache, where they run between two batch steps
 * (decode-engine.ts). Aborting the signal it was opened with frees the cache at once and rejects
 * a call in flight with the signal's reason; a worker that dies or stalls rejects it with the
 * tier's error (TG_ONNX_WORKER_FAILED / _STALLED).
 */
import type { CancelSignal } from '../cancellation.js';
import type {
  DraftResult,
  KeptSequence,
  SequenceEdit,
  VerifyOptions,
  VerifyResult,
} from '../kept-sequence.js';
import type { KeptCall, KeptReply } from '../worker-host/protocol.js';

/** What a kept sequence needs of the worker that holds it (worker-host/worker-client.ts). */
export interface KeptHost {
  keptCall(id: number, request: KeptCall): Promise<KeptReply>;
  closeKept(id: number): void;
}

export class OnnxKeptSequence implements KeptSequence {
  private closed = false;
  private readonly host: KeptHost;
  private readonly id: number;
  private readonly signal: CancelSignal;
  /** Checks token ids as generate() does (throws the tier's bad-request error). */
  private readonly validate: (tokens: readonly number[]) => void;
  private readonly onAbort = (): void => this.close();

  constructor(
    host: KeptHost,
    id: number,
    signal: CancelSignal,
    validate: (tokens: readonly number[]) => void,
  ) {
    this.host = host;
    this.id = id;
    this.signal = signal;
    this.validate = validate;
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  async draft(edit: SequenceEdit, k: number): Promise<DraftResult> {
    this.validate(edit.append);
    return (await this.call({ op: 'draft', edit, k })) as DraftResult;
  }

  async verify(edit: SequenceEdit, draft: readonly number[], options: VerifyOptions): Promise<VerifyResult> {
    this.validate(edit.append);
    this.validate(draft);
    return (await this.call({ op: 'verify', edit, draft, options })) as VerifyResult;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.host.closeKept(this.id);
  }

  private call(request: KeptCall): Promise<KeptReply> {
    this.signal.throwIfAborted();
    const result = this.host.keptCall(this.id, request);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(this.signal.reason);
      this.signal.addEventListener('abort', onAbort, { once: true });
      result.then(resolve, reject).finally(() => this.signal.removeEventListener('abort', onAbort));
    });
  }
}
