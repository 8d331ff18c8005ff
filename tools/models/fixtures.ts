// Small test models with known behaviour: identity and add/sub for every datatype, a slow one, a
// heavy one, one that always fails at run time, one onnxruntime cannot load, the corner cases of
// the signature reader and the warm-up (dim_value -1, a dimension that must not be 1), and an MLP
// flattened as PyTorch exports it. Tests and benchmarks rely on their exact names.
import { ElemType, encodeModel, initializer, node, tensor, type InitializerSpec, type NodeSpec } from './onnx-builder';
import { seededRandom, uniformArray } from './prng';

/** Every Open Inference Protocol datatype onnxruntime serves, with its ONNX element type. */
export const FIXTURE_DATATYPES = {
  BOOL: ElemType.BOOL,
  UINT8: ElemType.UINT8,
  UINT16: ElemType.UINT16,
  UINT32: ElemType.UINT32,
  UINT64: ElemType.UINT64,
  INT8: ElemType.INT8,
  INT16: ElemType.INT16,
  INT32: ElemType.INT32,
  INT64: ElemType.INT64,
  FP16: ElemType.FLOAT16,
  FP32: ElemType.FLOAT,
  FP64: ElemType.DOUBLE,
  BYTES: ElemType.STRING,
} as const satisfies Record<string, ElemType>;

/** A protocol datatype with an identity fixture. */
export type FixtureDatatype = keyof typeof FIXTURE_DATATYPES;

/** The numeric datatypes ONNX Add and Sub take (opset 17), each with an add_sub fixture. */
export const ADD_SUB_DATATYPES = [
  'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64',
] as const satisfies readonly FixtureDatatype[];

/** A datatype with an add_sub fixture. */
export type AddSubDatatype = (typeof ADD_SUB_DATATYPES)[number];

/** Width of heavy.onnx's input/output rows and of its shared square weight. */
export const HEAVY_WIDTH = 1024;

/**
 * MatMul+Tanh layers in heavy.onnx: one run with N=64 on one thread took ~480 ms (3.7 ms a layer)
 * on the 2-core dev machine, leaving room above 300 ms on faster CPUs.
 */
export const HEAVY_LAYERS = 128;

/** MatMul+Tanh layers in slow_fp32.onnx's side branch ([64, 1024] whatever N): ~45 ms a run on one thread there. */
export const SLOW_LAYERS = 12;

/** Rows of the slow side branch's activations, independent of the batch size. */
const SLOW_ROWS = 64;

/** A fixture file: its path relative to the models folder and its bytes. */
export interface FixtureFile {
  path: string;
  make: () => Uint8Array;
}

/** identity_<dt>.onnx: OUTPUT0 = INPUT0, shape [batch, n]. */
export function identityModel(datatype: FixtureDatatype): Uint8Array {
  const t = FIXTURE_DATATYPES[datatype];
  return encodeModel({
    name: `identity_${datatype.toLowerCase()}`,
    inputs: [tensor('INPUT0', t, ['batch', 'n'])],
    outputs: [tensor('OUTPUT0', t, ['batch', 'n'])],
    nodes: [node('Identity', ['INPUT0'], ['OUTPUT0'])],
  });
}

/** add_sub_<dt>.onnx (Triton's "simple"): OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 − INPUT1, shape [batch, 4]. */
export function addSubModel(datatype: AddSubDatatype): Uint8Array {
  const t = FIXTURE_DATATYPES[datatype];
  return encodeModel({
    name: `add_sub_${datatype.toLowerCase()}`,
    inputs: [tensor('INPUT0', t, ['batch', 4]), tensor('INPUT1', t, ['batch', 4])],
    outputs: [tensor('OUTPUT0', t, ['batch', 4]), tensor('OUTPUT1', t, ['batch', 4])],
    nodes: [node('Add', ['INPUT0', 'INPUT1'], ['OUTPUT0']), node('Sub', ['INPUT0', 'INPUT1'], ['OUTPUT1'])],
  });
}

// One 1024×1024 weight shared by every layer, so a long chain stays a ~4 MB file. Its scale keeps
// Tanh's inputs near unit variance: activations neither saturate nor fade into denormals.
function sharedWeight(name: string, seed: number): InitializerSpec {
  const data = uniformArray(HEAVY_WIDTH * HEAVY_WIDTH, Math.sqrt(4 / HEAVY_WIDTH), seededRandom(seed));
  return initializer(name, ElemType.FLOAT, [HEAVY_WIDTH, HEAVY_WIDTH], data);
}

