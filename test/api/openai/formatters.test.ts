import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChatFormatter } from '../../../src/api/openai/chat-completions.js';
import { CompletionFormatter } from '../../../src/api/openai/completions.js';
import type { CollectedChoice, ResponseBase } from '../../../src/api/openai/respond.js';
import type { TokenDetail } from '../../../src/pipeline/types.js';

// The whole responses are written as JSON text by hand; each must be exactly what JSON.stringify
// gives for OpenAI's object, escaping included.
const base: ResponseBase = {
  id: 'cmpl-abc',
  created: 1795501722,
  model: 'tiny "q4"',
  fingerprint: () => 'fp_0123',
};
const awkward = 'say "hi"\\ \n\ttab \u00e9 \u{1F600} \u2028 \u0001 </script>';
const token = (text: string, logprob: number): TokenDetail => ({
  token: 7,
  text,
  logprob,
  top: [{ token: 7, text, logprob }],
});
const choices: CollectedChoice[] = [
  { index: 0, text: awkward, tokens: [token('say', -0.5), token(' "hi"', -1.25)], finishReason: 'stop' },
  { index: 1, text: 'plain', tokens: [token('plain', 0)], finishReason: 'length' },
];
const usage = { promptTokens: 12, completionTokens: 3 };
const usageObject = { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 };

describe('CompletionFormatter.response', () => {
  test('equals JSON.stringify of the completion object, without logprobs', () => {
    const text = new CompletionFormatter(base, '', [], false).response(choices, usage);
    assert.equal(
      text,
      JSON.stringify({
        id: base.id,
        object: 'text_completion',
        created: base.created,
        model: base.model,
        system_fingerprint: 'fp_0123',
        choices: [
          { text: awkward, index: 0, logprobs: null, finish_reason: 'stop' },
          { text: 'plain', index: 1, logprobs: null, finish_reason: 'length' },
        ],
        usage: usageObject,
      }),
    );
  });

  test('with echo and logprobs: the echoed text leads, offsets count from the echo', () => {
    const text = new CompletionFormatter(base, 'Echo ', [], true).response(choices.slice(1), usage);
    const parsed = JSON.parse(text) as { choices: { text: string; logprobs: unknown }[] };
    assert.equal(parsed.choices[0]?.text, 'Echo plain');
    assert.deepEqual(parsed.choices[0]?.logprobs, {
      tokens: ['plain'],
      token_logprobs: [0],
      top_logprobs: [{ plain: 0 }],
      text_offset: [5],
    });
  });
});

describe('ChatFormatter.response', () => {
  test('equals JSON.stringify of the chat completion object', () => {
    const text = new ChatFormatter(base, false).response(choices, usage);
    assert.equal(
      text,
      JSON.stringify({
        id: base.id,
        created: base.created,
        model: base.model,
        system_fingerprint: 'fp_0123',
        object: 'chat.completion',
        choices: choices.map((c) => ({
          index: c.index,
          message: { role: 'assistant', content: c.text, refusal: null },
          logprobs: null,
          finish_reason: c.finishReason,
        })),
        usage: usageObject,
      }),
    );
  });

  test('with logprobs: tokens, bytes and alternatives', () => {
    const text = new ChatFormatter(base, true).response(choices.slice(1), usage);
    const parsed = JSON.parse(text) as { choices: { logprobs: unknown }[] };
    assert.deepEqual(parsed.choices[0]?.logprobs, {
      content: [
        {
          token: 'plain',
          logprob: 0,
          bytes: [...Buffer.from('plain')],
          top_logprobs: [{ token: 'plain', logprob: 0, bytes: [...Buffer.from('plain')] }],
        },
      ],
      refusal: null,
    });
  });
});
