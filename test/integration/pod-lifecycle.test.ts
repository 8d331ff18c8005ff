// A pod's model lifecycle against a real registry, nats-server and onnxruntime: a warm-up never
// refuses a valid model (a synthetic one that fails is reported and the version serves: a fixture
// and a real pretrained speech model, Silero VAD, that need 2 where it feeds 1); the
// warm-up samples of the model's registry config run instead of the synthetic one; a version whose
// session cannot load is tried again after a doubling back-off, its reason in RepositoryIndex, the
// heartbeat and ModelReady's trailing metadata; and a pod refuses an artifact that is not
// self-contained even when the registry holds one (stored before the registry checked).
import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { onnx } from 'onnx-proto';
import { InferenceApi } from '../../client/index';
import { decodeHeartbeat, subjects, type Heartbeat } from '../../lib/events';
import { registryClient } from '../../lib/grpc/client';
import type { InferenceClient, ServingConfig } from '../../lib/grpc/types';
import type { RepositoryIndexResponse__Output } from '../../lib/grpc/generated/inference/RepositoryIndexResponse';
import { resources } from '../../lib/nats';
import { keys, type ModelRecord, type VersionRecord } from '../../services/registry/records';
import type { InferenceService } from '../../services/inference/inference-service';
import { startTestMesh, waitReady, inferenceClient, modelReady, unary, type TestMesh } from '../helpers/mesh';
import { startTestPod } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { sileroPath } from '../helpers/real-models';
import { ort } from '../../lib/ort';

jest.setTimeout(120_000);

type IndexEntry = RepositoryIndexResponse__Output['models'][number];

async function indexOf(client: InferenceClient): Promise<IndexEntry[]> {
  return (await unary<RepositoryIndexResponse__Output>((cb) => client.RepositoryIndex({ repository_name: '', ready: false }, cb))).models;
}

async function entry(client: InferenceClient, name: string): Promise<IndexEntry | undefined> {
  return (await indexOf(client)).find((m) => m.name === name);
}

const f32 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);

