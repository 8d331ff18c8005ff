// How a pod runs models: dynamic batching gives each caller exactly what an unbatched run gives,
// queued requests past their deadline never run, the event loop stays free while a heavy model
// runs, and SIGTERM lets every request in flight finish.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ort } from '../../lib/ort';
import { InferenceApi, RegistryApi } from '../../client/index';
import type { ModelMetadataResponse__Output as ModelMetadataResponseOut } from '../../lib/grpc/generated/inference/ModelMetadataResponse';
import { waitFor } from '../helpers/wait';
import { healthClient } from '../../lib/grpc/client';
import type { ModelConfigResponse__Output } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { startService } from '../../cli/local-mesh/service-process';
import { podProcessEnv, startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
import { heavyInput, modelPath } from '../helpers/models';
import { seededRandom } from '../../tools/models/prng';
import { cpuBudget, intraOpThreads } from '../../services/inference/cgroup-limits';
import type { InferenceService } from '../../services/inference/inference-service';

jest.setTimeout(180_000);

async function statsOf(address: string, name: string): Promise<ModelStatistics__Output> {
  const c = inferenceClient(address);
  try {
    const res = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => c.ModelStatistics({ name, version: '' }, cb));
    return res.model_stats[0]!;
  } finally {
    c.close();
  }
}


