// lib/onnx's rows analysis checked against onnxruntime itself: on random chains of the operators it
// follows (with right and wrong axes, constants of every rank beside the batch, Reshapes to shapes
// that copy the batch's size and to others, given every way onnxruntime reads them, or computed
// from a dimension as PyTorch exports x.view(x.size(0), -1), and near misses), whenever it says a
// model keeps a batch's rows apart (rowMixing empty), a batch of two callers' rows must give each
// caller exactly what it gets alone, even when the other's row holds NaN or 1e30. Fixed seed, so a
// failure reproduces.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { onnx } from 'onnx-proto';
import { ort } from '../../../lib/ort';
import { readOnnxSignature } from '../../../lib/onnx';

jest.setTimeout(180_000);

let dir: string;
let seq = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-rows-ort-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const FLOAT = 1;
const INT64 = 7;
const { INT, INTS } = onnx.AttributeProto.AttributeType;

/** One step of a chain: an operator applied to the tensor so far (T), maybe with a constant. */
type Step =
  | { op: 'Relu' | 'Tanh' | 'Neg' | 'Sigmoid' }
  | { op: 'Add' | 'Mul' | 'Sub' | 'Max'; constDims: number[] }
  | { op: 'Self'; which: 'Add' | 'Mul' }
  | { op: 'MatMul'; n: number }
  | { op: 'Softmax' | 'LogSoftmax'; axis: number | undefined | 'typed' }
  | { op: 'ReduceSum' | 'ReduceMax' | 'ReduceMean'; axes: number[] | undefined; keepdims: number }
  | { op: 'ArgMax'; axis: number | undefined; keepdims: number }
  | { op: 'Transpose'; perm: number[] | undefined }
  | { op: 'Flatten'; axis: number | undefined | 'typed' }
  | { op: 'Concat'; axis: number; withConst: boolean }
  | { op: 'Gather'; axis: number; indexRank: number }
  | { op: 'Reshape'; shape: readonly number[]; as: 'initializer' | 'raw' | 'constant' | 'ints' | 'redefined'; allowZero: number | undefined }
  | { op: 'SizedReshape'; of: 'same' | 'input'; form: 'unsqueeze' | 'vector' | 'bounds'; index: number; rest: readonly number[]; restFirst: boolean }
  | { op: 'Gemm'; transA: number; cDims: number[] | undefined }
  | { op: 'Clip'; bounds: 'const' | 'batch' }
  | { op: 'Where'; constDims: number[] }
  | { op: 'Split'; axis: number }
  | { op: 'Embedding'; axis: number }
  | { op: 'LayerNormalization'; axis: number | undefined | 'typed'; scaleDims: number[] };

