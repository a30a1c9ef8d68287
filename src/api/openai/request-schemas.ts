import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { ValueError } from '@sinclair/typebox/errors';
import { ApiError } from '../errors.js';

/**
 * OpenAI request bodies, as far as tiergate interprets them. Unknown fields are allowed and
 * ignored, as OpenAI does; known fields are checked strictly (no type coercion: "5" is not 5).
 * https://platform.openai.com/docs/api-reference/completions/create
 * https://platform.openai.com/docs/api-reference/chat/create
 */

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const StopSchema = Nullable(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 16 })]));
const StreamOptionsSchema = Nullable(Type.Object({ include_usage: Type.Optional(Nullable(Type.Boolean())) }));

const common = {
  model: Type.String({ minLength: 1 }),
  max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2 }))),
  top_p: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0, maximum: 1 }))),
  /** Not OpenAI, but common (vLLM, llama.cpp server); 0 or absent disables it. */
  top_k: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  seed: Type.Optional(Nullable(Type.Integer())),
  stop: Type.Optional(StopSchema),
  stream: Type.Optional(Nullable(Type.Boolean())),
  stream_options: Type.Optional(StreamOptionsSchema),
  n: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
  user: Type.Optional(Nullable(Type.String())),
  presence_penalty: Type.Optional(Nullable(Type.Number({ minimum: -2, maximum: 2 }))),
  frequency_penalty: Type.Optional(Nullable(Type.Number({ minimum: -2, maximum: 2 }))),
};

const TokenArray = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 });

export const CompletionBodySchema = Type.Object({
  ...common,
  prompt: Type.Union([
    Type.String(),
    Type.Array(Type.String(), { minItems: 1, maxItems: 1 }),
    TokenArray,
    Type.Array(TokenArray, { minItems: 1, maxItems: 1 }),
  ]),
  logprobs: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20 }))),
  echo: Type.Optional(Nullable(Type.Boolean())),
  suffix: Type.Optional(Type.Null()),
  best_of: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1 }))),
});
export type CompletionBody = Static<typeof CompletionBodySchema>;

const TextPart = Type.Object({ type: Type.Literal('text'), text: Type.String() });
const Content = Type.Union([Type.String(), Type.Array(TextPart)]);

export const ChatBodySchema = Type.Object({
  ...common,
  messages: Type.Array(
    Type.Object({
      role: Type.Union([
        Type.Literal('system'),
        Type.Literal('developer'),
        Type.Literal('user'),
        Type.Literal('assistant'),
        Type.Literal('tool'),
      ]),
      content: Nullable(Content),
      name: Type.Optional(Type.String()),
    }),
    { minItems: 1 },
  ),
  max_completion_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  logprobs: Type.Optional(Nullable(Type.Boolean())),
  top_logprobs: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20 }))),
});
export type ChatBody = Static<typeof ChatBodySchema>;

// Compiled once: the check runs on every request, the slower error walk only on bad ones.
const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** Checks a body against a schema; the first problem becomes a 400 naming the field. */
export function parseBody<T extends TSchema>(schema: T, body: unknown): Static<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('bad_request', 'The request body must be a JSON object.');
  }
  let check = compiled.get(schema);
  if (check === undefined) {
    check = TypeCompiler.Compile(schema);
    compiled.set(schema, check);
  }
  if (check.Check(body)) return body as Static<T>;
  const top = check.Errors(body).First();
  if (top === undefined) return body as Static<T>;
  const first = specific(top);
  const param = toParam(first.path);
  const missing = first.value === undefined;
  const message = missing
    ? `Missing required parameter: '${param}'.`
    : `Invalid value for '${param}': ${first.message.toLowerCase()} (got ${describe(first.value)}).`;
  throw new ApiError('bad_request', message, param);
}

/**
 * For a value that matches no branch of a union, a telling message instead of TypeBox's
 * "expected union value": the first branch that failed on more than the value's type
 * (`max_tokens: -1` → "expected integer to be greater or equal to 0"), else the list of what the
 * branches accept (`max_tokens: "ten"` → "expected integer or null").
 */
function specific(error: ValueError): ValueError {
  if (error.errors.length === 0) return error;
  const tree = branchTree(error);
  const telling = tellingOf(tree);
  if (telling !== undefined) return telling;
  // Every branch wants another type or literal: name them all ("expected integer or null").
  return { ...error, message: `Expected ${[...new Set(wantedOf(tree))].join(' or ')}` };
}

/** A union error with its branches' first errors, read once (the iterators are consumed). */
interface BranchTree {
  readonly error: ValueError;
  readonly branches: readonly BranchTree[];
}

function branchTree(error: ValueError): BranchTree {
  const firsts = error.errors.map((it) => it.First()).filter((e): e is ValueError => e !== undefined);
  return { error, branches: firsts.map(branchTree) };
}

function tellingOf(node: BranchTree): ValueError | undefined {
  if (node.branches.length === 0) return MISMATCH.test(node.error.message) ? undefined : node.error;
  for (const b of node.branches) {
    const t = tellingOf(b);
    if (t !== undefined) return t;
  }
  return undefined;
}

function wantedOf(node: BranchTree): string[] {
  if (node.branches.length === 0) return [node.error.message.replace(/^Expected /, '')];
  return node.branches.flatMap(wantedOf);
}

/** TypeBox's message when a value is simply of another type (or literal) than the branch wants. */
const MISMATCH = /^Expected (number|integer|string|boolean|null|array|object|union value|'[^']*')$/;

/** "/messages/0/role" → "messages[0].role" (OpenAI's param notation). */
function toParam(path: string): string {
  return path
    .split('/')
    .filter((p) => p !== '')
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a string' : JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}
