/**
 * Token batches over real gRPC (proto/tiergate/v1/tier.proto TokenBatch): RemoteTier opts in and
 * unpacks them; several concurrent greedy streams through it give the same tokens, logprobs and
 * alternatives as the same streams read one message per token by a client that did not opt in,
 * and that client only ever receives `token` messages. One sidecar serves both.
 */
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  channelOptions,
  createTierClient,
  type GenerateResponseMessage,
  type TierClient,
} from '../../../src/tiers/remote/proto-clients.js';
import type { TierEvent } from '../../../src/tiers/tier.js';
import { makeTier, randomModel, request, startExternalSidecar, type TierHarness } from './helpers.js';

const PROMPTS = [[1, 5, 9, 3], [2], [7, 7, 7, 7, 7, 7, 7, 7, 7], [11, 12], [40, 41, 42], [3, 1, 4, 1, 5]];
const MAX_TOKENS = 48;
const TOP = 2;

interface Stream {
  tokens: number[];
  logprobs: number[];
  top: [number, number][][];
  finish: string[];
}

/** A Generate call on the raw client; returns what arrived and which oneof member carried it. */
async function raw(
  client: TierClient,
  tokens: number[],
  acceptTokenBatches: boolean,
): Promise<{ stream: Stream; kinds: Set<string> }> {
  const call = client.Generate(
    {
      tokens,
      sampling: { temperature: 0, topP: 1, topK: 0 },
      maxTokens: MAX_TOKENS,
      stopTokens: [],
      topLogprobs: TOP,
      deadlineUnixMs: 0,
      requestId: '',
      acceptTokenBatches,
    },
    { deadline: new Date(Date.now() + 120_000) },
  );
  const stream: Stream = { tokens: [], logprobs: [], top: [], finish: [] };
  const kinds = new Set<string>();
  for await (const m of call as AsyncIterable<GenerateResponseMessage>) {
    kinds.add(m.event ?? 'none');
    const generated = m.tokenBatch ? m.tokenBatch.tokens : m.token ? [m.token] : [];
    for (const t of generated) {
      stream.tokens.push(t.token);
      stream.logprobs.push(t.logprob);
      stream.top.push(t.top.map((a) => [a.token, a.logprob]));
    }
    if (m.finish) stream.finish.push(m.finish.reason);
  }
  return { stream, kinds };
}

/**
 * Same tokens, finish and alternatives' ids; logprobs within 1e-4 (the streams ran in decode
 * batches of whatever rows were active, and a matrix product over another number of rows may
 * round differently).
 */
function assertSameStreams(actual: Stream[], expected: Stream[]): void {
  const ids = (s: Stream) => ({
    tokens: s.tokens,
    finish: s.finish,
    top: s.top.map((t) => t.map((a) => a[0])),
  });
  assert.deepEqual(actual.map(ids), expected.map(ids));
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const values = (s: Stream) => [...s.logprobs, ...s.top.flat().map((x) => x[1])];
    const [x, y] = [values(a), values(e)];
    assert.equal(x.length, y.length);
    const worst = Math.max(...x.map((v, j) => Math.abs(v - y[j]!)));
    assert.ok(worst < 1e-4, `stream ${i}: logprobs differ by ${worst}`);
  });
}

/** The tier's events as the same shape (finish reasons in the proto's naming). */
async function viaTier(events: AsyncIterable<TierEvent>): Promise<{ stream: Stream; sizes: number[] }> {
  const stream: Stream = { tokens: [], logprobs: [], top: [], finish: [] };
  const sizes: number[] = [];
  for await (const e of events) {
    if (e.kind === 'finish') {
      stream.finish.push(e.reason === 'stop' ? 'FINISH_REASON_STOP' : 'FINISH_REASON_LENGTH');
      continue;
    }
    sizes.push(e.tokens.length);
    stream.tokens.push(...e.tokens);
    stream.logprobs.push(...e.logprobs);
    assert.ok(e.top !== undefined && e.top.length === e.tokens.length, 'alternatives for every token');
    for (const alternatives of e.top) stream.top.push(alternatives.map((a) => [a.token, a.logprob]));
  }
  return { stream, sizes };
}

describe('remote tier: token batches from the sidecar', () => {
  let child: ChildProcess;
  let h: TierHarness;
  let client: TierClient;

  before(async () => {
    let address: string;
    ({ child, address } = await startExternalSidecar([
      '--model',
      randomModel(),
      '--max-concurrent',
      String(PROMPTS.length),
    ]));
    h = makeTier({ address, connectTimeoutMs: 60_000, required: true, maxConcurrent: PROMPTS.length });
    await h.tier.start();
    client = createTierClient(address, channelOptions(10_000));
  });

  after(async () => {
    client?.close();
    await h?.tier.close();
    child?.kill('SIGTERM');
  });

  it('concurrent greedy streams through the tier equal the one-message-per-token path', async () => {
    const reference = await Promise.all(PROMPTS.map((p) => raw(client, p, false)));
    for (const r of reference) {
      assert.deepEqual([...r.kinds].sort(), ['finish', 'token'], 'a client that did not opt in gets tokens');
      assert.equal(r.stream.tokens.length, MAX_TOKENS);
      assert.deepEqual(r.stream.finish, ['FINISH_REASON_LENGTH']);
    }
    const batched = await Promise.all(
      PROMPTS.map((p) =>
        viaTier(h.tier.generate(request(p, MAX_TOKENS, { topLogprobs: TOP }), new AbortController().signal)),
      ),
    );
    assertSameStreams(
      batched.map((b) => b.stream),
      reference.map((r) => r.stream),
    );
    // How many tokens shared a message depends on how far the reader fell behind; not asserted.
    const sizes = batched.flatMap((b) => b.sizes);
    console.log(`tier events: ${sizes.length} for ${sizes.reduce((a, b) => a + b, 0)} tokens`);
  });

  it('a raw client that opts in gets only TokenBatch messages, with the same content', async () => {
    const [plain, batched] = await Promise.all([
      Promise.all(PROMPTS.map((p) => raw(client, p, false))),
      Promise.all(PROMPTS.map((p) => raw(client, p, true))),
    ]);
    for (const b of batched) assert.deepEqual([...b.kinds].sort(), ['finish', 'tokenBatch']);
    assertSameStreams(
      batched.map((b) => b.stream),
      plain.map((p) => p.stream),
    );
  });
});