const dims = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 3 });
const axis = fc.integer({ min: -3, max: 3 });
/** An axis, none, or one typed INT with no value (0 to onnxruntime). */
const maybeAxis = fc.oneof(fc.constant(undefined), fc.constant('typed' as const), axis);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constantFrom('Relu' as const, 'Tanh' as const, 'Neg' as const, 'Sigmoid' as const) }),
  fc.record({ op: fc.constantFrom('Add' as const, 'Mul' as const, 'Sub' as const, 'Max' as const), constDims: dims }),
  fc.record({ op: fc.constant('Self' as const), which: fc.constantFrom('Add' as const, 'Mul' as const) }),
  fc.record({ op: fc.constant('MatMul' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constantFrom('Softmax' as const, 'LogSoftmax' as const), axis: maybeAxis }),
  fc.record({ op: fc.constantFrom('ReduceSum' as const, 'ReduceMax' as const, 'ReduceMean' as const), axes: fc.option(fc.array(axis, { minLength: 1, maxLength: 2 }), { nil: undefined }), keepdims: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ op: fc.constant('ArgMax' as const), axis: fc.option(axis, { nil: undefined }), keepdims: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ op: fc.constant('Transpose' as const), perm: fc.option(fc.shuffledSubarray([0, 1, 2], { minLength: 1, maxLength: 3 }), { nil: undefined }) }),
  fc.record({ op: fc.constant('Flatten' as const), axis: maybeAxis }),
  fc.record({ op: fc.constant('Concat' as const), axis, withConst: fc.boolean() }),
  fc.record({ op: fc.constant('Gather' as const), axis, indexRank: fc.integer({ min: 0, max: 2 }) }),
  // Weighted: its shapes and encodings are many, and each must meet the steps around it.
  { weight: 6, arbitrary: fc.record({
    op: fc.constant('Reshape' as const),
    // Shapes that copy the batch's size (a first 0) and shapes that do not, for [N, 3] and [N, 2, 3].
    shape: fc.constantFrom([-1, 3], [0, -1], [0, 3], [0, 1, -1], [0, -1, 1], [0, 0, -1], [-1], [0], [3, -1], [1, -1], [0, 2, -1], [0, -1, 2], [2, -1], [0, 6], [-1, 2, 3], [0, 3, 2], [0, 0]),
    // The shape as an initializer (int64_data or raw_data), a Constant (a tensor or value_ints), or
    // a Constant of one name given again after the Reshape (onnxruntime reads the last).
    as: fc.constantFrom('initializer' as const, 'raw' as const, 'constant' as const, 'ints' as const, 'redefined' as const),
    allowZero: fc.constantFrom(undefined, 0, 1),
  }) },
  // A Reshape to a shape computed from a dimension (PyTorch's x.view(x.size(0), -1) and its near
  // misses): of the tensor reshaped or of the input, by Gather and Unsqueeze, a Gather of a vector
  // or Shape's bounds, the dimension picked, and the constants joined after it or before it.
  { weight: 4, arbitrary: fc.record({
    op: fc.constant('SizedReshape' as const),
    of: fc.constantFrom('same' as const, 'input' as const),
    form: fc.constantFrom('unsqueeze' as const, 'vector' as const, 'bounds' as const),
    index: fc.constantFrom(0, 0, 1, -1, -2),
    rest: fc.constantFrom([-1], [-1], [3, -1], [-1, 3], [1, -1], [2, -1], [-1, -1], [0], [0, -1], [], [6], [3]),
    restFirst: fc.boolean(),
  }) },
  fc.record({ op: fc.constant('Gemm' as const), transA: fc.integer({ min: 0, max: 1 }), cDims: fc.option(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }), { nil: undefined }) }),
  fc.record({ op: fc.constant('Clip' as const), bounds: fc.constantFrom('const' as const, 'batch' as const) }),
  fc.record({ op: fc.constant('Where' as const), constDims: dims }),
  fc.record({ op: fc.constant('Split' as const), axis }),
  fc.record({ op: fc.constant('Embedding' as const), axis }),
  fc.record({ op: fc.constant('LayerNormalization' as const), axis: maybeAxis, scaleDims: dims }),
);

const filled = (name: string, shape: number[], value = 0.5): onnx.ITensorProto => ({ name, dataType: FLOAT, dims: shape, floatData: Array(shape.reduce((a, b) => a * b, 1)).fill(value) });