describe('pod runtime', () => {
  let mesh: TestMesh;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('add-sub', 'fixtures/add_sub_fp32.onnx');
    await mesh.push('mnist', 'mnist.onnx');
    await mesh.push('heavy', 'fixtures/heavy.onnx');
  });

  afterAll(async () => {
    await mesh?.close();
  });

  it('batches concurrent requests of different batch sizes and returns each caller what an unbatched run returns', async () => {
    const pod = await mesh.startPod({ INFERMESH_MAX_QUEUE_DELAY_US: '20000', INFERMESH_MAX_BATCH_SIZE: '32' });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    await waitReady(inferenceClient(address), ['add-sub', 'mnist']);
    const session = await ort.InferenceSession.create(modelPath('mnist.onnx'));
    const random = seededRandom(7);
    try {
      const requests = Array.from({ length: 40 }, (_, i) => {
        const rows = 1 + (i % 5);
        return { rows, pixels: Float32Array.from({ length: rows * 784 }, () => random()) };
      });
      const results = await Promise.all(requests.map((r) => api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [r.rows, 784], data: r.pixels }])));
      for (const [i, r] of requests.entries()) {
        const alone = await session.run({ input: new ort.Tensor('float32', r.pixels, [r.rows, 784]) });
        const got = results[i]!.outputs.find((o) => o.name === 'logits')!;
        expect(got.shape).toEqual([r.rows, 10]);
        const want = alone.logits!.data as Float32Array;
        const diff = Math.max(...Array.from(got.data as Float32Array, (v, k) => Math.abs(v - want[k]!)));
        expect(diff).toBeLessThan(1e-4);
      }
      const stats = await statsOf(address, 'mnist');
      // Batching happened: fewer runs than requests, and some runs bigger than any one request.
      expect(Number(stats.execution_count)).toBeLessThan(40);
      expect(Number(stats.inference_count)).toBe(requests.reduce((n, r) => n + r.rows, 0));
      expect(Math.max(...stats.batch_stats.map((b) => Number(b.batch_size)))).toBeGreaterThan(5);

      // add/sub with two inputs batches too, and each caller gets its own sums.
      const sums = await Promise.all(Array.from({ length: 10 }, (_, i) => api.infer('add-sub', [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [i, i, i, i] },
        { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
      ])));
      sums.forEach((s, i) => expect(Array.from(s.outputs[0]!.data as Float32Array)).toEqual([i + 1, i + 2, i + 3, i + 4]));
    } finally {
      api.close();
      await session.release();
      await pod.shutdown(5_000);
    }
  });

  it('applies a changed batching config to the versions it has loaded, without reloading them', async () => {
    const pod = await mesh.startPod({ INFERMESH_MAX_QUEUE_DELAY_US: '20000', INFERMESH_MAX_BATCH_SIZE: '32' });
    const address = `127.0.0.1:${pod.port}`;
    const client = inferenceClient(address);
    const api = new InferenceApi(address);
    const registry = new RegistryApi(`127.0.0.1:${mesh.registry.port}`);
    const maxBatch = async () => (await unary<ModelMetadataResponseOut>((cb) => client.ModelMetadata({ name: 'add-sub', version: '' }, cb))).properties.max_batch_size;
    const burst = () => Promise.all(Array.from({ length: 12 }, (_, i) => api.infer('add-sub', [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [i, i, i, i] },
      { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
    ])));
    try {
      await waitReady(client, ['add-sub']);
      expect(await maxBatch()).toBe('32');
      await burst();
      const before = await statsOf(address, 'add-sub');
      expect(Number(before.execution_count)).toBeLessThan(Number(before.inference_count));

      await registry.updateModel('add-sub', { config: { dynamic_batching: { enabled: false, max_batch_size: 0, max_queue_delay_us: 0, preferred_batch_sizes: [], max_queue_size: 0 } } });
      await waitFor('the pod to turn batching off', async () => (await maxBatch()) === '0');
      // Triton's form: no batching, so dims are the whole shape and there is no dynamic_batching.
      const offConfig = (await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name: 'add-sub', version: '' }, cb))).config;
      expect(offConfig).toMatchObject({ max_batch_size: 0, input: [{ name: 'INPUT0', dims: ['-1', '4'] }, { name: 'INPUT1', dims: ['-1', '4'] }] });
      expect(offConfig!.dynamic_batching).toBeUndefined();
      await burst();
      const off = await statsOf(address, 'add-sub');
      // Every request ran alone, and the counts went on: the version was not reloaded.
      expect(Number(off.execution_count) - Number(before.execution_count)).toBe(12);
      expect(Number(off.inference_count)).toBe(Number(before.inference_count) + 12);

      await registry.updateModel('add-sub', { config: { dynamic_batching: { enabled: true, max_batch_size: 4, max_queue_delay_us: 20000, preferred_batch_sizes: [], max_queue_size: 0 } } });
      await waitFor('the pod to batch up to 4', async () => (await maxBatch()) === '4');
      const onConfig = (await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name: 'add-sub', version: '' }, cb))).config;
      expect(onConfig).toMatchObject({ max_batch_size: 4, input: [{ name: 'INPUT0', dims: ['4'] }, { name: 'INPUT1', dims: ['4'] }], dynamic_batching: { max_queue_delay_microseconds: '20000' } });
      await burst();
      const on = await statsOf(address, 'add-sub');
      // The runs of this burst, by batch size: some batched, none above the new maximum.
      const runs = (st: ModelStatistics__Output) => new Map(st.batch_stats.map((b) => [Number(b.batch_size), Number(b.compute_infer!.count)]));
      const offRuns = runs(off);
      const sizes = [...runs(on)].filter(([size, n]) => n > (offRuns.get(size) ?? 0)).map(([size]) => size);
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    } finally {
      // Back to the pods' defaults for the tests after this one.
      await registry.updateModel('add-sub', { config: {} });
      registry.close();
      api.close();
      client.close();
      await pod.shutdown(5_000);
    }
  });

  it('runs a model whose operators take microseconds on one intra-op thread, a compute-bound one on the pod\'s threads, and says so in its config', async () => {
    const threadsOf = async (pod: InferenceService, name: string) => {
      const client = inferenceClient(`127.0.0.1:${pod.port}`);
      try {
        await waitReady(client, [name]);
        const config = (await unary<ModelConfigResponse__Output>((cb) => client.ModelConfig({ name, version: '' }, cb))).config!;
        return { threads: config.parameters.intra_op_thread_count?.string_value, spinning: config.parameters.intra_op_spinning?.string_value };
      } finally {
        client.close();
      }
    };
    const podThreads = String(intraOpThreads(0, 1, cpuBudget()));
    // One thread is what a one-CPU machine gives every version anyway: the fitting is seen only on more.
    expect(Number(podThreads)).toBeGreaterThan(1);
    const pod = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1' });
    try {
      // MNIST runs in tens of µs, heavy in milliseconds (INFERMESH_INTRA_OP_SERIAL_RUN_US, default 1,000).
      expect(await threadsOf(pod, 'mnist')).toEqual({ threads: '1', spinning: 'on' });
      expect(await threadsOf(pod, 'heavy')).toEqual({ threads: podThreads, spinning: 'on' });
      const api = new InferenceApi(`127.0.0.1:${pod.port}`);
      try {
        expect((await api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }])).outputs.length).toBeGreaterThan(0);
      } finally {
        api.close();
      }
    } finally {
      await pod.shutdown(5_000);
    }
    // Threads that were set are kept, and the threshold 0 turns the fitting off.
    const kept: [Record<string, string>, { threads: string; spinning: string }][] = [
      [{ INFERMESH_INTRA_OP_THREADS: '2', INFERMESH_INTRA_OP_SPINNING: 'runs' }, { threads: '2', spinning: 'runs' }],
      [{ INFERMESH_INTRA_OP_SERIAL_RUN_US: '0', INFERMESH_INTRA_OP_SPINNING: 'off' }, { threads: podThreads, spinning: 'off' }],
    ];
    for (const [env, expected] of kept) {
      const other = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1', ...env });
      try {
        expect(await threadsOf(other, 'mnist')).toEqual(expected);
      } finally {
        await other.shutdown(5_000);
      }
    }
  });

  it('keeps its thread polling after an answer that leaves nothing in flight, only where the answered version\'s spinning threads leave a CPU free', async () => {
    // The pod runs in this process: the share of a while that this thread's event loop spent
    // running, not asleep waiting for events, shows whether it polls.
    const busyShareOver = async (ms: number) => {
      const before = performance.eventLoopUtilization();
      await new Promise((r) => setTimeout(r, ms));
      return performance.eventLoopUtilization(before).utilization;
    };
    const budget = cpuBudget();
    const cpus = budget.cpus;
    const podThreads = intraOpThreads(0, 1, budget);
    const answerThenBusyShare = async (pod: InferenceService, name: string, inputs: Parameters<InferenceApi['infer']>[1]) => {
      const api = new InferenceApi(`127.0.0.1:${pod.port}`);
      try {
        // Every model loaded and warmed up, so that nothing else keeps the thread busy.
        const client = inferenceClient(`127.0.0.1:${pod.port}`);
        await waitReady(client, ['add-sub', 'mnist', 'heavy']).finally(() => client.close());
        await new Promise((r) => setTimeout(r, 400));
        expect((await api.infer(name, inputs)).outputs.length).toBeGreaterThan(0);
        return await busyShareOver(150);
      } finally {
        api.close();
      }
    };
    const mnistInput = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: new Float32Array(784) }];
    const polling = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1', INFERMESH_POD_BUSY_POLL_US: '300000' });
    try {
      // MNIST runs on one thread, nothing of it spins once its run returns: the poller and the
      // client have a CPU each where the pod has two.
      const mnistPolls = 0 + 1 < cpus;
      expect(mnistPolls).toBe(cpus >= 2);
      // A request the pod refuses before decoding it must not count as in flight for good (which
      // would keep the pod from ever polling again).
      const raw = new grpc.Client(`127.0.0.1:${polling.port}`, grpc.credentials.createInsecure());
      const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x7f, 0x01]), (err) => resolve(err)));
      raw.close();
      expect(refused?.code).toBe(grpc.status.INVALID_ARGUMENT);
      // It polls after answers of a version on its own thread: MNIST's one-row runs are tiny (timed
      // at load, and again later where a busy machine slowed that timing).
      await waitFor('mnist on the pod\'s thread', () => polling.repo.serving('mnist', '', '').pool.inlined, 45_000);
      const mnistShare = await answerThenBusyShare(polling, 'mnist', mnistInput);
      if (mnistPolls) expect(mnistShare).toBeGreaterThan(0.8);
      else expect(mnistShare).toBeLessThan(0.5);
      // The window passes and the thread sleeps again.
      await new Promise((r) => setTimeout(r, 300));
      expect(await busyShareOver(150)).toBeLessThan(0.5);
      // heavy runs on the pod's threads, all but one of them spinning after its run: with the
      // poller too, they would take every CPU the pod has.
      expect(podThreads - 1 + 1 < cpus).toBe(false);
      expect(await answerThenBusyShare(polling, 'heavy', heavyInput(1))).toBeLessThan(0.5);
    } finally {
      await polling.shutdown(5_000);
    }
    const sleeping = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1', INFERMESH_POD_BUSY_POLL_US: '0' });
    try {
      expect(await answerThenBusyShare(sleeping, 'mnist', mnistInput)).toBeLessThan(0.5);
    } finally {
      await sleeping.shutdown(5_000);
    }
    // MNIST on its worker: the next request has the worker to wake anyway, and the pod does not poll.
    const onWorkers = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1', INFERMESH_POD_BUSY_POLL_US: '300000', INFERMESH_INLINE_RUN_US: '0' });
    try {
      expect(await answerThenBusyShare(onWorkers, 'mnist', mnistInput)).toBeLessThan(0.5);
      expect(onWorkers.repo.serving('mnist', '', '').pool.inlined).toBe(false);
    } finally {
      await onWorkers.shutdown(5_000);
    }
    // MNIST may get to the pod's thread only at a later timing, up to 36 s after its load.
  }, 120_000);

  it('does not run queued requests whose deadline passed, and keeps health checks answering while a heavy model runs', async () => {
    const pod = await mesh.startPod({ INFERMESH_SESSION_WORKERS: '1', INFERMESH_INTRA_OP_THREADS: '1', INFERMESH_DYNAMIC_BATCHING: 'false' });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    const health = healthClient(address);
    await waitReady(inferenceClient(address), ['heavy']);
    try {
      const heavyStarted = Date.now();
      let heavyDone = 0;
      const heavy = api.infer('heavy', heavyInput(256)).then((r) => {
        heavyDone = Date.now();
        return r;
      });
      // Wait until the heavy request has left the queue for the worker (on a busy machine its 1 MB
      // decode alone can take longer than a fixed pause, and the late requests would run first).
      const heavyVersion = pod.repo.versionsOf('heavy')[0]!;
      await waitFor('the heavy run to start', () => heavyVersion.pool.running === 1, 10_000, 1);

      // Requests queued behind the heavy run, with deadlines that pass before it ends.
      const late = await Promise.allSettled(Array.from({ length: 5 }, () => api.infer('heavy', heavyInput(1), { timeoutMs: 60 })));
      expect(late.map((r) => r.status === 'rejected' && (r.reason as { grpcCode: number }).grpcCode)).toEqual(Array(5).fill(grpc.status.DEADLINE_EXCEEDED));

      // The event loop answers health checks while the model runs in its worker thread.
      const latencies: number[] = [];
      for (let i = 0; i < 5 && !heavyDone; i++) {
        const t = process.hrtime.bigint();
        const res = await unary<{ status: string }>((cb) => health.Check({ service: '' }, cb));
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        expect(res.status).toBe('SERVING');
      }
      expect(heavyDone).toBe(0); // every check above answered before the heavy run finished
      expect(latencies.length).toBe(5);
      expect(Math.max(...latencies)).toBeLessThan(250);
      await heavy;
      expect(heavyDone - heavyStarted).toBeGreaterThan(Math.max(...latencies));
      console.log(`health check latency while a heavy model ran: max ${Math.max(...latencies).toFixed(2)} ms; heavy run ${heavyDone - heavyStarted} ms`);

      // Only the heavy request ran: the expired ones were dropped from the queue.
      const stats = await statsOf(address, 'heavy');
      expect(Number(stats.execution_count)).toBe(1);
    } finally {
      api.close();
      health.close();
      await pod.shutdown(5_000);
    }
  });

  it('on SIGTERM finishes every request in flight, then exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-drain-'));
    const proc = await startService('inference', {
      env: podProcessEnv(mesh, 'drain-pod', dir, {
        INFERMESH_SESSION_WORKERS: '1',
        INFERMESH_INTRA_OP_THREADS: '1',
        INFERMESH_DYNAMIC_BATCHING: 'false',
      }),
    });
    const address = `127.0.0.1:${proc.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['heavy']);
      const inflight = Array.from({ length: 4 }, () => api.infer('heavy', heavyInput(16)));
      await new Promise((r) => setTimeout(r, 50));
      process.kill(proc.pid, 'SIGTERM');
      const results = await Promise.allSettled(inflight);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      for (const r of results) if (r.status === 'fulfilled') expect(r.value.outputs[0]!.shape).toEqual([16, 1024]);
      expect(await proc.exited).toBe(0);
    } finally {
      api.close();
      await proc.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
