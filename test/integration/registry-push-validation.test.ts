// What a push must be to be stored, against a real registry and nats-server: one whose header gives
// the artifact's size (without it, a push whose last message the stream's end cuts short, which
// grpc-js drops without an error, would be stored as whole), a self-contained model (one that
// declares external data is refused with INVALID_ARGUMENT naming the tensor, and nothing is
// stored), and every model onnxruntime loads is taken, dim_value -1 included.
import fs from 'node:fs';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { onnx } from 'onnx-proto';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { RegistryApi, InfermeshError } from '../../client/index';
import { resources } from '../../lib/nats';
import { registryClient } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { RegistryClient, VersionOut } from '../../lib/grpc/types';
import { H2Connection, type H2Stream, type Header } from '../../lib/h2/connection';
import { statusOf } from '../../lib/h2/grpc';
import { grpcMessage, grpcRequestHeaders } from '../helpers/h2-raw';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath, wideModel } from '../helpers/models';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function storedObjects(natsUrl: string): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    return (await (await new Objm(nc).open(resources.artifactBucket)).list()).map((o) => o.name).sort();
  } finally {
    await nc.close();
  }
}

const vi = (name: string): onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** Y = X + W where W's data is "in" `location`: on a pod, the file of another artifact. */
function thief(location: string, where: 'initializer' | 'constant'): Uint8Array {
  const w: onnx.ITensorProto = { name: 'W', dataType: 1, dims: [4], dataLocation: EXTERNAL, externalData: [{ key: 'location', value: location }] };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'thief',
      node: [
        ...(where === 'constant' ? [{ name: 'weights', opType: 'Constant', output: ['W'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: w }] }] : []),
        { name: 'add', opType: 'Add', input: ['X', 'W'], output: ['Y'] },
      ],
      initializer: where === 'initializer' ? [w] : [],
      input: [vi('X')],
      output: [vi('Y')],
    },
  }).finish();
}

