// The ONNX signature reader (lib/onnx.ts): it agrees with onnxruntime's own view of every model the
// project builds and of a real pretrained one (Silero VAD), reads dim_value -1 as dynamic, refuses
// every model that declares external data wherever the tensor sits (naming it), and answers
// malformed bytes with a clean OnnxFormatError.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ort } from '../../../lib/ort';
import { readOnnxSignature, OnnxExternalDataError, OnnxFormatError, MAX_ONNX_GRAPH_NESTING, type OnnxSignature, type TensorSignature } from '../../../lib/onnx';
import { datatypeOfOrt } from '../../../lib/tensor';
import { modelPath } from '../../helpers/models';
import { SILERO_MODELS, sileroPath } from '../../helpers/real-models';

let dir: string;
let seq = 0;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(bytes: Uint8Array, name = `m${seq++}.onnx`): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

const FLOAT = 1;
const INT64 = 7;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
const { TENSOR, TENSORS, GRAPH, SPARSE_TENSOR } = onnx.AttributeProto.AttributeType;

function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

function encode(graph: onnx.IGraphProto, extra: Partial<onnx.IModelProto> = {}, irVersion = 8): Uint8Array {
  return onnx.ModelProto.encode({ irVersion, opsetImport: [{ domain: '', version: 17 }], graph, ...extra }).finish();
}

/** Y = X + W, W a [4] initializer; the graph every external-data case below starts from. */
function addGraph(w: onnx.ITensorProto, name = 'main'): onnx.IGraphProto {
  return {
    name,
    node: [{ name: 'add', opType: 'Add', input: ['X', w.name ?? 'W'], output: ['Y'] }],
    initializer: [w],
    input: [valueInfo('X', [4])],
    output: [valueInfo('Y', [4])],
  };
}

const embedded = (name: string): onnx.ITensorProto => ({ name, dataType: FLOAT, dims: [4], floatData: [1, 2, 3, 4] });
const external = (name: string, location = 'weights.bin'): onnx.ITensorProto => ({
  name, dataType: FLOAT, dims: [4], dataLocation: EXTERNAL, externalData: [{ key: 'location', value: location }, { key: 'length', value: '16' }],
});

/** A protobuf varint. */
function varint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return out;
}

/** A length-delimited protobuf field. */
const lenField = (num: number, payload: Uint8Array | number[]) => [...varint(BigInt((num << 3) | 2)), ...varint(BigInt(payload.length)), ...payload];

/** onnxruntime's view of a model, in the reader's terms: names, datatypes, -1 for symbolic dimensions. */
async function ortSignature(file: string | Uint8Array): Promise<Pick<OnnxSignature, 'inputs' | 'outputs'>> {
  const session = typeof file === 'string'
    ? await ort.InferenceSession.create(file, { logSeverityLevel: 4 })
    : await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
  try {
    const view = (list: readonly ort.InferenceSession.ValueMetadata[]): TensorSignature[] => list.map((m) => {
      if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
      return { name: m.name, datatype: datatypeOfOrt(m.type)!, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) };
    });
    expect(session.inputNames).toEqual(session.inputMetadata.map((m) => m.name));
    expect(session.outputNames).toEqual(session.outputMetadata.map((m) => m.name));
    return { inputs: view(session.inputMetadata), outputs: view(session.outputMetadata) };
  } finally {
    await session.release();
  }
}

async function formatError(file: string): Promise<OnnxFormatError> {
  const err = await readOnnxSignature(file).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof OnnxFormatError)) throw new Error(`expected an OnnxFormatError, got ${String(err)}`);
  return err;
}

