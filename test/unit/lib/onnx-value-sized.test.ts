// lib/onnx's value-sized analysis: which operators can make a run cost what the request's values
// ask rather than its shapes (a Loop, If or Scan anywhere; a Range, Tile, Pad… whose size-giving
// input follows an input's values through the main graph; what multiplies shapes fed a tensor whose
// shape a caller's numbers chose), on the project's fixtures, a real model and hand-built graphs;
// and it errs towards value-sized on what it cannot follow (names used before they are made or not
// UTF-8, subgraphs' reads, other domains' operators, local functions, names past its memory bound).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { readOnnxSignature, MAX_ONNX_FLOW_NAME_BYTES } from '../../../lib/onnx';
import { modelPath } from '../../helpers/models';
import { SILERO_MODELS, sileroPath } from '../../helpers/real-models';

let dir: string;
let seq = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-vs-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;
const { GRAPH, TENSOR } = onnx.AttributeProto.AttributeType;

function valueInfo(name: string, dims: number[], elemType = FLOAT): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

const int64s = (name: string, ...values: number[]): onnx.ITensorProto => ({ name, dataType: INT64, dims: [values.length], int64Data: values });
const n = (opType: string, input: string[], output: string[], extra: Partial<onnx.INodeProto> = {}): onnx.INodeProto => ({ name: `${opType}_${seq++}`, opType, input, output, ...extra });

/**
 * X (FP32 [2,3]) and R (INT64 [2]) fed; ZERO, ONE, TEN and REPS INT64 initializers; Y the output of
 * the last node. `patch` may change the encoded model's bytes.
 */
async function valueSized(nodes: onnx.INodeProto[], extra: Partial<onnx.IModelProto> = {}, patch = (b: Buffer) => b): Promise<string[]> {
  const graph: onnx.IGraphProto = {
    name: 'main',
    node: nodes,
    initializer: [int64s('ZERO', 0), int64s('ONE', 1), int64s('TEN', 10), int64s('REPS', 2, 2)],
    input: [valueInfo('X', [2, 3]), valueInfo('R', [2], INT64)],
    output: [valueInfo('Y', [2, 3])],
  };
  const file = path.join(dir, `m${seq++}.onnx`);
  fs.writeFileSync(file, patch(Buffer.from(onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph, ...extra }).finish())));
  return (await readOnnxSignature(file)).valueSized;
}

const constant = (out: string, ...values: number[]) => n('Constant', [], [out], { attribute: [{ name: 'value', type: TENSOR, t: int64s('', ...values) }] });
const countBody = (nodes: onnx.INodeProto[]): onnx.IGraphProto => ({
  name: 'body',
  node: nodes,
  input: [valueInfo('i', [], INT64), valueInfo('c', [], BOOL), valueInfo('v', [2, 3])],
  output: [valueInfo('c_out', [], BOOL), valueInfo('v_out', [2, 3])],
});

describe('the project\'s models and a real one', () => {
  const fixtures = fs.readdirSync(path.dirname(modelPath('fixtures/identity_fp32.onnx'))).filter((f) => f.endsWith('.onnx')).sort();

  it('finds the Loop of loop_count_fp32 and nothing in any other fixture or in MNIST', async () => {
    expect(fixtures).toContain('loop_count_fp32.onnx');
    for (const f of fixtures) {
      expect([f, (await readOnnxSignature(modelPath(`fixtures/${f}`))).valueSized]).toEqual([f, f === 'loop_count_fp32.onnx' ? ['Loop'] : []]);
    }
    expect((await readOnnxSignature(modelPath('mnist.onnx'))).valueSized).toEqual([]);
  });

  it.each(SILERO_MODELS)('finds the If (which sample rate) of Silero VAD %s', async (name) => {
    expect((await readOnnxSignature(sileroPath(name))).valueSized).toContain('If');
  });
});