/** The chain as a model on X [N, 3] (or [N, 2, 3]); undefined where a step cannot follow the one before (no shape known to build it). */
function build(inputRank: 2 | 3, steps: Step[]): Uint8Array {
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.ITensorProto[] = [];
  let t = 'X';
  let k = 0;
  const next = () => `T${k++}`;
  const ints = (name: string, values: number[]): onnx.IAttributeProto => ({ name, type: INTS, ints: values });
  const int = (name: string, i: number): onnx.IAttributeProto => ({ name, type: INT, i });
  const axisAttr = (a: number | undefined | 'typed'): onnx.IAttributeProto[] => (a === undefined ? [] : a === 'typed' ? [{ name: 'axis', type: INT }] : [int('axis', a)]);
  for (const s of steps) {
    const out = next();
    const c = `C${k}`;
    switch (s.op) {
      case 'Relu': case 'Tanh': case 'Neg': case 'Sigmoid':
        nodes.push({ opType: s.op, input: [t], output: [out] });
        break;
      case 'Add': case 'Mul': case 'Sub': case 'Max':
        initializers.push(filled(c, s.constDims, 0.25));
        nodes.push({ opType: s.op, input: [t, c], output: [out] });
        break;
      case 'Self':
        nodes.push({ opType: s.which, input: [t, t], output: [out] });
        break;
      case 'MatMul':
        initializers.push(filled(c, [3, s.n]));
        nodes.push({ opType: 'MatMul', input: [t, c], output: [out] });
        break;
      case 'Softmax': case 'LogSoftmax':
        nodes.push({ opType: s.op, input: [t], output: [out], attribute: axisAttr(s.axis) });
        break;
      case 'LayerNormalization':
        initializers.push(filled(c, s.scaleDims, 2));
        nodes.push({ opType: 'LayerNormalization', input: [t, c], output: [out], attribute: axisAttr(s.axis) });
        break;
      case 'ReduceSum': case 'ReduceMax': case 'ReduceMean':
        nodes.push({ opType: s.op, input: [t], output: [out], attribute: [...(s.axes ? [ints('axes', s.axes)] : []), int('keepdims', s.keepdims)] });
        break;
      case 'ArgMax': {
        const idx = next();
        nodes.push({ opType: 'ArgMax', input: [t], output: [idx], attribute: [...(s.axis === undefined ? [] : [int('axis', s.axis)]), int('keepdims', s.keepdims)] });
        nodes.push({ opType: 'Cast', input: [idx], output: [out], attribute: [int('to', FLOAT)] });
        break;
      }
      case 'Transpose':
        nodes.push({ opType: 'Transpose', input: [t], output: [out], attribute: s.perm ? [ints('perm', s.perm)] : [] });
        break;
      case 'Flatten':
        nodes.push({ opType: 'Flatten', input: [t], output: [out], attribute: axisAttr(s.axis) });
        break;
      case 'Concat':
        if (s.withConst) initializers.push(filled(c, inputRank === 2 ? [1, 3] : [1, 2, 3]));
        nodes.push({ opType: 'Concat', input: s.withConst ? [t, c] : [t, t], output: [out], attribute: [int('axis', s.axis)] });
        break;
      case 'Gather':
        initializers.push({ name: c, dataType: INT64, dims: s.indexRank === 0 ? [] : s.indexRank === 1 ? [2] : [1, 2], int64Data: s.indexRank === 0 ? [0] : [0, 0] });
        nodes.push({ opType: 'Gather', input: [t, c], output: [out], attribute: [int('axis', s.axis)] });
        break;
      case 'Reshape': {
        const shape: onnx.ITensorProto = s.as === 'raw'
          ? { dataType: INT64, dims: [s.shape.length], rawData: new Uint8Array(BigInt64Array.from(s.shape, BigInt).buffer) }
          : { dataType: INT64, dims: [s.shape.length], int64Data: [...s.shape] };
        const constant = (values: number[]): onnx.INodeProto => ({ opType: 'Constant', input: [], output: [c], attribute: [ints('value_ints', values)] });
        if (s.as === 'initializer' || s.as === 'raw') initializers.push({ name: c, ...shape });
        else if (s.as === 'constant') nodes.push({ opType: 'Constant', input: [], output: [c], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: shape }] });
        else nodes.push(constant([...s.shape]));
        nodes.push({ opType: 'Reshape', input: [t, c], output: [out], attribute: s.allowZero === undefined ? [] : [int('allowzero', s.allowZero)] });
        if (s.as === 'redefined') nodes.push(constant([-1, 3]));
        break;
      }
      case 'SizedReshape': {
        const measured = s.of === 'same' ? t : 'X';
        const int64s = (name: string, values: readonly number[], shape = [values.length]) => initializers.push({ name, dataType: INT64, dims: shape, int64Data: [...values] });
        const size = `${c}size`;
        if (s.form === 'bounds') nodes.push({ opType: 'Shape', input: [measured], output: [size], attribute: [int('start', s.index), int('end', s.index + 1)] });
        else {
          nodes.push({ opType: 'Shape', input: [measured], output: [`${c}shape`] });
          int64s(`${c}index`, [s.index], s.form === 'vector' ? [1] : []);
          nodes.push({ opType: 'Gather', input: [`${c}shape`, `${c}index`], output: [s.form === 'vector' ? size : `${c}scalar`], attribute: [int('axis', 0)] });
          if (s.form === 'unsqueeze') {
            int64s(`${c}axes`, [0]);
            nodes.push({ opType: 'Unsqueeze', input: [`${c}scalar`, `${c}axes`], output: [size] });
          }
        }
        const parts = [size];
        if (s.rest.length > 0) {
          int64s(`${c}rest`, s.rest);
          parts.splice(s.restFirst ? 0 : 1, 0, `${c}rest`);
        }
        nodes.push({ opType: 'Concat', input: parts, output: [c], attribute: [int('axis', 0)] });
        nodes.push({ opType: 'Reshape', input: [t, c], output: [out] });
        break;
      }
      case 'Clip': {
        // Bounds as constants, or the row's own maximum (a batch-fed bound).
        const lo = `${c}lo`;
        if (s.bounds === 'const') initializers.push(filled(lo, [], -1));
        else nodes.push({ opType: 'ReduceMax', input: [t], output: [lo], attribute: [int('keepdims', 0)] });
        initializers.push(filled(`${c}hi`, [], 1));
        nodes.push({ opType: 'Clip', input: [t, lo, `${c}hi`], output: [out] });
        break;
      }
      case 'Where': {
        const cond = next();
        initializers.push(filled(`${c}z`, [], 0), filled(c, s.constDims, 9));
        nodes.push({ opType: 'Greater', input: [t, `${c}z`], output: [cond] });
        nodes.push({ opType: 'Where', input: [cond, t, c], output: [out] });
        break;
      }
      case 'Split':
        nodes.push({ opType: 'Split', input: [t], output: [out, `${out}b`], attribute: [int('axis', s.axis)] });
        break;
      case 'Embedding': {
        // Rows of a constant table picked by indices the batch chose.
        const idx = next();
        initializers.push(filled(c, [4, 3]));
        nodes.push({ opType: 'ArgMax', input: [t], output: [idx], attribute: [int('axis', s.axis), int('keepdims', 1)] });
        nodes.push({ opType: 'Gather', input: [c, idx], output: [out] });
        break;
      }
      case 'Gemm':
        initializers.push(filled(`${c}b`, [3, 2]));
        if (s.cDims) initializers.push(filled(c, s.cDims));
        nodes.push({ opType: 'Gemm', input: s.cDims ? [t, `${c}b`, c] : [t, `${c}b`], output: [out], attribute: [int('transA', s.transA)] });
        break;
    }
    t = out;
  }
  nodes.push({ opType: 'Identity', input: [t], output: ['Y'] });
  const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, ...(inputRank === 3 ? [{ dimValue: 2 }] : []), { dimValue: 3 }] } } } };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'chain', node: nodes.map((n, i) => ({ name: `n${i}`, ...n })), initializer: initializers, input: [x], output: [{ name: 'Y', type: { tensorType: { elemType: FLOAT } } }] },
  }).finish();
}

