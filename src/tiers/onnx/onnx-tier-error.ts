/**
 * Errors of the ONNX Runtime tier. `code` is stable for callers and logs; the message tells the
 * operator what to fix (e.g. which decoder inputs a model file lacks).
 */
export type OnnxTierErrorCode =
  | 'TG_ONNX_MODEL_MISSING'
  | 'TG_ONNX_NOT_A_DECODER'
  | 'TG_ONNX_WORKER_FAILED'
  | 'TG_ONNX_NOT_STARTED'
  | 'TG_ONNX_CLOSED'
  | 'TG_ONNX_BAD_REQUEST';

export class OnnxTierError extends Error {
  readonly code: OnnxTierErrorCode;

  constructor(code: OnnxTierErrorCode, message: string) {
    super(message);
    this.name = 'OnnxTierError';
    this.code = code;
  }
}