// `layers` times x ← tanh(x·W), from `input` to `output`; names are prefixed to stay unique.
function tanhChain(prefix: string, input: string, output: string, weight: string, layers: number): NodeSpec[] {
  const nodes: NodeSpec[] = [];
  let x = input;
  for (let i = 0; i < layers; i++) {
    const y = i === layers - 1 ? output : `${prefix}_${i}`;
    nodes.push(node('MatMul', [x, weight], [`${prefix}_mm_${i}`]), node('Tanh', [`${prefix}_mm_${i}`], [y]));
    x = y;
  }
  return nodes;
}

/** heavy.onnx: FP32 [batch, 1024] → `layers` × tanh(x·W) with one shared W → FP32 [batch, 1024]. */
export function heavyModel(layers = HEAVY_LAYERS): Uint8Array {
  return encodeModel({
    name: 'heavy',
    doc: `deliberately slow: ${layers} × tanh(x·W), one shared ${HEAVY_WIDTH}×${HEAVY_WIDTH} W`,
    inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', HEAVY_WIDTH])],
    outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', HEAVY_WIDTH])],
    initializers: [sharedWeight('W', 1024)],
    nodes: tanhChain('layer', 'INPUT0', 'OUTPUT0', 'W', layers),
  });
}

/**
 * fails.onnx: loads, but every run fails. OUTPUT0 = Gather(INPUT0, [0, 1, 2, 7], axis 1): index 7
 * is outside INPUT0's 4 columns, and onnxruntime checks Gather's indices against the data only
 * when it runs ("indices element out of data bounds"), for any batch size, zero included.
 */
export function failsModel(): Uint8Array {
  return encodeModel({
    name: 'fails',
    doc: 'every run fails: Gather index 7 on an axis of size 4',
    inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', 4])],
    outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', 4])],
    initializers: [initializer('columns', ElemType.INT64, [4], BigInt64Array.from([0n, 1n, 2n, 7n]))],
    nodes: [node('Gather', ['INPUT0', 'columns'], ['OUTPUT0'], { axis: 1 })],
  });
}

/**
 * slow_fp32.onnx: the outputs of add_sub_fp32, plus 0 × a side branch that costs ~SLOW_LAYERS
 * [64,1024]·[1024,1024] MatMuls whatever the batch size. The branch starts from ReduceSum(INPUT0),
 * so onnxruntime cannot fold it away; it is bounded (Tanh), so 0 × it is exactly 0 and the outputs
 * equal add_sub_fp32's for finite inputs (an infinite or NaN INPUT0 makes the branch, so both outputs, NaN).
 */
export function slowModel(layers = SLOW_LAYERS): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'slow_fp32',
    doc: `add_sub_fp32 plus 0 × a ${layers}-layer side branch`,
    inputs: [tensor('INPUT0', f, ['batch', 4]), tensor('INPUT1', f, ['batch', 4])],
    outputs: [tensor('OUTPUT0', f, ['batch', 4]), tensor('OUTPUT1', f, ['batch', 4])],
    initializers: [
      sharedWeight('W', 4096),
      initializer('side_shape', ElemType.INT64, [2], BigInt64Array.from([BigInt(SLOW_ROWS), BigInt(HEAVY_WIDTH)])),
      initializer('zero', f, [1], Float32Array.of(0)),
    ],
    nodes: [
      node('ReduceSum', ['INPUT0'], ['side_seed'], { keepdims: 1 }),
      node('Expand', ['side_seed', 'side_shape'], ['side_in']),
      ...tanhChain('side', 'side_in', 'side_out', 'W', layers),
      node('ReduceSum', ['side_out'], ['side_total'], { keepdims: 1 }),
      node('Mul', ['side_total', 'zero'], ['side_zero']),
      node('Add', ['INPUT0', 'INPUT1'], ['sum']),
      node('Sub', ['INPUT0', 'INPUT1'], ['difference']),
      node('Add', ['sum', 'side_zero'], ['OUTPUT0']),
      node('Add', ['difference', 'side_zero'], ['OUTPUT1']),
    ],
  });
}

/**
 * add_sub_fails_fp32.onnx: add_sub_fp32's signature and results while every input is in (-1, 1) —
 * so it loads and passes a warm-up on zeros — but any |value| ≥ 1 makes a run fail: the largest
 * |INPUT0| becomes a Gather index into a one-element table. The canary that breaks in production.
 */
