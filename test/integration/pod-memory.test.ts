// What a loaded model costs, measured by a real pod and reported in its heartbeat: each version's
// resident memory after its load and warm-up less before (a model with 64 MiB of weights it uses
// costs at least that; MNIST, a 0.4 MB model, much less), the pod's budget for models
// (INFERMESH_MODEL_MEMORY_MB), what its versions take together, and its resident memory, all seen
// through the registry's ListPods.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ElemType, encodeModel, initializer, node, tensor } from '../../tools/models/onnx-builder';
import { startTestMesh, type TestMesh } from '../helpers/mesh';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const SIDE = 4096; // a 4096 × 4096 FP32 weight: 64 MiB

describe('a pod\'s memory, as it reports it', () => {
  let mesh: TestMesh;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pod-memory-'));
    // OUTPUT0 = INPUT0 × W: the weights are used, so onnxruntime keeps them.
    const weights = new Float32Array(SIDE * SIDE).fill(0.5);
    const wide = path.join(dir, 'wide.onnx');
    fs.writeFileSync(wide, encodeModel({
      name: 'wide',
      inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', SIDE])],
      outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', SIDE])],
      nodes: [node('MatMul', ['INPUT0', 'W'], ['OUTPUT0'])],
      initializers: [initializer('W', ElemType.FLOAT, [SIDE, SIDE], weights)],
    }));
    mesh = await startTestMesh();
    await mesh.registryApi.push('wide', wide);
    await mesh.registryApi.push('mnist', modelPath('mnist.onnx'));
  });

  afterAll(async () => {
    await mesh?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reports each version\'s cost, what they take together, its budget and its resident memory', async () => {
    await mesh.startPod({ INFERMESH_POD_NAME: 'pod-memory', INFERMESH_MODEL_MEMORY_MB: '3000', INFERMESH_SESSION_WORKERS: '1' });
    const pod = await waitFor('both versions ready with their memory', async () => {
      const p = (await mesh.registryApi.pods()).find((x) => x.name === 'pod-memory');
      const ready = p?.versions.filter((v) => v.state === 'READY' && Number(v.memory_bytes) > 0) ?? [];
      return ready.length === 2 ? p : undefined;
    }, 60_000);
    const cost = (model: string) => Number(pod.versions.find((v) => v.model === model)!.memory_bytes);
    expect(cost('wide')).toBeGreaterThanOrEqual(64 * MiB);
    // At least its weights, whatever the process freed while it loaded.
    expect(cost('mnist')).toBeGreaterThanOrEqual(fs.statSync(modelPath('mnist.onnx')).size);
    expect(cost('mnist')).toBeLessThan(cost('wide'));
    expect(Number(pod.memory_budget_bytes)).toBe(3000 * MiB);
    expect(Number(pod.memory_used_bytes)).toBe(cost('wide') + cost('mnist'));
    expect(Number(pod.rss_bytes)).toBeGreaterThan(Number(pod.memory_used_bytes));
  });
});
