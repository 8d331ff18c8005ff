// ServerMetadata lists exactly the Triton extensions that work: every extension with a call that
// proves it is probed on a pod and through the router, and it is listed if and only if the probe
// succeeds; extensions infermesh cannot serve are never listed.
import * as grpc from '@grpc/grpc-js';
import type { RouterService } from '../../services/router/router-service';
import type { InferenceService } from '../../services/inference/inference-service';
import type { InferenceClient, ModelInferResponseOut } from '../../lib/grpc/types';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';

jest.setTimeout(120_000);

const MODEL = 'meta_model';
const input = Buffer.from(Float32Array.from([1.25, -3]).buffer);
const inferRequest = (extra: object = {}) => ({ model_name: MODEL, inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [input], ...extra });

/** Calls a method the protocol's .proto may not define, with an empty message; resolves to the status. */
function rawStatus(address: string, method: string): Promise<number> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/inference.GRPCInferenceService/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err) => {
      client.close();
      resolve(err ? err.code : grpc.status.OK);
    });
  });
}

const works = (p: Promise<unknown>) => p.then(() => true, () => false);

/** One probe per Triton extension that a call can prove: true when the extension works. */
function probes(address: string, c: InferenceClient): Record<string, () => Promise<boolean>> {
  const infer = (req: object) => unary<ModelInferResponseOut>((cb) => c.ModelInfer(req, cb));
  const unimplemented = (method: string) => async () => (await rawStatus(address, method)) !== grpc.status.UNIMPLEMENTED;
  return {
    model_configuration: () => works(unary((cb) => c.ModelConfig({ name: MODEL, version: '' }, cb))),
    statistics: () => works(unary((cb) => c.ModelStatistics({ name: MODEL, version: '' }, cb))),
    parameters: async () => {
      const res = await infer(inferRequest({ parameters: { my_custom_parameter: { int64_param: 42 }, note: { string_param: 'x' } } }));
      return Buffer.from(res.raw_output_contents[0]!).equals(input);
    },
    binary_tensor_data: async () => Buffer.from((await infer(inferRequest())).raw_output_contents[0]!).equals(input),
    // Triton's classification: the output comes back as BYTES "value:index" elements.
    classification: async () => {
      const res = await infer(inferRequest({ outputs: [{ name: 'OUTPUT0', parameters: { classification: { int64_param: 1 } } }] })).catch(() => undefined);
      return res?.outputs[0]?.datatype === 'BYTES';
    },
    model_repository: unimplemented('RepositoryModelLoad'),
    'model_repository(unload_dependents)': unimplemented('RepositoryModelUnload'),
    system_shared_memory: unimplemented('SystemSharedMemoryStatus'),
    cuda_shared_memory: unimplemented('CudaSharedMemoryStatus'),
    trace: unimplemented('TraceSetting'),
    logging: unimplemented('LogSettings'),
  };
}

describe('ServerMetadata extensions', () => {
  let mesh: TestMesh;
  let pod: InferenceService;
  let router: RouterService;

  beforeAll(async () => {
    mesh = await startTestMesh();
    pod = await mesh.startPod();
    await mesh.push(MODEL, 'fixtures/identity_fp32.onnx');
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    const c = inferenceClient(`127.0.0.1:${router.port}`);
    await waitReady(c, [MODEL]);
    c.close();
  });

  afterAll(async () => {
    await router.shutdown(5_000);
    await mesh.close();
  });

  it.each([
    ['a pod', () => pod.port],
    ['the router', () => router.port],
  ])('%s lists an extension if and only if it works', async (_who, port) => {
    const address = `127.0.0.1:${port()}`;
    const c = inferenceClient(address);
    try {
      const { extensions } = await unary<{ extensions: string[] }>((cb) => c.ServerMetadata({}, cb));
      const checks = probes(address, c);
      const observed: Record<string, boolean> = {};
      for (const [name, probe] of Object.entries(checks)) observed[name] = await probe();
      const expected = Object.fromEntries(Object.keys(checks).map((name) => [name, extensions.includes(name)]));
      expect(observed).toEqual(expected);
      // Nothing is listed that no probe covers, and nothing is listed twice; these never are.
      expect(extensions.filter((e) => !(e in checks))).toEqual([]);
      expect(new Set(extensions).size).toBe(extensions.length);
      expect(extensions).not.toContain('sequence');
      expect(extensions).not.toContain('schedule_policy');
      // What works today, so that losing one of them is noticed.
      expect(extensions).toEqual(expect.arrayContaining(['model_configuration', 'statistics', 'parameters', 'binary_tensor_data']));
    } finally {
      c.close();
    }
  });
});
