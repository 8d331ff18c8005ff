// A request message that the client's END_STREAM cuts short (its 5-octet prefix announces more
// bytes than come) fails the call INTERNAL, saying so, as grpc-java and grpc-go answer it: on a
// ModelStreamInfer through the router and on one to a pod directly (grpc-js behind both doors
// dropped the piece and ended the stream OK), and on ModelInfer (once INVALID_ARGUMENT). A stream
// that ends between two messages still ends OK, every request answered.
import net from 'node:net';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import type { ModelStreamInferResponse__Output } from '../../lib/grpc/generated/inference/ModelStreamInferResponse';
import { H2Connection, type H2Stream, type Header } from '../../lib/h2/connection';
import { statusOf } from '../../lib/h2/grpc';
import { grpcMessage, grpcRequestHeaders } from '../helpers/h2-raw';
import type { InferenceService } from '../../services/inference/inference-service';
import type { RouterService } from '../../services/router/router-service';
import { inferenceClient, startTestMesh, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const service = protos().inference.GRPCInferenceService.service;
const STREAM_PATH = '/inference.GRPCInferenceService/ModelStreamInfer';
const INTERNAL = 13;


const request = (id: string) => grpcMessage(service.ModelStreamInfer.requestSerialize({ model_name: 'ident8', id, inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 3] }], raw_input_contents: [Buffer.from([1, 2, 3])] }));

/** A call's answer: the messages it carried (as framed bytes, whole) and its status. */
interface Answer {
  data: Buffer;
  status: { code: number; message: string } | undefined;
}

/** Sends `body` on a new call to `path` at `port` (written, then ended), and waits for the call's end. */
async function call(port: number, path: string, body: Buffer[]): Promise<Answer> {
  const conn = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0 });
  try {
    await conn.ping(5_000);
    const stream: H2Stream = conn.request(grpcRequestHeaders(path));
    const chunks: Buffer[] = [];
    let last: Header[] | undefined;
    const closed = new Promise<void>((resolve) => {
      stream.onHeaders = (h) => {
        last = h;
      };
      stream.onData = (chunk) => chunks.push(Buffer.from(chunk));
      stream.onClose = () => resolve();
    });
    for (const [i, b] of body.entries()) {
      if (i === body.length - 1) stream.end(undefined, b);
      else stream.write(b);
    }
    await closed;
    return { data: Buffer.concat(chunks), status: statusOf(last) };
  } finally {
    conn.close();
  }
}

/** The stream answers in `data`, decoded. */
function streamAnswers(data: Buffer): ModelStreamInferResponse__Output[] {
  const out: ModelStreamInferResponse__Output[] = [];
  for (let off = 0; off + 5 <= data.length;) {
    const length = data.readUInt32BE(off + 1);
    out.push(service.ModelStreamInfer.responseDeserialize(data.subarray(off + 5, off + 5 + length)) as ModelStreamInferResponse__Output);
    off += 5 + length;
  }
  return out;
}

describe('a request message cut short by the end of its stream', () => {
  let mesh: TestMesh;
  let pod: InferenceService;
  let router: RouterService;
  const doors: [string, () => number][] = [['the router', () => router.port], ['a pod', () => pod.port]];

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('ident8', 'fixtures/identity_uint8.onnx');
    pod = await mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1' });
    const c = inferenceClient(`127.0.0.1:${pod.port}`);
    await waitReady(c, ['ident8']);
    c.close();
    router = await startTestRouter(mesh.nats.url, mesh.registry.port);
    await waitFor('the router to know the pod', () => router.membership.candidates('ident8', 1).length === 1);
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it.each(doors)('fails a ModelStreamInfer INTERNAL at %s when its last message is cut inside its body', async (_door, port) => {
    const whole = request('whole');
    const cut = request('cut');
    const answer = await call(port(), STREAM_PATH, [whole, cut.subarray(0, cut.length - 2)]);
    expect(answer.status).toEqual({ code: INTERNAL, message: `the last request message was cut short: its prefix announced ${cut.length - 5} bytes and the stream ended after ${cut.length - 7}` });
    // The whole request may have been answered first; the cut one never is.
    expect(streamAnswers(answer.data).map((a) => a.infer_response?.id)).not.toContain('cut');
  });

  it.each(doors)('fails a ModelStreamInfer INTERNAL at %s when its last message is cut inside its prefix', async (_door, port) => {
    const answer = await call(port(), STREAM_PATH, [request('whole'), Buffer.from([0, 0, 0])]);
    expect(answer.status).toEqual({ code: INTERNAL, message: 'the last request message was cut short: the stream ended 3 octets into its 5-octet prefix' });
  });

  it.each(doors)('ends a ModelStreamInfer OK at %s when it ends between two messages, every request answered', async (_door, port) => {
    // Split anywhere but between the messages: the door sees them whole only put together.
    const both = Buffer.concat([request('a'), request('b')]);
    const answer = await call(port(), STREAM_PATH, [both.subarray(0, 3), both.subarray(3, 40), both.subarray(40)]);
    expect(answer.status).toEqual({ code: 0, message: expect.any(String) });
    expect(streamAnswers(answer.data).map((a) => [a.infer_response?.id, a.error_message])).toEqual([['a', ''], ['b', '']]);
  });

  it.each(doors)('fails a ModelInfer INTERNAL at %s when its message is cut short', async (_door, port) => {
    const cut = request('cut');
    const answer = await call(port(), MODEL_INFER_PATH, [cut.subarray(0, 20), cut.subarray(20, cut.length - 1)]);
    expect(answer.status).toEqual({ code: INTERNAL, message: `the last request message was cut short: its prefix announced ${cut.length - 5} bytes and the stream ended after ${cut.length - 6}` });
  });
});
