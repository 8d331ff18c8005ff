// What a pod's loads hold, shown and counted, with real pods, nats-server and onnxruntime: a version
// is LOADING from the moment its load begins (RepositoryIndex, heartbeats, ModelReady), not only
// once its session is made; the memory of a version whose worker was set aside (a run or a load
// past its budget) stays on the pod's books until that worker exits; and set-aside loads, unlike
// set-aside runs, never make the pod restart (it would load them again on start, and again). A graph of 16 000 Identity nodes
// reading one input takes onnxruntime about 3 s to load here (the time grows with the square of the nodes), many times
// that on a loaded machine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { InferenceApi, type InfermeshError } from '../../client/index';
import { startService } from '../../cli/local-mesh/service-process';
import { decodeHeartbeat, subjects, type PodMemory } from '../../lib/events';
import { setAsideWorkers } from '../../services/inference/session-host';
import { podProcessEnv, startTestMesh, waitReady, inferenceClient, modelReady, type TestMesh } from '../helpers/mesh';
import { heavyInput, wideModel } from '../helpers/models';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

/** What the registry's view of the pods (their heartbeats) says of `model`. */
async function seenByRegistry(mesh: TestMesh, model: string): Promise<{ state: string; usedBytes: number } | undefined> {
  for (const p of await mesh.registryApi.pods()) {
    const v = p.versions.find((x) => x.model === model);
    if (v) return { state: v.state, usedBytes: Number(p.memory_used_bytes) };
  }
  return undefined;
}

