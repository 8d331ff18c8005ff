// The benchmark's requests: real held-out MNIST digits as batch-1 ModelInfer requests with
// raw_input_contents, serialized once so sending them costs the load generator nothing more.
import { protos } from '../lib/grpc/proto';
import type { ModelInferRequest } from '../lib/grpc/types';
import { heldOutDigits, PIXELS, type Digit } from '../tools/models/mnist-data';

/** The model every benchmark serves. */
export const MODEL = 'mnist';

export { MODEL_INFER_PATH } from '../lib/grpc/proto';

/** A ModelInfer request for `count` digits stacked into one batch (raw FP32 bytes). */
export function inferRequest(digits: readonly Digit[]): ModelInferRequest {
  const pixels = new Float32Array(digits.length * PIXELS);
  digits.forEach((d, i) => pixels.set(d.pixels, i * PIXELS));
  return {
    model_name: MODEL,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [digits.length, PIXELS] }],
    outputs: [{ name: 'probabilities' }],
    raw_input_contents: [Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)],
  };
}

/** Serializes a ModelInfer request with the protocol's own encoder. */
export function encodeInferRequest(req: ModelInferRequest): Buffer {
  return protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize(req);
}

/** `count` held-out digits (default 200, every class), each as an encoded batch-1 request. */
export function batchOneRequests(count = 200): { digits: Digit[]; encoded: Buffer[] } {
  const digits = heldOutDigits(count);
  return { digits, encoded: digits.map((d) => encodeInferRequest(inferRequest([d]))) };
}
