// The generated models, built into a temporary folder and run through onnxruntime-node: identity
// returns its input for every datatype, add_sub adds and subtracts, fails.onnx loads but cannot
// run, load_fails.onnx cannot load, pad_reflect needs 2 columns, and the trained classifier really
// recognises held-out digits. The classifier is the one npm test's setup trained into models/ (the
// one every other suite serves, made by the same writeModels): training it again here took half
// a minute on each Node line CI runs. Where models/ has none, it is trained here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ort } from '../../../lib/ort';
import { ADD_SUB_DATATYPES, FIXTURE_DATATYPES, type FixtureDatatype } from '../../../tools/models/fixtures';
import { heldOutDigits, HELD_OUT_PER_DIGIT } from '../../../tools/models/mnist-data';
import { MNIST_INPUT, MNIST_OUTPUTS, onnxAccuracy } from '../../../tools/models/mnist-model';
import { writeModels, type MnistReport } from '../../../tools/models/write-models';

let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-models-'));
  const trained = ['mnist.onnx', 'mnist.json'].map((f) => path.resolve(__dirname, '../../../models', f));
  if (trained.every((f) => fs.existsSync(f))) for (const f of trained) fs.copyFileSync(f, path.join(dir, path.basename(f)));
  await writeModels({ outDir: dir });
}, 120_000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// logSeverityLevel 4 (fatal only) keeps onnxruntime from logging the runs meant to fail.
async function open(file: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path.join(dir, file), { intraOpNumThreads: 1, logSeverityLevel: 4 });
}

// Small normal FP16 values as their bit patterns, and back.
function toHalf(x: number): number {
  if (x === 0) return 0;
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}
function fromHalf(bits: number): number {
  const e = (bits >> 10) & 0x1f;
  const value = e === 0 ? 0 : 2 ** (e - 15) * (1 + (bits & 0x3ff) / 1024);
  return bits & 0x8000 ? -value : value;
}

// Plain numbers as a tensor of `dt`, and a tensor's data back as plain numbers.
function tensorOf(dt: FixtureDatatype, values: number[], dims: number[]): ort.Tensor {
  switch (dt) {
    case 'BOOL': return new ort.Tensor('bool', Uint8Array.from(values, (v) => (v ? 1 : 0)), dims);
    case 'UINT8': return new ort.Tensor('uint8', Uint8Array.from(values), dims);
    case 'UINT16': return new ort.Tensor('uint16', Uint16Array.from(values), dims);
    case 'UINT32': return new ort.Tensor('uint32', Uint32Array.from(values), dims);
    case 'UINT64': return new ort.Tensor('uint64', BigUint64Array.from(values, BigInt), dims);
    case 'INT8': return new ort.Tensor('int8', Int8Array.from(values), dims);
    case 'INT16': return new ort.Tensor('int16', Int16Array.from(values), dims);
    case 'INT32': return new ort.Tensor('int32', Int32Array.from(values), dims);
    case 'INT64': return new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
    case 'FP16': return new ort.Tensor('float16', Uint16Array.from(values, toHalf), dims);
    case 'FP32': return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'FP64': return new ort.Tensor('float64', Float64Array.from(values), dims);
    case 'BYTES': return new ort.Tensor('string', values.map((v) => `s${v}`), dims);
  }
}
function numbersOf(dt: FixtureDatatype, t: ort.Tensor): number[] {
  const data = t.data as ArrayLike<number | bigint | string>;
  return Array.from(data, (v) => {
    if (dt === 'FP16') return fromHalf(Number(v));
    if (dt === 'BYTES') return Number(String(v).slice(1));
    return Number(v);
  });
}

const DATATYPES = Object.keys(FIXTURE_DATATYPES) as FixtureDatatype[];

test.each(DATATYPES)('identity_%s returns its input', async (dt) => {
  const session = await open(`fixtures/identity_${dt.toLowerCase()}.onnx`);
  const values = dt === 'BOOL' ? [1, 0, 0, 1, 1, 0] : [0, 1, 2, 3, 5, 8];
  const out = await session.run({ INPUT0: tensorOf(dt, values, [2, 3]) });
  const y = out.OUTPUT0 as ort.Tensor;
  expect(y.type).toBe(tensorOf(dt, [], [0]).type);
  expect(y.dims).toEqual([2, 3]);
  expect(numbersOf(dt, y)).toEqual(values);
  await session.release();
});

