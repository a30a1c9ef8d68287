/**
 * The sidecar's Generate coalesces tokens only for a client that opted in
 * (GenerateRequest.accept_token_batches, proto/tiergate/v1/tier.proto): a reader that falls behind
 * gets every token queued meanwhile in one TokenBatch, with the same tokens, logprobs and
 * alternatives as one message per token; a reader that keeps up gets batches of one (nothing
 * waits for more tokens); a client that did not opt in only ever gets `token` messages. The
 * servicer runs in a Python process over a real engine (test/sidecar/token_batches_report.py).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomModel } from '../tiers/remote/helpers.js';
import { pythonReport } from './python-report.js';

interface Message {
  kind: 'token' | 'token_batch' | 'finish';
  tokens?: number[];
  logprobs?: number[];
  top?: [number, number][][];
  reason?: string;
}

interface Report {
  single_fast: Message[];
  single_slow: Message[];
  batched_fast: Message[];
  batched_slow: Message[];
  stop: number | null;
  single_stop: Message[];
  batched_stop_slow: Message[];
}

const TOKENS = 40;

/** Tokens, logprobs and alternatives of a stream, flattened, plus its finish reason. */
function content(messages: Message[]): {
  tokens: number[];
  logprobs: number[];
  top: unknown[];
  finish: string[];
} {
  const tokenMessages = messages.filter((m) => m.kind !== 'finish');
  return {
    tokens: tokenMessages.flatMap((m) => m.tokens!),
    logprobs: tokenMessages.flatMap((m) => m.logprobs!),
    top: tokenMessages.flatMap((m) => m.top!),
    finish: messages.filter((m) => m.kind === 'finish').map((m) => m.reason!),
  };
}

function kinds(messages: Message[]): string[] {
  return messages.map((m) => m.kind);
}

describe('sidecar token batches', () => {
  // One interpreter run for every case below, made by the first that reads it.
  let cached: Report | undefined;
  const report = (): Report =>
    (cached ??= pythonReport<Report>('token_batches_report.py', [randomModel('f32')]));

  it('a client that does not opt in gets one token message per token, slow reader or not', () => {
    const rep = report();
    for (const stream of [rep.single_fast, rep.single_slow]) {
      assert.deepEqual(kinds(stream), [...Array<string>(TOKENS).fill('token'), 'finish']);
      assert.ok(stream.slice(0, -1).every((m) => m.tokens!.length === 1));
    }
    assert.deepEqual(content(rep.single_slow), content(rep.single_fast));
    assert.deepEqual(content(rep.single_fast).finish, ['FINISH_REASON_LENGTH']);
  });

  it('a slow reader that opted in gets the queued tokens in one batch, the same as one by one', () => {
    const rep = report();
    const reference = content(rep.single_fast);
    assert.ok(
      reference.top.every((t) => (t as unknown[]).length === 3),
      'alternatives travel',
    );
    const slow = rep.batched_slow;
    // The first message is pulled at once; everything after it was queued before the next pull.
    assert.deepEqual(kinds(slow), ['token_batch', 'token_batch', 'finish']);
    assert.equal(slow[0]!.tokens!.length + slow[1]!.tokens!.length, TOKENS);
    assert.ok(slow[1]!.tokens!.length > 1, `second batch: ${slow[1]!.tokens!.length} tokens`);
    assert.deepEqual(content(slow), reference);
  });

  it('a reader that keeps up gets TokenBatch messages with the same tokens (nothing waits to fill a batch)', () => {
    const rep = report();
    const fast = rep.batched_fast;
    assert.equal(fast.at(-1)!.kind, 'finish');
    assert.ok(fast.slice(0, -1).every((m) => m.kind === 'token_batch' && m.tokens!.length >= 1));
    assert.deepEqual(content(fast), content(rep.single_fast));
  });

  it('a stop token ends a drained batch: the finish follows it, tokens as without batching', () => {
    const rep = report();
    assert.notEqual(rep.stop, null, 'the greedy run has a token that can serve as a stop token');
    const single = content(rep.single_stop);
    const batched = content(rep.batched_stop_slow);
    assert.deepEqual(single.finish, ['FINISH_REASON_STOP']);
    assert.deepEqual(batched, single);
    assert.ok(!batched.tokens.includes(rep.stop!));
    assert.deepEqual(kinds(rep.batched_stop_slow), ['token_batch', 'token_batch', 'finish']);
    assert.ok(rep.batched_stop_slow[1]!.tokens!.length > 1);
  });
});