describe('size-giving inputs that follow the request\'s values', () => {
  it.each<[string, onnx.INodeProto[], string[]]>([
    ['a Range up to an input', [n('Cast', ['R'], ['r']), n('ReduceSum', ['r'], ['l']), n('Range', ['ZERO', 'l', 'ONE'], ['Y'])], ['Range']],
    ['a Range up to an input plus one', [n('Add', ['R', 'ONE'], ['l']), n('Range', ['ZERO', 'l', 'ONE'], ['Y'])], ['Range']],
    ['a Range up to initializers', [n('Range', ['ZERO', 'TEN', 'ONE'], ['Y'])], []],
    ['a Range up to a Constant node', [constant('k', 7), n('Range', ['ZERO', 'k', 'ONE'], ['Y'])], []],
    ['a Range up to a dimension of the request (Shape)', [n('Shape', ['X'], ['s']), n('Gather', ['s', 'ONE'], ['d']), n('Range', ['ZERO', 'd', 'ONE'], ['Y'])], []],
    ['a Range up to the Shape of what an elementwise operator made', [n('Relu', ['X'], ['x1']), n('Shape', ['x1'], ['s']), n('Range', ['ZERO', 's', 'ONE'], ['Y'])], []],
    ['a Range up to the Shape of what NonZero made (a shape that follows values)', [n('NonZero', ['X'], ['nz']), n('Shape', ['nz'], ['s']), n('Range', ['ZERO', 's', 'ONE'], ['Y'])], ['Range']],
    ['a ConstantOfShape of an input', [n('ConstantOfShape', ['R'], ['Y'])], ['ConstantOfShape']],
    ['a ConstantOfShape of the request\'s Shape', [n('Shape', ['X'], ['s']), n('ConstantOfShape', ['s'], ['Y'])], []],
    ['a Tile by an input', [n('Tile', ['X', 'R'], ['Y'])], ['Tile']],
    ['a Tile by initializers (whatever the data)', [n('Tile', ['X', 'REPS'], ['Y'])], []],
    ['an Expand to an input', [n('Expand', ['X', 'R'], ['Y'])], ['Expand']],
    ['an Expand to the request\'s Shape', [n('Shape', ['X'], ['s']), n('Expand', ['X', 's'], ['Y'])], []],
    ['a Pad by an input', [n('Pad', ['X', 'R'], ['Y'])], ['Pad']],
    ['a Resize to sizes from an input', [n('Resize', ['X', '', '', 'R'], ['Y'])], ['Resize']],
    ['a Resize (opset 10) to scales from an input', [n('Resize', ['X', 'R'], ['Y'])], ['Resize']],
    ['a Pad of constant pads on axes from an input', [n('Pad', ['X', 'REPS', '', 'R'], ['Y'])], ['Pad']],
    ['an STFT by a window from an input', [n('STFT', ['X', 'ONE', 'R'], ['Y'])], ['STFT']],
    ['a StringSplit of an input', [n('StringSplit', ['X'], ['Y', 'k'])], ['StringSplit']],
    ['a RoiAlign of boxes from an input (it samples as many points as a box is large)', [n('RoiAlign', ['X', 'R', 'ZERO'], ['Y'])], ['RoiAlign']],
    ['a NonMaxSuppression of boxes from an input', [n('NonMaxSuppression', ['X', 'X', 'TEN'], ['Y'])], ['NonMaxSuppression']],
    ['a OneHot of an input\'s depth', [n('OneHot', ['X', 'R', 'REPS'], ['Y'])], ['OneHot']],
    ['a OneHot of a constant depth', [n('OneHot', ['X', 'TEN', 'REPS'], ['Y'])], []],
    ['several, each named once', [n('Tile', ['X', 'R'], ['t']), n('Tile', ['t', 'R'], ['u']), n('Pad', ['u', 'R'], ['Y'])], ['Pad', 'Tile']],
  ])('%s', async (_what, nodes, expected) => {
    expect(await valueSized(nodes)).toEqual(expected);
  });

  it('takes Loop, If and Scan as value-sized whatever feeds them (a Scan runs as many times as its input has rows)', async () => {
    const loop = n('Loop', ['TEN', '', 'X'], ['Y'], { attribute: [{ name: 'body', type: GRAPH, g: countBody([n('Identity', ['c'], ['c_out']), n('Identity', ['v'], ['v_out'])]) }] });
    expect(await valueSized([loop])).toEqual(['Loop']);
    const branch = (name: string): onnx.IGraphProto => ({ name, node: [n('Identity', ['X'], ['o'])], output: [valueInfo('o', [2, 3])] });
    const cond = n('If', ['b'], ['Y'], { attribute: [{ name: 'then_branch', type: GRAPH, g: branch('t') }, { name: 'else_branch', type: GRAPH, g: branch('e') }] });
    expect(await valueSized([n('Cast', ['R'], ['b0'], { attribute: [{ name: 'to', type: 2, i: BOOL }] }), n('ReduceMax', ['b0'], ['b']), cond])).toEqual(['If']);
 
    const scanBody: onnx.IGraphProto = { name: 'scan', node: [n('Relu', ['s'], ['o'])], input: [valueInfo('s', [3])], output: [valueInfo('o', [3])] };
    expect(await valueSized([n('Scan', ['X'], ['Y'], { attribute: [{ name: 'body', type: GRAPH, g: scanBody }, { name: 'num_scan_inputs', type: 2, i: 1 }] })])).toEqual(['Scan']);
  });

  it('takes what a node holding a subgraph makes as following the request: the subgraph may read any tensor', async () => {
    const ifConstant = n('If', ['T'], ['i'], { attribute: ['then_branch', 'else_branch'].map((name) => ({ name, type: GRAPH, g: { name, node: [n('Identity', ['R'], ['o'])], output: [valueInfo('o', [2], INT64)] } })) });
    expect(await valueSized([constant('T', 1), ifConstant, n('Range', ['ZERO', 'i', 'ONE'], ['Y'])])).toEqual(['If', 'Range']);
    // Any operator holding a subgraph counts itself, whatever its name.
    const holds = (input: string[], output: string[]) => n('Custom', input, output, { attribute: [{ name: 'body', type: GRAPH, g: { name: 'b', node: [n('Identity', ['X'], ['o'])], output: [valueInfo('o', [2, 3])] } }] });
    expect(await valueSized([holds(['TEN'], ['Y'])])).toEqual(['Custom']);
    // So does one inside a local function that only constants feed.
    const wrap: onnx.IFunctionProto = { name: 'Wrap', domain: 'local', input: ['a'], output: ['c'], opsetImport: [{ domain: '', version: 17 }], node: [holds(['a'], ['c'])] };
    expect(await valueSized([n('Wrap', ['TEN'], ['w'], { domain: 'local' }), n('Relu', ['X'], ['Y'])], { functions: [wrap], opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }] })).toEqual(['Custom']);
  });

  it('takes a value-sized operator inside a subgraph or a local function as value-sized whatever feeds it', async () => {
    const scanBody: onnx.IGraphProto = { name: 'scan', node: [n('Range', ['ZERO', 'TEN', 'ONE'], ['o'])], input: [valueInfo('s', [3])], output: [valueInfo('o', [3])] };
    const loop = n('Loop', ['', '', 'X'], ['Y'], { attribute: [{ name: 'body', type: GRAPH, g: countBody([n('Identity', ['c'], ['c_out']), n('Tile', ['v', 'REPS'], ['v_out'])]) }] });
    const outer = n('Loop', ['TEN', '', 'X'], ['Y'], { attribute: [{ name: 'body', type: GRAPH, g: countBody([n('Identity', ['c'], ['c_out']), loop]) }] });
    expect(await valueSized([outer])).toEqual(['Loop', 'Tile']);
    const fn: onnx.IFunctionProto = { name: 'Grow', domain: 'local', input: ['a', 'b'], output: ['c'], opsetImport: [{ domain: '', version: 17 }], node: [n('Tile', ['a', 'b'], ['c'])] };
    const local = { functions: [fn], opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }] };
    // The call, fed the request, is not followed into: it counts itself.
    expect(await valueSized([n('Grow', ['X', 'REPS'], ['Y'], { domain: 'local' })], local)).toEqual(['Tile', 'local.Grow']);
    expect(await valueSized([n('Grow', ['TEN', 'REPS'], ['g'], { domain: 'local' }), n('Relu', ['X'], ['Y'])], local)).toEqual(['Tile']);
    // A function in the standard domain is a call all the same.
    const standardFn = { ...local, functions: [{ ...fn, domain: '' }] };
    expect(await valueSized([n('Grow', ['X', 'REPS'], ['Y'])], standardFn)).toEqual(['Grow', 'Tile']);
    // training_info is never run by a pod.
    const training: onnx.ITrainingInfoProto = { algorithm: { name: 'train', node: [n('Loop', ['TEN', '', 'X'], ['z'])] } };
    expect(await valueSized([n('Relu', ['X'], ['Y'])], { trainingInfo: [training] })).toEqual([]);
  });
});

