// The whole mesh as separate processes: NATS, registry, two pods and the router, exactly as
// `npm start` runs them. A model pushed through the registry is served through the router with the
// numbers onnxruntime gives in-process; pods that join get traffic, pods that stop get none; a
// router that dies is restarted where clients expect it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ort } from '../../lib/ort';
import { InferenceApi, RegistryApi } from '../../client/index';
import { startLocalMesh, type LocalMesh } from '../../cli/local-mesh/mesh';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { modelPath } from '../helpers/models';
import { alive, waitFor } from '../helpers/wait';
import { inferenceClient, unary } from '../../lib/grpc/client';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';

jest.setTimeout(180_000);

/** Successful inferences a pod served, from its own ModelStatistics (0 from a pod that does not hold the model). */
async function successes(address: string, model: string): Promise<number> {
  const c = inferenceClient(address);
  try {
    const res = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => c.ModelStatistics({ name: model }, cb));
    return res.model_stats.reduce((n, s) => n + Number(s.inference_stats?.success?.count ?? 0), 0);
  } catch (err) {
    if ((err as { code?: number }).code === 5) return 0;
    throw err;
  } finally {
    c.close();
  }
}

async function podReady(address: string, model: string): Promise<boolean> {
  const c = new InferenceApi(address);
  try {
    return await c.modelReady(model);
  } finally {
    c.close();
  }
}

describe('the local mesh, end to end', () => {
  let dataDir: string;
  let mesh: LocalMesh | undefined;
  let router: InferenceApi;
  let registry: RegistryApi;
  const digits = heldOutDigits(20);

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-e2e-'));
    mesh = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 2, env: { INFERMESH_HEARTBEAT_INTERVAL_MS: '200', INFERMESH_POD_TTL_MS: '1500' } });
    router = new InferenceApi(mesh.routerAddress);
    registry = new RegistryApi(mesh.registryAddress);
  });

  afterAll(async () => {
    router?.close();
    registry?.close();
    await mesh?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves a pushed model through the router with the numbers onnxruntime gives in-process', async () => {
    const file = modelPath('mnist.onnx');
    const v = await registry.push('mnist', file);
    expect(v.version).toBe(1);
    await waitFor('mnist ready on both pods', async () =>
      (await Promise.all(mesh!.pods.map((p) => podReady(`127.0.0.1:${p.port}`, 'mnist')))).every(Boolean));

    const session = await ort.InferenceSession.create(file);
    for (const d of digits) {
      const local = await session.run({ input: new ort.Tensor('float32', d.pixels, [1, 784]) });
      const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: d.pixels }]);
      expect(res.modelVersion).toBe('1');
      const byName = Object.fromEntries(res.outputs.map((o) => [o.name, o]));
      expect(byName.logits!.shape).toEqual([1, 10]);
      expect(Array.from(byName.logits!.data as Float32Array)).toEqual(Array.from(local.logits!.data as Float32Array));
      expect(Array.from(byName.probabilities!.data as Float32Array)).toEqual(Array.from(local.probabilities!.data as Float32Array));
    }
    await session.release();

    // Both pods took part.
    for (const p of mesh!.pods) expect(await successes(`127.0.0.1:${p.port}`, 'mnist')).toBeGreaterThan(0);
  });

  it('classifies real held-out digits correctly', async () => {
    let correct = 0;
    for (const d of digits) {
      const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: d.pixels }], { outputs: ['probabilities'] });
      expect(res.outputs.map((o) => o.name)).toEqual(['probabilities']);
      const p = Array.from(res.outputs[0]!.data as Float32Array);
      if (p.indexOf(Math.max(...p)) === d.label) correct++;
    }
    expect(correct).toBeGreaterThanOrEqual(18);
  });

  it('loses no request when a pod stops, and places its copies on a pod started after the push', async () => {
    // Placement keeps INFERMESH_PLACEMENT_MIN_COPIES (2) copies of mnist: on the two first pods.
    const late = await mesh!.addPod({ INFERMESH_HEARTBEAT_INTERVAL_MS: '200' });
    const lateAddress = `127.0.0.1:${late.port}`;
    const request = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: digits[0]!.pixels }];

    const [stopped, other] = mesh!.pods;
    expect(await stopped!.stop()).toBe(0);
    expect(alive(stopped!.pid)).toBe(false);
    // The pod that holds mnist, and the late one, which placement may give the stopped pod's copy meanwhile.
    const rest = [other!, late];
    const before = await Promise.all(rest.map((p) => successes(`127.0.0.1:${p.port}`, 'mnist')));
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => router.infer('mnist', request)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const after = await Promise.all(rest.map((p) => successes(`127.0.0.1:${p.port}`, 'mnist')));
    // Every one of the 60 requests was served by a pod still running.
    expect(after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)).toBe(60);

    // The stopped pod's copy goes to the late pod, and the router sends it traffic.
    await waitFor('the late pod loads mnist', () => podReady(lateAddress, 'mnist'));
    await waitFor('the router sends the late pod traffic', async () => {
      await Promise.all(Array.from({ length: 12 }, () => router.infer('mnist', request)));
      return (await successes(lateAddress, 'mnist')) > 0;
    });
  });

  it('restarts a router that died, on the same address', async () => {
    const before = mesh!.router.pid;
    const back = mesh!.router.nextStart();
    await mesh!.router.kill();
    expect(alive(before)).toBe(false);
    const restarted = await back;
    expect(restarted.pid).not.toBe(before);
    expect(mesh!.routerAddress).toBe(`127.0.0.1:${restarted.port}`);
    await waitFor('mnist through the restarted router', () => router.modelReady('mnist'));
    const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digits[1]!.pixels }]);
    expect(res.modelVersion).toBe('1');
  });

  it('stops every process, and a restarted mesh on the same data keeps the models', async () => {
    const pids = [mesh!.registry.pid, mesh!.router.pid, ...mesh!.pods.map((p) => p.pid)];
    router.close();
    registry.close();
    await mesh!.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);

    mesh = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 1 });
    router = new InferenceApi(mesh.routerAddress);
    registry = new RegistryApi(mesh.registryAddress);
    expect((await registry.models()).map((m) => [m.name, m.latest_version])).toEqual([['mnist', 1]]);
    await waitFor('mnist served after restart', () => router.modelReady('mnist'));
    const res = await router.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digits[3]!.pixels }]);
    expect(res.modelVersion).toBe('1');
  });
});
