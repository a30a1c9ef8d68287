// `tiergate convert` (docs/own-model.md). Hugging Face checkpoints are written by the test itself
// (test/models/fixtures/write_hf_checkpoint.py): the bundled model with its Q/K rows in Hugging
// Face's rotate-half order, and a byte-level BPE trained here. They are converted with the
// `tiergate convert` command, served on llama.cpp, ONNX Runtime and PyTorch, and compared with the
// original model and with the reference tokenizer (@huggingface/tokenizers). bf16 changes the
// weights, so the bf16 conversion is compared with the bf16-rounded model's own logits and greedy
// continuations (a rotate-half forward pass in the fixture), the fp32 one with the bundled model's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { LOGIT_TOLERANCE, maxAbsDiff } from '../../models/ts/compare.js';
import { familyDir, readGolden, readManifest, type Golden } from '../../models/ts/family.js';
import { GgufRunner } from '../../models/ts/gguf-runner.js';
import { OnnxDecoder } from '../../models/ts/onnx-decoder.js';
import { convertCommand } from '../../src/cli/convert-command.js';
import { loadConfigFile } from '../../src/config/index.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { REPO_ROOT, startGateway } from '../helpers/start-gateway.js';
import { collect, makeTier, request } from '../tiers/onnx/helpers.js';

const PYTHON = '/usr/bin/python3';
const WRITER = join(REPO_ROOT, 'test/models/fixtures/write_hf_checkpoint.py');
const work = mkdtempSync(join(tmpdir(), 'tiergate-convert-'));
after(() => rmSync(work, { recursive: true, force: true }));
const at = (name: string): string => join(work, name);
const tiny = readGolden(familyDir('tiny'));

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function python(args: readonly string[]): void {
  const r = spawnSync(PYTHON, [WRITER, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `fixture ${args.join(' ')}:\n${r.stderr.slice(-3000)}`);
}

/** `tiergate convert` through the CLI entry point (bin/tiergate.js runs the same main.ts). */
function convertCli(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'convert', ...args], {
      cwd: REPO_ROOT,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

/** The same command in this process (no Node start-up per conversion). */
async function convert(args: readonly string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, done): void {
        add(chunk.toString());
        done();
      },
    });
  const out = sink((s) => (stdout += s));
  const err = sink((s) => (stderr += s)) as unknown as NodeJS.WriteStream;
  const status = await convertCommand(args, out, err);
  return { status, stdout, stderr };
}

/** Conversions run two at a time from the start; each test awaits the ones it checks. */
const jobs = new Map<string, Promise<Run>>();
const waiting: (() => void)[] = [];
let running = 0;
function schedule(name: string, start: () => Promise<Run>): void {
  const slot = new Promise<void>((go) => {
    if (running < 2) {
      running++;
      go();
    } else waiting.push(go);
  });
  jobs.set(
    name,
    slot.then(async () => {
      try {
        return await start();
      } finally {
        const next = waiting.shift();
        if (next === undefined) running--;
        else next();
      }
    }),
  );
}
function job(name: string): Promise<Run> {
  const j = jobs.get(name);
  assert.ok(j !== undefined, name);
  return j;
}

function converted(r: Run, what: string): void {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function logSoftmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const sum = logits.reduce((s, x) => s + Math.exp(x - max), 0);
  return logits.map((x) => x - max - Math.log(sum));
}

/** Nothing at `out`, and no work folder left beside it. */
function leftNothing(out: string): void {
  assert.equal(existsSync(out), false, `${out} exists`);
  const base = out.split('/').pop() ?? '';
  const leftovers = readdirSync(work).filter((n) => n.startsWith(`.${base}.convert-`));
  assert.deepEqual(leftovers, [], 'work folder left behind');
}

