// A pod whose version's session takes long to make (a graph of tens of thousands of nodes, pushed
// by one team): past INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS on a shared worker, and then past
// INFERMESH_LOAD_TIMEOUT_MS on workers of its own, the load fails, the version is UNAVAILABLE with
// why (in the pod's index and the registry's view of the pod), and another team's version loads
// and serves meanwhile; within its budget, a slow load holds up other versions' loads for no longer
// than INFERMESH_LOAD_ALONE_MS. A graph of 16 000 Identity nodes reading one input takes
// onnxruntime about 3 s to load here, well past the budgets below (300, 600 and 200 ms); the time
// grows faster than the count (24 000 take about 7 s, five times as long on a busy machine).
import { InferenceApi } from '../../client/index';
import { setAsideWorkers } from '../../services/inference/session-host';
import { startTestMesh, waitReady, inferenceClient, type TestMesh } from '../helpers/mesh';
import { modelPath, wideModel } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import fs from 'node:fs';

jest.setTimeout(180_000);

const addSubInput = [
  { name: 'INPUT0', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
  { name: 'INPUT1', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
];

describe('a load past its budget on a pod', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
  });

  afterAll(async () => {
    await mesh?.close();
    await waitFor('the set-aside workers to exit', () => setAsideWorkers() === 0, 60_000);
  });

  it('fails with why, on a shared worker and then on its own, while another team\'s version loads and serves', async () => {
    const pod = await mesh.startPod({
      INFERMESH_SHARED_SESSION_WORKERS: '1', INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS: '300', INFERMESH_LOAD_TIMEOUT_MS: '600', INFERMESH_LOAD_RETRY_BASE_MS: '100',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await mesh.registryApi.push('team-a', wideModel(16_000));
      // While its worker makes the session, the pod could not end by process.exit.
      expect(await waitFor('team-a\'s session to be under way', () => pod.cannotExit?.())).toMatch(/inside onnxruntime/);
      await mesh.registryApi.push('team-b', fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx')));
      await waitReady(inferenceClient(address), ['team-b']);
      expect((await api.infer('team-b', addSubInput)).outputs.map((o) => Array.from(o.data as Float32Array))).toEqual([[2, 3, 4, 5], [0, 1, 2, 3]]);
      const shared = await waitFor('team-a to fail on the shared worker', () => pod.repo.index().find((e) => e.name === 'team-a' && e.state === 'UNAVAILABLE'));
      expect(shared.reason).toMatch(/^making its session took longer than INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS \(300 ms\); onnxruntime cannot stop it, so its session worker was set aside to finish it alone \(failed 1 time in a row; next try once that load has ended/);
      expect(await api.modelReady('team-a')).toBe(false);
      await waitFor('the registry to see why team-a is not served', async () => (await mesh.registryApi.pods()).some((p) =>
        p.versions.some((v: { model: string; state: string; reason: string }) => v.model === 'team-a' && v.state === 'UNAVAILABLE' && /INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS/.test(v.reason))));
      // Once that load has ended, it is tried again on workers of its own, under their budget.
      const own = await waitFor('team-a to fail on workers of its own', () => pod.repo.index().find((e) => e.name === 'team-a' && /INFERMESH_LOAD_TIMEOUT_MS/.test(e.reason)), 120_000);
      expect(own.reason).toMatch(/^making its session took longer than INFERMESH_LOAD_TIMEOUT_MS \(600 ms\).*\(failed 2 times in a row; next try once that load has ended/);
      expect((await api.infer('team-b', addSubInput)).outputs).toHaveLength(2);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });
});

describe('a slow load within its budget', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
  });

  afterAll(async () => {
    await mesh?.close();
  });

  it('holds up another team\'s load for no longer than INFERMESH_LOAD_ALONE_MS, and gets no session on the pod\'s thread', async () => {
    const pod = await mesh.startPod({
      // team-a's 357 KB graph on workers of its own (team-b's on the shared one), under the default 120 s load budget.
      INFERMESH_SHARED_SESSION_MAX_MODEL_BYTES: '100000', INFERMESH_LOAD_ALONE_MS: '200',
    });
    const address = `127.0.0.1:${pod.port}`;
    try {
      await mesh.registryApi.push('team-a', wideModel(16_000));
      await waitFor('team-a\'s session to be under way', () => pod.cannotExit?.());
      await mesh.registryApi.push('team-b', fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx')));
      await waitReady(inferenceClient(address), ['team-b']);
      // team-b loaded (and was measured) beside team-a's load, which is still going on.
      expect(pod.repo.index().find((e) => e.name === 'team-a')?.state).not.toBe('READY');
      await waitReady(inferenceClient(address), ['team-a'], 120_000);
      // Its runs are tiny, but making its session took seconds: none is made on the pod's own
      // thread, where that would stall every call and health check of the pod as long.
      const a = pod.repo.find('team-a', '');
      expect(a.pool.info.loadMs).toBeGreaterThan(250);
      expect(a.pool.inlineSessionHeld).toBe(false);
    } finally {
      await pod.shutdown(5_000);
    }
  });
});
