// The models the project builds itself (npm test builds them first: scripts/setup.js).
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

/** Path of a built model, e.g. 'mnist.onnx' or 'fixtures/add_sub_fp32.onnx'. */
export function modelPath(name: string): string {
  const p = path.join(root, 'models', name);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: run \`npm run setup\` (npm test does)`);
  return p;
}

/** A request to fixtures/heavy.onnx of `rows` rows (FP32 [rows, 1024]): about 8 ms a row on one thread. */
export const heavyInput = (rows: number) => [{ name: 'INPUT0', datatype: 'FP32' as const, shape: [rows, 1024], data: new Float32Array(rows * 1024).fill(0.01) }];
