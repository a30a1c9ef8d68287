import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LlamaText, SpecialToken, SpecialTokensText } from 'node-llama-cpp';
import { chatContextTokens, type ChatContextCodec } from '../../src/text/chat-context-tokens.js';

// A toy codec: each fragment becomes [1000 + its length] after a space prefix, so the tests can
// see exactly which fragments were encoded (and that each is encoded once, whole).
const fragments: string[] = [];
const codec: ChatContextCodec = {
  encode: (text) => {
    fragments.push(text);
    return [1000 + text.length];
  },
  specials: new Map([
    ['<s>', 1],
    ['<|im_start|>', 5],
    ['<|im_end|>', 6],
  ]),
  specialId: (name) => (name === 'BOS' ? 1 : name === 'EOS' ? 2 : undefined),
  bos: 1,
};

test('text between special tokens is one fragment, template and content alike', () => {
  fragments.length = 0;
  const text = LlamaText([
    new SpecialTokensText('<|im_start|>user\n'),
    'Hello <|im_end|> there',
    new SpecialTokensText('<|im_end|>\n<|im_start|>assistant\n'),
  ]);
  // BOS first (the model adds one), then the specials of the template text only: the content's
  // "<|im_end|>" stays text, inside one fragment with the template text around it.
  assert.deepEqual(chatContextTokens(text, codec), [
    1,
    5,
    1000 + 'user\nHello <|im_end|> there'.length,
    6,
    1000 + 1,
    5,
    1010,
  ]);
  assert.deepEqual(fragments, ['user\nHello <|im_end|> there', '\n', 'assistant\n']);
});

test('a template that starts with BOS (token or text) does not get a second one', () => {
  assert.deepEqual(chatContextTokens(LlamaText([new SpecialToken('BOS'), 'hi']), codec), [1, 1002]);
  assert.deepEqual(chatContextTokens(LlamaText([new SpecialTokensText('<s>'), 'hi']), codec), [1, 1002]);
  assert.deepEqual(chatContextTokens(LlamaText(['hi', new SpecialToken('EOS')]), codec), [1, 1002, 2]);
});

test('without BOS or special tokens in the vocabulary the whole text is one fragment', () => {
  fragments.length = 0;
  const plain: ChatContextCodec = { ...codec, specials: new Map(), bos: undefined };
  const text = LlamaText([
    new SpecialTokensText('<<user>>\n'),
    'Hello',
    new SpecialTokensText('\n<<assistant>>\n'),
  ]);
  assert.deepEqual(chatContextTokens(text, plain), [1000 + '<<user>>\nHello\n<<assistant>>\n'.length]);
  assert.deepEqual(fragments, ['<<user>>\nHello\n<<assistant>>\n']);
});