const evalText = at('eval.txt');
const spVariants = {
  f32: at('sp-f32'),
  bf16: at('sp-bf16'),
  roundF32: at('sp-f16-as-f32'),
  f16Sharded: at('sp-f16-sharded'),
  f16Bin: at('sp-f16-bin'),
  jsonOnly: at('sp-f16-json'),
};
/** Byte-level pre-tokenizers besides Llama 3's (the main byte-level checkpoint). */
const OTHER_PRE = ['gpt2', 'smollm'] as const;
/** Text the byte-level pre-tokenizers split in different ways. */
const TRICKY = [
  'Tabs\tand\t\ttabs, \u00a0non-breaking\u3000ideographic space, trailing\n\n',
  '12345678901234567890 + 3.5e-7 = x; “smart quotes” — dash… ellipsis',
  "I'm sure you'RE right, they'd've SAID 'no'.  Double  spaces   and\r\nCRLF",
  'Ünïcödé 🙂👍🏽 Ελληνικά русский 日本語 한국어 हिन्दी ½ ², digits ٣٤٥ ⅷ',
  'Added <think> token<think>and <|im_start|> markup as text',
];
/** Checkpoints that must give the same family (GGUF bytes, golden data, perplexity). */
const SAME = [
  { name: 'f32', from: spVariants.roundF32, until: 'golden' },
  { name: 'sharded', from: spVariants.f16Sharded, until: 'golden' },
  { name: 'bin', from: spVariants.f16Bin, until: 'convert' },
  { name: 'json', from: spVariants.jsonOnly, until: 'golden' },
];

before(() => {
  python(['eval', evalText, '--chars', '6000']);
  const specs = [
    { out: spVariants.f32, dtype: 'fp32', reference: true },
    { out: spVariants.bf16, dtype: 'bf16', reference: true },
    { out: spVariants.roundF32, dtype: 'fp32', round: 'fp16' },
    { out: spVariants.f16Sharded, dtype: 'fp16', shards: 3 },
    { out: spVariants.f16Bin, dtype: 'fp16', bin: true },
    { out: spVariants.jsonOnly, dtype: 'fp16', tokenizer: 'json' },
  ];
  writeFileSync(at('sp-set.json'), JSON.stringify(specs));
  python(['sp-set', at('sp-set.json')]);
  python(['bpe', at('bpe')]);
  for (const pre of OTHER_PRE)
    python(['bpe', at(`bpe-${pre}`), '--pre', pre, '--dim', '32', '--layers', '1']);

  schedule('sp', () =>
    convertCli(['--from', spVariants.f32, '--out', at('fam-sp'), '--eval-text', evalText, '--id', 'fam-sp']),
  );
  schedule('bf16', () =>
    convert([
      ...['--from', spVariants.bf16, '--out', at('fam-bf16'), '--id', 'bf16', '--eval-text', evalText],
      ...[
        '--variants',
        'gguf-f32,onnx-fp32,pytorch-fp32',
        '--until',
        'golden',
        '--work-dir',
        at('work-bf16'),
      ],
    ]),
  );
  for (const r of SAME) {
    schedule(r.name, () =>
      convert([
        ...['--from', r.from, '--out', at(`fam-${r.name}`), '--id', 'same', '--eval-text', evalText],
        ...['--variants', 'gguf-f32,pytorch-fp32', '--until', r.until, '--work-dir', at(`work-${r.name}`)],
      ]),
    );
  }
  for (const pre of OTHER_PRE) {
    schedule(`bpe-${pre}`, () =>
      convert([
        ...['--from', at(`bpe-${pre}`), '--out', at(`fam-bpe-${pre}`), '--id', pre, '--eval-text', evalText],
        ...['--variants', 'gguf-f32', '--until', 'convert', '--work-dir', at(`work-bpe-${pre}`)],
      ]),
    );
  }
  schedule('bpe', () =>
    convert([
      ...['--from', at('bpe'), '--out', at('fam-bpe'), '--eval-text', evalText],
      ...['--variants', 'gguf-f32,gguf-q8_0,onnx-fp32,pytorch-fp32'],
    ]),
  );
});

