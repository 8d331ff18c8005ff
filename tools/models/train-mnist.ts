// Trains a small digit classifier, 784 → hidden (ReLU) → 10, with plain Float32Array math:
// softmax cross-entropy, mini-batch Adam, a seeded initialisation and sample order, so the
// same digits always give the same weights. MNIST images are mostly zeros, so the first layer
// walks only each image's lit pixels, which makes an epoch over 8,000 digits take well under a second.
import { PIXELS, type Digit } from './mnist-data';
import { gaussian, seededRandom, shuffle } from './prng';

const CLASSES = 10;
const SIDE = 28;
// Hot loops use these module constants, not Math.* or Infinity: under jest the module runs in a vm
// context whose global lookups go through an interceptor, which made training ~7× slower there.
const { exp, floor, log, max: maxOf, sqrt } = Math;
const NEGATIVE_INFINITY = -Infinity;

/** Weights of the two dense layers, row-major as ONNX MatMul takes them: x[N,784]·w1 + b1, h·w2 + b2. */
export interface MlpWeights {
  hidden: number;
  /** [784, hidden]. */
  w1: Float32Array;
  /** [hidden]. */
  b1: Float32Array;
  /** [hidden, 10]. */
  w2: Float32Array;
  /** [10]. */
  b2: Float32Array;
}

