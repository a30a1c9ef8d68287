/**
 * Writes a minimal valid ONNX model (one Identity node) with chosen input names: enough to
 * check that the tier refuses a model that is not a KV-cache decoder, naming what is missing.
 * Hand-encoded protobuf (onnx.proto3: ModelProto, GraphProto, NodeProto, ValueInfoProto).
 */
import { writeFileSync } from 'node:fs';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

const num = (field: number, v: number): number[] => [...varint(field << 3), ...varint(v)];
const bytes = (field: number, b: number[]): number[] => [
  ...varint((field << 3) | 2),
  ...varint(b.length),
  ...b,
];
const str = (field: number, s: string): number[] => bytes(field, [...Buffer.from(s, 'utf8')]);

/** A float tensor value of shape [2] (TypeProto.tensor_type with elem_type FLOAT = 1). */
function valueInfo(name: string): number[] {
  const shape = bytes(1, num(1, 2)); // dim { dim_value: 2 }
  const tensorType = [...num(1, 1), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

/** An Identity graph: the first input is copied to output "logits"; other inputs are unused. */
export function writeIdentityModel(path: string, inputs: readonly string[]): void {
  const node = [...str(1, inputs[0] as string), ...str(2, 'logits'), ...str(4, 'Identity')];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'not-a-decoder'),
    ...inputs.flatMap((n) => bytes(11, valueInfo(n))),
    ...bytes(12, valueInfo('logits')),
  ];
  const model = [...num(1, 8), ...bytes(8, [...str(1, ''), ...num(2, 17)]), ...bytes(7, graph)];
  writeFileSync(path, Uint8Array.from(model));
}
