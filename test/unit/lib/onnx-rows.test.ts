// lib/onnx's rows analysis: whether row i of every output follows row i of the inputs alone, so
// that a pod may batch different callers' requests by itself (rowMixing empty), on the project's
// fixtures, MNIST, Silero VAD and hand-built graphs; and it errs towards mixing on what it cannot
// follow (an axis or a rank not known, a Reshape's shape unless it copies the batch's size,
// subgraphs, other domains).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { readOnnxSignature } from '../../../lib/onnx';
import { modelPath } from '../../helpers/models';
import { SILERO_MODELS, sileroPath } from '../../helpers/real-models';
import { varint } from '../../helpers/protobuf';

let dir: string;
let seq = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-rows-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const FLOAT = 1;
const INT64 = 7;
const { GRAPH, INT, INTS } = onnx.AttributeProto.AttributeType;

/** A tensor of `dims` (a string: a named dynamic dimension). */
function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } };
}

const floats = (name: string, dims: number[]): onnx.ITensorProto => ({ name, dataType: FLOAT, dims, floatData: Array(dims.reduce((a, b) => a * b, 1)).fill(0.5) });
const int64s = (name: string, ...values: number[]): onnx.ITensorProto => ({ name, dataType: INT64, dims: [values.length], int64Data: values });
const int = (name: string, i: number): onnx.IAttributeProto => ({ name, type: INT, i });
const ints = (name: string, ...values: number[]): onnx.IAttributeProto => ({ name, type: INTS, ints: values });

const n = (opType: string, input: string[], output: string[], attribute: onnx.IAttributeProto[] = [], extra: Partial<onnx.INodeProto> = {}): onnx.INodeProto => ({ name: `${opType}_${seq++}`, opType, input, output, attribute, ...extra });

/**
 * X (FP32 [B, 3]) and I (INT64 [B, 2]) fed, and `inputs`; W3x4 ([3, 4]), W4x3, BIAS ([3]), CUBE
 * ([2, 1, 3]), IDX ([2], INT64), TABLE ([10, 3]), SHAPE ([2], INT64: 0, -1), SHAPE_M13 (-1, 3),
 * MINUS_ONE ([1], INT64: -1), ZERO (an INT64 scalar: 0), AXIS_0 ([1], INT64: 0) and THREE_MINUS_ONE
 * ([2], INT64 in raw_data: 3, -1) initializers; Y, the output, [B, 3]; `declared`, the graph's value_info.
 */
async function rowMixing(nodes: onnx.INodeProto[], outputs: onnx.IValueInfoProto[] = [valueInfo('Y', ['B', 3])], extra: Partial<onnx.IModelProto> = {}, inputs: onnx.IValueInfoProto[] = [], declared: onnx.IValueInfoProto[] = [], rawGraph: Buffer[] = []): Promise<string[]> {
  const graph: onnx.IGraphProto = {
    name: 'main',
    node: nodes,
    initializer: [
      floats('W3x4', [3, 4]), floats('W4x3', [4, 3]), floats('BIAS', [3]), floats('CUBE', [2, 1, 3]), int64s('IDX', 0, 2), floats('TABLE', [10, 3]),
      int64s('SHAPE', 0, -1), int64s('SHAPE_M13', -1, 3), floats('ONE_ROW', [1, 3]), floats('TWO_ROWS', [2, 3]), floats('C2x4', [2, 4]),
      { name: 'HALF', dataType: FLOAT, dims: [], floatData: [0.5] }, { name: 'TRUE', dataType: 9, dims: [], int32Data: [1] },
      int64s('MINUS_ONE', -1), { name: 'ZERO', dataType: INT64, dims: [], int64Data: [0] }, int64s('AXIS_0', 0),
      { name: 'THREE_MINUS_ONE', dataType: INT64, dims: [2], rawData: new Uint8Array(new BigInt64Array([3n, -1n]).buffer) },
    ],
    input: [valueInfo('X', ['B', 3]), valueInfo('I', ['B', 2], INT64), ...inputs],
    output: outputs,
    valueInfo: declared,
  };
  const file = path.join(dir, `m${seq++}.onnx`);
  // The graph's fields, then `rawGraph`'s as written (fields protobufjs would not write twice).
  const graphBytes = Buffer.concat([onnx.GraphProto.encode(graph).finish(), ...rawGraph]);
  fs.writeFileSync(file, Buffer.concat([onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], ...extra }).finish(), lenField(7, graphBytes)]));
  return (await readOnnxSignature(file)).rowMixing;
}

/** A length-delimited protobuf field. */
const lenField = (num: number, payload: Uint8Array | string) => {
  const b = Buffer.from(payload);
  return Buffer.concat([varint(num * 8 + 2), varint(b.length), b]);
};

