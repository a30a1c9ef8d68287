import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createProgress, type Progress } from '../eval/progress.js';

export const CONVERT_USAGE = `Usage: tiergate convert --from <checkpoint> --out <family dir> [options]

Converts a Hugging Face LLaMA-family checkpoint (config.json, *.safetensors or pytorch_model.bin,
tokenizer.model and/or tokenizer.json, tokenizer_config.json) into a tiergate model family: GGUF
and its llama.cpp quantizations, ONNX FP32/INT8/INT4, what the PyTorch sidecar serves, golden data,
a manifest with every variant's perplexity, and <out>/serve.yaml (docs/own-model.md).

  --from <dir>           the checkpoint folder
  --out <dir>            the family folder to create (written only when every step succeeded)
  --variants <a,b,...>   variant ids (default: full precision everywhere + the quantizations that fit)
  --eval-text <file>     UTF-8 text, or .jsonl of {"text": ...}, to measure perplexity on
                         (default: a slice of the Brown Corpus validation split)
  --id <id>              family id (default: from the --out folder name)
  --name <name>          model name in the manifest and GGUF (default: the id)
  --gguf <auto|f32|f16>  reference GGUF precision (auto: F16 above 4 GiB of F32 weights)
  --force                replace an existing --out folder
  --keep-work            keep the work folder (staged files, logs) afterwards
  --verbose              print the converter's log instead of a progress bar
  --work-dir <dir>       the work folder (default: a hidden folder beside --out)
  --until <stage>        stop after a stage (convert, quantize-gguf, onnx, quantize-onnx, golden,
                         ppl, manifest, verify): files stay in <work-dir>/stage, nothing at --out
Needs the model build prerequisites (scripts/install.sh): Debian's python3 with torch, numpy,
sentencepiece and onnx. Exit code 2: the checkpoint or an option was refused (the message names it).
`;

/** The Python converter, beside dist/ and src/ alike (repo-root models/). */
const CONVERTER = fileURLToPath(new URL('../../models/convert.py', import.meta.url));
const PYTHON = process.env['TIERGATE_PYTHON'] ?? '/usr/bin/python3';
/** Log lines kept to show when a stage fails. */
const TAIL = 40;

const STAGE_RE = /^\[models:build\] \[(\d+)\/(\d+)\] (\S+)/;
const STAGE_DONE_RE = /^\[models:build\] (\S+): (\d+)s, peak RSS (\d+) MiB/;
const TENSOR_RE = /^@@progress (\d+) (\d+) (\S+)/;

/**
 * Runs the converter; the summary goes to `out`, progress and errors to `err` (a bar when it is
 * a terminal). Returns the exit code: 0 converted, 2 refused, 1 a stage failed.
 */
export async function convertCommand(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      from: { type: 'string' },
      out: { type: 'string' },
      variants: { type: 'string' },
      'eval-text': { type: 'string' },
      id: { type: 'string' },
      name: { type: 'string' },
      gguf: { type: 'string' },
      force: { type: 'boolean' },
      'keep-work': { type: 'boolean' },
      'work-dir': { type: 'string' },
      until: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    out.write(CONVERT_USAGE);
    return 0;
  }
  if (values.from === undefined || values.out === undefined) {
    err.write(`tiergate convert: --from and --out are required\n\n${CONVERT_USAGE}`);
    return 2;
  }
  if (isAbsolute(PYTHON) && !existsSync(PYTHON)) {
    err.write(`tiergate convert: ${PYTHON} not found: run scripts/install.sh (or set TIERGATE_PYTHON)\n`);
    return 2;
  }
  const args = [CONVERTER, '--from', values.from, '--out', values.out];
  const pass: [string, string | undefined][] = [
    ['--variants', values.variants],
    ['--eval-text', values['eval-text']],
    ['--id', values.id],
    ['--name', values.name],
    ['--gguf', values.gguf],
    ['--work-dir', values['work-dir']],
    ['--until', values.until],
  ];
  for (const [flag, value] of pass) if (value !== undefined) args.push(flag, value);
  if (values.force === true) args.push('--force');
  if (values['keep-work'] === true) args.push('--keep-work');
  return runConverter(args, values.verbose === true, out, err);
}

function runConverter(
  args: readonly string[],
  verbose: boolean,
  out: NodeJS.WritableStream,
  err: NodeJS.WriteStream,
): Promise<number> {
  const child = spawn(PYTHON, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TIERGATE_PROGRESS: '1', PYTHONUNBUFFERED: '1' },
  });
  const progress = verbose ? undefined : createProgress(err);
  const view = new StageView(progress);
  const tail: string[] = [];
  const errors: string[] = [];
  let result: string[] | undefined;
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > TAIL) tail.shift();
    if (verbose) err.write(`${line}\n`);
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (result !== undefined) result.push(line);
    else if (line === '@@result') result = [];
    else if (!view.line(line)) keep(line);
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.startsWith('tiergate convert: ')) errors.push(line);
    else keep(line);
  });
  return new Promise((resolve) => {
    child.on('error', (e) => {
      view.close();
      err.write(`tiergate convert: cannot run ${PYTHON}: ${e.message}\n`);
      resolve(2);
    });
    child.on('close', (code, signal) => {
      view.close();
      const status = code ?? (signal === null ? 1 : 130);
      if (status === 0) {
        if (result !== undefined) out.write(`${result.join('\n')}\n`);
        resolve(0);
        return;
      }
      // A refusal (2) is one line naming the field or file; a failed stage shows its log too.
      if (status !== 2 && !verbose && tail.length > 0) err.write(`${tail.join('\n')}\n`);
      err.write(`${errors.join('\n') || `tiergate convert: the converter exited with ${status}`}\n`);
      resolve(status);
    });
  });
}

/** Turns the converter's stage and tensor lines into one progress phase per stage. */
class StageView {
  private open = false;
  private stage = '';
  private steps = 0;
  private shown = 0;

  constructor(private readonly progress: Progress | undefined) {}

  /** True when the line was a progress line (consumed). */
  line(line: string): boolean {
    const stage = STAGE_RE.exec(line);
    if (stage !== null) {
      this.close();
      this.stage = `[${stage[1]}/${stage[2]}] ${stage[3]}`;
      this.begin(this.stage, 1);
      return false;
    }
    const tensor = TENSOR_RE.exec(line);
    if (tensor !== null) {
      const done = Number(tensor[1]);
      const total = Number(tensor[2]);
      if (done === 1) {
        // The weights: at most 20 steps, so a log file gets a line per 5%, not per tensor.
        this.close();
        this.begin(`${this.stage} weights`, Math.min(total, 20));
      }
      const due = Math.floor((done * this.steps) / total);
      while (this.shown < due) {
        this.shown++;
        this.progress?.tick(tensor[3]);
      }
      if (done === total) this.close();
      return true;
    }
    const finished = STAGE_DONE_RE.exec(line);
    if (finished !== null && this.open) {
      while (this.shown < this.steps) {
        this.shown++;
        this.progress?.tick(`${finished[2]}s, peak RSS ${finished[3]} MiB`);
      }
      this.close();
      return false;
    }
    return false;
  }

  private begin(label: string, steps: number): void {
    this.progress?.begin(label, steps);
    [this.open, this.steps, this.shown] = [true, steps, 0];
  }

  close(): void {
    if (!this.open) return;
    this.progress?.end();
    this.open = false;
  }
}