export function addSubFailsModel(): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'add_sub_fails_fp32',
    doc: 'add_sub_fp32 that fails on any input with |INPUT0| >= 1',
    inputs: [tensor('INPUT0', f, ['batch', 4]), tensor('INPUT1', f, ['batch', 4])],
    outputs: [tensor('OUTPUT0', f, ['batch', 4]), tensor('OUTPUT1', f, ['batch', 4])],
    initializers: [initializer('table', f, [1], Float32Array.of(0)), initializer('zero', f, [1], Float32Array.of(0))],
    nodes: [
      node('Abs', ['INPUT0'], ['magnitude']),
      node('ReduceMax', ['magnitude'], ['largest'], { keepdims: 1 }),
      node('Cast', ['largest'], ['index'], { to: ElemType.INT64 }),
      node('Gather', ['table', 'index'], ['picked'], { axis: 0 }),
      node('Mul', ['picked', 'zero'], ['nothing']),
      node('Add', ['INPUT0', 'INPUT1'], ['sum']),
      node('Sub', ['INPUT0', 'INPUT1'], ['difference']),
      node('Add', ['sum', 'nothing'], ['OUTPUT0']),
      node('Add', ['difference', 'nothing'], ['OUTPUT1']),
    ],
  });
}

/**
 * identity_dim_minus_one_fp32.onnx: identity_fp32 whose dynamic dimensions are written as
 * dim_value -1 (a 10-byte negative varint) rather than dim_param; onnxruntime loads it and reads
 * -1 as "any size". Shape [-1, 4].
 */
export function identityDimMinusOneModel(): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'identity_dim_minus_one_fp32',
    inputs: [tensor('INPUT0', f, [-1, 4])],
    outputs: [tensor('OUTPUT0', f, [-1, 4])],
    nodes: [node('Identity', ['INPUT0'], ['OUTPUT0'])],
  });
}

/**
 * pad_reflect_fp32.onnx: OUTPUT0 = INPUT0 [batch, n] padded by one column on each side with Pad
 * mode "reflect" → [batch, n + 2]. Valid for n ≥ 2; onnxruntime refuses a run with n = 1 ("Pad
 * reflect requires axis length >= 2"), so a warm-up that feeds 1 for every dynamic dimension fails.
 */
export function padReflectModel(): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'pad_reflect_fp32',
    doc: 'reflect Pad of 1 on a dynamic axis: fails when that axis has size 1',
    inputs: [tensor('INPUT0', f, ['batch', 'n'])],
    outputs: [tensor('OUTPUT0', f, ['batch', 'n_padded'])],
    initializers: [initializer('pads', ElemType.INT64, [4], BigInt64Array.from([0n, 1n, 0n, 1n]))],
    nodes: [node('Pad', ['INPUT0', 'pads'], ['OUTPUT0'], { mode: 'reflect' })],
  });
}

/**
 * load_fails.onnx: a valid signature (add_sub_fp32's INPUT0 → OUTPUT0), but its one node is an
 * operator no opset has, so onnxruntime refuses to create a session for it: the registry takes it,
 * every pod fails to load it.
 */
export function loadFailsModel(): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'load_fails',
    doc: 'an unknown operator: onnxruntime cannot create a session',
    inputs: [tensor('INPUT0', f, ['batch', 4])],
    outputs: [tensor('OUTPUT0', f, ['batch', 4])],
    nodes: [node('NoSuchOperator', ['INPUT0'], ['OUTPUT0'])],
  });
}

/**
 * loop_count_fp32.onnx: OUTPUT0 = COUNT as a float, counted one by one by a Loop whose trip count
 * is the input's value ([1] INT64). Its runs cost what the caller asks, not what its shapes say:
 * a zero-filled warm-up takes microseconds, a count of a billion takes minutes.
 */
export function loopCountModel(): Uint8Array {
  const f = ElemType.FLOAT;
  return encodeModel({
    name: 'loop_count_fp32',
    doc: 'a Loop whose trip count is the input: a run lasts as long as the caller asks',
    inputs: [tensor('COUNT', ElemType.INT64, [1])],
    outputs: [tensor('OUTPUT0', f, [1])],
    initializers: [initializer('zero', f, [1], Float32Array.of(0)), initializer('one', f, [1], Float32Array.of(1))],
    nodes: [node('Loop', ['COUNT', '', 'zero'], ['OUTPUT0'], {
      body: {
        name: 'count',
        inputs: [tensor('i', ElemType.INT64, []), tensor('cond_in', ElemType.BOOL, []), tensor('sum_in', f, [1])],
        outputs: [tensor('cond_out', ElemType.BOOL, []), tensor('sum_out', f, [1])],
        nodes: [node('Identity', ['cond_in'], ['cond_out']), node('Add', ['sum_in', 'one'], ['sum_out'])],
      },
    })],
  });
}

/** The rows and columns of each of flatten_mlp_fp32.onnx's inputs, and the width of its hidden layer and of its answer. */
export const FLATTEN_MLP = { rows: 2, columns: 4, hidden: 16, classes: 3 } as const;