/**
 * A ValueInfoProto (as GraphProto field `num`: 11 an input, 13 a value_info) of `name`, FP32,
 * whose type (or, `twice` 'shape', whose shape) is given once per entry of `shapes`, each of named
 * dimensions: protobuf merges them, and onnxruntime reads the dims of all, one after the other.
 */
function typeGivenTwice(num: number, name: string, shapes: string[][], twice: 'type' | 'shape'): Buffer {
  const shape = (dims: string[]) => lenField(2, Buffer.concat(dims.map((d) => lenField(1, lenField(2, d)))));
  const elemType = Buffer.concat([varint(1 * 8), varint(FLOAT)]);
  const types = twice === 'type'
    ? shapes.map((dims) => lenField(2, lenField(1, Buffer.concat([elemType, shape(dims)]))))
    : [lenField(2, lenField(1, Buffer.concat([elemType, ...shapes.map(shape)])))];
  return lenField(num, Buffer.concat([lenField(1, name), ...types]));
}

describe('the project\'s models and real ones', () => {
  it('finds the batch reductions of add_sub_fails and slow, the Loop, the Pad and the unknown operator, and nothing in the others or in MNIST', async () => {
    const fixtures = fs.readdirSync(path.dirname(modelPath('fixtures/identity_fp32.onnx'))).filter((f) => f.endsWith('.onnx')).sort();
    const mixing: Record<string, string[]> = {
      'add_sub_fails_fp32.onnx': ['ReduceMax'], 'slow_fp32.onnx': ['ReduceSum'], 'loop_count_fp32.onnx': ['Loop'],
      'pad_reflect_fp32.onnx': ['Pad'], 'load_fails.onnx': ['NoSuchOperator'],
    };
    for (const f of fixtures) expect([f, (await readOnnxSignature(modelPath(`fixtures/${f}`))).rowMixing]).toEqual([f, mixing[f] ?? []]);
    expect((await readOnnxSignature(modelPath('mnist.onnx'))).rowMixing).toEqual([]);
  });

  it('takes Silero VAD, whose state runs across its inputs, as mixing', async () => {
    for (const f of SILERO_MODELS) expect([f, (await readOnnxSignature(sileroPath(f))).rowMixing.length > 0]).toEqual([f, true]);
  });
});

describe('rows that stay apart', () => {
  it.each<[string, onnx.INodeProto[]]>([
    ['elementwise on one input', [n('Relu', ['X'], ['Y'])]],
    ['a bias of lower rank', [n('Add', ['X', 'BIAS'], ['Y'])]],
    ['two batch-fed operands of one rank', [n('Mul', ['X', 'X'], ['Y'])]],
    ['a matrix product with weights', [n('MatMul', ['X', 'W3x4'], ['H']), n('MatMul', ['H', 'W4x3'], ['Y'])]],
    ['Gemm without transA', [n('Gemm', ['X', 'W3x4', 'BIAS'], ['H'], [int('transB', 0)]), n('MatMul', ['H', 'W4x3'], ['Y'])]],
    ['Softmax without an axis, along 1 and along -1', [n('Softmax', ['X'], ['A']), n('Softmax', ['A'], ['B'], [int('axis', 1)]), n('LogSoftmax', ['B'], ['Y'], [int('axis', -1)])]],
    ['a reduction over axis 1, kept', [n('ReduceSum', ['X'], ['S'], [ints('axes', 1), int('keepdims', 1)]), n('Add', ['X', 'S'], ['Y'])]],
    ['an ArgMax along 1, then a Gather of rows of a table by it', [n('ArgMax', ['X'], ['K'], [int('axis', 1), int('keepdims', 0)]), n('Gather', ['TABLE', 'K'], ['Y'])]],
    ['a Transpose that keeps the first axis', [n('Transpose', ['X'], ['Y'], [ints('perm', 0, 1)])]],
    ['a Concat along 1 and a Split back', [n('Concat', ['X', 'X'], ['C'], [int('axis', 1)]), n('Split', ['C'], ['Y', 'Z'], [int('axis', 1)])]],
    ['a Gather of columns', [n('Gather', ['X', 'IDX'], ['G'], [int('axis', 1)]), n('Concat', ['G', 'X'], ['C'], [int('axis', -1)]), n('Gather', ['C', 'IDX'], ['Y'], [int('axis', 1)])]],
    ['a Flatten from axis 1', [n('Flatten', ['X'], ['Y'])]],
    ['a mixing branch that reaches no output', [n('ReduceSum', ['X'], ['S'], [int('keepdims', 1)]), n('Relu', ['X'], ['Y'])]],
    ['a Constant of a lower rank', [n('Constant', [], ['K'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: floats('', [3]) }]), n('Add', ['X', 'K'], ['Y'])]],
    ['a Constant of a FLOAT attribute (a scalar)', [n('Constant', [], ['K'], [{ name: 'value_float', type: onnx.AttributeProto.AttributeType.FLOAT, f: 2 }]), n('Mul', ['X', 'K'], ['Y'])]],
    ['a LayerNormalization with a scale of lower rank', [n('LayerNormalization', ['X', 'BIAS', 'BIAS'], ['Y'])]],
    ['a constant of the batch\'s rank with 1 row', [n('Add', ['X', 'ONE_ROW'], ['Y'])]],
    ['a Flatten from axis -1 of a rank-2 tensor (axis 1)', [n('Flatten', ['X'], ['Y'], [int('axis', -1)])]],
    ['BatchNormalization with one output', [n('BatchNormalization', ['X', 'BIAS', 'BIAS', 'BIAS', 'BIAS'], ['Y'])]],
    // A shape whose first value is 0 copies the batch's size: each row stays one row.
    ['a Reshape to [0, -1] and back to [0, 3]', [n('Reshape', ['X', 'SHAPE'], ['F']), n('Constant', [], ['S'], [ints('value_ints', 0, 3)]), n('Reshape', ['F', 'S'], ['Y'])]],
    ['a Reshape to [0, 1, -1] (a Constant with raw_data), a Softmax along -1 and back to [0, -1]', [
      n('Constant', [], ['S3'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: INT64, dims: [3], rawData: new Uint8Array(new BigInt64Array([0n, 1n, -1n]).buffer) } }]),
      n('Reshape', ['X', 'S3'], ['R']), n('Softmax', ['R'], ['M'], [int('axis', -1)]), n('Reshape', ['M', 'SHAPE'], ['Y'])]],
  ])('%s', async (_what, nodes) => {
    expect(await rowMixing(nodes)).toEqual([]);
  });
});