/** Equal as floats, NaN equal to NaN. */
const same = (a: number, b: number) => a === b || (Number.isNaN(a) ? Number.isNaN(b) : Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a), Math.abs(b)));

it('never says rows stay apart where onnxruntime mixes them', async () => {
  let apart = 0;
  let ran = 0;
  let sized = 0;
  await fc.assert(fc.asyncProperty(fc.constantFrom(2 as const, 3 as const), fc.array(step, { minLength: 1, maxLength: 4 }), fc.constantFrom(NaN, 1e30, -7), async (rank, steps, poison) => {
    const file = path.join(dir, `m${seq++}.onnx`);
    fs.writeFileSync(file, build(rank, steps));
    const { rowMixing } = await readOnnxSignature(file);
    if (rowMixing.length > 0) return;
    apart++;
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    } catch {
      return; // not a model onnxruntime takes: nothing to batch
    }
    try {
      const perRow = rank === 2 ? 3 : 6;
      const a = Array.from({ length: perRow }, (_, i) => i - 1.5);
      const b = Array.from({ length: perRow }, (_, i) => (i === 1 ? poison : i * 2));
      const run = async (rows: number[][]) => (await session.run({ X: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, ...(rank === 3 ? [2, 3] : [3])]) })).Y!;
      let alone: ort.Tensor[];
      let both: ort.Tensor;
      try {
        alone = [await run([a]), await run([b])];
        both = await run([a, b]);
      } catch {
        return; // fails at run time: a shared run that fails is run again member by member
      }
      ran++;
      if (steps.some((st) => st.op === 'SizedReshape')) sized++;
      // Two rows in, two rows out, each what its row makes alone.
      expect(both.dims[0]).toBe(2);
      expect(alone.map((t) => t.dims[0])).toEqual([1, 1]);
      const rowSize = both.data.length / 2;
      expect(alone.map((t) => t.data.length)).toEqual([rowSize, rowSize]);
      for (let r = 0; r < 2; r++) {
        const mine = Array.from(alone[r]!.data as Float32Array);
        const batched = Array.from((both.data as Float32Array).subarray(r * rowSize, (r + 1) * rowSize));
        if (!mine.every((v, i) => same(v, batched[i]!))) throw new Error(`row ${r} differs batched: ${JSON.stringify(steps)} alone ${mine} batched ${batched}`);
      }
    } finally {
      await session.release();
    }
  }), { seed: 20261203, numRuns: 1500 });
  // The property was exercised: many chains kept rows apart, and ran.
  console.log(`rows apart in ${apart} chains, ${ran} run, ${sized} of them through a computed shape`);
  expect(apart).toBeGreaterThan(100);
  expect(ran).toBeGreaterThan(50);
  expect(sized).toBeGreaterThan(10);
});