void test('SentencePiece checkpoint (fp32): every tier reproduces the bundled model', async (t) => {
  const fam = at('fam-sp');
  const r = await job('sp');
  converted(r, 'fp32');
  assert.match(r.stdout, /serve: +tiergate serve --config .*serve\.yaml/);
  assert.match(r.stdout, /convert +[\d.]+ +\d+ MiB/);
  assert.match(r.stderr, /\[1\/8\] convert weights/, 'progress on stderr');

  const manifest = readManifest(fam);
  const golden = readGolden(fam);
  assert.equal(manifest.tokenizer.type, 'sentencepiece-bpe');
  assert.deepEqual(manifest.variants.map((v) => v.id).sort(), [
    'gguf-f32',
    'gguf-q4_k_m',
    'gguf-q8_0',
    'onnx-fp32',
    'onnx-int4',
    'onnx-int8',
    'pytorch-fp32',
  ]);
  assert.doesNotThrow(() => loadConfigFile(join(fam, 'serve.yaml')), 'serve.yaml is a valid gateway config');
  const ppl = Object.fromEntries(manifest.variants.map((v) => [v.id, v.perplexity]));
  for (const id of ['gguf-f32', 'onnx-fp32']) {
    assert.ok(Math.abs((ppl[id] as number) / (ppl['pytorch-fp32'] as number) - 1) < 1e-3, `${id} perplexity`);
  }

  const prompts = tiny.prompts.filter((p) => p.chat !== true);
  await t.test(
    'PyTorch (golden), ONNX Runtime and llama.cpp logits and greedy equal the bundled model',
    async () => {
      const mine = golden.prompts.filter((p) => p.chat !== true);
      const onnx = await OnnxDecoder.load(join(fam, 'fam-sp-fp32.onnx'));
      const gguf = await GgufRunner.load(join(fam, 'fam-sp-f32.gguf'));
      try {
        for (const [i, p] of prompts.entries()) {
          const m = mine[i];
          assert.ok(m !== undefined);
          assert.deepEqual(m.ids, p.ids, `ids of ${p.text}`);
          assert.ok(
            maxAbsDiff(m.next_token_logits, p.next_token_logits) <= 1e-4,
            `PyTorch logits of ${p.text}`,
          );
          assert.deepEqual(m.greedy, p.greedy, `PyTorch greedy of ${p.text}`);
          const res = await onnx.step([p.ids]);
          const last = res.logits.subarray((res.seq - 1) * res.vocab);
          assert.ok(
            maxAbsDiff(last, p.next_token_logits) <= LOGIT_TOLERANCE.onnx,
            `ONNX logits of ${p.text}`,
          );
          assert.deepEqual(await onnx.greedy(p.ids, 32), p.greedy, `ONNX greedy of ${p.text}`);
          const [g] = await gguf.logits(p.ids, tiny.vocab_size, new Set([p.ids.length - 1]));
          assert.ok(
            g !== undefined && maxAbsDiff(g, p.next_token_logits) <= LOGIT_TOLERANCE.gguf,
            `GGUF logits of ${p.text}`,
          );
          assert.deepEqual(
            await gguf.greedy(p.ids, 32, tiny.vocab_size),
            p.greedy,
            `GGUF greedy of ${p.text}`,
          );
        }
        // The fixed tokenizer samples give SentencePiece's ids, as in the bundled family.
        for (const s of tiny.tokenizer_samples.slice(3)) {
          assert.deepEqual(golden.tokenizer_samples.find((x) => x.text === s.text)?.ids, s.ids);
        }
      } finally {
        await onnx.release();
        await gguf.dispose();
      }
    },
  );

  await t.test(
    'the gateway serves it on edge, main and fallback with the same logprobs and text',
    async () => {
      const gw = await startGateway({
        family: { dir: fam },
        tiers: {
          edge: { kind: 'llamacpp', model: 'gguf-f32', threads: 1, sequences: 2 },
          main: { kind: 'onnx', model: 'onnx-fp32', workers: 1 },
          fallback: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: 1 },
        },
        models: {
          'sp-edge': { tier: 'edge' },
          'sp-main': { tier: 'main' },
          'sp-fallback': { tier: 'fallback' },
        },
      });
      const tok = await LlamaTokenizer.load(join(fam, 'fam-sp-f32.gguf'));
      try {
        for (const p of prompts) {
          const expected = tok.detokenize(p.greedy, p.ids);
          const ref = logSoftmax(p.next_token_logits);
          const refTop = [...ref].sort((a, b) => b - a);
          for (const model of ['sp-edge', 'sp-main', 'sp-fallback']) {
            const res = await gw.client.completions.create({
              model,
              prompt: p.text,
              max_tokens: 32,
              temperature: 0,
              logprobs: 5,
            });
            const choice = res.choices[0];
            assert.equal(res.usage?.prompt_tokens, p.ids.length, `${model}: prompt tokens`);
            assert.equal(choice?.text, expected, `${model}: 32-token greedy continuation of ${p.text}`);
            // llama.cpp sums in another order (LOGIT_TOLERANCE.gguf); ONNX Runtime and PyTorch agree closely.
            const tol = model === 'sp-edge' ? 1e-2 : 1e-3;
            const first = choice?.logprobs?.token_logprobs?.[0];
            assert.ok(
              first != null && Math.abs(first - (refTop[0] as number)) <= tol,
              `${model}: logprob ${first}`,
            );
            const top = Object.values(choice?.logprobs?.top_logprobs?.[0] ?? {}).sort((a, b) => b - a);
            assert.ok(top.length >= 3, `${model}: top logprobs`);
            top.forEach((v, i) =>
              assert.ok(Math.abs(v - (refTop[i] as number)) <= tol, `${model}: top logprob ${i}`),
            );
          }
        }
        const chat = golden.chat;
        assert.ok(chat !== undefined);
        const messages = chat.messages.map((m) => ({ role: m.role as 'user', content: m.content }));
        for (const model of ['sp-edge', 'sp-main', 'sp-fallback']) {
          const res = await gw.client.chat.completions.create({ model, messages, max_tokens: 4 });
          assert.equal(res.usage?.prompt_tokens, chat.ids.length, `${model}: the checkpoint's chat template`);
        }
      } finally {
        await tok.close();
        await gw.shutdown();
      }
    },
  );

  await t.test(
    'bf16 weights: PyTorch, ONNX Runtime and llama.cpp give the bf16-rounded model’s logits and greedy',
    async () => {
      converted(await job('bf16'), 'bf16');
      const stage = join(at('work-bf16'), 'stage');
      const reference = JSON.parse(readFileSync(join(spVariants.bf16, 'reference.json'), 'utf8')) as {
        prompts: { ids: number[]; next_token_logits: number[]; greedy: number[]; chat: boolean }[];
      };
      const g = readGolden(stage);
      const onnx = await OnnxDecoder.load(join(stage, 'bf16-fp32.onnx'));
      const gguf = await GgufRunner.load(join(stage, 'bf16-f32.gguf'));
      try {
        for (const [i, ref] of reference.prompts.filter((p) => !p.chat).entries()) {
          const p = g.prompts[i];
          assert.ok(p !== undefined);
          assert.deepEqual(p.ids, ref.ids);
          assert.ok(maxAbsDiff(p.next_token_logits, ref.next_token_logits) <= 1e-4, 'PyTorch logits');
          assert.deepEqual(p.greedy, ref.greedy, 'PyTorch greedy');
          const res = await onnx.step([ref.ids]);
          const last = res.logits.subarray((res.seq - 1) * res.vocab);
          assert.ok(maxAbsDiff(last, ref.next_token_logits) <= LOGIT_TOLERANCE.onnx, 'ONNX logits');
          assert.deepEqual(await onnx.greedy(ref.ids, 32), ref.greedy, 'ONNX greedy');
          const [gl] = await gguf.logits(ref.ids, tiny.vocab_size, new Set([ref.ids.length - 1]));
          assert.ok(
            gl !== undefined && maxAbsDiff(gl, ref.next_token_logits) <= LOGIT_TOLERANCE.gguf,
            'GGUF logits',
          );
          assert.deepEqual(await gguf.greedy(ref.ids, 32, tiny.vocab_size), ref.greedy, 'GGUF greedy');
        }
      } finally {
        await onnx.release();
        await gguf.dispose();
      }
      assert.notEqual(
        sha256(join(stage, 'bf16-f32.gguf')),
        sha256(join(fam, 'fam-sp-f32.gguf')),
        'bf16 changed the weights',
      );
    },
  );
});

