// lib/onnx's treeDepth (at least the levels of the deepest decision tree of an ai.onnx.ml tree
// ensemble: the most nodes one tree has) and the stack the pod gives such a model's sessions
// (model-repository's treeStackMb): onnxruntime builds a tree recursively, one frame per level.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readOnnxSignature, treeLevelsFit, TREE_LEVELS_PER_STACK_MIB } from '../../../lib/onnx';
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