describe('a shape that the request\'s values chose', () => {
  const reshaped = n('Reshape', ['X', 'R'], ['r']);
  it.each<[string, onnx.INodeProto[], string[]]>([
    ['a MatMul of a Reshape to an input (its outer product can be any size)', [reshaped, n('MatMul', ['r', 'r'], ['Y'])], ['MatMul']],
    ['an Add that broadcasts it against the request', [reshaped, n('Add', ['r', 'X'], ['Y'])], ['Add']],
    ['a Gather of its rows', [n('NonZero', ['X'], ['nz']), n('Gather', ['X', 'nz'], ['Y'])], ['Gather']],
    ['a Mul by what a Slice from an input\'s bounds kept', [n('Slice', ['X', 'ZERO', 'R'], ['s']), n('Mul', ['s', 'X'], ['Y'])], ['Mul']],
    ['a reduction of an empty tensor reshaped to [K, 0], which makes K values from none', [n('Slice', ['X', 'ZERO', 'ZERO'], ['e']), n('Reshape', ['e', 'R'], ['r']), n('ReduceSum', ['r', 'ONE'], ['Y'])], ['ReduceSum']],
    ['a Concat of it with itself, which doubles it each time', [reshaped, n('Concat', ['r', 'r'], ['Y'], { attribute: [{ name: 'axis', type: 2, i: 0 }] })], ['Concat']],
    ['what keeps its size: elementwise on it, layout, one Concat with the request', [reshaped, n('Relu', ['r'], ['a']), n('Flatten', ['a'], ['f']), n('Transpose', ['f'], ['t']),
      n('Concat', ['t', 'X'], ['Y'], { attribute: [{ name: 'axis', type: 2, i: 0 }] })], []],
  ])('%s', async (_what, nodes, expected) => {
    expect(await valueSized(nodes)).toEqual(expected);
  });

  it.each<[string, onnx.INodeProto[]]>([
    ['a Reshape to the request\'s own shape, then a MatMul', [n('Shape', ['X'], ['s']), n('Reshape', ['X', 's'], ['r']), n('MatMul', ['r', 'r'], ['Y'])]],
    ['a Reshape to dimensions of the request and constants, then an Add', [n('Shape', ['X'], ['s']), n('Gather', ['s', 'ZERO'], ['d']), n('Concat', ['d', 'ONE'], ['to'], { attribute: [{ name: 'axis', type: 2, i: 0 }] }),
      n('Reshape', ['X', 'to'], ['r']), n('Add', ['r', 'r'], ['Y'])]],
    ['a LayerNorm written out (reductions, Sub, Pow, Div)', [n('ReduceMean', ['X'], ['m']), n('Sub', ['X', 'm'], ['d']), n('Pow', ['d', 'ONE'], ['p']), n('ReduceMean', ['p'], ['v']), n('Add', ['v', 'X'], ['e']), n('Sqrt', ['e'], ['q']), n('Div', ['d', 'q'], ['Y'])]],
    ['an Unsqueeze and Squeeze by constant axes, then a Mul', [n('Unsqueeze', ['X', 'ZERO'], ['u']), n('Squeeze', ['u', 'ZERO'], ['s']), n('Mul', ['s', 'X'], ['Y'])]],
    ['a Gather of an embedding by the request\'s ids, then a MatMul', [n('Gather', ['X', 'R'], ['e']), n('MatMul', ['e', 'X'], ['Y'])]],
  ])('not %s (how models are exported)', async (_what, nodes) => {
    expect(await valueSized(nodes)).toEqual([]);
  });
});

