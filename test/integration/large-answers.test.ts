// Large answers and streams that are not read, through a real router and real pods: a typed answer
// of a million INT64s comes back exact by ModelInfer and by ModelStreamInfer (the pod writes it
// from onnxruntime's array, the router passes its bytes on); a stream whose client reads no answer
// has no more requests taken from it than its bounds (INFERMESH_STREAM_MAX_IN_FLIGHT and the
// answers waiting), where the router once took them all and held every answer; and on one
// connection to a pod, as a router's, a large answer waiting to be read does not get the next
// caller's answer refused (a pod's connection holds what its whole door may).
import net from 'node:net';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import type { ModelInferRequest } from '../../lib/grpc/generated/inference/ModelInferRequest';
import type { ModelStreamInferResponse__Output } from '../../lib/grpc/generated/inference/ModelStreamInferResponse';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import { H2Connection, type Header } from '../../lib/h2/connection';
import { statusOf } from '../../lib/h2/grpc';
import type { InferenceService } from '../../services/inference/inference-service';
import type { RouterService } from '../../services/router/router-service';
import { grpcMessage, grpcRequestHeaders } from '../helpers/h2-raw';
import { inferenceClient, startTestMesh, unary, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const service = protos().inference.GRPCInferenceService.service;
const MAX_IN_FLIGHT = 4;


/**
 * Where `got` first differs from `want` (a length, or an index and both values); undefined when
 * they are equal. Exact as toEqual, without its deep walk of a million elements (seconds of this
 * process, which the router and pods share).
 */
function firstDifference(got: readonly string[] | undefined, want: readonly string[]): { length: number } | { index: number; got: string; want: string } | undefined {
  if (!got || got.length !== want.length) return { length: got?.length ?? -1 };
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return { index: i, got: got[i]!, want: want[i]! };
  return undefined;
}

describe('large answers and unread streams', () => {
  let mesh: TestMesh;
  let pods: InferenceService[];
  let router: RouterService;

  beforeAll(async () => {
    mesh = await startTestMesh({ INFERMESH_PLACEMENT_MIN_COPIES: '1000' });
    await mesh.push('ident64', 'fixtures/identity_int64.onnx');
    await mesh.push('ident8', 'fixtures/identity_uint8.onnx');
    pods = await Promise.all([0, 1].map(() => mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1' })));
    for (const pod of pods) {
      const c = inferenceClient(`127.0.0.1:${pod.port}`);
      await waitReady(c, ['ident64', 'ident8']);
      c.close();
    }
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_STREAM_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), INFERMESH_H2_MAX_RESPONSE_BYTES_PER_CONNECTION: String(1 << 20) });
    await waitFor('the router to know both pods', () => ['ident64', 'ident8'].every((m) => router.membership.candidates(m, 1).length === 2));
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  /** Requests of `model` the pods ran, both together. */
  async function ran(model: string): Promise<number> {
    let n = 0;
    for (const pod of pods) {
      const c = inferenceClient(`127.0.0.1:${pod.port}`);
      try {
        const res = await unary<{ model_stats: { inference_count: string }[] }>((cb) => c.ModelStatistics({ name: model, version: '' }, cb));
        n += res.model_stats.reduce((a, s) => a + Number(s.inference_count), 0);
      } finally {
        c.close();
      }
    }
    return n;
  }

  it('answers a million INT64s in typed contents exactly, by ModelInfer and by ModelStreamInfer', async () => {
    const n = 1 << 20;
    const values = Array.from({ length: n }, (_, i) => (i % 4 === 0 ? '-9223372036854775808' : i % 4 === 1 ? '9223372036854775807' : String(i * 7919 - 2 ** 40)));
    const req: ModelInferRequest = { model_name: 'ident64', id: 'big', inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: [1, n], contents: { int64_contents: values } }] };
    // Each call on a client of its own: decoding, checking and encoding a million values holds this
    // process, the router's door with it, for seconds (a minute on a loaded machine), which can
    // outlast the door's idle timeout between the calls. A client that reads the door's GOAWAY
    // before its next request has left refuses that request itself, and grpc-js retries it only
    // when it holds the request's messages (up to 1 MiB): the second call would fail UNAVAILABLE.
    const client = inferenceClient(`127.0.0.1:${router.port}`, { maxMessageBytes: 64 << 20 });
    try {
      const res = await unary<ModelInferResponseOut>((cb) => client.ModelInfer(req, { deadline: Date.now() + 60_000 }, cb));
      expect(res.outputs[0]!.shape).toEqual(['1', String(n)]);
      expect(firstDifference(res.outputs[0]!.contents!.int64_contents, values)).toBeUndefined();
    } finally {
      client.close();
    }

    const streamClient = inferenceClient(`127.0.0.1:${router.port}`, { maxMessageBytes: 64 << 20 });
    try {
      const answers: ModelStreamInferResponse__Output[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = streamClient.ModelStreamInfer({ deadline: Date.now() + 60_000 });
        call.on('data', (a: ModelStreamInferResponse__Output) => answers.push(a));
        call.on('end', resolve);
        call.on('error', reject);
        call.write(req);
        call.end();
      });
      expect(answers.map((a) => a.error_message)).toEqual(['']);
      expect(answers[0]!.infer_response!.parameters.triton_final_response).toMatchObject({ bool_param: true });
      expect(firstDifference(answers[0]!.infer_response!.outputs[0]!.contents!.int64_contents, values)).toBeUndefined();
    } finally {
      streamClient.close();
    }
  });

  it('takes no more requests from a stream whose client reads no answer than its bounds', async () => {
    const before = await ran('ident8');
    // A client that opens no window for answers: every answer waits at the router.
    const conn = new H2Connection(net.connect(router.port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0, streamWindowBytes: 0 });
    await conn.ping(5_000);
    const stream = conn.request(grpcRequestHeaders('/inference.GRPCInferenceService/ModelStreamInfer'));
    const sent = 200;
    const request = grpcMessage(service.ModelStreamInfer.requestSerialize({ model_name: 'ident8', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 65536] }], raw_input_contents: [Buffer.alloc(65536, 7)] }));
    for (let i = 0; i < sent; i++) stream.write(request);
    // The requests the router took are run within a moment; those it did not take wait at the client.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const taken = (await ran('ident8')) - before;
    stream.reset(0x8);
    conn.close();
    expect(taken).toBeGreaterThanOrEqual(MAX_IN_FLIGHT);
    expect(taken).toBeLessThan(sent / 2);
    // The router still serves a client that reads.
    const client = inferenceClient(`127.0.0.1:${router.port}`);
    try {
      const res = await unary<ModelInferResponseOut>((cb) => client.ModelInfer({ model_name: 'ident8', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 3] }], raw_input_contents: [Buffer.from([1, 2, 3])] }, cb));
      expect([...res.raw_output_contents[0]!]).toEqual([1, 2, 3]);
    } finally {
      client.close();
    }
  });

  it('on one connection to a pod, as a router\'s, takes the next call\'s answer while a large answer waits to be read', async () => {
    const port = pods[0]!.port;
    // A connection that opens no window (a zero window): the 20 MB answer of its first call waits.
    const conn = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0, streamWindowBytes: 0 });
    await conn.ping(5_000);
    const before = await ran('ident8');
    const large = conn.request(grpcRequestHeaders(MODEL_INFER_PATH));
    large.end(undefined, grpcMessage(service.ModelInfer.requestSerialize({ model_name: 'ident8', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 20 << 20] }], raw_input_contents: [Buffer.alloc(20 << 20, 1)] })));
    await waitFor('the large request to run', async () => (await ran('ident8')) > before);
    // The next call on the same connection (another team's, through a router): its answer is
    // taken (headers, its data waiting for the window like the first's), not refused
    // RESOURCE_EXHAUSTED for the bytes the first answer holds.
    const small = conn.request(grpcRequestHeaders(MODEL_INFER_PATH));
    const first = new Promise<Header[]>((resolve) => {
      small.onHeaders = (h) => resolve(h);
    });
    small.end(undefined, grpcMessage(service.ModelInfer.requestSerialize({ model_name: 'ident8', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 3] }], raw_input_contents: [Buffer.from([4, 5, 6])] })));
    const answered = await first;
    conn.close();
    expect(statusOf(answered)).toBeUndefined();
    expect(answered).toContainEqual([':status', '200']);
  });
});
