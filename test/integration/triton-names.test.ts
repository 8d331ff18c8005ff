// Model names as Triton uses them (`densenet_onnx`, `ResNet50`, `resnet50_v1.5`) through the real
// registry, a pod and the router: pushed, rolled out and served; the case of a name matters; each
// name has its own KV keys, event subject and metrics subject, and old names keep theirs.
import { InferenceApi, RolloutApi } from '../../client/index';
import { connectNats, metadataBucket, type NatsConnection } from '../../lib/nats';
import { silentLogger } from '../../lib/log';
import { decodeWindowReport, windowSubject } from '../../lib/window-stats';
import { startTestMesh, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const fp32 = (data: number[]) => [{ name: 'INPUT0', datatype: 'FP32' as const, shape: [1, data.length], data: Float32Array.from(data) }];
const fp64 = (data: number[]) => [{ name: 'INPUT0', datatype: 'FP64' as const, shape: [1, data.length], data: Float64Array.from(data) }];

describe('Triton model names', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let api: InferenceApi;
  let rollouts: RolloutApi;
  let nc: NatsConnection;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.startPod();
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_ANALYSIS_WINDOW_MS: '200' });
    api = new InferenceApi(`127.0.0.1:${router.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${mesh.registry.port}`);
    nc = await connectNats({ natsUrl: mesh.nats.url, natsUser: '', natsPassword: '', natsToken: '' }, 'names-test', silentLogger);
  });

  afterAll(async () => {
    api.close();
    rollouts.close();
    await nc.drain();
    await router.shutdown(5_000);
    await mesh.close();
  });

  it.each(['densenet_onnx', 'ResNet50', 'resnet50_v1.5'])('pushes, rolls out and serves %p through the router', async (name) => {
    expect(await mesh.push(name, 'fixtures/identity_fp32.onnx')).toBe(1);
    await waitFor(`${name} v1 through the router`, async () => (await api.infer(name, fp32([1, 2]))).modelVersion === '1');
    expect(await mesh.push(name, 'fixtures/identity_fp32.onnx')).toBe(2);
    await rollouts.start(name, 2, { weight: 50 });
    await rollouts.promote(name, 'names test');
    await waitFor(`${name} v2 through the router`, async () => (await api.infer(name, fp32([1, 2]))).modelVersion === '2');
    const res = await api.infer(name, fp32([3, -4.5]));
    expect(res.modelName).toBe(name);
    expect(Array.from(res.outputs[0]!.data as Float32Array)).toEqual([3, -4.5]);
    expect((await mesh.registryApi.model(name)).traffic).toEqual([{ version: 2, weight: 100 }]);
  });

  it('treats names that differ only in case as two models', async () => {
    await mesh.push('resnet50', 'fixtures/identity_fp64.onnx');
    await waitFor('resnet50 through the router', async () => (await api.infer('resnet50', fp64([7]))).modelVersion === '1');
    expect(Array.from((await api.infer('resnet50', fp64([7]))).outputs[0]!.data as Float64Array)).toEqual([7]);
    // ResNet50 is still the FP32 model at version 2.
    const upper = await api.infer('ResNet50', fp32([8]));
    expect([upper.modelVersion, Array.from(upper.outputs[0]!.data as Float32Array)]).toEqual(['2', [8]]);
    await expect(api.infer('resnet50', fp32([8]))).rejects.toMatchObject({ grpcCode: 3 });
  });

  it('keys and subjects: one token per name, unchanged for names that were valid before', async () => {
    const kv = await metadataBucket(nc, 1);
    const modelKeys: string[] = [];
    for await (const k of await kv.keys('models.*')) modelKeys.push(k);
    expect(modelKeys.sort()).toEqual(['models.ResNet50', 'models.densenet_onnx', 'models.resnet50', 'models.resnet50_v1=2E5']);
    const versionKeys: string[] = [];
    for await (const k of await kv.keys('versions.resnet50_v1=2E5.*')) versionKeys.push(k);
    expect(versionKeys.sort()).toEqual(['versions.resnet50_v1=2E5.1', 'versions.resnet50_v1=2E5.2']);
    expect((await mesh.registryApi.models()).map((m) => m.name)).toEqual(['ResNet50', 'densenet_onnx', 'resnet50', 'resnet50_v1.5']);

    // One model's events, on its own subject: none of another model's.
    const watch = mesh.registryApi.watchEvents({ model: 'resnet50_v1.5' });
    const types: string[] = [];
    for await (const { event } of watch) {
      expect(event.model).toBe('resnet50_v1.5');
      types.push(event.type);
      if (event.type === 'rollout.changed' && event.action === 'promoted') break;
    }
    watch.cancel();
    expect(types).toEqual(expect.arrayContaining(['model.created', 'version.published', 'traffic.changed', 'rollout.changed']));

    // The router's window reports for the model, on its metrics subject.
    const sub = nc.subscribe(windowSubject('resnet50_v1.5'), { max: 1 });
    const sending = setInterval(() => void api.infer('resnet50_v1.5', fp32([1])).catch(() => undefined), 50);
    try {
      for await (const m of sub) expect(decodeWindowReport(m.data).model).toBe('resnet50_v1.5');
    } finally {
      clearInterval(sending);
    }
    expect(sub.getProcessed()).toBe(1);
  });
});