describe('strings, whose lengths are values', () => {
  const STRING = 8;
  /** S (STRING [1]) fed, REPS an INT64 initializer. */
  async function withString(nodes: onnx.INodeProto[]): Promise<string[]> {
    const graph: onnx.IGraphProto = { name: 'main', node: nodes, initializer: [int64s('REPS', 1000)], input: [valueInfo('S', [1], STRING)], output: [valueInfo('Y', [1], STRING)] };
    const file = path.join(dir, `s${seq++}.onnx`);
    fs.writeFileSync(file, onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 20 }], graph }).finish());
    return (await readOnnxSignature(file)).valueSized;
  }

  it.each<[string, onnx.INodeProto[], string[]]>([
    ['a Tile of a string by a constant (as long as the string, times a thousand)', [n('Tile', ['S', 'REPS'], ['Y'])], ['Tile']],
    ['a StringConcat of a string with itself', [n('StringConcat', ['S', 'S'], ['Y'])], ['StringConcat']],
    ['not a string passed on', [n('Identity', ['S'], ['i']), n('Reshape', ['i', 'REPS'], ['Y'])], []],
  ])('%s', async (_what, nodes, expected) => {
    expect(await withString(nodes)).toEqual(expected);
  });
});

describe('operators of other domains', () => {
  const ml = { opsetImport: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 3 }] };
  const ms = { opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }] };
  it('takes ai.onnx.ml\'s classical models and onnxruntime\'s fused operators as shaped by shapes', async () => {
    expect(await valueSized([n('TreeEnsembleRegressor', ['X'], ['t'], { domain: 'ai.onnx.ml' }), n('Relu', ['t'], ['Y'])], ml)).toEqual([]);
    expect(await valueSized([n('FusedMatMul', ['X', 'X'], ['m'], { domain: 'com.microsoft' }), n('Shape', ['m'], ['s']), n('Range', ['ZERO', 's', 'ONE'], ['Y'])], ms)).toEqual([]);
  });

  it('takes any other, fed the request, as value-sized: what it does with the values is not known here', async () => {
    expect(await valueSized([n('CropAndResize', ['X', 'X', 'R', 'R'], ['Y'], { domain: 'com.microsoft' })], ms)).toEqual(['com.microsoft.CropAndResize']);
    expect(await valueSized([n('Attention', ['X', 'X'], ['Y'], { domain: 'com.microsoft' })], ms)).toEqual(['com.microsoft.Attention']);
    expect(await valueSized([n('Imagined', ['X'], ['Y'], { domain: 'ai.onnx.ml' })], ml)).toEqual(['ai.onnx.ml.Imagined']);
    // Fed only constants, it makes constants.
    expect(await valueSized([n('Attention', ['TEN', 'TEN'], ['a'], { domain: 'com.microsoft' }), n('Range', ['ZERO', 'a', 'ONE'], ['Y'])], ms)).toEqual([]);
  });
});