describe('rows that may mix', () => {
  it.each<[string, onnx.INodeProto[], string[]]>([
    ['a reduction over every axis', [n('ReduceSum', ['X'], ['S'], [int('keepdims', 1)]), n('Add', ['X', 'S'], ['Y'])], ['ReduceSum']],
    ['a reduction over axis 0, or -2 of a rank-2 tensor', [n('ReduceMax', ['X'], ['S'], [ints('axes', 1, -2)]), n('Add', ['X', 'S'], ['Y'])], ['ReduceMax']],
    ['a reduction whose axes are an input', [n('ReduceSum', ['X', 'IDX'], ['S']), n('Add', ['X', 'S'], ['Y'])], ['ReduceSum']],
    ['an ArgMax without an axis (0)', [n('ArgMax', ['X'], ['K'], [int('keepdims', 0)]), n('Gather', ['TABLE', 'K'], ['Y'])], ['ArgMax']],
    ['Softmax along the batch', [n('Softmax', ['X'], ['Y'], [int('axis', 0)])], ['Softmax']],
    ['Softmax along -2 of a rank-2 tensor', [n('Softmax', ['X'], ['Y'], [int('axis', -2)])], ['Softmax']],
    ['a matrix product that contracts the batch', [n('Transpose', ['X'], ['T'], [ints('perm', 1, 0)]), n('MatMul', ['T', 'X'], ['Y'])], ['Transpose']],
    ['two batch-fed rank-2 operands of a MatMul', [n('MatMul', ['X', 'X'], ['Y'])], ['MatMul']],
    ['a constant of a higher rank broadcast before the batch', [n('Add', ['X', 'CUBE'], ['Y'])], ['Add']],
    ['a Transpose without perm', [n('Transpose', ['X'], ['Y'])], ['Transpose']],
    ['a Concat along the batch', [n('Concat', ['X', 'X'], ['Y'], [int('axis', 0)])], ['Concat']],
    ['a Flatten from axis 0', [n('Flatten', ['X'], ['Y'], [int('axis', 0)])], ['Flatten']],
    ['a Gemm with transA', [n('Gemm', ['X', 'W3x4'], ['Y'], [int('transA', 1)])], ['Gemm']],
    ['a Reshape to [-1, 3] (the batch\'s size not copied)', [n('Reshape', ['X', 'SHAPE_M13'], ['Y'])], ['Reshape']],
    ['a Reshape to [0, -1] with allowzero (0 a dimension of 0)', [n('Reshape', ['X', 'SHAPE'], ['Y'], [int('allowzero', 1)])], ['Reshape']],
    ['a Reshape to a shape computed from constants', [n('Identity', ['SHAPE'], ['S']), n('Reshape', ['X', 'S'], ['Y'])], ['Reshape']],
    ['a Reshape to a Constant [-1, 3] of value_ints', [n('Constant', [], ['S'], [ints('value_ints', -1, 3)]), n('Reshape', ['X', 'S'], ['Y'])], ['Reshape']],
    ['a Reshape to a batch-fed shape', [n('Reshape', ['X', 'I'], ['Y'])], ['Reshape']],
    ['the batch\'s size through Shape', [n('Shape', ['X'], ['S']), n('Cast', ['S'], ['F'], [int('to', FLOAT)]), n('Add', ['X', 'F'], ['Y'])], ['Shape']],
    ['a Gather along the batch', [n('Gather', ['X', 'IDX'], ['Y'])], ['Gather']],
    ['a CumSum (its axis is an input)', [n('CumSum', ['X', 'IDX'], ['Y'])], ['CumSum']],
    ['another domain\'s operator', [n('Relu', ['X'], ['Y'], [], { domain: 'com.example' })], ['com.example.Relu']],
    // Found by a hostile review, each proved to mix rows with onnxruntime:
    ['a Flatten from axis -2 of a rank-2 tensor (axis 0)', [n('Flatten', ['X'], ['F'], [int('axis', -2)]), n('Flatten', ['F'], ['Y'], [int('axis', 1)])], ['Flatten']],
    ['a Flatten from the last axis + 1 ([N, 3] to [3N, 1])', [n('Flatten', ['X'], ['Y'], [int('axis', 2)])], ['Flatten']],
    ['a Clip bounded by a batch-fed tensor', [n('ReduceMax', ['X'], ['B'], [ints('axes', 1), int('keepdims', 0)]), n('Clip', ['X', 'B'], ['Y'])], ['Clip']],
    ['a constant of the batch\'s rank with 2 rows', [n('Add', ['X', 'TWO_ROWS'], ['Y'])], ['Add']],
    ['a constant joined to the batch along axis 1', [n('Concat', ['X', 'TWO_ROWS'], ['Y'], [int('axis', 1)])], ['Concat']],
    ['a Gemm whose C has 2 rows', [n('Gemm', ['X', 'W3x4', 'C2x4'], ['H']), n('MatMul', ['H', 'W4x3'], ['Y'])], ['Gemm']],
    // A second review's, each proved with onnxruntime too:
    ['an axis typed INT with no value (0 to onnxruntime)', [n('Softmax', ['X'], ['Y'], [{ name: 'axis', type: INT }])], ['Softmax']],
    // [B, 3] summed over axis 1 without keepdims is [B]: its last axis is the batch's.
    ['keepdims typed INT with no value (0), then a Softmax along the last axis', [n('ReduceSum', ['X'], ['S'], [ints('axes', 1), { name: 'keepdims', type: INT }]), n('Softmax', ['S'], ['Y'], [int('axis', -1)])], ['Softmax']],
    ['a LayerNormalization whose scale has the batch\'s rank and 2 rows', [n('LayerNormalization', ['X', 'TWO_ROWS'], ['Y'])], ['LayerNormalization']],
    ['a Dropout told to train', [n('Dropout', ['X', 'HALF', 'TRUE'], ['Y'])], ['Dropout']],
    ['a Constant whose first attribute, named value_float, holds a [2, 3] tensor', [n('Constant', [], ['K'], [{ name: 'value_float', type: onnx.AttributeProto.AttributeType.TENSOR, t: floats('', [2, 3]) }]), n('Add', ['X', 'K'], ['Y'])], ['Add']],
    ['a Constant with a [2, 3] value and a value_float after it (onnxruntime takes the first)', [n('Constant', [], ['K'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: floats('', [2, 3]) }, { name: 'value_float', type: onnx.AttributeProto.AttributeType.FLOAT, f: 1 }]), n('Add', ['X', 'K'], ['Y'])], ['Add']],
  ])('%s', async (_what, nodes, expected) => {
    expect(await rowMixing(nodes, undefined, { opsetImport: [{ domain: '', version: 17 }, { domain: 'com.example', version: 1 }] })).toEqual(expected);
  });

  it('takes a Constant whose value is given twice as the one tensor protobuf merges them to (dims joined)', async () => {
    // [2] then [1, 3]: onnxruntime sees [2, 1, 3], which broadcast against [N, 3] puts 2 before the batch.
    const field = (num: number, bytes: Uint8Array) => Buffer.concat([Buffer.from([(num << 3) | 2]), varint(bytes.length), bytes]);
    const t1 = onnx.TensorProto.encode({ dataType: FLOAT, dims: [2], floatData: [0, 0] }).finish();
    const t2 = onnx.TensorProto.encode({ dims: [1, 3], floatData: [1000, 1000, 1000, 1000] }).finish();
    const attribute = Buffer.concat([onnx.AttributeProto.encode({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR }).finish(), field(5, t1), field(5, t2)]);
    const constant = Buffer.concat([onnx.NodeProto.encode({ name: 'k', opType: 'Constant', output: ['K'] }).finish(), field(5, attribute)]);
    const add = onnx.NodeProto.encode(n('Add', ['X', 'K'], ['Y'])).finish();
    const rest = onnx.GraphProto.encode({ name: 'g', input: [valueInfo('X', ['B', 3])], output: [valueInfo('Y', ['B', 3])] }).finish();
    const model = Buffer.concat([onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }).finish(), field(7, Buffer.concat([field(1, constant), field(1, add), rest]))]);
    const file = path.join(dir, `m${seq++}.onnx`);
    fs.writeFileSync(file, model);
    expect((await readOnnxSignature(file)).rowMixing).toEqual(['Add']);
  });

  it('refuses BatchNormalization in training mode, whose statistics onnxruntime keeps from run to run', async () => {
    // training_mode (opset 14 on), or its training outputs named (before 14); in a subgraph too.
    const bn = (extra: Partial<onnx.INodeProto>, outputs = ['Y']) => ({ ...n('BatchNormalization', ['X', 'BIAS', 'BIAS', 'BIAS', 'BIAS'], outputs), name: 'bn', ...extra });
    const refusal = /^BatchNormalization of node 'bn' is in training mode: onnxruntime keeps its running statistics from run to run/;
    await expect(rowMixing([bn({ attribute: [int('training_mode', 1)] })])).rejects.toThrow(refusal);
    await expect(rowMixing([bn({}, ['Y', 'M', 'V', 'SM', 'SV'])])).rejects.toThrow(refusal);
    // Its optional outputs left out ('') still count: onnxruntime trains (and crashed on a run).
    await expect(rowMixing([bn({}, ['Y', '', '', '', ''])])).rejects.toThrow(refusal);
    const branch = (name: string): onnx.IGraphProto => ({ name, node: [bn({}, ['O', 'M'])], output: [valueInfo('O', ['B', 3])] });
    const ifNode = n('If', ['C'], ['Y'], [{ name: 'then_branch', type: GRAPH, g: branch('then') }, { name: 'else_branch', type: GRAPH, g: branch('else') }]);
    await expect(rowMixing([n('Constant', [], ['C'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: 9, dims: [], int32Data: [1] } }]), ifNode]))
      .rejects.toThrow(/^BatchNormalization of node 'bn' of graph 'then' in attribute 'then_branch' of node 'If_\d+' is in training mode/);
    // In inference mode (one output, training_mode 0) it serves, and keeps rows apart.
    expect(await rowMixing([bn({ attribute: [int('training_mode', 0)] })])).toEqual([]);
  });

  it('takes an If as mixing, and what comes after it', async () => {
    const branch = (name: string): onnx.IGraphProto => ({ name, node: [n('Identity', ['X'], ['O'])], output: [valueInfo('O', ['B', 3])] });
    const ifNode = n('If', ['COND'], ['T'], [{ name: 'then_branch', type: GRAPH, g: branch('then') }, { name: 'else_branch', type: GRAPH, g: branch('else') }]);
    const graph = [n('Constant', [], ['COND'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: 9, dims: [], int32Data: [1] } }]), ifNode, n('Relu', ['T'], ['Y'])];
    expect(await rowMixing(graph)).toEqual(['If']);
  });

  it('takes an output computed from no input, or one not made by any node, as not split by rows', async () => {
    expect(await rowMixing([n('Relu', ['X'], ['Y']), n('Identity', ['BIAS'], ['Z'])], [valueInfo('Y', ['B', 3]), valueInfo('Z', [3])])).toEqual(['(an output not computed row by row from the inputs)']);
    expect(await rowMixing([n('Relu', ['X'], ['Z'])])).toEqual(['(an output not computed row by row from the inputs)']);
  });

  it('takes a tensor named twice as mixing: onnxruntime reads the last of a name everywhere', async () => {
    // A Constant after its reader, of the name the reader was judged on: onnxruntime makes every
    // Constant an initializer before the run, so the Reshape reads [-1, 3].
    const reshapeBeforeConstant = [n('Constant', [], ['S'], [ints('value_ints', 0, -1)]), n('Reshape', ['X', 'S'], ['Y']), n('Constant', [], ['S'], [ints('value_ints', -1, 3)])];
    expect(await rowMixing(reshapeBeforeConstant)).toEqual(['(a tensor defined twice)']);
    // A Constant of an initializer's name; two nodes' outputs of one name.
    expect(await rowMixing([n('Constant', [], ['BIAS'], [ints('value_ints', 1)]), n('Add', ['X', 'BIAS'], ['Y'])])).toEqual(['(a tensor defined twice)']);
    expect(await rowMixing([n('Relu', ['X'], ['Y']), n('Neg', ['X'], ['Y'])])).toEqual(['(a tensor defined twice)']);
    // Optional outputs left out ('') by two nodes name nothing.
    expect(await rowMixing([n('Dropout', ['X'], ['D', '']), n('Dropout', ['D'], ['Y', ''])])).toEqual([]);
  });

  it('follows a Reshape\'s shape only when its INT64 values are read as onnxruntime reads them', async () => {
    const raw = (...v: bigint[]) => new Uint8Array(new BigInt64Array(v).buffer);
    const reshapeTo = (t: onnx.ITensorProto) => rowMixing([n('Constant', [], ['S'], [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t }]), n('Reshape', ['X', 'S'], ['Y'])]);
    expect(await reshapeTo({ dataType: INT64, dims: [2], rawData: raw(0n, -1n) })).toEqual([]);
    expect(await reshapeTo({ dataType: INT64, dims: [2], int64Data: [0, 3] })).toEqual([]);
    // onnxruntime reads raw_data when both are there: [-1, 3] in raw_data wins over int64_data's 0.
    expect(await reshapeTo({ dataType: INT64, dims: [2], int64Data: [0, 3], rawData: raw(-1n, 3n) })).toEqual(['Reshape']);
    expect(await reshapeTo({ dataType: INT64, dims: [2], rawData: raw(-1n, 3n) })).toEqual(['Reshape']);
    // Not 1-D, values not matching dims, another type, or more values than followed.
    expect(await reshapeTo({ dataType: INT64, dims: [1, 2], int64Data: [0, -1] })).toEqual(['Reshape']);
    expect(await reshapeTo({ dataType: INT64, dims: [3], int64Data: [0, -1] })).toEqual(['Reshape']);
    expect(await reshapeTo({ dataType: INT64, dims: [2], rawData: raw(0n) })).toEqual(['Reshape']);
    expect(await reshapeTo({ dataType: 6, dims: [2], int32Data: [0, -1] })).toEqual(['Reshape']);
    expect(await reshapeTo({ dataType: INT64, dims: [17], int64Data: [0, -1, ...Array(15).fill(1)] })).toEqual(['Reshape']);
  });

  it('takes an input of more names than it follows as mixing: a Sum of 70 operands', async () => {
    expect(await rowMixing([n('Sum', Array(70).fill('X'), ['Y'])])).toEqual(['Sum']);
  });
});

