// What makes onnxruntime recurse as deep as a model asks while it makes a session, which ends the
// process past the thread's stack: lib/onnx's treeDepth (at least the levels of the deepest
// decision tree of an ai.onnx.ml tree ensemble: the most nodes one tree has) and the stack the pod
// gives such a model's sessions (model-repository's treeStackMb); local functions calling one
// another, refused past MAX_ONNX_FUNCTION_NESTING.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { readOnnxSignature, treeLevelsFit, MAX_ONNX_FLOW_NAME_BYTES, MAX_ONNX_FUNCTION_NESTING, TREE_LEVELS_PER_STACK_MIB } from '../../../lib/onnx';
import { treeStackMb } from '../../../services/inference/model-repository';
import { modelPath } from '../../helpers/models';
import { treeModel } from '../../helpers/tree-models';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-onnx-trees-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function depthOf(model: Buffer): Promise<number> {
  const file = path.join(dir, `m${Math.random()}.onnx`);
  fs.writeFileSync(file, model);
  return (await readOnnxSignature(file)).treeDepth;
}

describe('treeDepth', () => {
  it('counts the nodes of the largest tree, not of the forest', async () => {
    // A chain of d decisions has d + 1 leaves: 2d + 1 nodes in one tree.
    expect(await depthOf(treeModel(1000))).toBe(2001);
    expect(await depthOf(treeModel(5, 40))).toBe(11);
  });

  it('reads tree ids as onnxruntime does, 32 bits: ids that differ only above them are one tree', async () => {
    expect(await depthOf(treeModel(5, 40, (tree) => tree * 2 ** 32))).toBe(40 * 11);
  });

  it('is 0 without a tree ensemble', async () => {
    expect((await readOnnxSignature(modelPath('mnist.onnx'))).treeDepth).toBe(0);
    expect((await readOnnxSignature(modelPath('fixtures/loop_count_fp32.onnx'))).treeDepth).toBe(0);
  });
});

describe('treeStackMb', () => {
  it('gives none to trees a worker\'s 4 MiB holds, the stack they need to deeper ones, and refuses past the most', () => {
    expect(treeStackMb(0, 1024)).toBeUndefined();
    expect(treeStackMb(4 * TREE_LEVELS_PER_STACK_MIB, 1024)).toBeUndefined();
    const deep = 60_001;
    const mb = treeStackMb(deep, 1024)!;
    expect(mb).toBe(Math.ceil(deep / TREE_LEVELS_PER_STACK_MIB) + 4);
    expect(treeLevelsFit(deep, mb)).toBe(true);
    expect(() => treeStackMb(deep, 16)).toThrow(/up to 60001 levels deep.*needs 80 MiB.*INFERMESH_SESSION_WORKER_MAX_STACK_MB \(16 MiB\)/);
  });
});

describe('local functions calling one another', () => {
  const io = (name: string): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
  /** The main graph calls f0, which calls f1, … f(n-1) an Identity; `calls(i)` names what f(i) calls, by index. */
  function chain(n: number, calls = (i: number) => (i + 1 < n ? i + 1 : -1), viaIf = false): Buffer {
    const call = (i: number, input: string, output: string): onnx.INodeProto => (i < 0
      ? { opType: 'Identity', input: [input], output: [output] }
      : { opType: `f${i}`, domain: 'local', input: [input], output: [output] });
    const functions: onnx.IFunctionProto[] = Array.from({ length: n }, (_, i) => {
      const inner = call(calls(i), 'a', 'b');
      // The call can sit in a branch of an If inside the function: it is a call all the same.
      const node = viaIf
        ? { opType: 'If', input: ['c'], output: ['b'], attribute: ['then_branch', 'else_branch'].map((name) => ({ name, type: onnx.AttributeProto.AttributeType.GRAPH, g: { name, node: [{ ...inner, output: ['o'] }], output: [io('o')] } })) }
        : inner;
      return { name: `f${i}`, domain: 'local', input: viaIf ? ['a', 'c'] : ['a'], output: ['b'], node: [node], opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }] };
    });
    return Buffer.from(onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
      functions,
      graph: { name: 'g', node: [call(0, 'X', 'Y')], input: [io('X')], output: [io('Y')] },
    }).finish());
  }
  const read = (model: Buffer) => {
    const file = path.join(dir, `f${Math.random()}.onnx`);
    fs.writeFileSync(file, model);
    return readOnnxSignature(file);
  };

  it(`takes ${MAX_ONNX_FUNCTION_NESTING} deep, and refuses one more (1 500 ended the process on a worker thread)`, async () => {
    expect((await read(chain(MAX_ONNX_FUNCTION_NESTING))).valueSized).toEqual(['local.f0']);
    await expect(read(chain(MAX_ONNX_FUNCTION_NESTING + 1))).rejects.toThrow(`local functions call one another ${MAX_ONNX_FUNCTION_NESTING + 1} deep, more than ${MAX_ONNX_FUNCTION_NESTING}`);
    await expect(read(chain(1500))).rejects.toThrow(/call one another 1500 deep/);
  });

  it('counts calls inside a function\'s subgraphs', async () => {
    await expect(read(chain(MAX_ONNX_FUNCTION_NESTING + 1, undefined, true))).rejects.toThrow(/call one another 65 deep/);
  });

  it(`refuses functions whose operators take more than MAX_ONNX_FLOW_NAME_BYTES (${MAX_ONNX_FLOW_NAME_BYTES}) to follow, keeping no more`, async () => {
    // 20 nodes of distinct 1 MiB operator types: the calls cannot all be followed within the budget.
    const big = 'x'.repeat(1024 * 1024);
    const many: onnx.IFunctionProto = { name: 'f', domain: 'local', input: ['a'], output: ['b'], node: Array.from({ length: 20 }, (_, i) => ({ opType: `${i}`.padStart(4, '0') + big.slice(4), domain: 'local', input: ['a'], output: ['b'] })) };
    const model = Buffer.from(onnx.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }], functions: [many],
      graph: { name: 'g', node: [{ opType: 'Identity', input: ['X'], output: ['Y'] }], input: [io('X')], output: [io('Y')] },
    }).finish());
    await expect(read(model)).rejects.toThrow(/could not all be read/);
  });

  it('refuses functions that call themselves, directly or not', async () => {
    await expect(read(chain(1, () => 0))).rejects.toThrow(/call themselves/);
    await expect(read(chain(3, (i) => (i + 1) % 3))).rejects.toThrow(/call themselves/);
  });
});