describe('PyTorch\'s flatten, x.view(x.size(0), -1), as each exporter writes it', () => {
  const i64 = (name: string, values: number[], dims = [values.length]): onnx.ITensorProto => ({ name, dataType: INT64, dims, int64Data: values });
  const int = (name: string, i: number): onnx.IAttributeProto => ({ name, type: INT, i });
  const size: Record<string, onnx.INodeProto[]> = {
    // TorchScript before opset 13: Unsqueeze's axes an attribute.
    11: [
      { opType: 'Shape', input: ['X'], output: ['S'] }, { opType: 'Gather', input: ['S', 'ZERO'], output: ['G'], attribute: [int('axis', 0)] },
      { opType: 'Unsqueeze', input: ['G'], output: ['U'], attribute: [{ name: 'axes', type: INTS, ints: [0] }] },
    ],
    // TorchScript from opset 13: Unsqueeze's axes an input.
    13: [
      { opType: 'Shape', input: ['X'], output: ['S'] }, { opType: 'Gather', input: ['S', 'ZERO'], output: ['G'], attribute: [int('axis', 0)] },
      { opType: 'Unsqueeze', input: ['G', 'AXES'], output: ['U'] },
    ],
    // From opset 15: Shape's bounds.
    18: [{ opType: 'Shape', input: ['X'], output: ['U'], attribute: [int('start', 0), int('end', 1)] }],
  };

  it.each(Object.keys(size))('opset %s: the analysis keeps rows apart, and onnxruntime answers each row batched as alone', async (version) => {
    const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 2 }, { dimValue: 3 }] } } } };
    const file = path.join(dir, `flatten${seq++}.onnx`);
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: Number(version) }],
      graph: {
        name: 'flatten',
        node: [
          ...size[version]!, { opType: 'Concat', input: ['U', 'MINUS_ONE'], output: ['K'], attribute: [int('axis', 0)] },
          { opType: 'Reshape', input: ['X', 'K'], output: ['F'] }, { opType: 'MatMul', input: ['F', 'W'], output: ['H'] }, { opType: 'Softmax', input: ['H'], output: ['Y'], attribute: [int('axis', 1)] },
        ].map((n, i) => ({ name: `n${i}`, ...n })),
        initializer: [i64('ZERO', [0], []), i64('AXES', [0]), i64('MINUS_ONE', [-1]), { name: 'W', dataType: FLOAT, dims: [6, 4], floatData: Array.from({ length: 24 }, (_, i) => (i % 5) - 2) }],
        input: [x],
        output: [{ name: 'Y', type: { tensorType: { elemType: FLOAT } } }],
      },
    }).finish());
    expect((await readOnnxSignature(file)).rowMixing).toEqual([]);
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    try {
      const run = async (rows: number[][]) => Array.from((await session.run({ X: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 2, 3]) })).Y!.data as Float32Array);
      const a = [0.5, -1, 2, 3, 0, 1];
      const b = [1e30, NaN, 1, 2, 3, 4];
      const both = await run([a, b]);
      expect([both.slice(0, 4), both.slice(4)]).toEqual([await run([a]), await run([b])]);
    } finally {
      await session.release();
    }
  });

  /** X [N, 3] → Relu → T → Reshape(T, `shape` nodes' K) → Y, T declared as `declared`. */
  const model = (shape: onnx.INodeProto[], initializer: onnx.ITensorProto[], declared: onnx.IValueInfoProto[] = []) => {
    const file = path.join(dir, `flatten${seq++}.onnx`);
    const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } };
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'flatten',
        node: [{ opType: 'Relu', input: ['X'], output: ['T'] }, ...shape, { opType: 'Reshape', input: ['T', 'K'], output: ['Y'] }].map((n, i) => ({ name: `n${i}`, ...n })),
        initializer,
        input: [x],
        output: [{ name: 'Y', type: { tensorType: { elemType: FLOAT } } }],
        valueInfo: declared,
      },
    }).finish());
    return file;
  };
  const rowsOf = async (file: string, rows: number) => {
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    try {
      return (await session.run({ X: new ort.Tensor('float32', new Float32Array(rows * 3), [rows, 3]) })).Y!.dims;
    } finally {
      await session.release();
    }
  };

  it('takes a shape without a -1 as mixing: onnxruntime may fuse a size it does not match into -1', async () => {
    // Shape(T)[-2] is T's first dimension, but onnxruntime's ReshapeFusion matches only index 0:
    // it writes [-1] for [N], and a Reshape that fails unfused gives [3N] rows.
    const file = model([
      { opType: 'Shape', input: ['T'], output: ['S'] }, { opType: 'Gather', input: ['S', 'I'], output: ['G'], attribute: [int('axis', 0)] },
      { opType: 'Unsqueeze', input: ['G', 'AXES'], output: ['U'] }, { opType: 'Concat', input: ['U'], output: ['K'], attribute: [int('axis', 0)] },
    ], [i64('I', [-2], []), i64('AXES', [0])]);
    expect((await readOnnxSignature(file)).rowMixing).toEqual(['Shape']);
    expect(await rowsOf(file, 2)).toEqual([6]);
  });

  it('takes a declared first dimension as mixing: onnxruntime folds it into the Shape', async () => {
    const shape = [{ opType: 'Shape', input: ['T'], output: ['S'], attribute: [int('start', 0), int('end', 1)] }, { opType: 'Concat', input: ['S', 'MINUS_ONE'], output: ['K'], attribute: [int('axis', 0)] }];
    const declared = (first: onnx.TensorShapeProto.IDimension): onnx.IValueInfoProto => ({ name: 'T', type: { tensorType: { elemType: FLOAT, shape: { dim: [first, { dimValue: 3 }] } } } });
    const honest = model(shape, [i64('MINUS_ONE', [-1])], [declared({ dimParam: 'N' })]);
    expect((await readOnnxSignature(honest)).rowMixing).toEqual([]);
    expect(await rowsOf(honest, 2)).toEqual([2, 3]);
    // T declared [1, 3]: two rows become one of 6 values.
    const lying = model(shape, [i64('MINUS_ONE', [-1])], [declared({ dimValue: 1 })]);
    expect((await readOnnxSignature(lying)).rowMixing).toEqual(['(a shape computed from a dimension that a declared shape could change)', 'Shape']);
    expect(await rowsOf(lying, 2)).toEqual([1, 6]);
  });
});