describe('agrees with onnxruntime', () => {
  const fixtures = fs.readdirSync(path.dirname(modelPath('fixtures/identity_fp32.onnx'))).filter((f) => f.endsWith('.onnx')).sort();
  const loadable = fixtures.filter((f) => f !== 'load_fails.onnx').map((f) => `fixtures/${f}`);

  it('covers the fixtures the signature corner cases need', () => {
    expect(fixtures).toEqual(expect.arrayContaining(['identity_dim_minus_one_fp32.onnx', 'pad_reflect_fp32.onnx', 'identity_fp32.onnx', 'load_fails.onnx']));
  });

  it.each([...loadable, 'mnist.onnx'])('%s', async (name) => {
    const file = modelPath(name);
    const { inputs, outputs } = await readOnnxSignature(file);
    expect({ inputs, outputs }).toEqual(await ortSignature(file));
  });

  it('covers four real exports of a pretrained model (Silero VAD)', () => {
    expect(SILERO_MODELS).toEqual(['silero_vad.onnx', 'silero_vad_16k_op15.onnx', 'silero_vad_half.onnx', 'silero_vad_op18_ifless.onnx']);
  });

  it.each(SILERO_MODELS)('real model: Silero VAD %s', async (name) => {
    const file = sileroPath(name);
    const { inputs, outputs } = await readOnnxSignature(file);
    expect({ inputs, outputs }).toEqual(await ortSignature(file));
  });

  it('reads dim_value -1 (a 10-byte negative varint) as a dynamic dimension, as onnxruntime does', async () => {
    const file = modelPath('fixtures/identity_dim_minus_one_fp32.onnx');
    // The varint of -1 really is in the file: ten bytes, the last 0x01.
    expect(fs.readFileSync(file).includes(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(true);
    const sig = await readOnnxSignature(file);
    expect(sig.inputs).toEqual([{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }]);
    expect(sig.outputs).toEqual([{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] }]);
  });

  it('reads a model onnxruntime cannot load (load_fails.onnx) as its declared signature', async () => {
    await expect(ortSignature(modelPath('fixtures/load_fails.onnx'))).rejects.toThrow(/NoSuchOperator/);
    expect(await readOnnxSignature(modelPath('fixtures/load_fails.onnx'))).toEqual({
      irVersion: 8,
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] }],
      valueSized: [],
      treeDepth: 0,
      // An operator the analysis does not know is taken as mixing rows.
      rowMixing: ['NoSuchOperator'],
    });
  });

  it.each<[string, Uint8Array]>([
    ['other negative dim_values, zero and a large one', encode({
      node: [{ opType: 'Identity', input: ['X'], output: ['Y'] }],
      input: [valueInfo('X', [-7, 0, 2 ** 40, 'n'])],
      output: [valueInfo('Y', [-7, 0, 2 ** 40, 'n'])],
    })],
    ['a scalar and an input without a shape', encode({
      node: [{ opType: 'Add', input: ['X', 'S'], output: ['Y'] }],
      input: [valueInfo('X', []), { name: 'S', type: { tensorType: { elemType: FLOAT } } }],
      output: [{ name: 'Y', type: { tensorType: { elemType: FLOAT } } }],
    })],
    ['IR 3: an initializer also listed as a graph input is not an input', encode(addGraph(embedded('W')), {}, 3)],
    ['IR 8: an initializer listed as a graph input (overridable) is not an input either', encode({
      ...addGraph(embedded('W')),
      input: [valueInfo('X', [4]), valueInfo('W', [4])],
    })],
    ['a subgraph, a function and a sparse initializer', encode({
      node: [
        { name: 'f', opType: 'AddTwice', domain: 'local', input: ['X', 'W'], output: ['T'] },
        {
          name: 'if', opType: 'If', input: ['C'], output: ['Y'], attribute: [
            { name: 'then_branch', type: GRAPH, g: { name: 'then', node: [{ opType: 'Identity', input: ['T'], output: ['A'] }], output: [valueInfo('A', [4])] } },
            { name: 'else_branch', type: GRAPH, g: { name: 'else', node: [{ opType: 'Neg', input: ['T'], output: ['B'] }], output: [valueInfo('B', [4])] } },
          ],
        },
      ],
      initializer: [{ name: 'C', dataType: 9, dims: [], int32Data: [1] }],
      sparseInitializer: [{ values: { name: 'W', dataType: FLOAT, dims: [1], floatData: [5] }, indices: { name: 'W_i', dataType: INT64, dims: [1], int64Data: [2] }, dims: [4] }],
      input: [valueInfo('X', [4])],
      output: [valueInfo('Y', [4])],
    }, {
      opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
      functions: [{ name: 'AddTwice', domain: 'local', input: ['a', 'b'], output: ['c'], opsetImport: [{ domain: '', version: 17 }], node: [
        { opType: 'Add', input: ['a', 'b'], output: ['ab'] },
        { opType: 'Add', input: ['ab', 'b'], output: ['c'] },
      ] }],
    })],
  ])('%s', async (_what, bytes) => {
    const file = write(bytes);
    const { inputs, outputs } = await readOnnxSignature(file);
    expect({ inputs, outputs }).toEqual(await ortSignature(file));
  });
});

