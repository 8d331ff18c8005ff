// gRPC server reflection on every service, as grpcurl uses it: a client that knows only the
// reflection protocol lists the services of the registry, a pod and the router (through their
// public ports, which the front doors pipe to grpc-js), fetches their file descriptors, and calls
// them with message types built from nothing but those descriptors.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import type { RouterService } from '../../services/router/router-service';
import type { InferenceService } from '../../services/inference/inference-service';
import { startTestMesh, waitReady, inferenceClient, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';

jest.setTimeout(120_000);

const REFLECTION_PROTO = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto');

type ReflectionVersion = 'v1' | 'v1alpha';

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** A client of grpc.reflection.<version>.ServerReflection, built only from the reflection protocol. */
function reflectionClient(address: string, version: ReflectionVersion) {
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [REFLECTION_PROTO], keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<ReflectionVersion, { ServerReflection: grpc.ServiceClientConstructor }> } };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, grpc.credentials.createInsecure());
  /** Sends one request on a ServerReflectionInfo stream and resolves to its one answer. */
  const ask = (request: object): Promise<ReflectionResponse> => new Promise((resolve, reject) => {
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }).ServerReflectionInfo();
    call.once('data', (res: ReflectionResponse) => {
      resolve(res);
      call.end();
    });
    call.on('error', reject);
    call.write(request);
  });
  return { client, ask };
}

/** What `grpcurl list` and `grpcurl describe` do: the services, and a Root built from the descriptors. */
async function reflect(address: string, version: ReflectionVersion): Promise<{ services: string[]; root: (symbol: string) => Promise<protobuf.Root> }> {
  const { client, ask } = reflectionClient(address, version);
  try {
    const list = await ask({ host: '', list_services: '*' });
    const services = list.list_services_response!.service.map((s) => s.name).sort();
    return {
      services,
      root: async (symbol) => {
        const { ask: askAgain, client: c } = reflectionClient(address, version);
        try {
          const res = await askAgain({ host: '', file_containing_symbol: symbol });
          if (res.error_response) throw new Error(res.error_response.error_message);
          const files = res.file_descriptor_response!.file_descriptor_proto.map((b) => descriptor.FileDescriptorProto.decode(b));
          return (protobuf.Root as unknown as { fromDescriptor(set: unknown): protobuf.Root }).fromDescriptor(descriptor.FileDescriptorSet.create({ file: files }));
        } finally {
          c.close();
        }
      },
    };
  } finally {
    client.close();
  }
}

/** Calls a unary method with request and response types taken from a reflected Root. */
function callReflected(address: string, root: protobuf.Root, service: string, method: string, request: object): Promise<Record<string, unknown>> {
  const svc = root.lookupService(service);
  const m = svc.methods[method]!;
  const req = root.lookupType(m.requestType);
  const res = root.lookupType(m.responseType);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${service}/${method}`, (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()), (b: Buffer) => res.toObject(res.decode(b), { longs: String, defaults: true }), request, (err, value) => {
      client.close();
      if (err) reject(err);
      else resolve(value as Record<string, unknown>);
    });
  });
}

describe('gRPC server reflection', () => {
  let mesh: TestMesh;
  let pod: InferenceService;
  let router: RouterService;

  beforeAll(async () => {
    mesh = await startTestMesh();
    pod = await mesh.startPod();
    await mesh.push('densenet_onnx', 'fixtures/identity_fp32.onnx');
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    const c = inferenceClient(`127.0.0.1:${router.port}`);
    await waitReady(c, ['densenet_onnx']);
    c.close();
  });

  afterAll(async () => {
    await router.shutdown(5_000);
    await mesh.close();
  });

  const INFERENCE = ['grpc.health.v1.Health', 'inference.GRPCInferenceService'];
  const REGISTRY = ['grpc.health.v1.Health', 'infermesh.registry.v1.Registry', 'infermesh.registry.v1.Rollouts'];

  it.each([
    ['the router', 'v1', () => router.port, INFERENCE],
    ['the router', 'v1alpha', () => router.port, INFERENCE],
    ['a pod', 'v1', () => pod.port, INFERENCE],
    ['a pod', 'v1alpha', () => pod.port, INFERENCE],
    ['the registry', 'v1', () => mesh.registry.port, REGISTRY],
    ['the registry', 'v1alpha', () => mesh.registry.port, REGISTRY],
  ] as const)('%s lists exactly its services over reflection %s', async (_who, version, port, expected) => {
    const { services } = await reflect(`127.0.0.1:${port()}`, version);
    expect(services).toEqual([...expected]);
  });

  it('describes the inference service well enough to call it without .proto files, through the router', async () => {
    const address = `127.0.0.1:${router.port}`;
    const { root } = await reflect(address, 'v1');
    const types = await root('inference.GRPCInferenceService');
    const svc = types.lookupService('inference.GRPCInferenceService');
    expect(Object.keys(svc.methods)).toEqual(expect.arrayContaining(['ModelInfer', 'ModelStreamInfer', 'ModelConfig', 'ServerMetadata']));
    // ModelConfig's response lives in model_config.proto: the dependency came along.
    const config = await callReflected(address, types, 'inference.GRPCInferenceService', 'ModelConfig', { name: 'densenet_onnx' });
    expect(config).toMatchObject({ config: { name: 'densenet_onnx', input: [expect.objectContaining({ name: 'INPUT0' })] } });
    const input = Buffer.from(Float32Array.from([1.5, -2]).buffer);
    const answer = await callReflected(address, types, 'inference.GRPCInferenceService', 'ModelInfer', {
      model_name: 'densenet_onnx',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2] }],
      raw_input_contents: [input],
    });
    expect(answer.model_name).toBe('densenet_onnx');
    expect(Buffer.from((answer.raw_output_contents as Uint8Array[])[0]!)).toEqual(input);
  });

  it('describes the registry through its own port', async () => {
    const address = `127.0.0.1:${mesh.registry.port}`;
    const { root } = await reflect(address, 'v1alpha');
    const types = await root('infermesh.registry.v1.Registry');
    const models = await callReflected(address, types, 'infermesh.registry.v1.Registry', 'ListModels', {});
    expect((models.models as { name: string }[]).map((m) => m.name)).toEqual(['densenet_onnx']);
  });

  it('answers NOT_FOUND for a symbol no service defines', async () => {
    const { ask, client } = reflectionClient(`127.0.0.1:${router.port}`, 'v1');
    try {
      const res = await ask({ host: '', file_containing_symbol: 'infermesh.registry.v1.Registry' });
      expect(res.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });
});
