// Property tests of the ONNX signature reader (lib/onnx.ts), a parser of untrusted file bytes: on
// random bytes and on real models with bytes changed, inserted, deleted or cut off it answers a
// signature or an OnnxFormatError, nothing else; wherever onnxruntime loads a changed model, the
// reader sees the inputs onnxruntime sees; and no changed model that makes onnxruntime serve
// another file's bytes gets past it. Fixed seeds, so a failure reproduces.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { onnx } from 'onnx-proto';
import { ort } from '../../../lib/ort';
import { readOnnxSignature, OnnxFormatError, type OnnxSignature } from '../../../lib/onnx';
import { datatypeOfOrt } from '../../../lib/tensor';
import { modelPath } from '../../helpers/models';

jest.setTimeout(120_000);

let dir: string;
let file: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-prop-'));
  file = path.join(dir, 'model.onnx');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The reader's answer for `bytes`: a signature, or the OnnxFormatError; anything else fails the test. */
async function read(bytes: Uint8Array): Promise<OnnxSignature | OnnxFormatError> {
  fs.writeFileSync(file, bytes);
  try {
    return await readOnnxSignature(file);
  } catch (err) {
    if (err instanceof OnnxFormatError) return err;
    throw err;
  }
}

type Mutation = { op: 'set' | 'insert' | 'delete' | 'cut'; at: number; byte: number };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('set', 'set', 'set', 'insert', 'delete', 'cut'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});

function mutate(base: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = Buffer.from(base);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === 'set') b[at] = m.byte;
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.of(m.byte), b.subarray(at)]);
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else b = b.subarray(0, at);
  }
  return b;
}

const FLOAT = 1;
const vi = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
  name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

/** A model with most of what the reader walks: a subgraph, a function, a sparse initializer, dim_value -1. */
const rich = onnx.ModelProto.encode({
  irVersion: 8,
  opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
  graph: {
    name: 'rich',
    node: [
      { name: 'f', opType: 'Twice', domain: 'local', input: ['X'], output: ['T'] },
      { name: 'if', opType: 'If', input: ['C'], output: ['Y'], attribute: [
        { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: { name: 'then', node: [{ opType: 'Add', input: ['T', 'W'], output: ['A'] }], output: [vi('A', [-1, 4])] } },
        { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: { name: 'else', node: [{ opType: 'Sub', input: ['T', 'W'], output: ['B'] }], output: [vi('B', [-1, 4])] } },
      ] },
    ],
    initializer: [{ name: 'C', dataType: 9, dims: [], int32Data: [1] }],
    sparseInitializer: [{ values: { name: 'W', dataType: FLOAT, dims: [1], floatData: [5] }, indices: { name: 'W_i', dataType: 7, dims: [1], int64Data: [2] }, dims: [4] }],
    input: [vi('X', [-1, 4])],
    output: [vi('Y', [-1, 4])],
  },
  functions: [{ name: 'Twice', domain: 'local', input: ['a'], output: ['b'], opsetImport: [{ domain: '', version: 17 }], node: [{ opType: 'Add', input: ['a', 'a'], output: ['b'] }] }],
}).finish();

const bases: Uint8Array[] = [
  ...['identity_fp32', 'identity_bytes', 'add_sub_int64', 'identity_dim_minus_one_fp32', 'pad_reflect_fp32', 'fails'].map((n) => fs.readFileSync(modelPath(`fixtures/${n}.onnx`))),
  rich,
];

it('answers random bytes with a signature or an OnnxFormatError', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
    await read(bytes);
  }), { seed: 1301, numRuns: 1500 });
});

it('answers changed real models with a signature or an OnnxFormatError', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 6 }), async (base, mutations) => {
    await read(mutate(base, mutations));
  }), { seed: 1302, numRuns: 3000 });
});

it('sees the inputs onnxruntime sees in every changed model onnxruntime loads', async () => {
  let loaded = 0;
  await fc.assert(fc.asyncProperty(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (base, mutations) => {
    const bytes = mutate(base, mutations);
    const ours = await read(bytes);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 4 });
    } catch {
      return; // onnxruntime refuses it too
    }
    loaded++;
    try {
      // Three refusals are deliberate: a graph output that declares no type (onnxruntime infers one;
      // infermesh needs it declared), a fixed dimension above 2^53 (no request could ever fill it)
      // and a graph with no outputs (onnxruntime makes a session that answers nothing).
      if (ours instanceof OnnxFormatError && /of no declared type|is too large|the graph has no outputs/.test(ours.message)) return;
      expect(ours).not.toBeInstanceOf(OnnxFormatError);
      const sig = ours as OnnxSignature;
      expect(sig.inputs).toEqual(session.inputMetadata.map((m) => ({
        name: m.name,
        datatype: m.isTensor ? datatypeOfOrt(m.type) : 'not a tensor',
        shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [],
      })));
      // Output shapes are onnxruntime's own inference (it may refine what the file declares).
      expect(sig.outputs.map((o) => [o.name, o.datatype])).toEqual(session.outputMetadata.map((m) => [m.name, m.isTensor ? datatypeOfOrt(m.type) : 'not a tensor']));
    } finally {
      await session.release();
    }
  }), { seed: 1303, numRuns: 600 });
  expect(loaded).toBeGreaterThan(20); // the property was really exercised
});

it('lets no changed model through that makes onnxruntime serve another file\'s bytes', async () => {
  // Y = X + W, with W's data in the sibling file: a run on zeros answers the sibling's numbers.
  const sibling = path.join(dir, 'sibling.onnx');
  fs.writeFileSync(sibling, Buffer.from(Float32Array.of(11, 22, 33, 44).buffer));
  const thief = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'thief',
      node: [{ opType: 'Add', input: ['X', 'W'], output: ['Y'] }],
      initializer: [{ name: 'W', dataType: FLOAT, dims: [4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'sibling.onnx' }] }],
      input: [vi('X', [4])],
      output: [vi('Y', [4])],
    },
  }).finish();
  let leaked = 0;
  await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 0, maxLength: 3 }), async (mutations) => {
    const bytes = mutate(thief, mutations);
    const ours = await read(bytes);
    let values: number[];
    try {
      const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
      const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(4), [4]) });
      await session.release();
      values = Array.from(Object.values(out)[0]!.data as Float32Array);
    } catch {
      return;
    }
    if (values.some((v) => v === 11 || v === 22 || v === 33 || v === 44)) {
      leaked++;
      expect(ours).toBeInstanceOf(OnnxFormatError);
    }
  }), { seed: 1304, numRuns: 400, examples: [[[]]] });
  expect(leaked).toBeGreaterThan(0); // the unchanged thief leaks, so the check ran
});