/**
 * flatten_mlp_fp32.onnx: an MLP on FP32 [batch, 2, 4] whose flattens are written as PyTorch exports
 * x.view(x.size(0), -1) with a dynamic batch. The input is flattened by Shape, Gather of index 0,
 * Unsqueeze and Concat with [-1] (the TorchScript exporter's form, opset 13 on), a Gemm and a Relu
 * make [batch, 16], Shape with start 0 and end 1 then Concat with [4, -1] (the form from opset 15)
 * makes it [batch, 4, 4] for a Softmax along its last axis, and Flatten and a Gemm answer
 * FP32 [batch, 3]. Each row's answer follows that row alone.
 */
export function flattenMlpModel(): Uint8Array {
  const f = ElemType.FLOAT;
  const i64 = (name: string, dims: number[], values: number[]) => initializer(name, ElemType.INT64, dims, BigInt64Array.from(values, BigInt));
  const random = seededRandom(2024);
  const { rows, columns, hidden, classes } = FLATTEN_MLP;
  const weights = (name: string, dims: number[]) => initializer(name, f, dims, uniformArray(dims.reduce((a, b) => a * b, 1), 1, random));
  return encodeModel({
    name: 'flatten_mlp_fp32',
    doc: 'an MLP whose flattens are PyTorch\'s exports of x.view(x.size(0), -1)',
    inputs: [tensor('INPUT0', f, ['batch', rows, columns])],
    outputs: [tensor('OUTPUT0', f, ['batch', classes])],
    initializers: [weights('W1', [rows * columns, hidden]), weights('B1', [hidden]), weights('W2', [hidden, classes]), weights('B2', [classes])],
    nodes: [
      node('Shape', ['INPUT0'], ['input_shape']),
      node('Constant', [], ['zero'], { value: i64('zero', [], [0]) }),
      node('Gather', ['input_shape', 'zero'], ['input_batch'], { axis: 0 }),
      node('Constant', [], ['axes'], { value: i64('axes', [1], [0]) }),
      node('Unsqueeze', ['input_batch', 'axes'], ['input_batch_1d']),
      node('Constant', [], ['minus_one'], { value: i64('minus_one', [1], [-1]) }),
      node('Concat', ['input_batch_1d', 'minus_one'], ['flat_shape'], { axis: 0 }),
      node('Reshape', ['INPUT0', 'flat_shape'], ['flat'], { allowzero: 0 }),
      node('Gemm', ['flat', 'W1', 'B1'], ['hidden_sum']),
      node('Relu', ['hidden_sum'], ['hidden']),
      node('Shape', ['hidden'], ['hidden_batch'], { start: 0, end: 1 }),
      node('Constant', [], ['grid_rest'], { value: i64('grid_rest', [2], [4, -1]) }),
      node('Concat', ['hidden_batch', 'grid_rest'], ['grid_shape'], { axis: 0 }),
      node('Reshape', ['hidden', 'grid_shape'], ['grid'], { allowzero: 0 }),
      node('Softmax', ['grid'], ['grid_softmax'], { axis: -1 }),
      node('Flatten', ['grid_softmax'], ['grid_flat'], { axis: 1 }),
      node('Gemm', ['grid_flat', 'W2', 'B2'], ['OUTPUT0']),
    ],
  });
}

/** Every fixture file, under `fixtures/`, in a stable order. */
export function fixtureFiles(): FixtureFile[] {
  const datatypes = Object.keys(FIXTURE_DATATYPES) as FixtureDatatype[];
  return [
    ...datatypes.map((dt) => ({ path: `fixtures/identity_${dt.toLowerCase()}.onnx`, make: () => identityModel(dt) })),
    ...ADD_SUB_DATATYPES.map((dt) => ({ path: `fixtures/add_sub_${dt.toLowerCase()}.onnx`, make: () => addSubModel(dt) })),
    { path: 'fixtures/heavy.onnx', make: () => heavyModel() },
    { path: 'fixtures/fails.onnx', make: () => failsModel() },
    { path: 'fixtures/slow_fp32.onnx', make: () => slowModel() },
    { path: 'fixtures/add_sub_fails_fp32.onnx', make: () => addSubFailsModel() },
    { path: 'fixtures/identity_dim_minus_one_fp32.onnx', make: () => identityDimMinusOneModel() },
    { path: 'fixtures/pad_reflect_fp32.onnx', make: () => padReflectModel() },
    { path: 'fixtures/load_fails.onnx', make: () => loadFailsModel() },
    { path: 'fixtures/loop_count_fp32.onnx', make: () => loopCountModel() },
    { path: 'fixtures/flatten_mlp_fp32.onnx', make: () => flattenMlpModel() },
  ];
}