test.each([...ADD_SUB_DATATYPES])('add_sub_%s adds and subtracts', async (dt) => {
  const session = await open(`fixtures/add_sub_${dt.toLowerCase()}.onnx`);
  const a = [10, 11, 12, 13, 14, 15, 16, 17];
  const b = [0, 1, 2, 3, 4, 5, 6, 7];
  const out = await session.run({ INPUT0: tensorOf(dt, a, [2, 4]), INPUT1: tensorOf(dt, b, [2, 4]) });
  expect(numbersOf(dt, out.OUTPUT0 as ort.Tensor)).toEqual(a.map((x, i) => x + (b[i] as number)));
  expect(numbersOf(dt, out.OUTPUT1 as ort.Tensor)).toEqual(a.map((x, i) => x - (b[i] as number)));
  await session.release();
});

test('fails.onnx loads but every run is rejected', async () => {
  const session = await open('fixtures/fails.onnx');
  expect(session.inputNames).toEqual(['INPUT0']);
  await expect(session.run({ INPUT0: tensorOf('FP32', [1, 2, 3, 4], [1, 4]) })).rejects.toThrow(/Gather/);
  await session.release();
});

test('slow_fp32.onnx gives the same outputs as add_sub_fp32.onnx', async () => {
  const [slow, fast] = await Promise.all([open('fixtures/slow_fp32.onnx'), open('fixtures/add_sub_fp32.onnx')]);
  const feeds = { INPUT0: tensorOf('FP32', [1.5, -2, 3, 4.25], [1, 4]), INPUT1: tensorOf('FP32', [0.5, 2, -3, 1], [1, 4]) };
  const [s, f] = await Promise.all([slow.run(feeds), fast.run(feeds)]);
  for (const name of ['OUTPUT0', 'OUTPUT1']) expect(Array.from((s[name] as ort.Tensor).data as Float32Array)).toEqual(Array.from((f[name] as ort.Tensor).data as Float32Array));
  await Promise.all([slow.release(), fast.release()]);
});

test('identity_dim_minus_one_fp32.onnx (dim_value -1) loads and takes any number of rows', async () => {
  const session = await open('fixtures/identity_dim_minus_one_fp32.onnx');
  for (const rows of [1, 3]) {
    const out = await session.run({ INPUT0: tensorOf('FP32', Array.from({ length: rows * 4 }, (_, i) => i), [rows, 4]) });
    expect((out.OUTPUT0 as ort.Tensor).dims).toEqual([rows, 4]);
  }
  await session.release();
});

test('pad_reflect_fp32.onnx pads by reflection, and onnxruntime refuses a padded axis of size 1', async () => {
  const session = await open('fixtures/pad_reflect_fp32.onnx');
  const out = await session.run({ INPUT0: tensorOf('FP32', [1, 2, 3, 4], [1, 4]) });
  expect((out.OUTPUT0 as ort.Tensor).dims).toEqual([1, 6]);
  expect(numbersOf('FP32', out.OUTPUT0 as ort.Tensor)).toEqual([2, 1, 2, 3, 4, 3]);
  await expect(session.run({ INPUT0: tensorOf('FP32', [7], [1, 1]) })).rejects.toThrow(/reflect/);
  await session.release();
});

test('load_fails.onnx cannot be loaded', async () => {
  await expect(open('fixtures/load_fails.onnx')).rejects.toThrow(/NoSuchOperator/);
});

test('heldOutDigits interleaves the classes', () => {
  const digits = heldOutDigits(20);
  expect(digits.map((d) => d.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(digits.every((d) => d.pixels.length === 784)).toBe(true);
});

test('mnist.onnx recognises held-out digits', async () => {
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'mnist.json'), 'utf8')) as MnistReport;
  expect(report.heldOutAccuracy).toBeGreaterThan(0.9);
  expect(report.heldOutSamples).toBe(10 * HELD_OUT_PER_DIGIT);
  expect(report.trainSamples + report.heldOutSamples).toBe(10_000);

  const file = path.join(dir, 'mnist.onnx');
  expect(await onnxAccuracy(file, heldOutDigits(200))).toBeGreaterThan(0.9);

  const session = await open('mnist.onnx');
  expect(session.inputNames).toEqual([MNIST_INPUT]);
  expect(session.outputNames).toEqual([MNIST_OUTPUTS.logits, MNIST_OUTPUTS.probabilities]);
  const [digit] = heldOutDigits(1);
  const out = await session.run({ [MNIST_INPUT]: new ort.Tensor('float32', digit!.pixels, [1, 784]) });
  const probs = Array.from((out[MNIST_OUTPUTS.probabilities] as ort.Tensor).data as Float32Array);
  expect(probs.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
  await session.release();
});
