import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { CancelSignal } from '../cancellation.js';
import type {
  DraftResult,
  KeptSequence,
  OpenSequenceOptions,
  SequenceEdit,
  VerifyOptions,
  VerifyPosition,
  VerifyResult,
} from '../kept-sequence.js';
import type {
  SequenceCommandMessage,
  SequenceReplyMessage,
  TierClient,
  VerifiedPositionMessage,
} from './proto-clients.js';
import { fromGrpcError, isServiceError, RemoteTierError } from './remote-tier-error.js';

type Reply = SequenceReplyMessage;

interface Waiting {
  readonly call: number;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * A kept sequence on a tier server (the KeptSequence RPC of proto/tiergate/v1/tier.proto): one
 * bidirectional stream for the sequence's life. Each draft/verify is one command and one reply;
 * the server holds the KV cache between them. Closing, aborting the signal or the deadline ends
 * the stream, which frees the server's sequence.
 */
export class RemoteKeptSequence implements KeptSequence {
  private next = 1;
  private waiting: Waiting | undefined;
  private failure: unknown;
  private done = false;
  private readonly onAbort = (): void => this.fail(this.signal.reason, true);

  private constructor(
    private readonly tierName: string,
    private readonly stream: ClientDuplexStream<SequenceCommandMessage, Reply>,
    private readonly signal: CancelSignal,
  ) {
    stream.on('data', (reply: Reply) => this.receive(reply));
    stream.on('error', (err: unknown) => this.fail(this.translate(err), false));
    stream.on('end', () =>
      this.fail(
        new RemoteTierError(
          'TG_REMOTE_STREAM_BROKEN',
          `tier "${tierName}": kept sequence ended by the server`,
        ),
        false,
      ),
    );
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Opens the stream and waits for the server's `opened` (so a server that cannot keep one
   * sequence more, or does not serve the RPC, rejects here). */
  static async open(
    tierName: string,
    client: TierClient,
    options: OpenSequenceOptions,
    deadline: number,
    signal: CancelSignal,
  ): Promise<RemoteKeptSequence> {
    signal.throwIfAborted();
    if (deadline <= Date.now()) {
      throw new RemoteTierError('TG_REMOTE_DEADLINE', `tier "${tierName}": deadline already passed`);
    }
    const stream = client.KeptSequence({ deadline: new Date(deadline) });
    const seq = new RemoteKeptSequence(tierName, stream, signal);
    try {
      const reply = await seq.send({
        call: 0,
        open: {
          stopTokens: [...options.stopTokens],
          deadlineUnixMs: deadline,
          requestId: options.requestId ?? '',
        },
      });
      if (!reply.opened) throw seq.unexpected(reply, 'opened');
    } catch (err) {
      seq.close();
      throw err;
    }
    return seq;
  }

  async draft(edit: SequenceEdit, k: number): Promise<DraftResult> {
    const reply = await this.send({ call: 0, draft: { edit: editMessage(edit), k } });
    if (!reply.draft) throw this.unexpected(reply, 'draft');
    return { tokens: reply.draft.tokens, held: reply.draft.held };
  }

  async verify(edit: SequenceEdit, draft: readonly number[], options: VerifyOptions): Promise<VerifyResult> {
    const { sampling } = options;
    const reply = await this.send({
      call: 0,
      verify: {
        edit: editMessage(edit),
        draft: [...draft],
        sampling: { temperature: sampling.temperature, topP: sampling.topP, topK: sampling.topK },
        // The gateway's PRNG takes its seed modulo 2^32 (src/text/sampling.ts).
        seed: options.seed >>> 0,
        topLogprobs: options.topLogprobs,
        logprobs: options.logprobs,
      },
    });
    if (!reply.verify) throw this.unexpected(reply, 'verify');
    return {
      positions: reply.verify.positions.map((p) => position(p, options.topLogprobs)),
      held: reply.verify.held,
    };
  }

  close(): void {
    if (this.done) return;
    this.fail(new RemoteTierError('TG_REMOTE_FAILED', `tier "${this.tierName}": kept sequence closed`), true);
  }

  private send(command: SequenceCommandMessage): Promise<Reply> {
    if (this.done) return Promise.reject(this.failure);
    if (this.waiting !== undefined) {
      return Promise.reject(
        new RemoteTierError(
          'TG_REMOTE_FAILED',
          `tier "${this.tierName}": kept sequence calls run one at a time`,
        ),
      );
    }
    const call = this.next++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting = { call, resolve, reject };
      this.stream.write({ ...command, call });
    });
  }

  private receive(reply: Reply): void {
    const w = this.waiting;
    if (w === undefined || reply.call !== w.call) {
      this.fail(
        new RemoteTierError(
          'TG_REMOTE_STREAM_BROKEN',
          `tier "${this.tierName}": unexpected kept-sequence reply`,
        ),
        true,
      );
      return;
    }
    this.waiting = undefined;
    w.resolve(reply);
  }

  /** Ends the sequence for good: the waiting call (and every later one) rejects with `err`. */
  private fail(err: unknown, cancel: boolean): void {
    if (this.done) return;
    this.done = true;
    this.failure = err;
    this.signal.removeEventListener('abort', this.onAbort);
    // Cancelling frees the server's sequence at once (the server's command loop ends).
    if (cancel) this.stream.cancel();
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  private translate(err: unknown): unknown {
    if (this.signal.aborted) return this.signal.reason;
    if (isServiceError(err)) return fromGrpcError(this.tierName, err, this.next > 2);
    return new RemoteTierError(
      'TG_REMOTE_STREAM_BROKEN',
      `tier "${this.tierName}": ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  private unexpected(reply: Reply, wanted: string): RemoteTierError {
    const err = new RemoteTierError(
      'TG_REMOTE_STREAM_BROKEN',
      `tier "${this.tierName}": expected a ${wanted} reply, got ${reply.reply ?? 'nothing'}`,
    );
    this.fail(err, true);
    return err;
  }
}

function editMessage(edit: SequenceEdit): { keep: number; append: number[] } {
  return { keep: edit.keep, append: [...edit.append] };
}

function position(p: VerifiedPositionMessage, topLogprobs: number): VerifyPosition {
  return {
    accept: p.accept,
    token: p.token,
    tokenLogprob: p.tokenLogprob,
    draftLogprob: p.draftLogprob,
    top: topLogprobs > 0 ? p.top.map((t) => ({ token: t.token, logprob: t.logprob })) : undefined,
  };
}
