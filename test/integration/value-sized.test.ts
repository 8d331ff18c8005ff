// A model whose runs cost what the request's values ask (a Loop whose trip count is an input) is
// quick when timed at load, so it would be let onto the pod's own thread or the shared session
// workers. It gets workers of its own instead: a long run is bounded by INFERMESH_RUN_TIMEOUT_MS
// there, while the pod's thread and another team's version on the shared worker serve on.
import { InferenceApi, type InfermeshError } from '../../client/index';
import { setAsideWorkers } from '../../services/inference/session-host';
import { startTestMesh, waitReady, inferenceClient, type TestMesh } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const count = (n: bigint) => [{ name: 'COUNT', datatype: 'INT64' as const, shape: [1], data: BigInt64Array.of(n) }];
const addSubInput = [
  { name: 'INPUT0', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
  { name: 'INPUT1', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
];

describe('a model whose runs cost what its inputs hold', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('team-a', 'fixtures/loop_count_fp32.onnx');
    await mesh.push('team-b', 'fixtures/add_sub_fp32.onnx');
  });

  afterAll(async () => {
    await mesh?.close();
    await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 90_000);
  });

  it('runs on workers of its own, never the pod\'s thread: a long run is cut by its budget while the pod serves on', async () => {
    const pod = await mesh.startPod({
      // Any version whose one-row runs take under 20 ms would run on the pod's thread; one shared worker.
      INFERMESH_INLINE_RUN_US: '20000', INFERMESH_SHARED_SESSION_WORKERS: '1',
      INFERMESH_RUN_TIMEOUT_MS: '1000', INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS: '1000',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['team-a', 'team-b']);
      expect(Array.from((await api.infer('team-a', count(5n))).outputs[0]!.data as Float32Array)).toEqual([5]);
      // Ten million turns of the loop: about ten seconds on one thread here.
      const long = api.infer('team-a', count(10_000_000n), { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as InfermeshError);
      await new Promise((r) => setTimeout(r, 300));
      // The pod's thread and the shared worker are free: team-b answers while team-a's run goes on.
      const during = await api.infer('team-b', addSubInput, { timeoutMs: 3_000 });
      expect(during.outputs.map((o) => Array.from(o.data as Float32Array))).toEqual([[2, 3, 4, 5], [0, 1, 2, 3]]);
      const err = await long;
      expect(err?.grpcCode).toBe(4);
      // Its own workers' budget, not the shared workers'.
      expect(err?.message).toMatch(/the run took longer than INFERMESH_RUN_TIMEOUT_MS \(1000 ms\)/);
      expect(await api.modelReady('team-a')).toBe(false);
      expect(await api.modelReady('team-b')).toBe(true);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });
});