/** Training settings. */
export interface TrainOptions {
  /** Hidden units, a multiple of 4; default 128. */
  hidden?: number;
  /** Passes over the training digits; default 8. */
  epochs?: number;
  /** Digits per Adam step; default 32. */
  batchSize?: number;
  /** Adam step size at the start, decayed linearly to a tenth of it by the end; default 0.003. */
  learningRate?: number;
  /** PRNG seed for the initial weights and the sample order; default 7. */
  seed?: number;
  /** Largest random shift, in pixels, applied to each image each epoch (augmentation); default 1. */
  maxShift?: number;
  /** Called after each epoch with its mean training loss; default none. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

// An image as its lit pixels only.
interface SparseImage {
  index: Int32Array;
  value: Float32Array;
  label: number;
}

function sparse(d: Digit): SparseImage {
  const index: number[] = [];
  const value: number[] = [];
  d.pixels.forEach((v, i) => {
    if (v !== 0) {
      index.push(i);
      value.push(v);
    }
  });
  return { index: Int32Array.from(index), value: Float32Array.from(value), label: d.label };
}

// Writes the lit pixels of `img` moved by (dx, dy) into index/value; returns how many stay in the frame.
function shifted(img: SparseImage, dx: number, dy: number, index: Int32Array, value: Float32Array): number {
  let n = 0;
  for (let k = 0; k < img.index.length; k++) {
    const i = img.index[k] as number;
    const row = floor(i / SIDE) + dy;
    const col = (i % SIDE) + dx;
    if (row < 0 || row >= SIDE || col < 0 || col >= SIDE) continue;
    index[n] = row * SIDE + col;
    value[n] = img.value[k] as number;
    n++;
  }
  return n;
}

// y[yAt..yAt+n) += a · x[xAt..xAt+n), n a multiple of 4: the hot loop; unrolled, it runs about twice as fast.
function axpy4(a: number, x: Float32Array, xAt: number, y: Float32Array, yAt: number, n: number): void {
  for (let j = 0; j < n; j += 4) {
    const xi = xAt + j;
    const yi = yAt + j;
    y[yi] = (y[yi] as number) + a * (x[xi] as number);
    y[yi + 1] = (y[yi + 1] as number) + a * (x[xi + 1] as number);
    y[yi + 2] = (y[yi + 2] as number) + a * (x[xi + 2] as number);
    y[yi + 3] = (y[yi + 3] as number) + a * (x[xi + 3] as number);
  }
}

// Adam state for one parameter array.
class AdamSlot {
  readonly grad: Float32Array;
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  constructor(readonly param: Float32Array) {
    this.grad = new Float32Array(param.length);
    this.m = new Float32Array(param.length);
    this.v = new Float32Array(param.length);
  }

  step(lr: number, t: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): void {
    const { param, grad, m, v } = this;
    const c1 = 1 / (1 - beta1 ** t);
    const c2 = 1 / (1 - beta2 ** t);
    for (let i = 0; i < param.length; i++) {
      const g = grad[i] as number;
      const mi = beta1 * (m[i] as number) + (1 - beta1) * g;
      const vi = beta2 * (v[i] as number) + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = (param[i] as number) - (lr * mi * c1) / (sqrt(vi * c2) + eps);
    }
    grad.fill(0);
  }
}

/** Initial weights: He-normal for the ReLU layer, Glorot-like for the output, zero biases. */
export function initialWeights(hidden: number, seed: number): MlpWeights {
  const random = seededRandom(seed);
  const w1 = new Float32Array(PIXELS * hidden);
  const w2 = new Float32Array(hidden * CLASSES);
  const s1 = Math.sqrt(2 / PIXELS);
  const s2 = Math.sqrt(1 / hidden);
  for (let i = 0; i < w1.length; i++) w1[i] = gaussian(random) * s1;
  for (let i = 0; i < w2.length; i++) w2[i] = gaussian(random) * s2;
  return { hidden, w1, b1: new Float32Array(hidden), w2, b2: new Float32Array(CLASSES) };
}

/** Trains the classifier on `digits`; deterministic for the same digits and options. */
export function trainMnist(digits: Digit[], options: TrainOptions = {}): MlpWeights {
  const { hidden = 128, epochs = 8, batchSize = 32, learningRate = 0.003, seed = 7, maxShift = 1 } = options;
  if (hidden <= 0 || hidden % 4 !== 0) throw new Error(`trainMnist: hidden must be a positive multiple of 4, got ${hidden}`);
  const weights = initialWeights(hidden, seed);
  const { w1, b1, w2, b2 } = weights;
  const slots = [w1, b1, w2, b2].map((p) => new AdamSlot(p));
  const [g1, gb1, g2, gb2] = slots.map((s) => s.grad) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const images = digits.map(sparse);
  const order = images.map((_, i) => i);
  const random = seededRandom(seed + 1);
  const lit = new Int32Array(PIXELS);
  const litValue = new Float32Array(PIXELS);
  const h = new Float32Array(hidden);
  const dh = new Float32Array(hidden);
  const z = new Float64Array(CLASSES);
  const stepsPerEpoch = Math.ceil(images.length / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  let t = 0;

  for (let epoch = 0; epoch < epochs; epoch++) {
    shuffle(order, random);
    let lossSum = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const end = Math.min(start + batchSize, order.length);
      const scale = 1 / (end - start);
      for (let s = start; s < end; s++) {
        const img = images[order[s] as number] as SparseImage;
        const count = shifted(img, floor(random() * (2 * maxShift + 1)) - maxShift, floor(random() * (2 * maxShift + 1)) - maxShift, lit, litValue);
        // Forward: h = relu(x·w1 + b1), z = h·w2 + b2.
        h.set(b1);
        for (let k = 0; k < count; k++) {
          const v = litValue[k] as number;
          const row = (lit[k] as number) * hidden;
          axpy4(v, w1, row, h, 0, hidden);
        }
        for (let c = 0; c < CLASSES; c++) z[c] = b2[c] as number;
        for (let j = 0; j < hidden; j++) {
          const hj = h[j] as number;
          if (hj <= 0) {
            h[j] = 0;
            continue;
          }
          const row = j * CLASSES;
          for (let c = 0; c < CLASSES; c++) z[c] = (z[c] as number) + hj * (w2[row + c] as number);
        }
        // Softmax cross-entropy; z becomes dLoss/dz (scaled by 1/batch).
        let max = NEGATIVE_INFINITY;
        for (let c = 0; c < CLASSES; c++) max = maxOf(max, z[c] as number);
        let sum = 0;
        for (let c = 0; c < CLASSES; c++) {
          const e = exp((z[c] as number) - max);
          z[c] = e;
          sum += e;
        }
        lossSum -= log((z[img.label] as number) / sum);
        for (let c = 0; c < CLASSES; c++) z[c] = (((z[c] as number) / sum) - (c === img.label ? 1 : 0)) * scale;
        // Backward.
        for (let c = 0; c < CLASSES; c++) gb2[c] = (gb2[c] as number) + (z[c] as number);
        for (let j = 0; j < hidden; j++) {
          const hj = h[j] as number;
          if (hj === 0) {
            dh[j] = 0;
            continue;
          }
          const row = j * CLASSES;
          let d = 0;
          for (let c = 0; c < CLASSES; c++) {
            const zc = z[c] as number;
            g2[row + c] = (g2[row + c] as number) + hj * zc;
            d += (w2[row + c] as number) * zc;
          }
          dh[j] = d;
          gb1[j] = (gb1[j] as number) + d;
        }
        for (let k = 0; k < count; k++) {
          const v = litValue[k] as number;
          const row = (lit[k] as number) * hidden;
          axpy4(v, dh, 0, g1, row, hidden);
        }
      }
      t++;
      const lr = learningRate * (1 - (0.9 * (t - 1)) / Math.max(1, totalSteps - 1));
      for (const slot of slots) slot.step(lr, t);
    }
    options.onEpoch?.(epoch + 1, lossSum / order.length);
  }
  return weights;
}