describe('a Reshape to a shape computed from the batch\'s size (PyTorch\'s x.view(x.size(0), -1))', () => {
  const { TENSOR } = onnx.AttributeProto.AttributeType;
  /** A Constant of INT64 `values` (a scalar when `dims` is []). */
  const constant = (output: string, values: number[], dims = [values.length]) =>
    n('Constant', [], [output], [{ name: 'value', type: TENSOR, t: { dataType: INT64, dims, int64Data: values } }]);
  const concat = (parts: string[], output = 'K') => n('Concat', parts, [output], [int('axis', 0)]);
  /** U: the first dimension of `data` as a vector of one, as the TorchScript exporter writes it (opset 13 on: Unsqueeze's axes an input). */
  const batchOf = (data: string, index = 0, gather: onnx.IAttributeProto[] = [int('axis', 0)]) => [
    n('Shape', [data], [`S_${data}`]), constant(`Z_${data}`, [index], []), n('Gather', [`S_${data}`, `Z_${data}`], [`G_${data}`], gather),
    n('Unsqueeze', [`G_${data}`, 'AXIS_0'], [`U_${data}`]),
  ];
  const opset = (version: number): Partial<onnx.IModelProto> => ({ opsetImport: [{ domain: '', version }, { domain: 'com.example', version: 1 }] });

  it.each<[string, onnx.INodeProto[], number]>([
    ['Shape, Gather of index 0, Unsqueeze and Concat with a Constant [-1] (the TorchScript exporter, opset 13 on)', [
      ...batchOf('X'), constant('M', [-1]), concat(['U_X', 'M']), n('Reshape', ['X', 'K'], ['Y'])], 17],
    ['the same with Unsqueeze\'s axes an attribute (before opset 13)', [
      n('Shape', ['X'], ['S']), n('Gather', ['S', 'ZERO'], ['G']), n('Unsqueeze', ['G'], ['U'], [ints('axes', 0)]), concat(['U', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], 11],
    ['Shape with start 0 and end 1 and Concat with [3, -1] in raw_data (opset 15 on), then a Reshape back to [0, -1]', [
      n('Shape', ['X'], ['S'], [int('start', 0), int('end', 1)]), concat(['S', 'THREE_MINUS_ONE']), n('Reshape', ['X', 'K'], ['R']), n('Reshape', ['R', 'SHAPE'], ['Y'])], 17],
    ['Shape with start -2 and end -1 of a rank-2 tensor (0 and 1)', [
      n('Shape', ['X'], ['S'], [int('start', -2), int('end', -1)]), concat(['S', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], 17],
    ['a Gather of the vector [-2] (index 0 of a rank-2 shape), of a tensor computed from X, into [N, 3, -1], a Softmax along 1 and back', [
      n('Relu', ['X'], ['H']), n('Shape', ['H'], ['S']), constant('Z', [-2]), n('Gather', ['S', 'Z'], ['G']), constant('T', [3, -1]), concat(['G', 'T']),
      n('Reshape', ['H', 'K'], ['R']), n('Softmax', ['R'], ['M'], [int('axis', 1)]), ...batchOf('M'), concat(['U_M', 'MINUS_ONE'], 'K2'), n('Reshape', ['M', 'K2'], ['Y'])], 17],
  ])('keeps rows apart: %s', async (_what, nodes, version) => {
    expect(await rowMixing(nodes, undefined, opset(version))).toEqual([]);
  });

  const flatten = (u: string, parts: string[]) => [...batchOf('X'), concat(parts.map((p) => (p === 'U' ? u : p))), n('Reshape', ['X', 'K'], ['Y'])];
  it.each<[string, onnx.INodeProto[], string[]]>([
    ['a Gather of index 1 (the second dimension)', [...batchOf('X', 1), concat(['U_X', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Gather along axis 1', [...batchOf('X', 0, [int('axis', 1)]), concat(['U_X', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Shape of another input', [...batchOf('I'), concat(['U_I', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Shape of X reshaping a tensor computed from it', [...batchOf('X'), concat(['U_X', 'MINUS_ONE']), n('Relu', ['X'], ['H']), n('Reshape', ['H', 'K'], ['Y'])], ['Shape']],
    ['a Concat with a second dimension of X', [...batchOf('X'), n('Gather', ['S_X', 'MINUS_ONE'], ['D']), concat(['U_X', 'D']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Concat with a part computed from a request\'s values', [
      ...batchOf('X'), n('ReduceMax', ['I'], ['V'], [int('keepdims', 0)]), n('Unsqueeze', ['V', 'AXIS_0'], ['W']), concat(['U_X', 'W']), n('Reshape', ['X', 'K'], ['Y'])], ['ReduceMax', 'Shape']],
    ['-1 first', flatten('U_X', ['MINUS_ONE', 'U']), ['Shape']],
    ['-1 twice', flatten('U_X', ['U', 'MINUS_ONE', 'MINUS_ONE']), ['Shape']],
    ['the batch\'s size again after the first value', flatten('U_X', ['U', 'U']), ['Shape']],
    ['the batch\'s size after a constant', flatten('U_X', ['THREE_MINUS_ONE', 'U']), ['Shape']],
    ['a 0 after the first value (a copy of a dimension)', flatten('U_X', ['U', 'AXIS_0', 'MINUS_ONE']), ['Shape']],
    // Without a -1, onnxruntime may fuse a Gather it does not match into [-1, 3], rows moved where the shape does not fit.
    ['no -1 ([N, 3])', [n('Shape', ['X'], ['S'], [int('start', 0), int('end', 1)]), constant('T', [3]), concat(['S', 'T']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    // onnxruntime fuses the Gather of index 0 into a 0 of the shape, which allowzero reads as a dimension of 0.
    ['allowzero 1', [...batchOf('X'), concat(['U_X', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'], [int('allowzero', 1)])], ['Shape']],
    ['Shape with end 2 (two dimensions)', [n('Shape', ['X'], ['S'], [int('start', 0), int('end', 2)]), concat(['S', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['Shape with start 1', [n('Shape', ['X'], ['S'], [int('start', 1)]), concat(['S', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['an Unsqueeze of a vector (to rank 2)', [n('Shape', ['X'], ['S']), n('Gather', ['S', 'AXIS_0'], ['G']), n('Unsqueeze', ['G', 'AXIS_0'], ['U']), concat(['U', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['an Unsqueeze with axes both an attribute and an input', [
      n('Shape', ['X'], ['S']), n('Gather', ['S', 'ZERO'], ['G']), n('Unsqueeze', ['G', 'AXIS_0'], ['U'], [ints('axes', 0)]), concat(['U', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Gather by a batch-fed index', [n('Shape', ['X'], ['S']), n('Gather', ['S', 'I'], ['G']), concat(['G', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
    ['a Concat of another domain', [...batchOf('X'), n('Concat', ['U_X', 'MINUS_ONE'], ['K'], [int('axis', 0)], { domain: 'com.example' }), n('Reshape', ['X', 'K'], ['Y'])], ['Shape']],
  ])('moves rows: %s', async (_what, nodes, expected) => {
    expect(await rowMixing(nodes, undefined, opset(17))).toEqual(expected);
  });

  it('does not follow an initializer a graph input names (a default a run may replace)', async () => {
    const nodes = [...batchOf('X'), concat(['U_X', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y'])];
    expect(await rowMixing(nodes)).toEqual([]);
    expect(await rowMixing(nodes, undefined, {}, [valueInfo('MINUS_ONE', [1], INT64)])).toEqual(['Shape']);
    expect(await rowMixing(nodes, undefined, {}, [valueInfo('AXIS_0', [1], INT64)])).toEqual(['Shape']);
  });

  it('takes declared shapes that onnxruntime could read instead of the batch\'s size as mixing', async () => {
    // A number for the first dimension (folded into a Shape), a name for another (two tensors of
    // one declared shape share a Shape): only a name for a batch-fed first dimension, or a known
    // vector's true length, is let stand.
    const nodes = [n('Relu', ['X'], ['H']), ...batchOf('H'), concat(['U_H', 'MINUS_ONE']), n('Reshape', ['H', 'K'], ['Y'])];
    const withValueInfo = (...declared: onnx.IValueInfoProto[]) => rowMixing(nodes, undefined, {}, [], declared);
    const computed = '(a shape computed from a dimension that a declared shape could change)';
    expect(await withValueInfo(valueInfo('H', ['B', 3]), valueInfo('S_H', [2], INT64), valueInfo('U_H', [1], INT64), valueInfo('K', [2], INT64))).toEqual([]);
    expect(await withValueInfo(valueInfo('H', [1, 3]))).toEqual([computed, 'Shape']);
    expect(await withValueInfo(valueInfo('H', [-1, 3]))).toEqual([computed, 'Shape']);
    expect(await withValueInfo(valueInfo('H', ['B', 'C']))).toEqual([computed, 'Shape']);
    expect(await withValueInfo(valueInfo('K', [3], INT64))).toEqual([computed, 'Shape']);
    expect(await withValueInfo(valueInfo('MINUS_ONE', [1], INT64))).toEqual([]);
    expect(await withValueInfo(valueInfo('W3x4', [3, 4]))).toEqual([computed, 'Shape']);
    expect(await withValueInfo(valueInfo('H', ['B', 3]), valueInfo('H', [2, 3]))).toEqual([computed, 'Shape']);
    // An input's other dimension named: onnxruntime takes two dimensions of one name as equal.
    expect(await rowMixing(nodes, undefined, {}, [valueInfo('Z', ['B', 'B'])])).toEqual([computed, 'Shape']);
    // [B, C] written as two types or two shapes of one dimension each: merged, C is H's second.
    for (const twice of ['type', 'shape'] as const) {
      expect(await rowMixing(nodes, undefined, {}, [], [], [typeGivenTwice(13, 'H', [['B'], ['C']], twice)])).toEqual([computed, 'Shape']);
    }
  });

  it('refuses a graph input or output whose type or shape is given twice: the signature read would not be the one served', async () => {
    for (const [num, twice] of [[11, 'type'], [11, 'shape'], [13, 'type']] as const) {
      const read = rowMixing([n('Relu', ['X'], ['Y'])], undefined, {}, [], [], [typeGivenTwice(num, num === 11 ? 'Z' : 'Y2', [['B'], ['3']], twice)]);
      if (num === 13) await expect(read).resolves.toEqual([]);
      else await expect(read).rejects.toThrow(`tensor 'Z' declares its ${twice} more than once`);
    }
  });

  it('takes a shape, or the tensor measured, named twice as mixing: onnxruntime reads the last of a name everywhere', async () => {
    // Listed beside the Shape whose size reached the Reshape.
    expect(await rowMixing([...batchOf('X'), concat(['U_X', 'MINUS_ONE']), n('Reshape', ['X', 'K'], ['Y']), constant('K', [-1, 3])])).toEqual(['(a tensor defined twice)', 'Shape']);
    expect(await rowMixing([n('Relu', ['X'], ['H']), ...batchOf('H'), concat(['U_H', 'MINUS_ONE']), n('Reshape', ['H', 'K'], ['Y']), n('Neg', ['X'], ['H'])])).toEqual(['(a tensor defined twice)', 'Shape']);
  });
});
