// The models the project builds itself (npm test builds them first: scripts/setup.js).
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ElemType, encodeModel, initializer, node, tensor } from '../../tools/models/onnx-builder';

const root = path.resolve(__dirname, '../..');

/** Path of a built model, e.g. 'mnist.onnx' or 'fixtures/add_sub_fp32.onnx'. */
export function modelPath(name: string): string {
  const p = path.join(root, 'models', name);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: run \`npm run setup\` (npm test does)`);
  return p;
}

/** A request to fixtures/heavy.onnx of `rows` rows (FP32 [rows, 1024]): about 8 ms a row on one thread. */
export const heavyInput = (rows: number) => [{ name: 'INPUT0', datatype: 'FP32' as const, shape: [rows, 1024], data: new Float32Array(rows * 1024).fill(0.01) }];

/**
 * A valid ONNX model of `nodes` + 1 Identity nodes that all read its one input x (FP32 [1]; y is its
 * output): a few bytes a node, and a session onnxruntime makes in a time that grows faster than the
 * node count (16 000: about 3 s on two busy cores, 24 000: about 7 s).
 */
export function wideModel(nodes: number): Uint8Array {
  const vi = (name: string): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
  const node: onnx.INodeProto[] = [{ opType: 'Identity', input: ['x'], output: ['y'] }];
  for (let i = 0; i < nodes; i++) node.push({ opType: 'Identity', input: ['x'], output: [`t${i}`] });
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'wide', node, input: [vi('x')], output: [vi('y')] } }).finish();
}

/** add_3: OUTPUT0 = INPUT0 + 3 (FP32 [batch, 4]), a session made and run in microseconds. */
export function addModel(): Uint8Array {
  return encodeModel({
    name: 'add_3',
    inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', 4])],
    outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', 4])],
    nodes: [node('Add', ['INPUT0', 'K'], ['OUTPUT0'])],
    initializers: [initializer('K', ElemType.FLOAT, [1], Float32Array.of(3))],
  });
}
