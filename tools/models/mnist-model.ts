// The digit classifier as an ONNX graph, and its accuracy measured by onnxruntime on the exported
// file itself (not the training math), so the number we publish is the one the service will see.
import { ort } from '../../lib/ort';
import { ElemType, encodeModel, initializer, node, tensor } from './onnx-builder';
import { PIXELS, type Digit } from './mnist-data';
import type { MlpWeights } from './train-mnist';

/** The classifier's input name: FP32 [batch, 784], grey levels in 0..1. */
export const MNIST_INPUT = 'input';

/** The classifier's output names: raw scores and their softmax, both FP32 [batch, 10]. */
export const MNIST_OUTPUTS = { logits: 'logits', probabilities: 'probabilities' } as const;

/** The ONNX model for trained weights: MatMul+Add → Relu → MatMul+Add (logits) → Softmax(axis 1). */
export function mnistModel(w: MlpWeights): Uint8Array {
  return encodeModel({
    name: 'mnist_mlp',
    doc: `MNIST digit classifier, ${PIXELS}→${w.hidden} (ReLU)→10, trained by tools/models/train-mnist.ts`,
    inputs: [tensor(MNIST_INPUT, ElemType.FLOAT, ['batch', PIXELS])],
    outputs: [
      tensor(MNIST_OUTPUTS.logits, ElemType.FLOAT, ['batch', 10]),
      tensor(MNIST_OUTPUTS.probabilities, ElemType.FLOAT, ['batch', 10]),
    ],
    initializers: [
      initializer('w1', ElemType.FLOAT, [PIXELS, w.hidden], w.w1),
      initializer('b1', ElemType.FLOAT, [w.hidden], w.b1),
      initializer('w2', ElemType.FLOAT, [w.hidden, 10], w.w2),
      initializer('b2', ElemType.FLOAT, [10], w.b2),
    ],
    nodes: [
      node('MatMul', [MNIST_INPUT, 'w1'], ['h_pre']),
      node('Add', ['h_pre', 'b1'], ['h_biased']),
      node('Relu', ['h_biased'], ['h']),
      node('MatMul', ['h', 'w2'], ['logits_pre']),
      node('Add', ['logits_pre', 'b2'], [MNIST_OUTPUTS.logits]),
      node('Softmax', [MNIST_OUTPUTS.logits], [MNIST_OUTPUTS.probabilities], { axis: 1 }),
    ],
  });
}

/** Index of the largest of `n` scores starting at `offset`. */
export function argmax(scores: ArrayLike<number>, offset = 0, n = 10): number {
  let best = 0;
  for (let i = 1; i < n; i++) if ((scores[offset + i] as number) > (scores[offset + best] as number)) best = i;
  return best;
}

/**
 * The share of `digits` an ONNX classifier (a file path or model bytes) labels correctly, run by
 * onnxruntime-node on one thread in batches of `batchSize` (default 500).
 */
export async function onnxAccuracy(model: string | Uint8Array, digits: Digit[], batchSize = 500): Promise<number> {
  const session = typeof model === 'string'
    ? await ort.InferenceSession.create(model, { intraOpNumThreads: 1 })
    : await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    let correct = 0;
    for (let start = 0; start < digits.length; start += batchSize) {
      const batch = digits.slice(start, start + batchSize);
      const data = new Float32Array(batch.length * PIXELS);
      batch.forEach((d, i) => data.set(d.pixels, i * PIXELS));
      const out = await session.run({ [MNIST_INPUT]: new ort.Tensor('float32', data, [batch.length, PIXELS]) });
      const probs = out[MNIST_OUTPUTS.probabilities]?.data as Float32Array;
      batch.forEach((d, i) => {
        if (argmax(probs, i * 10) === d.label) correct++;
      });
    }
    return digits.length ? correct / digits.length : 0;
  } finally {
    await session.release();
  }
}