describe('pod model lifecycle', () => {
  let mesh: TestMesh;
  let nc: NatsConnection;
  const heartbeats = new Map<string, Heartbeat>();
  /** The pods the running test started, stopped after it. */
  const pods: InferenceService[] = [];

  const startPod = async (env: Record<string, string> = {}) => {
    const pod = await startTestPod(mesh.nats.url, mesh.registry.port, { INFERMESH_LOAD_RETRY_BASE_MS: '200', INFERMESH_LOAD_RETRY_MAX_MS: '800', ...env });
    pods.push(pod);
    return { pod, client: inferenceClient(`127.0.0.1:${pod.port}`) };
  };
  const heartbeatEntry = (pod: InferenceService, name: string) => heartbeats.get(pod.address)?.models.find((m) => m.name === name);

  /** Creates a model with a serving config (before its first push, so every pod loads it with that config). */
  async function createModel(name: string, config: ServingConfig): Promise<void> {
    const registry = registryClient(`127.0.0.1:${mesh.registry.port}`);
    try {
      await unary((cb) => registry.CreateModel({ name, description: '', labels: {}, config }, cb));
    } finally {
      registry.close();
    }
  }

  beforeAll(async () => {
    // Every pod holds every served version (each test's pods must serve what was pushed).
    mesh = await startTestMesh({ INFERMESH_PLACEMENT_MIN_COPIES: '1000' });
    nc = await connect({ servers: mesh.nats.url });
    nc.subscribe(subjects.heartbeat, { callback: (_err, msg) => {
      const hb = decodeHeartbeat(msg.data);
      heartbeats.set(hb.address, hb);
    } });
  });

  // Each test's pod serves only that test. Left running, every pod holds every version pushed
  // since (placement's minimum copies), so later tests' loads, warm-ups of seconds and the failing
  // version's retries ran on every earlier pod too: the machine's load, not the back-off, set how
  // long a retry took, and the back-off test once found its version still loading.
  afterEach(async () => {
    await Promise.all(pods.splice(0).map((p) => p.shutdown(5_000).catch(() => undefined)));
  });

  afterAll(async () => {
    await nc?.close();
    await mesh?.close();
  });

  it('makes a model that fails when a dynamic dimension is 1 ready, reports the failed warm-up and serves requests of a valid size', async () => {
    const { pod, client } = await startPod();
    const api = new InferenceApi(`127.0.0.1:${pod.port}`);
    try {
      await mesh.push('pad-reflect', 'fixtures/pad_reflect_fp32.onnx');
      await waitReady(client, ['pad-reflect']);
      const out = await api.infer('pad-reflect', [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }]);
      expect(out.outputs[0]!.shape).toEqual([2, 5]);
      expect(Array.from(out.outputs[0]!.data as Float32Array)).toEqual([2, 1, 2, 3, 2, 5, 4, 5, 6, 5]);

      const reason = /^synthetic warm-up \(INPUT0 \[1,1\] zeros\) failed: onnxruntime failed: .*Pad reflect requires axis length >= 2.*; serving anyway$/;
      expect(await entry(client, 'pad-reflect')).toMatchObject({ state: 'READY', reason: expect.stringMatching(reason) });
      const hb = await waitFor('a heartbeat with the warm-up\'s reason', () => heartbeatEntry(pod, 'pad-reflect')?.reason && heartbeatEntry(pod, 'pad-reflect'));
      expect(hb).toMatchObject({ state: 'READY', provider: 'cpu', reason: expect.stringMatching(reason) });
      expect(await modelReady(client, 'pad-reflect')).toEqual({ ready: true, reason: '' });
    } finally {
      api.close();
      client.close();
    }
  });

  it('serves a real pretrained speech model whose synthetic warm-up fails (Silero VAD), and warms it with a configured sample', async () => {
    const file = sileroPath('silero_vad.onnx');
    const sr = Buffer.from(BigInt64Array.of(16_000n).buffer);
    await createModel('silero-configured', { warmup: [{ name: '32 ms of silence', count: 1, inputs: [
      { name: 'input', dims: [1, 512], raw_data: Buffer.alloc(0) },
      { name: 'state', dims: [2, 1, 128], raw_data: Buffer.alloc(0) },
      { name: 'sr', dims: [], raw_data: sr },
    ] }] });
    const { pod, client } = await startPod();
    const api = new InferenceApi(`127.0.0.1:${pod.port}`);
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    try {
      await mesh.registryApi.push('silero', file);
      await mesh.registryApi.push('silero-configured', file);
      await waitReady(client, ['silero', 'silero-configured']);
      expect(await entry(client, 'silero')).toMatchObject({
        state: 'READY',
        reason: expect.stringMatching(/^synthetic warm-up \(input \[1,1\] zeros, state \[2,1,128\] zeros, sr \[1\] zeros\) failed: .*; serving anyway$/),
      });
      expect(await entry(client, 'silero-configured')).toMatchObject({ state: 'READY', reason: '' });

      // 32 ms of a 440 Hz tone at 16 kHz: both versions answer what onnxruntime answers by itself.
      const tone = Float32Array.from({ length: 512 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16_000));
      const alone = await session.run({
        input: new ort.Tensor('float32', tone, [1, 512]),
        state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
        sr: new ort.Tensor('int64', BigInt64Array.of(16_000n), []),
      });
      for (const model of ['silero', 'silero-configured']) {
        const out = await api.infer(model, [
          { name: 'input', datatype: 'FP32', shape: [1, 512], data: tone },
          { name: 'state', datatype: 'FP32', shape: [2, 1, 128], data: new Float32Array(256) },
          { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16_000n) },
        ]);
        const speech = out.outputs.find((o) => o.name === 'output')!;
        expect(speech.shape).toEqual([1, 1]);
        expect(Array.from(speech.data as Float32Array)).toEqual(Array.from(alone.output!.data as Float32Array));
      }
    } finally {
      await session.release();
      api.close();
      client.close();
    }
  });

  it('runs the warm-up samples of the model\'s registry config instead, and reports one that fails or does not fit', async () => {
    const sample = (name: string, dims: number[], raw: Buffer = Buffer.alloc(0), input = 'INPUT0') => ({ name, count: 2, inputs: [{ name: input, dims, raw_data: raw }] });
    await createModel('pad-warm', { warmup: [sample('two rows', [2, 4], f32([1, 2, 3, 4, 5, 6, 7, 8]))] });
    await createModel('pad-narrow', { warmup: [sample('fine', [1, 3]), sample('too narrow', [3, 1])] });
    await createModel('pad-typo', { warmup: [sample('typo', [1, 4], Buffer.alloc(0), 'INPUT9')] });
    const { pod, client } = await startPod();
    const api = new InferenceApi(`127.0.0.1:${pod.port}`);
    try {
      for (const m of ['pad-warm', 'pad-narrow', 'pad-typo']) await mesh.push(m, 'fixtures/pad_reflect_fp32.onnx');
      await waitReady(client, ['pad-warm', 'pad-narrow', 'pad-typo']);
      expect(await entry(client, 'pad-warm')).toMatchObject({ state: 'READY', reason: '' });
      expect(await entry(client, 'pad-narrow')).toMatchObject({
        state: 'READY',
        reason: expect.stringMatching(/^warm-up sample 'too narrow' \(INPUT0 \[3,1\] zeros\) failed: .*Pad reflect requires axis length >= 2.*; serving anyway$/),
      });
      expect(await entry(client, 'pad-typo')).toMatchObject({
        state: 'READY',
        reason: "warm-up sample 'typo' (INPUT9 [1,4] zeros) does not fit version 1: tensor 'INPUT9': unknown input; the model's inputs are INPUT0; serving anyway",
      });
      // Each serves all the same.
      for (const m of ['pad-warm', 'pad-narrow', 'pad-typo']) {
        const out = await api.infer(m, [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [7, 8] }]);
        expect(Array.from(out.outputs[0]!.data as Float32Array)).toEqual([8, 7, 8, 7]);
      }
      // Warm-up runs are not the model's statistics: only the one request above counts.
      const stats = await unary<{ model_stats: { execution_count: string }[] }>((cb) => client.ModelStatistics({ name: 'pad-warm', version: '' }, cb));
      expect(stats.model_stats[0]!.execution_count).toBe('1');
    } finally {
      api.close();
      client.close();
    }
  });

  it('makes a version whose warm-up passes INFERMESH_WARMUP_TIMEOUT_MS ready, with why, and it serves', async () => {
    // 100 runs of ~45 ms each: some 4.5 s of warm-up, against a budget of 300 ms.
    const inputs = [{ name: 'INPUT0', dims: [1, 4], raw_data: Buffer.alloc(0) }, { name: 'INPUT1', dims: [1, 4], raw_data: Buffer.alloc(0) }];
    await createModel('slow-warm', { warmup: [{ name: 'long', count: 100, inputs }] });
    const { pod, client } = await startPod({ INFERMESH_WARMUP_TIMEOUT_MS: '300' });
    const api = new InferenceApi(`127.0.0.1:${pod.port}`);
    try {
      await mesh.push('slow-warm', 'fixtures/slow_fp32.onnx');
      await waitReady(client, ['slow-warm']);
      const reason = /^warm-up stopped at its budget of 300 ms \(INFERMESH_WARMUP_TIMEOUT_MS\), in warm-up sample 'long' \(INPUT0 \[1,4\] zeros, INPUT1 \[1,4\] zeros\), run \d+ of 100; serving anyway$/;
      expect(await entry(client, 'slow-warm')).toMatchObject({ state: 'READY', reason: expect.stringMatching(reason) });
      const hb = await waitFor('a heartbeat with the warm-up\'s reason', () => heartbeatEntry(pod, 'slow-warm')?.reason && heartbeatEntry(pod, 'slow-warm'));
      expect(hb).toMatchObject({ state: 'READY', reason: expect.stringMatching(reason) });
      const out = await api.infer('slow-warm', [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }]);
      expect(Array.from(out.outputs[0]!.data as Float32Array)).toEqual([2, 3, 4, 5]);
    } finally {
      api.close();
      client.close();
    }
  });

  it('tries a version whose session cannot load again after a doubling back-off, and reports why everywhere', async () => {
    const { pod, client } = await startPod();
    try {
      await mesh.push('broken', 'fixtures/load_fails.onnx');
      // failures → the wait announced after it: 200 ms doubling, capped at 800 ms.
      const waits = new Map<number, string>();
      await waitFor('five failed loads', async () => {
        const e = await entry(client, 'broken');
        const m = e && /\(failed (\d+) times? in a row; next try in (\d+ ms)\)$/.exec(e.reason);
        if (m) waits.set(Number(m[1]), m[2]!);
        return waits.has(5) || [...waits.keys()].some((n) => n > 5);
      }, 30_000, 20);
      const expected: Record<number, string> = { 1: '200 ms', 2: '400 ms', 3: '800 ms', 4: '800 ms', 5: '800 ms' };
      for (const [n, wait] of waits) if (n <= 5) expect(wait).toBe(expected[n]);
      expect(waits.size).toBeGreaterThanOrEqual(3);

      const e = (await entry(client, 'broken'))!;
      expect(e.state).toBe('UNAVAILABLE');
      expect(e.reason).toMatch(/^model failed to load: .*No Op registered for NoSuchOperator.* \(failed \d+ times in a row; next try in 800 ms\)$/);
      // The artifact by its name, never the pod's folder (the reason reaches the model's callers).
      expect(e.reason).toMatch(/[0-9a-f]{64}\.onnx/);
      expect(e.reason).not.toContain('infermesh-pod-');
      const hb = await waitFor('a heartbeat with the load failure', () => {
        const m = heartbeatEntry(pod, 'broken');
        return m?.state === 'UNAVAILABLE' && m.reason?.includes('NoSuchOperator') ? m : undefined;
      });
      expect(hb.reason).toMatch(/^model failed to load: .*\(failed \d+ times in a row; next try in \d+ ms\)$/);
      const latest = await modelReady(client, 'broken');
      expect(latest.ready).toBe(false);
      expect(latest.reason).toMatch(/^model 'broken' has no version ready \(version 1 failed to load: model failed to load: .*NoSuchOperator.*\(failed \d+ times in a row; next try in \d+ ms\)\)$/);
      const named = await modelReady(client, 'broken', '1');
      expect(named).toMatchObject({ ready: false, reason: expect.stringMatching(/^model 'broken' version 1 failed to load: model failed to load: /) });
      // An unknown model is still just not ready, with its own reason.
      expect(await modelReady(client, 'nope')).toEqual({ ready: false, reason: "model 'nope' not found" });
    } finally {
      client.close();
    }
  });

  it('refuses to load an artifact that declares external data, though the registry holds it', async () => {
    // What a registry from before the check may have stored: a version whose artifact reads the
    // bytes of the artifact beside it on the pod. Written straight into JetStream.
    await mesh.push('victim', 'fixtures/add_sub_fp32.onnx');
    const victim = await mesh.registryApi.version('victim', 1);
    const thief = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'thief',
        node: [{ opType: 'Identity', input: ['W'], output: ['Y'] }, { opType: 'Identity', input: ['X'], output: ['Z'] }],
        initializer: [{ name: 'W', dataType: 1, dims: [4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: `${victim.sha256}.onnx` }] }],
        input: [{ name: 'X', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
        output: [{ name: 'Y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
      },
    }).finish();
    const sha256 = createHash('sha256').update(thief).digest('hex');
    const store = await connect({ servers: mesh.nats.url });
    try {
      await (await new Objm(store).open(resources.artifactBucket)).putBlob({ name: sha256 }, thief);
      const kv = await new Kvm(store).open(resources.metadataBucket);
      const now = new Date().toISOString();
      const version: VersionRecord = { schema: 1, model: 'legacy', version: 1, sha256, sizeBytes: thief.length, createdAt: now, state: 'AVAILABLE',
        inputs: [{ name: 'X', datatype: 'FP32', shape: [4] }], outputs: [{ name: 'Y', datatype: 'FP32', shape: [4] }] };
      const model: ModelRecord = { schema: 1, name: 'legacy', description: '', labels: {}, config: {}, latestVersion: 1, traffic: [{ version: 1, weight: 100 }], createdAt: now };
      await kv.put(keys.version('legacy', 1), JSON.stringify(version));
      await kv.put(keys.model('legacy'), JSON.stringify(model));
    } finally {
      await store.close();
    }
    // A pod starting now syncs every model, this one included.
    const { client } = await startPod();
    try {
      await waitReady(client, ['victim']);
      const e = await waitFor('the legacy version to fail', async () => {
        const x = await entry(client, 'legacy');
        return x?.state === 'UNAVAILABLE' ? x : undefined;
      });
      expect(e.reason).toMatch(new RegExp(`^artifact is not servable: initializer 'W' declares external data \\(location '${victim.sha256}\\.onnx'\\)`));
    } finally {
      client.close();
    }
  });
});
