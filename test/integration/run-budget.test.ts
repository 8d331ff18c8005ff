// A pod whose run outlives its budget (INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS): the caller gets
// DEADLINE_EXCEEDED, the version stops on that pod (UNAVAILABLE with why, in ModelReady, the
// repository index and the registry's view of the pod), and another team's version that shared its
// session worker serves on. Onnxruntime cannot stop the run: its worker finishes it alone and exits,
// and then the version loads again, on workers of its own.
import { InferenceApi, type InfermeshError } from '../../client/index';
import { setAsideWorkers } from '../../services/inference/session-host';
import { startTestMesh, waitReady, inferenceClient, type TestMesh } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';
import { heavyInput } from '../helpers/models';

jest.setTimeout(120_000);

const addSubInput = [
  { name: 'INPUT0', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
  { name: 'INPUT1', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
];

describe('a run past its budget on a pod', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('team-a', 'fixtures/heavy.onnx');
    await mesh.push('team-b', 'fixtures/add_sub_fp32.onnx');
  });

  afterAll(async () => {
    await mesh?.close();
    await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 60_000);
  });

  it('answers DEADLINE_EXCEEDED, stops that version on the pod with why, and the version beside it serves on', async () => {
    const pod = await mesh.startPod({
      // One shared worker that both versions are on, whatever their run times; no run on the pod's thread.
      INFERMESH_SHARED_SESSION_WORKERS: '1', INFERMESH_SHARED_SESSION_MAX_RUN_US: '0', INFERMESH_INLINE_RUN_US: '0',
      INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS: '300', INFERMESH_DYNAMIC_BATCHING: 'false', INFERMESH_LOAD_RETRY_BASE_MS: '100',
      // A version's own workers: 600 ms a run (heavy.onnx takes some 100 ms a 32 rows on two cores here).
      INFERMESH_RUN_TIMEOUT_MS: '600',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['team-a', 'team-b']);
      expect((await api.infer('team-b', addSubInput)).outputs.map((o) => Array.from(o.data as Float32Array))).toEqual([[2, 3, 4, 5], [0, 1, 2, 3]]);
      const err = await api.infer('team-a', heavyInput(512), { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(err?.grpcCode).toBe(4);
      expect(err?.message).toMatch(/the run took longer than INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS \(300 ms\)/);
      // team-b is answered from a new worker (the old one finishes team-a's request alone).
      expect((await api.infer('team-b', addSubInput)).outputs).toHaveLength(2);
      // team-a takes nothing on this pod any more, and says why.
      expect(await api.modelReady('team-a')).toBe(false);
      const again = await api.infer('team-a', heavyInput(1)).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(again?.grpcCode).toBe(14);
      expect(again?.message).toMatch(/model 'team-a' has no version ready \(version 1 is unavailable: stopped on this pod: the run took longer than INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS/);
      const named = await api.infer('team-a', heavyInput(1), { version: '1' }).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(named?.message).toMatch(/model 'team-a' version 1 is unavailable: stopped on this pod: the run took longer than INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS/);
      const index = await api.repositoryIndex();
      expect(index.find((e) => e.name === 'team-a')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/^stopped on this pod/) });
      // So does the registry's view of the pod, from its heartbeats.
      await waitFor('the registry to see team-a stopped', async () => (await mesh.registryApi.pods()).some((p) =>
        p.versions.some((v: { model: string; state: string; reason: string }) => v.model === 'team-a' && v.state === 'UNAVAILABLE' && /^stopped on this pod/.test(v.reason))));
      // Once the overdue run has ended, team-a loads again after its back-off, on workers of its own
      // (it overran a shared one), where a run's budget is INFERMESH_RUN_TIMEOUT_MS.
      await waitFor('the overdue run to end', () => setAsideWorkers() === 0, 60_000);
      await waitReady(inferenceClient(address), ['team-a']);
      expect(pod.repo.find('team-a', '').pool.shared).toBe(false);
      expect((await api.infer('team-a', heavyInput(16))).outputs[0]!.shape).toEqual([16, 1024]);
      // Stopped there too, it stays on workers of its own, and the stops in a row count on (its
      // back-off grows), however long it served between them.
      const own = await api.infer('team-a', heavyInput(2048), { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(own?.message).toMatch(/the run took longer than INFERMESH_RUN_TIMEOUT_MS \(600 ms\)/);
      expect((await api.repositoryIndex()).find((e) => e.name === 'team-a')?.reason).toMatch(/\(2 times in a row; loaded again once that run has ended/);
      await waitFor('the second overdue run to end', () => setAsideWorkers() === 0, 60_000);
      await waitReady(inferenceClient(address), ['team-a']);
      expect(pod.repo.find('team-a', '').pool.shared).toBe(false);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });
});