void test('sharded fp16, pytorch_model.bin and unsharded fp32 give the same family; tokenizer.json alone gives SentencePiece ids', async () => {
  for (const r of SAME) converted(await job(r.name), r.name);
  const staged = (name: string, file: string): string => join(at(`work-${name}`), 'stage', file);
  const gguf = sha256(staged('f32', 'same-f32.gguf'));
  assert.equal(sha256(staged('sharded', 'same-f32.gguf')), gguf, 'sharded fp16 -> the same GGUF bytes');
  assert.equal(sha256(staged('bin', 'same-f32.gguf')), gguf, 'pytorch_model.bin -> the same GGUF bytes');
  const goldenOf = (name: string): Golden => readGolden(join(at(`work-${name}`), 'stage'));
  const pplOf = (name: string): number =>
    (
      JSON.parse(readFileSync(join(at(`work-${name}`), 'ppl-pytorch.json'), 'utf8')) as {
        'pytorch-fp32': number;
      }
    )['pytorch-fp32'];
  assert.deepEqual(goldenOf('sharded'), goldenOf('f32'));
  assert.equal(pplOf('sharded'), pplOf('f32'));

  // tokenizer.json alone (SentencePiece-style BPE): scores derived from its merges; the reference
  // encoder, @huggingface/tokenizers and llama.cpp all give SentencePiece's ids.
  const json = goldenOf('json');
  assert.deepEqual(json.tokenizer_samples, goldenOf('f32').tokenizer_samples);
  assert.equal(pplOf('json'), pplOf('f32'));
  const hf = new HfTokenizer(
    JSON.parse(readFileSync(join(spVariants.jsonOnly, 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(join(spVariants.jsonOnly, 'tokenizer_config.json'), 'utf8')) as object,
  );
  const llama = await LlamaTokenizer.load(staged('json', 'same-f32.gguf'));
  try {
    for (const s of json.tokenizer_samples) {
      // The reference parses special-token markup in any text; the gateway never does in prompts.
      if (!s.text.startsWith('Markup'))
        assert.deepEqual(
          hf.encode(s.text, { add_special_tokens: false }).ids,
          s.ids,
          `HF: ${s.text.slice(0, 30)}`,
        );
      assert.deepEqual(llama.tokenize(s.text), s.ids, `llama.cpp: ${s.text.slice(0, 30)}`);
    }
  } finally {
    await llama.close();
  }
});

void test('byte-level BPE checkpoint: the gateway tokenises like @huggingface/tokenizers and every tier generates', async (t) => {
  const fam = at('fam-bpe');
  converted(await job('bpe'), 'bpe');
  const manifest = readManifest(fam);
  const golden = readGolden(fam);
  assert.equal(manifest.tokenizer.type, 'byte-level-bpe');
  assert.equal((manifest.tokenizer as unknown as { pre: string }).pre, 'llama-bpe');
  const hf = new HfTokenizer(
    JSON.parse(readFileSync(join(at('bpe'), 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(join(at('bpe'), 'tokenizer_config.json'), 'utf8')) as object,
  );
  const tok = await LlamaTokenizer.load(join(fam, 'fam-bpe-f32.gguf'));
  t.after(() => tok.close());

  await t.test('plain text: Unicode, whitespace runs, digits, contractions and an added token', () => {
    assert.equal(tok.usesJsCodec, false, 'the SentencePiece fast path stays off for a gpt2 vocabulary');
    const texts = [
      ...golden.tokenizer_samples.map((s) => s.text).filter((x) => !x.startsWith('Markup')),
      // The last one has control-token markup, which the reference would parse (below).
      ...TRICKY.slice(0, -1),
    ];
    for (const text of texts) {
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      assert.deepEqual(tok.tokenize(text), ids, `gateway vs reference: ${JSON.stringify(text.slice(0, 40))}`);
      const g = golden.tokenizer_samples.find((s) => s.text === text);
      if (g !== undefined)
        assert.deepEqual(g.ids, ids, 'golden ids (the converter’s own encoder) vs reference');
    }
    assert.ok(
      golden.tokenizer_samples.some((s) => s.text.includes('<think>')),
      'the added token is in the golden samples',
    );
    // Markup in a prompt is text for the gateway; the reference, which parses it, agrees on the
    // text around it, and both match the user-defined <think> anywhere.
    const markup = TRICKY[TRICKY.length - 1] as string;
    for (const part of markup.split('<|im_start|>')) {
      assert.deepEqual(tok.tokenize(part), hf.encode(part, { add_special_tokens: false }).ids, part);
    }
  });

  await t.test('special-token markup: the chat template’s ids equal the reference tokenizer’s', () => {
    const conversations = [
      [{ role: 'user' as const, content: 'What is the weather like today?' }],
      [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'Count: 1, 22, 333  and  4444!' },
        { role: 'assistant' as const, content: 'Sure — 1 22 333 4444.' },
        { role: 'user' as const, content: 'Ünïcödé 🙂 too?' },
      ],
    ];
    for (const messages of conversations) {
      // The fixture's ChatML template, rendered by hand: the reference parses its markup.
      const text =
        '<|begin_of_text|>' +
        messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') +
        '<|im_start|>assistant\n';
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      assert.deepEqual(tok.renderNativeChat(messages), ids, `chat of ${messages.length} messages`);
    }
    assert.deepEqual(
      golden.chat?.ids,
      tok.renderNativeChat(
        golden.chat?.messages.map((m) => ({ role: m.role as 'user', content: m.content })) ?? [],
      ),
    );
  });

  await t.test('the gateway starts (golden-ids check) and generates on edge, main and fallback', async () => {
    const gw = await startGateway({
      family: { dir: fam },
      tiers: {
        edge: { kind: 'llamacpp', model: 'gguf-q8_0', threads: 1, sequences: 2 },
        main: { kind: 'onnx', model: 'onnx-fp32', workers: 1 },
        fallback: { kind: 'remote', spawn: true, model: 'pytorch-fp32', threads: 1 },
      },
      models: { 'b-edge': { tier: 'edge' }, 'b-main': { tier: 'main' }, 'b-fallback': { tier: 'fallback' } },
    });
    try {
      const eog = manifest.tokenizer as unknown as { eog_tokens: string[] };
      assert.deepEqual(eog.eog_tokens, ['<|end_of_text|>', '<|im_end|>']);
      for (const model of ['b-edge', 'b-main', 'b-fallback']) {
        const res = await gw.client.completions.create({
          model,
          prompt: 'The jury said',
          max_tokens: 12,
          temperature: 0,
        });
        assert.equal(
          res.usage?.prompt_tokens,
          hf.encode('The jury said').ids.length,
          `${model}: BOS + prompt`,
        );
        assert.ok((res.usage?.completion_tokens ?? 0) > 0, `${model}: generated`);
        const chat = await gw.client.chat.completions.create({
          model,
          messages: [{ role: 'user', content: 'Hello there' }],
          max_tokens: 8,
        });
        assert.ok(chat.choices[0]?.message.content !== undefined, `${model}: chat`);
      }
    } finally {
      await gw.shutdown();
    }
  });
});

void test('GPT-2 and SmolLM pre-tokenizers: the GGUF names them and llama.cpp tokenises like the reference', async () => {
  for (const pre of OTHER_PRE) {
    converted(await job(`bpe-${pre}`), pre);
    const w = at(`work-bpe-${pre}`);
    const family = JSON.parse(readFileSync(join(w, 'family.json'), 'utf8')) as { tokenizer: { pre: string } };
    assert.equal(family.tokenizer.pre, pre === 'gpt2' ? 'gpt-2' : 'smollm');
    const hf = new HfTokenizer(
      JSON.parse(readFileSync(join(at(`bpe-${pre}`), 'tokenizer.json'), 'utf8')) as object,
      JSON.parse(readFileSync(join(at(`bpe-${pre}`), 'tokenizer_config.json'), 'utf8')) as object,
    );
    const tok = await LlamaTokenizer.load(join(w, 'stage', `${pre}-f32.gguf`));
    try {
      for (const text of [...tiny.tokenizer_samples.map((x) => x.text), ...TRICKY.slice(0, -1)]) {
        const ids = hf.encode(text, { add_special_tokens: false }).ids;
        assert.deepEqual(tok.tokenize(text), ids, `${pre}: ${JSON.stringify(text.slice(0, 40))}`);
      }
    } finally {
      await tok.close();
    }
  }
});

void test('refusals name the field or file and leave no output directory', async () => {
  const cases: { name: string; prepare: (dir: string) => void; message: RegExp }[] = [
    {
      name: 'attention-bias',
      prepare: (d) => editConfig(d, { attention_bias: true }),
      message: /config\.json: attention_bias = true: .*bias/,
    },
    {
      name: 'sliding-window',
      prepare: (d) => editConfig(d, { sliding_window: 4096 }),
      message: /config\.json: sliding_window = 4096: sliding-window/,
    },
    {
      name: 'rope-scaling',
      prepare: (d) => editConfig(d, { rope_scaling: { rope_type: 'llama3', factor: 8 } }),
      message: /config\.json: rope_scaling = \{"rope_type": "llama3".*not implemented/,
    },
    {
      name: 'truncated',
      prepare: (d) =>
        truncateSync(join(d, 'model.safetensors'), statSync(join(d, 'model.safetensors')).size - 4096),
      message: /model\.safetensors: truncated: tensor \S+ ends at byte [\d,]+ but the file has [\d,]+ bytes/,
    },
    {
      name: 'no-tokenizer',
      prepare: (d) => ['tokenizer.model', 'tokenizer.json'].forEach((f) => unlinkSync(join(d, f))),
      message: /no tokenizer: expected tokenizer\.model \(SentencePiece\) or tokenizer\.json/,
    },
  ];
  for (const c of cases) {
    const ckpt = at(`bad-${c.name}`);
    cpSync(spVariants.f32, ckpt, { recursive: true });
    c.prepare(ckpt);
    const out = at(`fam-bad-${c.name}`);
    const r = await convert(['--from', ckpt, '--out', out, '--eval-text', evalText]);
    assert.equal(r.status, 2, `${c.name}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, c.message, c.name);
    leftNothing(out);
  }
  // A stage that fails after the checks (an evaluation text too short for one window) leaves nothing either.
  writeFileSync(at('short.txt'), 'Too short.');
  const out = at('fam-short');
  const r = await convert([
    '--from',
    spVariants.f32,
    '--out',
    out,
    '--eval-text',
    at('short.txt'),
    '--variants',
    'gguf-f32',
  ]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /one window needs/);
  leftNothing(out);
});

/** Peak RSS bound of the onnx and quantize-onnx stages, times the F32 GGUF: they read one GGUF
 * tensor at a time and write it as ONNX external data (models/lib/tiergate_model/onnx_writer.py),
 * so they hold the interpreter, the graph and about one tensor (a torch.onnx export peaked at
 * 5.7x, an in-memory quantizer at 2.1x). */
const ONNX_PEAK_BOUND = 0.5;

void test('convert and the ONNX stages stream the weights: peak memory per stage against the checkpoint size', async (t) => {
  const ckpt = at('big');
  python(['big', ckpt, '--dtype', 'bf16', '--dim', '1024', '--layers', '8']);
  const bytes = readdirSync(ckpt)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((n, f) => n + statSync(join(ckpt, f)).size, 0);
  const w = at('work-big');
  const stage = join(w, 'stage');
  const r = await convert([
    ...['--from', ckpt, '--out', at('fam-big'), '--id', 'big'],
    ...['--variants', 'gguf-f32,onnx-fp32,onnx-int8,onnx-int4', '--until', 'quantize-onnx', '--work-dir', w],
  ]);
  converted(r, 'big');
  t.after(() => {
    rmSync(w, { recursive: true, force: true });
    rmSync(ckpt, { recursive: true, force: true });
  });
  const stats = JSON.parse(readFileSync(join(w, 'stage-stats.json'), 'utf8')) as Record<
    string,
    { peak_rss_bytes: number; seconds: number }
  >;
  const f32 = statSync(join(stage, 'big-f32.gguf')).size;
  const peak = (name: string): number => stats[name]?.peak_rss_bytes ?? Infinity;
  const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
  const lines = [
    `checkpoint ${mib(bytes)} MiB (bf16 safetensors), GGUF F32 ${mib(f32)} MiB`,
    ...['convert', 'quantize-gguf', 'onnx', 'quantize-onnx'].map(
      (name) =>
        `${name} stage: ${stats[name]?.seconds ?? '?'} s, peak RSS ${mib(peak(name))} MiB = ` +
        `${(peak(name) / bytes).toFixed(2)}x the checkpoint, ${(peak(name) / f32).toFixed(2)}x the F32 GGUF`,
    ),
  ];
  for (const line of lines) {
    t.diagnostic(line);
    process.stdout.write(`# ${line}\n`);
  }
  assert.ok(peak('convert') < 1.5 * bytes, lines[1]);
  assert.ok(peak('onnx') < ONNX_PEAK_BOUND * f32, lines[3]);
  assert.ok(peak('quantize-onnx') < ONNX_PEAK_BOUND * f32, lines[4]);
  for (const v of ['fp32', 'int8', 'int4']) {
    const graph = statSync(join(stage, `big-${v}.onnx`)).size;
    const data = statSync(join(stage, `big-${v}.onnx.data`)).size;
    assert.ok(
      graph < 1 << 20 && data > 50 * graph,
      `big-${v}.onnx: graph ${graph} bytes, data ${data} bytes`,
    );
  }

  await t.test(
    'the decoder with external data loads in the real ONNX tier and generates what onnxruntime computes',
    async () => {
      const path = join(stage, 'big-fp32.onnx');
      const prompt = [1, 450, 1200, 37, 900];
      const decoder = await OnnxDecoder.load(path);
      let expected: number[];
      try {
        expected = await decoder.greedy(prompt, 8);
      } finally {
        await decoder.release();
      }
      const tier = makeTier(path);
      await tier.start();
      try {
        const spec = tier.decoderSpec();
        assert.deepEqual([spec?.layers, spec?.kvHeads, spec?.headDim, spec?.vocabSize], [8, 8, 64, 2048]);
        const { tokens } = await collect(tier, request(prompt, 8));
        assert.deepEqual(tokens, expected);
      } finally {
        await tier.close();
      }
      for (const v of ['int8', 'int4']) {
        const q = await OnnxDecoder.load(join(stage, `big-${v}.onnx`));
        try {
          const res = await q.step([prompt]);
          assert.ok(res.logits.length === prompt.length * 2048 && res.logits.every(Number.isFinite), v);
        } finally {
          await q.release();
        }
      }
    },
  );
});

function editConfig(dir: string, patch: Record<string, unknown>): void {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ ...(JSON.parse(readFileSync(path, 'utf8')) as object), ...patch }));
}
