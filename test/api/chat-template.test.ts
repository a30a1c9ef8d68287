import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readGgufFileInfo } from 'node-llama-cpp';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { encodePrompt, type ChatMessage } from '../../src/text/tokenizer.js';
import { parseGgufLayout, rewriteGgufMetadata } from '../helpers/gguf-rewrite.js';
import { FAMILY_DIR, startGateway, type TestGateway } from '../helpers/start-gateway.js';

// The bundled GGUFs carry a template that renders exactly like the built-in `plain` one, so only
// a GGUF with a distinctive template shows which of the two the chat endpoint used. The copy
// differs from the original in that one metadata string; everything else is checked identical.

const ORIGINAL = join(FAMILY_DIR, 'tiny-q4_k_m.gguf');
const TEMPLATE_KEY = 'tokenizer.chat_template';
// Role line, newline, content: node-llama-cpp derives the generation prompt from the model
// turn's prefix, so the template keeps that prefix equal to its add_generation_prompt text.
const TEMPLATE =
  "{% for message in messages %}<<{{ message['role'] }}>>\n{{ message['content'] }}\n{% endfor %}" +
  '{% if add_generation_prompt %}<<assistant>>\n{% endif %}';
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello there' },
  { role: 'assistant', content: 'Hi.' },
  { role: 'user', content: 'Tell me about the jury.' },
];
const ECHO = 'tiergate-echo';
const EDGE = 'tiergate-tiny';

/** TEMPLATE rendered in plain JS, independently of any Jinja engine. */
function renderExpected(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `<<${m.role}>>\n${m.content}\n`).join('') + '<<assistant>>\n';
}

/** Asserts that `parts` occur in `text` in this order, without overlapping. */
function assertInOrder(text: string, parts: readonly string[]): void {
  let at = 0;
  for (const part of parts) {
    const found = text.indexOf(part, at);
    assert.ok(found >= 0, `${JSON.stringify(part)} not found after offset ${at} in ${JSON.stringify(text)}`);
    at = found + part.length;
  }
}

function gatewayConfig(model: string): Record<string, unknown> {
  return {
    family: { dir: 'models/tiny' },
    // An absolute path: both the shared tokenizer (which renders chat) and the tiers read this file.
    tokenizer: { kind: 'gguf', model },
    tiers: {
      echo: { kind: 'echo', contextLength: 512 },
      edge: { kind: 'llamacpp', model, threads: 1, sequences: 1 },
    },
    models: { [ECHO]: { tier: 'echo' }, [EDGE]: { tier: 'edge' } },
  };
}

/** The echo tier replays the prompt ids, so the completion text is the rendered prompt. */
async function echoedChat(
  gw: TestGateway,
  messages: readonly ChatMessage[],
): Promise<{ text: string; promptTokens: number }> {
  const sdkMessages = messages.map((m) => ({
    role: m.role as 'system' | 'user' | 'assistant',
    content: m.content,
  }));
  const probe = await gw.client.chat.completions.create({
    model: ECHO,
    messages: sdkMessages,
    max_tokens: 1,
  });
  const promptTokens = probe.usage?.prompt_tokens ?? 0;
  assert.ok(promptTokens > 1);
  const res = await gw.client.chat.completions.create({
    model: ECHO,
    messages: sdkMessages,
    // The echo tier skips a leading BOS; one replayed token too many only appends to the end.
    max_tokens: promptTokens,
    temperature: 0,
  });
  assert.equal(res.usage?.prompt_tokens, promptTokens);
  return { text: res.choices[0]!.message.content ?? '', promptTokens };
}

