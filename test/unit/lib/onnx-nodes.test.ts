// The reader's bound on a model's nodes (INFERMESH_MAX_GRAPH_NODES): every node counts, the graph's,
// its subgraphs' at any depth and its local functions', and a model past the bound is refused with
// how many it has and the setting; every real model here is far below the default.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { readOnnxSignature, DEFAULT_MAX_ONNX_GRAPH_NODES, OnnxFormatError } from '../../../lib/onnx';
import { modelPath, wideModel } from '../../helpers/models';
import { SILERO_MODELS, sileroPath } from '../../helpers/real-models';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-nodes-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(model: Uint8Array): string {
  const file = path.join(dir, `m${Math.random()}.onnx`);
  fs.writeFileSync(file, model);
  return file;
}

/** How many nodes the reader counts in `file`: the count its refusal names under a bound of 0. */
async function nodesOf(file: string): Promise<number> {
  const err = await readOnnxSignature(file, { maxGraphNodes: 0 }).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof OnnxFormatError)) throw new Error(`expected a refusal, got ${String(err)}`);
  return Number(/^the model has (\d+) nodes/.exec(err.message)![1]);
}

const vi = (name: string): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
const BOOL = { name: 'c', type: { tensorType: { elemType: 9, shape: { dim: [] } } } };
const GRAPH = onnx.AttributeProto.AttributeType.GRAPH;

/**
 * y = If(c, then: 2 nodes, else: an If of its own whose branches have 1 node each) followed by a
 * call of a local function of 3 nodes: 2 in the main graph, 2 + 1 + 1 + 1 in subgraphs, 3 in the function.
 */
function nested(): Uint8Array {
  const branch = (name: string, nodes: onnx.INodeProto[]): onnx.IGraphProto => ({ name, node: nodes, output: [vi(`${name}_out`)] });
  const identity = (input: string, output: string): onnx.INodeProto => ({ opType: 'Identity', input: [input], output: [output] });
  const inner: onnx.INodeProto = {
    opType: 'If', input: ['c'], output: ['else_out'],
    attribute: [
      { name: 'then_branch', type: GRAPH, g: branch('inner_then', [identity('x', 'inner_then_out')]) },
      { name: 'else_branch', type: GRAPH, g: branch('inner_else', [identity('x', 'inner_else_out')]) },
    ],
  };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
    functions: [{
      name: 'triple', domain: 'local', input: ['a'], output: ['b'], opsetImport: [{ domain: '', version: 17 }],
      node: [identity('a', 'a1'), identity('a1', 'a2'), identity('a2', 'b')],
    }],
    graph: {
      name: 'nested',
      node: [
        {
          opType: 'If', input: ['c'], output: ['z'],
          attribute: [
            { name: 'then_branch', type: GRAPH, g: branch('then', [identity('x', 'then_mid'), identity('then_mid', 'then_out')]) },
            { name: 'else_branch', type: GRAPH, g: { name: 'else', node: [inner], output: [vi('else_out')] } },
          ],
        },
        { opType: 'triple', domain: 'local', input: ['z'], output: ['y'] },
      ],
      input: [vi('x'), BOOL],
      output: [vi('y')],
    },
  }).finish();
}

describe('the node bound', () => {
  it('counts every node: the graph\'s, its subgraphs\' at any depth, its local functions\'', async () => {
    expect(await nodesOf(write(nested()))).toBe(2 + 5 + 3);
    expect(await nodesOf(write(wideModel(1000)))).toBe(1001);
  });

  it('takes a model at the bound and refuses one node more, naming its count and the setting', async () => {
    const file = write(nested());
    await expect(readOnnxSignature(file, { maxGraphNodes: 10 })).resolves.toMatchObject({ inputs: [{ name: 'x' }, { name: 'c' }] });
    await expect(readOnnxSignature(file, { maxGraphNodes: 9 })).rejects.toThrow(new OnnxFormatError(
      'the model has 10 nodes (its graph, subgraphs and local functions together), more than INFERMESH_MAX_GRAPH_NODES (9) allows: onnxruntime\'s session creation grows faster than the node count, and would hold a pod\'s thread for minutes'));
  });

  it(`refuses by default a graph of more than ${DEFAULT_MAX_ONNX_GRAPH_NODES} nodes, a few bytes each`, async () => {
    const file = write(wideModel(DEFAULT_MAX_ONNX_GRAPH_NODES));
    expect(fs.statSync(file).size).toBeLessThan(4 * 1024 * 1024);
    await expect(readOnnxSignature(file)).rejects.toThrow(/^the model has 100001 nodes .* more than INFERMESH_MAX_GRAPH_NODES \(100000\) allows/);
    await expect(readOnnxSignature(write(wideModel(DEFAULT_MAX_ONNX_GRAPH_NODES - 1)))).resolves.toMatchObject({ outputs: [{ name: 'y' }] });
  });

  it('counts a local function\'s nodes at every call, as onnxruntime expands them', async () => {
    // f0 calls f1 `fan` times, f1 calls f2 `fan` times, f2 has `fan` nodes: fan^3 nodes made of
    // 3·fan + 1 written (30: 27,000 nodes, 22.7 s to make the session here, in 2 KB).
    const fanout = (fan: number): Uint8Array => {
      const fn = (name: string, op: string, domain: string): onnx.IFunctionProto => ({
        name, domain: 'local', input: ['a'], output: ['b'], opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
        node: Array.from({ length: fan }, (_, i) => ({ opType: op, domain, input: [i === 0 ? 'a' : `t${i - 1}`], output: [i === fan - 1 ? 'b' : `t${i}`] })),
      });
      return onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
        functions: [fn('f2', 'Identity', ''), fn('f1', 'f2', 'local'), fn('f0', 'f1', 'local')],
        graph: { name: 'g', node: [{ opType: 'f0', domain: 'local', input: ['x'], output: ['y'] }], input: [vi('x')], output: [vi('y')] },
      }).finish();
    };
    const file = write(fanout(30));
    expect(await nodesOf(file)).toBe(91);
    await expect(readOnnxSignature(file, { maxGraphNodes: 1000 })).rejects.toThrow(/^the model makes more than 1000 nodes once its local functions' calls are expanded, as onnxruntime does, more than INFERMESH_MAX_GRAPH_NODES \(1000\)/);
    await expect(readOnnxSignature(file, { maxGraphNodes: 27_000 })).resolves.toMatchObject({ outputs: [{ name: 'y' }] });
    await expect(readOnnxSignature(file, { maxGraphNodes: 26_999 })).rejects.toThrow(/more than 26999 nodes once its local functions' calls are expanded/);
  });

  it('leaves every real model here far below the default', async () => {
    const counts: Record<string, number> = { mnist: await nodesOf(modelPath('mnist.onnx')) };
    for (const f of SILERO_MODELS) counts[f] = await nodesOf(sileroPath(f));
    expect(counts).toEqual({ 'mnist': 6, 'silero_vad.onnx': 689, 'silero_vad_16k_op15.onnx': 350, 'silero_vad_half.onnx': 325, 'silero_vad_op18_ifless.onnx': 90 });
    for (const n of Object.values(counts)) expect(n * 100).toBeLessThan(DEFAULT_MAX_ONNX_GRAPH_NODES);
  });
});