describe('refuses external data, naming the tensor', () => {
  const thenBranch = (w: onnx.ITensorProto): onnx.IGraphProto => ({ ...addGraph(w, 'then'), input: [] });
  const cases: [string, Uint8Array, RegExp][] = [
    ['an initializer (data_location EXTERNAL and a location)', encode(addGraph(external('W', 'other.onnx'))),
      /^initializer 'W' declares external data \(location 'other\.onnx'\); infermesh serves only self-contained models/],
    ['an initializer with data_location EXTERNAL only', encode(addGraph({ ...embedded('W'), floatData: [], dataLocation: EXTERNAL })),
      /^initializer 'W' declares external data \(data_location EXTERNAL\)/],
    ['an initializer with external_data entries only', encode(addGraph({ ...embedded('W'), externalData: [{ key: 'offset', value: '0' }] })),
      /^initializer 'W' declares external data \(external_data entries\)/],
    ['a Constant node\'s value attribute', encode({
      node: [
        { name: 'const', opType: 'Constant', output: ['W'], attribute: [{ name: 'value', type: TENSOR, t: external('cw') }] },
        { name: 'add', opType: 'Add', input: ['X', 'W'], output: ['Y'] },
      ],
      input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^tensor 'cw' in attribute 'value' of node 'const' declares external data \(location 'weights\.bin'\)/],
    ['a TENSORS attribute', encode({
      node: [{ name: 'custom', opType: 'Identity', input: ['X'], output: ['Y'], attribute: [{ name: 'list', type: TENSORS, tensors: [embedded('a'), external('b')] }] }],
      input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^tensor 'b' in attribute 'list' of node 'custom'/],
    ['a subgraph\'s initializer', encode({
      node: [{ name: 'if', opType: 'If', input: ['C'], output: ['Y'], attribute: [
        { name: 'then_branch', type: GRAPH, g: thenBranch(external('W')) },
        { name: 'else_branch', type: GRAPH, g: thenBranch(embedded('W')) },
      ] }],
      input: [valueInfo('C', [], 9), valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^initializer 'W' of graph 'then' in attribute 'then_branch' of node 'if' declares/],
    ['a subgraph of a subgraph (GRAPHS attribute)', encode({
      node: [{ name: 'outer', opType: 'Custom', input: ['X'], output: ['Y'], attribute: [{ name: 'bodies', type: onnx.AttributeProto.AttributeType.GRAPHS, graphs: [{
        name: 'b0', node: [{ name: 'inner', opType: 'If', input: ['C'], output: ['Z'], attribute: [{ name: 'then_branch', type: GRAPH, g: thenBranch(external('deep')) }] }],
      }] }] }],
      input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^initializer 'deep' of graph 'then' in attribute 'then_branch' of node 'inner' of graph 'b0' in attribute 'bodies' of node 'outer'/],
    ['a sparse initializer\'s values', encode({ ...addGraph(embedded('W')), sparseInitializer: [{ values: external('S'), indices: { name: 'S_i', dataType: INT64, dims: [1], int64Data: [0] }, dims: [4] }] }),
      /^sparse initializer 'S' declares external data/],
    ['a sparse initializer\'s indices', encode({ ...addGraph(embedded('W')), sparseInitializer: [{ values: embedded('S'), indices: { ...external('S_i'), dataType: INT64 }, dims: [4] }] }),
      /^sparse initializer \(indices\) 'S_i' declares external data/],
    ['a SPARSE_TENSOR attribute', encode({
      node: [{ name: 'c', opType: 'Constant', output: ['Y'], attribute: [{ name: 'sparse_value', type: SPARSE_TENSOR, sparseTensor: { values: external('sv'), indices: { name: 'si', dataType: INT64, dims: [1], int64Data: [0] }, dims: [4] } }] }],
      input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^sparse tensor 'sv' in attribute 'sparse_value' of node 'c'/],
    ['a node of a model-local function', encode(addGraph(embedded('W')), {
      functions: [{ name: 'leaky', domain: 'local', node: [{ name: 'k', opType: 'Constant', output: ['z'], attribute: [{ name: 'value', type: TENSOR, t: external('fw') }] }] }],
    }), /^tensor 'fw' in attribute 'value' of node 'k' in function 'leaky'/],
    // FunctionProto.attribute_proto (11) is newer than onnx-proto's schema: written by hand.
    ['a function\'s default attribute', Uint8Array.of(...encode(addGraph(embedded('W'))), ...lenField(25, [
      ...onnx.FunctionProto.encode({ name: 'leaky', domain: 'local' }).finish(),
      ...lenField(11, onnx.AttributeProto.encode({ name: 'default_w', type: TENSOR, t: external('dw') }).finish()),
    ])), /^tensor 'dw' in attribute 'default_w' in function 'leaky'/],
    ['a training_info graph', encode(addGraph(embedded('W')), {
      trainingInfo: [{ initialization: { name: 'init', initializer: [external('seed')] } }],
    }), /^initializer 'seed' of graph 'init' in training_info/],
    ['an unnamed tensor, with a hostile location shown escaped', encode({
      node: [{ name: 'const', opType: 'Constant', output: ['Y'], attribute: [{ name: 'value', type: TENSOR, t: { ...external('', `../x\n${'y'.repeat(300)}`) } }] }],
      input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])],
    }), /^tensor \(unnamed\) in attribute 'value' of node 'const' declares external data \(location '\.\.\/x\\ny{194}…'\)/],
  ];

  it.each(cases)('%s', async (_where, bytes, message) => {
    const err = await formatError(write(bytes));
    expect(err).toBeInstanceOf(OnnxExternalDataError);
    expect(err.message).toMatch(message);
  });

  it('refuses the model that would make onnxruntime serve a sibling artifact\'s bytes', async () => {
    // A pod keeps every artifact in one folder as <sha256>.onnx; onnxruntime resolves a location
    // relative to the model's folder, "../" included, and reads whatever file it names.
    const folder = fs.mkdtempSync(path.join(dir, 'pod-'));
    const sibling = path.join(folder, `${'ab'.repeat(32)}.onnx`);
    fs.writeFileSync(sibling, Buffer.from(Float32Array.of(11, 22, 33, 44).buffer));
    for (const location of [path.basename(sibling), `../${path.basename(folder)}/${path.basename(sibling)}`]) {
      const file = path.join(folder, 'thief.onnx');
      fs.writeFileSync(file, encode(addGraph(external('W', location))));
      const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
      const out = await session.run({ X: new ort.Tensor('float32', new Float32Array(4), [4]) });
      await session.release();
      expect(Array.from(out.Y!.data as Float32Array)).toEqual([11, 22, 33, 44]); // the leak is real
      const err = await formatError(file);
      expect(err).toBeInstanceOf(OnnxExternalDataError);
      expect(err.message).toContain(`initializer 'W' declares external data (location '${location}')`);
    }
  });
});

describe('malformed input', () => {
  const graph = (): onnx.IGraphProto => ({ node: [{ opType: 'Identity', input: ['X'], output: ['Y'] }], input: [valueInfo('X', [4])], output: [valueInfo('Y', [4])] });
  const graphBytes = () => onnx.GraphProto.encode(graph()).finish();
  function nested(depth: number): onnx.IGraphProto {
    let g: onnx.IGraphProto = { name: `g${depth}` };
    for (let i = depth - 1; i >= 0; i--) g = { name: `g${i}`, node: [{ name: `n${i}`, opType: 'Custom', attribute: [{ name: 'body', type: GRAPH, g }] }] };
    return g;
  }

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /^empty file$/],
    ['a varint cut short', () => Uint8Array.of(0x08), /truncated varint/],
    ['a varint of eleven bytes', () => new Uint8Array(11).fill(0xff), /malformed varint/],
    // The bits above 64 are dropped (as protobuf does): 2^63 - 1 remains, too large for an ir_version.
    ['a ten-byte varint with bits above 64', () => Uint8Array.of(0x08, ...new Array<number>(9).fill(0xff), 0x02), /ir_version out of range/],
    ['field number 0', () => Uint8Array.of(0x00, 0x00), /field number 0/],
    ['a field number above 2^32', () => Uint8Array.of(...varint(1n << 35n), 0), /field number out of range/],
    ['wire type 6', () => Uint8Array.of(0x0e), /unsupported wire type 6/],
    ['an end-group without a start', () => Uint8Array.of(0x0c), /end of a group that never started/],
    ['an unterminated group', () => Uint8Array.of(0x08, 0x08, 0x0b, 0x08, 0x01), /unterminated group/],
    ['a group closed by another field number', () => Uint8Array.of(0x0b, 0x14), /mismatched end of group/],
    ['groups nested too deep', () => Uint8Array.of(...new Array<number>(200).fill(0x0b)), /groups nested more than 100 deep/],
    ['a length past the end of the file', () => Uint8Array.of(0x3a, 0x05, 0x00), /field runs past its message/],
    ['a length above 2^53', () => Uint8Array.of(0x3a, ...varint(1n << 60n)), /field length out of range/],
    ['a field running past its parent message', () => Uint8Array.of(0x08, 0x08, 0x3a, 0x04, 0x12, 0x05, 0, 0, 0x08, 0x08), /field runs past its message/],
    ['no ir_version', () => Uint8Array.of(...lenField(7, graphBytes())), /no ir_version/],
    ['no graph', () => Uint8Array.of(0x08, 0x08), /no graph/],
    ['an ir_version above 2^53', () => Uint8Array.of(0x08, ...varint(1n << 60n)), /ir_version out of range/],
    ['a dimension above 2^53', () => encode({ ...graph(), input: [valueInfo('X', [2 ** 60])] }), /tensor 'X': dimension 1152921504606846976 is too large/],
    ['a name above 1 MiB', () => encode({ ...graph(), input: [valueInfo('x'.repeat(1024 * 1024 + 1), [4])] }), /string field longer than 1048576 bytes/],
    ['subgraphs nested too deep', () => encode({ ...graph(), node: nested(MAX_ONNX_GRAPH_NESTING + 1).node }), /subgraphs nested more than 32 deep/],
    ['the graph field repeated 17 times', () => Uint8Array.of(0x08, 0x08, ...new Array<number[]>(17).fill(lenField(7, graphBytes())).flat()), /graph field occurs more than 16 times/],
    ['a signature above 1 MiB', () => encode({ ...graph(), input: Array.from({ length: 20_000 }, (_, i) => valueInfo(`input_${i}_${'x'.repeat(40)}`, [4])) }), /inputs and outputs take more than 1048576 bytes/],
    ['an input with no type', () => encode({ ...graph(), input: [{ name: 'X' }] }), /'X' is of no declared type: infermesh serves tensors only/],
    ['a sequence input', () => encode({ ...graph(), input: [{ name: 'X', type: { sequenceType: { elemType: { tensorType: { elemType: FLOAT } } } } }] }), /'X' is a sequence: infermesh serves tensors only/],
    ['an input without a name', () => encode({ ...graph(), input: [valueInfo('', [4])] }), /a graph input or output has no name/],
    ['an element type infermesh cannot serve (bfloat16)', () => encode({ ...graph(), input: [valueInfo('X', [4], 16)] }), /tensor 'X' has an element type \(16\) infermesh cannot serve/],
    ['a graph with no inputs but initializers', () => encode({ ...addGraph(embedded('W')), input: [valueInfo('W', [4])] }), /the graph has no inputs/],
    ['a graph with no outputs', () => encode({ ...graph(), output: [] }), /the graph has no outputs/],
    // Served, it would ask for the output twice whenever a request names none, and refuse the caller.
    ['an output declared twice', () => encode({ ...graph(), output: [valueInfo('Y', [4]), valueInfo('Y', [4])] }), /the graph declares output 'Y' more than once/],
    ['an input declared twice', () => encode({ ...graph(), input: [valueInfo('X', [4]), valueInfo('X', [4])] }), /the graph declares input 'X' more than once/],
    ['random text', () => new TextEncoder().encode('this is not a model at all'), /./],
  ];

  it.each(cases)('%s', async (_what, bytes, message) => {
    const err = await formatError(write(bytes()));
    expect(err).not.toBeInstanceOf(OnnxExternalDataError);
    expect(err.message).toMatch(message);
  });

  it('still reads a model whose subgraphs nest exactly to the limit, and skips unknown fields, groups included', async () => {
    const g = encode({ ...graph(), node: nested(MAX_ONNX_GRAPH_NESTING).node?.concat(graph().node ?? []) });
    // An unknown field 99 holding a group (with a nested group) at the model's top level.
    const group = [...varint(BigInt((99 << 3) | 3)), 0x08, 0x01, ...varint(BigInt((100 << 3) | 3)), ...varint(BigInt((100 << 3) | 4)), ...varint(BigInt((99 << 3) | 4))];
    const sig = await readOnnxSignature(write(Uint8Array.of(...group, ...g)));
    expect(sig.inputs).toEqual([{ name: 'X', datatype: 'FP32', shape: [4] }]);
    // onnxruntime (through protobuf) skips the group too.
    expect((await ortSignature(Uint8Array.of(...group, ...encode(graph())))).inputs).toEqual(sig.inputs);
  });

  it('seeks past weights: a 5 GiB initializer costs the reader no more than a few megabytes', async () => {
    // The file is sparse: its weights are a hole, so the test needs no disk space. A reader that
    // loaded them would need 5 GiB (more than one Buffer can hold).
    const weightBytes = 5 * 1024 ** 3;
    const tensorHead = [...lenField(8, new TextEncoder().encode('W')), 0x08, 0x04, 0x10, 0x01, ...varint(BigInt((9 << 3) | 2)), ...varint(BigInt(weightBytes))];
    const tensorLen = tensorHead.length + weightBytes;
    const initHead = [...varint(BigInt((5 << 3) | 2)), ...varint(BigInt(tensorLen))];
    const rest = graphBytes();
    const graphLen = rest.length + initHead.length + tensorLen;
    const head = Uint8Array.of(0x08, 0x08, ...varint(BigInt((7 << 3) | 2)), ...varint(BigInt(graphLen)), ...rest, ...initHead, ...tensorHead);
    const file = write(head, 'huge.onnx');
    fs.truncateSync(file, head.length + weightBytes);
    expect(fs.statSync(file).size).toBe(head.length + weightBytes);

    let peak = process.memoryUsage.rss();
    const before = peak;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 1);
    try {
      const sig = await readOnnxSignature(file);
      expect(sig.inputs).toEqual([{ name: 'X', datatype: 'FP32', shape: [4] }]);
    } finally {
      clearInterval(sampler);
      fs.rmSync(file);
    }
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });
});