describe('registry push validation', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;
  const addSub = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    await client.push('victim', addSub);
  });

  afterAll(async () => {
    client?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  describe('the artifact\'s size', () => {
    const INVALID_ARGUMENT = 3;
    const NO_SIZE = 'size_bytes is required: the push header must give the artifact\'s size in bytes, so that an artifact cut short on the way is refused, not stored as whole (0 or unset: none given; an artifact is never empty)';
    let raw: RegistryClient;

    beforeAll(() => {
      raw = registryClient(`127.0.0.1:${service.port}`);
    });

    afterAll(() => raw?.close());

    it('is required: a push whose header leaves it out is refused with INVALID_ARGUMENT, whole artifact or not, and nothing is stored', async () => {
      const before = await storedObjects(nats.url);
      const answer = await new Promise<ServiceError | VersionOut>((resolve) => {
        const call = raw.PushVersion(new Metadata(), (err, res) => resolve(err ?? res!));
        call.write({ header: { model: 'unsized', expected_sha256: '' } });
        call.write({ chunk: addSub });
        call.end();
      });
      expect((answer as ServiceError).code).toBe(INVALID_ARGUMENT);
      expect((answer as ServiceError).details).toBe(NO_SIZE);
      expect(await storedObjects(nats.url)).toEqual(before);
      expect((await client.models()).map((m) => m.name)).not.toContain('unsized');
    });

    /** Sends a push whose last message the stream's end cuts short (its prefix announces 4 bytes more than come) over raw HTTP/2. */
    async function cutPush(model: string, sizeBytes: number): Promise<{ code: number; message: string } | undefined> {
      const method = protos().registry.Registry.service.PushVersion;
      const message = (m: object) => grpcMessage(method.requestSerialize(m));
      const conn = new H2Connection(net.connect(service.port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0 });
      try {
        await conn.ping(5_000);
        const stream: H2Stream = conn.request(grpcRequestHeaders('/infermesh.registry.v1.Registry/PushVersion'));
        let last: Header[] | undefined;
        const closed = new Promise<void>((resolve) => {
          stream.onHeaders = (h) => {
            last = h;
          };
          stream.onClose = () => resolve();
        });
        const tail = message({ chunk: Buffer.alloc(64, 1) });
        stream.write(message({ header: { model, expected_sha256: '', size_bytes: sizeBytes } }));
        stream.write(message({ chunk: addSub }));
        stream.end(undefined, tail.subarray(0, tail.length - 4));
        await closed;
        return statusOf(last);
      } finally {
        conn.close();
      }
    }

    it.each([
      ['without its size, refused at its header', 0, NO_SIZE],
      // The registry never sees the 60 bytes that came of the last message: grpc-js drops them all.
      ['with its size, refused as short of it', addSub.length + 64, `artifact is ${addSub.length} bytes, but the client announced ${addSub.length + 64}`],
    ])('tells a push whose last message the stream\'s end cut short from a whole one (grpc-js drops the piece): %s, and stores nothing', async (_what, sizeBytes, why) => {
      const before = await storedObjects(nats.url);
      expect(await cutPush('cut-short', sizeBytes)).toEqual({ code: INVALID_ARGUMENT, message: why });
      expect(await storedObjects(nats.url)).toEqual(before);
      expect((await client.models()).map((m) => m.name)).not.toContain('cut-short');
    });
  });

  it.each([
    ['an initializer', 'initializer', `${sha(addSub)}.onnx`, /^artifact is not a servable ONNX model: initializer 'W' declares external data \(location '[0-9a-f]{64}\.onnx'\); infermesh serves only self-contained models/],
    ['a Constant node', 'constant', `../infermesh-models-other/${sha(addSub)}.onnx`, /tensor 'W' in attribute 'value' of node 'weights' declares external data \(location '\.\.\/infermesh-models-other\/[0-9a-f]{64}\.onnx'\)/],
  ] as const)('refuses a model whose %s declares external data, with INVALID_ARGUMENT, and stores nothing', async (_where, where, location, message) => {
    const before = await storedObjects(nats.url);
    const err = (await client.push('thief', thief(location, where)).catch((e: unknown) => e)) as InfermeshError;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err.grpcCode).toBe(3);
    expect(err.message).toMatch(message);
    expect(await storedObjects(nats.url)).toEqual(before);
    expect((await client.models()).map((m) => m.name)).not.toContain('thief');
  });

  it('refuses a model with BatchNormalization in training mode (state kept from run to run), with INVALID_ARGUMENT, and stores nothing', async () => {
    const before = await storedObjects(nats.url);
    const model = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 9 }],
      graph: {
        name: 'stateful',
        node: [{ name: 'bn', opType: 'BatchNormalization', input: ['X', 'S', 'S', 'S', 'S'], output: ['Y', 'M', 'V', 'SM', 'SV'] }],
        initializer: [{ name: 'S', dataType: 1, dims: [4], floatData: [1, 1, 1, 1] }],
        input: [vi('X')],
        output: [vi('Y')],
      },
    }).finish();
    const err = (await client.push('stateful', model).catch((e: unknown) => e)) as InfermeshError;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err.grpcCode).toBe(3);
    expect(err.message).toMatch(/^artifact is not a servable ONNX model: BatchNormalization of node 'bn' is in training mode: onnxruntime keeps its running statistics from run to run, so one caller's inputs would reach the next callers' answers/);
    expect(await storedObjects(nats.url)).toEqual(before);
  });

  it('refuses a model of more nodes than INFERMESH_MAX_GRAPH_NODES (a few bytes each, minutes of a pod\'s thread to load), with INVALID_ARGUMENT, and stores nothing', async () => {
    const before = await storedObjects(nats.url);
    const err = (await client.push('wide', wideModel(100_000)).catch((e: unknown) => e)) as InfermeshError;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err.grpcCode).toBe(3);
    expect(err.message).toMatch(/^artifact is not a servable ONNX model: the model has 100001 nodes \(its graph, subgraphs and local functions together\), more than INFERMESH_MAX_GRAPH_NODES \(100000\) allows/);
    expect(await storedObjects(nats.url)).toEqual(before);
    expect((await client.models()).map((m) => m.name)).not.toContain('wide');
  });

  it('takes a model whose dynamic dimensions are dim_value -1, and records them as -1', async () => {
    const v = await client.push('minus-one', fs.readFileSync(modelPath('fixtures/identity_dim_minus_one_fp32.onnx')));
    expect(v.inputs).toEqual([{ name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] }]);
    expect(v.outputs).toEqual([{ name: 'OUTPUT0', datatype: 'FP32', shape: ['-1', '4'] }]);
  });
});