describe('ai.onnx.ml classical models', () => {
  const { FLOATS, STRINGS } = onnx.AttributeProto.AttributeType;
  const ints = (name: string, values: number[]): onnx.IAttributeProto => ({ name, type: INTS, ints: values });
  const floats = (name: string, values: number[]): onnx.IAttributeProto => ({ name, type: FLOATS, floats: values });
  const strings = (name: string, values: string[]): onnx.IAttributeProto => ({ name, type: STRINGS, strings: values.map((v) => Buffer.from(v)) });
  const string = (name: string, value: string): onnx.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from(value) });
  const int = (name: string, i: number): onnx.IAttributeProto => ({ name, type: INT, i });
  /** A two-split tree on feature 0 (x0 <= 0.5), its leaves weighing class 0 or class 1 (or target 0). */
  const tree = [
    ints('nodes_treeids', [0, 0, 0]), ints('nodes_nodeids', [0, 1, 2]), ints('nodes_featureids', [0, 0, 0]),
    floats('nodes_values', [0.5, 0, 0]), strings('nodes_modes', ['BRANCH_LEQ', 'LEAF', 'LEAF']),
    ints('nodes_truenodeids', [1, 0, 0]), ints('nodes_falsenodeids', [2, 0, 0]),
  ];
  const models: [string, onnx.INodeProto, { name: string; elemType: number }[]][] = [
    ['LinearRegressor', { opType: 'LinearRegressor', domain: 'ai.onnx.ml', input: ['X'], output: ['S'], attribute: [floats('coefficients', [1, 2, 3]), floats('intercepts', [0.5])] }, [{ name: 'S', elemType: FLOAT }]],
    ['TreeEnsembleClassifier', { opType: 'TreeEnsembleClassifier', domain: 'ai.onnx.ml', input: ['X'], output: ['L', 'S'], attribute: [...tree, ints('class_treeids', [0, 0]), ints('class_nodeids', [1, 2]), ints('class_ids', [0, 1]), floats('class_weights', [1, 1]), ints('classlabels_int64s', [3, 4])] }, [{ name: 'L', elemType: INT64 }, { name: 'S', elemType: FLOAT }]],
    ['TreeEnsembleRegressor', { opType: 'TreeEnsembleRegressor', domain: 'ai.onnx.ml', input: ['X'], output: ['S'], attribute: [...tree, ints('target_treeids', [0, 0]), ints('target_nodeids', [1, 2]), ints('target_ids', [0, 0]), floats('target_weights', [1, 2]), int('n_targets', 1)] }, [{ name: 'S', elemType: FLOAT }]],
    ['Normalizer', { opType: 'Normalizer', domain: 'ai.onnx.ml', input: ['X'], output: ['S'], attribute: [string('norm', 'L2')] }, [{ name: 'S', elemType: FLOAT }]],
    ['Scaler', { opType: 'Scaler', domain: 'ai.onnx.ml', input: ['X'], output: ['S'], attribute: [floats('offset', [1, 2, 3]), floats('scale', [2, 2, 2])] }, [{ name: 'S', elemType: FLOAT }]],
  ];

  it.each(models)('%s keeps rows apart, and onnxruntime answers each row batched as alone', async (_op, node, outputs) => {
    const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } };
    const file = path.join(dir, `ml${seq++}.onnx`);
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }],
      graph: { name: 'ml', node: [{ name: 'n', ...node }], input: [x], output: outputs.map((o) => ({ name: o.name, type: { tensorType: { elemType: o.elemType } } })) },
    }).finish());
    expect((await readOnnxSignature(file)).rowMixing).toEqual([]);
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    try {
      const run = async (rows: number[][]) => session.run({ X: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 3]) });
      const a = [0.2, 1, -3];
      const b = [4, 1e30, 2];
      const [aloneA, aloneB, both] = [await run([a]), await run([b]), await run([a, b])];
      for (const { name } of outputs) {
        const value = (t: ort.Tensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);
        const rowSize = both[name]!.data.length / 2;
        expect(both[name]!.dims[0]).toBe(2);
        expect([value(aloneA[name]!), value(aloneB[name]!)]).toEqual([value(both[name]!).slice(0, rowSize), value(both[name]!).slice(rowSize)]);
      }
    } finally {
      await session.release();
    }
  });

  it('takes LinearClassifier as mixing: onnxruntime\'s binary one with PROBIT writes one row\'s score into another\'s', async () => {
    const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } };
    const file = path.join(dir, `ml${seq++}.onnx`);
    const node: onnx.INodeProto = { name: 'n', opType: 'LinearClassifier', domain: 'ai.onnx.ml', input: ['X'], output: ['L', 'S'], attribute: [floats('coefficients', [1, -1, 0.5]), floats('intercepts', [0.1]), ints('classlabels_ints', [4, 5]), string('post_transform', 'PROBIT')] };
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }],
      graph: { name: 'ml', node: [node], input: [x], output: [{ name: 'L', type: { tensorType: { elemType: INT64 } } }, { name: 'S', type: { tensorType: { elemType: FLOAT } } }] },
    }).finish());
    expect((await readOnnxSignature(file)).rowMixing).toEqual(['ai.onnx.ml.LinearClassifier']);
    // What onnxruntime does with it: b's score alone shows up in a's row when they run together.
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    try {
      const run = async (rows: number[][]) => (await session.run({ X: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, 3]) })).S!;
      const b = Array.from((await run([[0.1, 0.2, 0.3]])).data as Float32Array);
      const both = Array.from((await run([[0.3, -1.7, 2.2], [0.1, 0.2, 0.3]])).data as Float32Array);
      expect(both.slice(0, 2)).toContain(b[0]);
    } finally {
      await session.release();
    }
  });

  it('takes one fed a vector (one sample of N features to onnxruntime) as mixing', async () => {
    const x: onnx.IValueInfoProto = { name: 'X', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }] } } } };
    const file = path.join(dir, `ml${seq++}.onnx`);
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }],
      graph: { name: 'ml', node: [{ name: 'n', opType: 'Normalizer', domain: 'ai.onnx.ml', input: ['X'], output: ['S'], attribute: [string('norm', 'L2')] }], input: [x], output: [{ name: 'S', type: { tensorType: { elemType: FLOAT } } }] },
    }).finish());
    expect((await readOnnxSignature(file)).rowMixing).toEqual(['ai.onnx.ml.Normalizer']);
  });
});