describe('chat renders with the chat template stored in the served GGUF', () => {
  let dir: string;
  let custom: string;
  let gw: TestGateway;
  let control: TestGateway;
  let tokenizer: LlamaTokenizer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tiergate-chat-template-'));
    custom = join(dir, 'tiny-custom-template.gguf');
    await rewriteGgufMetadata(ORIGINAL, custom, { [TEMPLATE_KEY]: TEMPLATE });
    gw = await startGateway(gatewayConfig(custom));
    control = await startGateway(gatewayConfig(ORIGINAL));
    tokenizer = await LlamaTokenizer.load(custom);
  });
  after(async () => {
    await gw?.shutdown();
    await control?.shutdown();
    await tokenizer?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the copy differs from the original only in the template string', async () => {
    const [a, b] = await Promise.all([readFile(ORIGINAL), readFile(custom)]);
    const la = parseGgufLayout(a);
    const lb = parseGgufLayout(b);
    assert.notEqual(la.strings.get(TEMPLATE_KEY), TEMPLATE);
    assert.equal(lb.strings.get(TEMPLATE_KEY), TEMPLATE);
    assert.deepEqual([...lb.entries.keys()], [...la.entries.keys()]);
    for (const [key, entry] of la.entries) {
      if (key === TEMPLATE_KEY) continue;
      const other = lb.entries.get(key)!;
      assert.ok(a.subarray(entry.start, entry.end).equals(b.subarray(other.start, other.end)), key);
    }
    assert.ok(a.subarray(...la.tensorInfos).equals(b.subarray(...lb.tensorInfos)));
    assert.equal(lb.dataOffset % lb.alignment, 0);
    assert.ok(a.subarray(la.dataOffset).equals(b.subarray(lb.dataOffset)));
    // A second, independent GGUF reader agrees on the metadata and the tensors.
    const [ia, ib] = await Promise.all([readGgufFileInfo(ORIGINAL), readGgufFileInfo(custom)]);
    assert.equal((ib.metadata.tokenizer as { chat_template?: string }).chat_template, TEMPLATE);
    assert.deepEqual(ib.metadata.general, ia.metadata.general);
    assert.deepEqual(ib.tensorInfo, ia.tensorInfo);
  });

  test('a key can be added as well; the data section moves to the next aligned offset', async () => {
    const added = join(dir, 'added-key.gguf');
    // 3 bytes of value make the header length change by a non-multiple of the alignment.
    await rewriteGgufMetadata(ORIGINAL, added, { 'tiergate.test_note': 'abc' });
    const [a, b] = await Promise.all([readFile(ORIGINAL), readFile(added)]);
    const la = parseGgufLayout(a);
    const lb = parseGgufLayout(b);
    assert.equal(lb.entries.size, la.entries.size + 1);
    assert.equal(lb.strings.get('tiergate.test_note'), 'abc');
    assert.equal(lb.dataOffset % lb.alignment, 0);
    assert.ok(a.subarray(la.dataOffset).equals(b.subarray(lb.dataOffset)));
    const info = await readGgufFileInfo(added);
    assert.equal(
      (info.metadata as Record<string, unknown> & { tiergate?: { test_note?: string } }).tiergate?.test_note,
      'abc',
    );
  });

  test('chat prompt follows the GGUF template: role markers, in order, around the contents', async () => {
    const { text, promptTokens } = await echoedChat(gw, MESSAGES);
    assertInOrder(text, MESSAGES.flatMap((m) => [`<<${m.role}>>`, m.content]).concat('<<assistant>>'));
    // The built-in `plain` template would have rendered "user: Hello there".
    assert.ok(!text.includes('user:'), text);
    // Same ids as the tokenizer's own template rendering (the gateway's path for `chat.template: auto`).
    assert.equal(promptTokens, tokenizer.renderNativeChat(MESSAGES)!.length);
  });

  test('control: the unmodified GGUF renders without the markers', async () => {
    const { text } = await echoedChat(control, MESSAGES);
    assert.ok(!text.includes('<<'), text);
    assertInOrder(text, ['system:', 'Be brief.', 'user:', 'Hello there', 'assistant:', 'Hi.']);
  });

  test('the rendered prompt is exactly the template text, tokenised whole with BOS', async () => {
    const expected = renderExpected(MESSAGES);
    const ids = encodePrompt(tokenizer, expected);
    const { text, promptTokens } = await echoedChat(gw, MESSAGES);
    assert.equal(promptTokens, ids.length);
    assert.deepEqual(tokenizer.renderNativeChat(MESSAGES), ids);
    // The echo tier replays the prompt as a continuation: SentencePiece shows the first token's
    // leading space there, and the replay may stop a token short of the prompt's end.
    const echoed = text.trimStart();
    assert.ok(echoed.length >= expected.length - 2, JSON.stringify(text));
    assert.ok(expected.startsWith(echoed.slice(0, expected.length)), JSON.stringify(text));
  });

  test('the copy loads in llama.cpp and generates the same greedy tokens as the original', async () => {
    const params = {
      model: EDGE,
      prompt: 'The county grand jury said',
      max_tokens: 16,
      temperature: 0,
      logprobs: 1,
    };
    const [mine, theirs] = await Promise.all([
      gw.client.completions.create(params),
      control.client.completions.create(params),
    ]);
    assert.equal(mine.usage?.prompt_tokens, theirs.usage?.prompt_tokens);
    assert.ok((mine.usage?.completion_tokens ?? 0) > 0);
    assert.equal(mine.choices[0]!.text, theirs.choices[0]!.text);
    assert.deepEqual(mine.choices[0]!.logprobs?.tokens, theirs.choices[0]!.logprobs?.tokens);
    assert.deepEqual(mine.choices[0]!.logprobs?.token_logprobs, theirs.choices[0]!.logprobs?.token_logprobs);
  });
});
