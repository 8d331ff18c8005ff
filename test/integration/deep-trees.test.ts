// A model whose decision tree is deep (an ai.onnx.ml TreeEnsembleRegressor 30 000 decisions deep, a
// 1.6 MB file): onnxruntime builds a tree by recursing once per level on the stack of the thread
// that makes the session, and this one overflows a worker thread's 4 MiB and the pod's own 8 MiB,
// ending the process. The pod gives its sessions workers of their own with the stack they need,
// never a shared worker or its own thread; past INFERMESH_SESSION_WORKER_MAX_STACK_MB the load
// fails with why, and the pod serves on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceApi } from '../../client/index';
import { startTestMesh, waitReady, inferenceClient, type TestMesh } from '../helpers/mesh';
import { treeModel } from '../helpers/tree-models';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

describe('a model with a deep decision tree', () => {
  let mesh: TestMesh;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-trees-'));
    const file = path.join(dir, 'deep.onnx');
    fs.writeFileSync(file, treeModel(30_000));
    mesh = await startTestMesh();
    await mesh.registryApi.push('deep', file);
    await mesh.push('small', 'fixtures/add_sub_fp32.onnx');
  });

  afterAll(async () => {
    await mesh?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const x = (...values: number[]) => [{ name: 'X', datatype: 'FP32' as const, shape: [values.length, 1], data: Float32Array.from(values) }];

  it('loads on workers of its own with the stack its tree needs, where the pod would share or inline a small model', async () => {
    // Any version whose one-row runs take under 20 ms would run on the pod's thread; shared workers on.
    const pod = await mesh.startPod({ INFERMESH_INLINE_RUN_US: '20000', INFERMESH_SHARED_SESSION_WORKERS: '1' });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['deep', 'small'], 60_000);
      // x beyond every decision walks the whole chain to the leaf that weighs 1.
      const out = await api.infer('deep', x(-1, 5, 1e9));
      expect(Array.from(out.outputs[0]!.data as Float32Array)).toEqual([0, 0, 1]);
      expect(await api.serverReady()).toBe(true);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });

  it('fails to load, with why, past INFERMESH_SESSION_WORKER_MAX_STACK_MB, and the pod serves on', async () => {
    const pod = await mesh.startPod({ INFERMESH_SESSION_WORKER_MAX_STACK_MB: '16' });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['small'], 60_000);
      const entry = await waitFor('deep to fail to load', async () => (await api.repositoryIndex()).find((e) => e.name === 'deep' && e.reason !== ''), 60_000);
      expect(entry.reason).toMatch(/decision trees are up to 60001 levels deep: onnxruntime builds them recursively, which needs 80 MiB of a thread's stack, more than INFERMESH_SESSION_WORKER_MAX_STACK_MB \(16 MiB\) gives/);
      expect(await api.modelReady('deep')).toBe(false);
      expect(await api.serverReady()).toBe(true);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });
});