describe('what it cannot follow counts as following the request', () => {
  it('a name used before the node that makes it', async () => {
    expect(await valueSized([n('Range', ['ZERO', 'k', 'ONE'], ['Y']), constant('k', 7)])).toEqual(['Range']);
  });

  it('another domain\'s operator, even under a standard operator\'s name', async () => {
    const shapeRange = (domain: string) => [n('Add', ['X', 'X'], ['a'], { domain }), n('Shape', ['a'], ['s']), n('Range', ['ZERO', 's', 'ONE'], ['Y'])];
    expect(await valueSized(shapeRange(''))).toEqual([]);
    expect(await valueSized(shapeRange('ai.onnx'))).toEqual([]);
    expect(await valueSized(shapeRange('com.example'))).toEqual(['Range', 'com.example.Add']);
  });

  it('a name that is not UTF-8, which decoded could read as another', async () => {
    // a\xff1 and a\xfe1 both decode to 'a\ufffd1': the Constant would pass for what the request fed.
    const nodes = [n('Identity', ['R'], ['@@1']), constant('@@2', 7), n('Range', ['ZERO', '@@1', 'ONE'], ['Y'])];
    const raw = (b: Buffer) => {
      for (const [from, to] of [['@@1', [0x61, 0xff, 0x31]], ['@@2', [0x61, 0xfe, 0x31]]] as const) {
        for (let i = b.indexOf(from); i >= 0; i = b.indexOf(from, i + 1)) b.set(to, i);
      }
      return b;
    };
    expect(await valueSized(nodes)).toEqual(['Range']);
    expect(await valueSized(nodes, {}, raw)).toEqual(['Range']);
    // A valid name that reads like them is its own.
    expect(await valueSized([n('Identity', ['TEN'], ['a\ufffd1']), n('Range', ['ZERO', 'a\ufffd1', 'ONE'], ['Y'])])).toEqual([]);
  });

  it('a name longer than a string the reader copies: not refused, taken as following the request', async () => {
    const long = 'x'.repeat(1024 * 1024 + 1);
    expect(await valueSized([n('Identity', ['TEN'], [long]), n('Range', ['ZERO', long, 'ONE'], ['Y'])])).toEqual(['Range']);
  });

  it(`names past MAX_ONNX_FLOW_NAME_BYTES (${MAX_ONNX_FLOW_NAME_BYTES}): kept memory is bounded, and the answer errs towards value-sized`, async () => {
    // A chain of Identity nodes from an initializer through long names, then a Range up to its end.
    const chain = (links: number, nameBytes: number) => {
      const names = Array.from({ length: links }, (_, i) => `${i}:`.padEnd(nameBytes, 'x'));
      return [...names.map((name, i) => n('Identity', [i === 0 ? 'TEN' : names[i - 1]!], [name])), n('Range', ['ZERO', names[links - 1]!, 'ONE'], ['Y'])];
    };
    const nameBytes = 900 * 1024;
    const within = Math.floor(MAX_ONNX_FLOW_NAME_BYTES / (nameBytes + 64)) - 8;
    expect(await valueSized(chain(within, nameBytes))).toEqual([]);
    expect(await valueSized(chain(Math.ceil(MAX_ONNX_FLOW_NAME_BYTES / nameBytes) + 1, nameBytes))).toEqual(['Range']);
  });
});
