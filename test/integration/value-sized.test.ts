// A model whose runs cost what the request's values ask (a Loop whose trip count is an input) is
// quick when timed at load, so it would be let onto the pod's own thread or the shared session
// workers. It gets workers of its own instead: a long run is bounded by INFERMESH_RUN_TIMEOUT_MS
// there, while the pod's thread and another team's version on the shared worker serve on; the
// version, stopped, loads again once that run has ended.
import { InferenceApi, type InfermeshError } from '../../client/index';
import { registryClient } from '../../lib/grpc/client';
import { setAsideWorkers } from '../../services/inference/session-host';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
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
      INFERMESH_RUN_TIMEOUT_MS: '1000', INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS: '1000', INFERMESH_LOAD_RETRY_BASE_MS: '100',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['team-a', 'team-b']);
      expect(Array.from((await api.infer('team-a', count(5n))).outputs[0]!.data as Float32Array)).toEqual([5]);
      // Three million turns of the loop: about three seconds on one thread here, three budgets.
      const long = api.infer('team-a', count(3_000_000n), { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as InfermeshError);
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
      // Stopped, it loads again after its back-off (100 ms here), but only once that run has ended:
      // never while its set-aside worker still runs it, which a run that never ends would hold for good.
      for (let i = 0; i < 20 && setAsideWorkers() > 0; i++) {
        const ready = await api.modelReady('team-a');
        expect({ ready, setAside: setAsideWorkers() }).not.toEqual({ ready: true, setAside: 1 });
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor('the overdue run to end', () => setAsideWorkers() === 0, 90_000);
      await waitReady(inferenceClient(address), ['team-a']);
      expect(Array.from((await api.infer('team-a', count(7n))).outputs[0]!.data as Float32Array)).toEqual([7]);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });

  it('loads a version again only once every run past its budget has ended, two at once included', async () => {
    await waitFor('earlier overdue runs to end', () => setAsideWorkers() === 0, 90_000);
    const pod = await mesh.startPod({
      INFERMESH_SESSION_WORKERS: '2', INFERMESH_INLINE_RUN_US: '0', INFERMESH_RUN_TIMEOUT_MS: '300',
      INFERMESH_LOAD_RETRY_BASE_MS: '100', INFERMESH_DYNAMIC_BATCHING: 'false', INFERMESH_MAX_SET_ASIDE_WORKERS: '0',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['team-a']);
      // Two runs past the budget, one on each worker: the first ends soon after, the second seconds later.
      const codes = await Promise.all([count(600_000n), count(3_000_000n)].map((input) =>
        api.infer('team-a', input, { timeoutMs: 60_000 }).then(() => 0, (e: unknown) => (e as InfermeshError).grpcCode)));
      expect(codes).toEqual([4, 4]);
      expect(setAsideWorkers()).toBe(2);
      while (setAsideWorkers() > 0) {
        const ready = await api.modelReady('team-a');
        expect({ ready, setAside: setAsideWorkers() > 0 }).not.toEqual({ ready: true, setAside: true });
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitReady(inferenceClient(address), ['team-a']);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });

  it('takes a stop in a warm-up as a stop: loaded again once that run has ended, backing off the longer each time', async () => {
    const registry = registryClient(`127.0.0.1:${mesh.registry.port}`);
    try {
      const raw = Buffer.from(BigInt64Array.of(3_000_000n).buffer);
      await unary((cb) => registry.CreateModel({ name: 'team-c', description: '', labels: {}, config: { warmup: [{ name: 'three million', count: 1, inputs: [{ name: 'COUNT', dims: [1], raw_data: raw }] }] } }, cb));
    } finally {
      registry.close();
    }
    const pod = await mesh.startPod({ INFERMESH_RUN_TIMEOUT_MS: '300', INFERMESH_LOAD_RETRY_BASE_MS: '100' });
    const api = new InferenceApi(`127.0.0.1:${pod.port}`);
    try {
      await mesh.push('team-c', 'fixtures/loop_count_fp32.onnx');
      const stopped = (times: string) => waitFor(`team-c stopped ${times} in a row`, async () =>
        (await api.repositoryIndex()).find((e) => e.name === 'team-c' && e.state === 'UNAVAILABLE' && e.reason.includes(`(${times} in a row;`)), 60_000);
      const first = await stopped('1 time');
      expect(first.reason).toMatch(/^stopped on this pod: the run took longer than INFERMESH_RUN_TIMEOUT_MS \(300 ms\).* \(1 time in a row; loaded again once that run has ended, at the earliest in .+\)$/);
      // Its warm-up stops it each time it loads: the count, and with it the back-off, grows.
      expect((await stopped('2 times')).reason).toMatch(/^stopped on this pod: the run took longer than INFERMESH_RUN_TIMEOUT_MS/);
      expect(await api.modelReady('team-c')).toBe(false);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });
});