describe('a pod\'s loads', () => {
  let mesh: TestMesh;

  // A registry of its own for each test: a pod loads every model the registry serves.
  beforeEach(async () => {
    mesh = await startTestMesh();
  });

  // Each test counts the workers it sets aside: none is left from the one before.
  afterEach(async () => {
    await mesh?.close();
    await waitFor('the set-aside workers to exit', () => setAsideWorkers() === 0, 60_000);
  });

  // The load's end is waited for by the budget the pod gives it, not by a guess at the machine's
  // speed: a loaded machine makes the session many times slower, and the load ends by its budget
  // either way, READY or UNAVAILABLE with why.
  const LOAD_TIMEOUT_MS = 120_000;
  it('show a version LOADING while its session is being made, then READY', async () => {
    // On workers of its own (360 KB is over the shared workers' 100 KB).
    const pod = await mesh.startPod({ INFERMESH_SHARED_SESSION_MAX_MODEL_BYTES: '100000', INFERMESH_LOAD_TIMEOUT_MS: String(LOAD_TIMEOUT_MS) });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    const client = inferenceClient(address);
    try {
      await mesh.registryApi.push('slow-start', wideModel(16_000));
      await waitFor('its session to be under way', () => pod.cannotExit?.());
      expect(await api.repositoryIndex()).toContainEqual({ name: 'slow-start', version: '1', state: 'LOADING', reason: '' });
      expect(await modelReady(client, 'slow-start')).toEqual({ ready: false, reason: 'model \'slow-start\' has no version ready (version 1 is loading)' });
      expect(await modelReady(client, 'slow-start', '1')).toEqual({ ready: false, reason: 'model \'slow-start\' version 1 is loading' });
      const err = await api.infer('slow-start', [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }]).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(err?.grpcCode).toBe(14);
      // Its heartbeat says so too: the registry and the routers see a load under way, not nothing.
      await waitFor('the registry to see it loading', async () => (await seenByRegistry(mesh, 'slow-start'))?.state === 'LOADING', 5_000);
      expect(pod.cannotExit?.()).toBeDefined(); // all of that while onnxruntime still made the session
      const ended = await waitFor('its load to end', () => pod.repo.index().find((e) => e.name === 'slow-start' && e.state !== 'LOADING'), LOAD_TIMEOUT_MS + 10_000);
      expect(ended).toEqual({ name: 'slow-start', version: 1, state: 'READY', reason: '' });
      expect(await api.repositoryIndex()).toContainEqual({ name: 'slow-start', version: '1', state: 'READY', reason: '' });
      expect(await modelReady(client, 'slow-start')).toEqual({ ready: true, reason: '' });
    } finally {
      client.close();
      api.close();
      await pod.shutdown(5_000);
    }
  }, LOAD_TIMEOUT_MS + 60_000);

  it('keep a load\'s memory on the books while its set-aside worker still makes the session', async () => {
    const pod = await mesh.startPod({
      INFERMESH_SHARED_SESSION_WORKERS: '1', INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS: '300',
      // Not tried again within the test: its memory is charged only while the worker holds it.
      INFERMESH_LOAD_RETRY_BASE_MS: '600000', INFERMESH_LOAD_RETRY_MAX_MS: '600000',
    });
    // Its heartbeats, which say apart what set-aside workers hold (no version listed accounts for it: placement fits copies beside it).
    const nc = await connect({ servers: mesh.nats.url });
    let memory: PodMemory | undefined;
    nc.subscribe(subjects.heartbeat, { callback: (_e, m) => void (memory = decodeHeartbeat(m.data).memory) });
    try {
      const model = wideModel(16_000);
      await mesh.registryApi.push('slow-mem', model);
      await waitFor('its load to fail past its budget', () => pod.repo.index().find((e) => e.name === 'slow-mem' && e.state === 'UNAVAILABLE'));
      expect(setAsideWorkers()).toBe(1);
      // Nothing measured it: its artifact's size is the least it holds.
      expect(pod.repo.memoryUsed()).toBeGreaterThanOrEqual(model.length);
      await waitFor('the registry to see its memory held', async () => ((await seenByRegistry(mesh, 'slow-mem'))?.usedBytes ?? 0) >= model.length, 5_000);
      await waitFor('a heartbeat to say a set-aside worker holds it', () => (memory?.setAsideBytes ?? 0) >= model.length, 5_000);
      expect(memory!.usedBytes).toBe(memory!.setAsideBytes);
      await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 60_000);
      expect(pod.repo.memoryUsed()).toBe(0);
      await waitFor('a heartbeat to say nothing is held', () => memory?.setAsideBytes === 0 && memory.usedBytes === 0, 5_000);
    } finally {
      await nc.close();
      await pod.shutdown(5_000);
    }
  });

  it('keep a stopped version\'s measured memory on the books until the worker that runs on exits', async () => {
    await mesh.push('long-run', 'fixtures/heavy.onnx');
    const pod = await mesh.startPod({
      // Its own workers, 300 ms a run; no run on the pod's thread, no batching.
      INFERMESH_SHARED_SESSION_MAX_MODEL_BYTES: '1', INFERMESH_INLINE_RUN_US: '0', INFERMESH_DYNAMIC_BATCHING: 'false', INFERMESH_RUN_TIMEOUT_MS: '300',
      INFERMESH_LOAD_RETRY_BASE_MS: '600000', INFERMESH_LOAD_RETRY_MAX_MS: '600000',
    });
    const address = `127.0.0.1:${pod.port}`;
    const api = new InferenceApi(address);
    try {
      await waitReady(inferenceClient(address), ['long-run']);
      const measured = pod.repo.find('long-run', '').memoryBytes;
      expect(measured).toBeGreaterThan(0);
      expect(pod.repo.memoryUsed()).toBe(measured);
      const err = await api.infer('long-run', heavyInput(512), { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as InfermeshError);
      expect(err?.message).toMatch(/the run took longer than INFERMESH_RUN_TIMEOUT_MS/);
      // Taken off the pod, its sessions still in the worker that finishes the run.
      expect(pod.repo.all()).toEqual([]);
      expect(setAsideWorkers()).toBe(1);
      expect(pod.repo.memoryUsed()).toBe(measured);
      await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 60_000);
      expect(pod.repo.memoryUsed()).toBe(0);
    } finally {
      api.close();
      await pod.shutdown(5_000);
    }
  });

  it('never restart for loads set aside past INFERMESH_MAX_SET_ASIDE_WORKERS: the pod keeps serving', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-set-aside-loads-'));
    const lines: string[] = [];
    const proc = await startService('inference', {
      env: podProcessEnv(mesh, 'set-aside-loads', dir, {
        INFERMESH_MAX_SET_ASIDE_WORKERS: '1', INFERMESH_SHARED_SESSION_WORKERS: '1', INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS: '300',
        INFERMESH_LOAD_RETRY_BASE_MS: '600000', INFERMESH_LOAD_RETRY_MAX_MS: '600000',
      }),
      onLine: (line) => lines.push(line),
    });
    let gone = false;
    void proc.exited.then(() => { gone = true; });
    try {
      // Two models built to be slow to load: each load past its budget sets a worker aside, busy
      // for seconds. A pod that restarted for them would load them again on start, and restart
      // again, on every pod they are placed on.
      await mesh.registryApi.push('hostile-1', wideModel(16_000));
      await mesh.registryApi.push('hostile-2', wideModel(16_001));
      const setAside = () => lines.filter((l) => l.includes('making its session outlived its budget')).length;
      const deadline = Date.now() + 60_000;
      while (setAside() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(setAside()).toBe(2);
      await new Promise((r) => setTimeout(r, 500));
      expect(lines.some((l) => l.includes('draining to restart'))).toBe(false);
      expect(gone).toBe(false);
    } finally {
      await proc.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
