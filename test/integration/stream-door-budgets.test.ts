// ModelStreamInfer counts what it holds against its door's own budgets, beside the door's unary
// calls, on a pod (reached by a client that talks to the pod directly; podDoorLimitsOf) and on the
// router: a stream on one connection finds the room another connection's unary call holds taken,
// and is refused RESOURCE_EXHAUSTED as a unary call would be, where it once had a budget of its
// own (the per-connection settings, apart from the door's total).
import crypto from 'node:crypto';
import net from 'node:net';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import type { ModelStreamInferResponse__Output } from '../../lib/grpc/generated/inference/ModelStreamInferResponse';
import type { InferenceClient } from '../../lib/grpc/types';
import { H2Connection } from '../../lib/h2/connection';
import type { InferenceService } from '../../services/inference/inference-service';
import type { RouterService } from '../../services/router/router-service';
import { grpcMessage, grpcRequestHeaders } from '../helpers/h2-raw';
import { inferenceClient, startTestMesh, unary, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const MiB = 1 << 20;
const service = protos().inference.GRPCInferenceService.service;


/** A ModelInferRequest of `bytes` UINT8s for ident8 (its answer as large). */
const identity = (id: string, bytes: number) => ({ model_name: 'ident8', id, inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, bytes] }], raw_input_contents: [Buffer.alloc(bytes, 1)] });

/**
 * The door-wide budgets, below the per-connection settings (64 MiB and 16 MiB by default), and the
 * message limit lowered with them: a request budget below it does not start.
 */
const DOOR_BUDGETS = { INFERMESH_H2_MAX_REQUEST_BYTES: String(24 * MiB), INFERMESH_H2_MAX_RESPONSE_BYTES: String(8 * MiB), INFERMESH_MAX_MESSAGE_BYTES: String(24 * MiB) };

describe.each(['pod', 'router'] as const)('the %s\'s streams and its door share one budget', (door) => {
  let mesh: TestMesh;
  let pod: InferenceService;
  let router: RouterService | undefined;
  /** The door under test's port. */
  let port: number;
  let client: InferenceClient;
  /** Straight to the pod, for its statistics. */
  let podClient: InferenceClient;
  let held: H2Connection | undefined;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('ident8', 'fixtures/identity_uint8.onnx');
    pod = await mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1', ...(door === 'pod' ? DOOR_BUDGETS : {}) });
    podClient = inferenceClient(`127.0.0.1:${pod.port}`);
    await waitReady(podClient, ['ident8']);
    if (door === 'router') router = await startTestRouter(mesh.nats.url, mesh.registry.port, DOOR_BUDGETS);
    port = router?.port ?? pod.port;
    client = inferenceClient(`127.0.0.1:${port}`);
    await waitReady(client, ['ident8']);
  });

  afterEach(() => {
    // Gone at once: a graceful close would wait for the call whose answer it never reads.
    held?.destroy();
    held = undefined;
  });

  afterAll(async () => {
    client?.close();
    podClient?.close();
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  /** A connection to the door that opens no window for answers. */
  async function connection(): Promise<H2Connection> {
    held = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0, streamWindowBytes: 0 });
    await held.ping(5_000);
    return held;
  }

  async function ran(): Promise<number> {
    const res = await unary<{ model_stats: { inference_count: string }[] }>((cb) => podClient.ModelStatistics({ name: 'ident8', version: '' }, cb));
    return res.model_stats.reduce((a, s) => a + Number(s.inference_count), 0);
  }

  /** The answers of a ModelStreamInfer of `requests`, on the test's own connection. */
  async function stream(requests: ReturnType<typeof identity>[]): Promise<Map<string, string>> {
    const call = client.ModelStreamInfer();
    const answers = new Map<string, string>();
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (a: ModelStreamInferResponse__Output) => answers.set(a.infer_response?.id ?? '', a.error_message));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const r of requests) call.write(r);
    call.end();
    await ended;
    return answers;
  }

  it('refuses a stream\'s answer that the answers another connection leaves unread leave no room for', async () => {
    const conn = await connection();
    const before = await ran();
    // 6 MiB of answer wait at the door for a client that reads none of it.
    conn.request(grpcRequestHeaders(MODEL_INFER_PATH)).end(undefined, grpcMessage(service.ModelInfer.requestSerialize(identity('unread', 6 * MiB))));
    await waitFor('the unread call to run', async () => (await ran()) > before);
    await new Promise((r) => setTimeout(r, 200));
    const answers = await stream([identity('small', 1024), identity('large', 4 * MiB)]);
    expect(answers.get('small')).toBe('');
    expect(answers.get('large')).toMatch(/^answer of \d+ bytes refused: too many answers wait for clients to read them$/);
  });

  it('refuses a stream\'s request that the request another connection is sending leaves no room for', async () => {
    const conn = await connection();
    // A 20 MiB request announced by its prefix and not finished: the door holds room for all of it.
    const upload = conn.request(grpcRequestHeaders(MODEL_INFER_PATH));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(20 * MiB, 1);
    upload.write(Buffer.concat([head, Buffer.alloc(1024)]));
    await new Promise((r) => setTimeout(r, 200));
    const answers = await stream([identity('small', 1024), identity('large', 8 * MiB)]);
    expect(answers.get('small')).toBe('');
    expect(answers.get('large')).toMatch(new RegExp(`^request of \\d+ bytes does not fit the ${door}'s buffers for requests now \\(\\d+ of 25165824 bytes held in all\\)$`));
  });

  it('takes a compressed request within the message limit however much its compressed bytes add', async () => {
    // 22 MiB once decompressed, its first 3 MiB random: about 25 MiB compressed and decompressed
    // together, above the door's 24 MiB, which is the message limit and so at the floor the service
    // starts with. The compressed bytes are gone once decompressed; only the message is held on.
    const gz = inferenceClient(`127.0.0.1:${port}`, { channel: { 'grpc.default_compression_algorithm': 2 } });
    try {
      const req = identity('packed', 22 * MiB);
      crypto.randomFillSync(req.raw_input_contents[0]!.subarray(0, 3 * MiB));
      const res = await unary<{ raw_output_contents: Buffer[] }>((cb) => gz.ModelInfer(req, cb));
      expect(res.raw_output_contents[0]!.equals(req.raw_input_contents[0]!)).toBe(true);
    } finally {
      gz.close();
    }
  });

  it('takes both once the other connection has gone', async () => {
    await waitFor('a large request and a large answer taken', async () => {
      const answers = await stream([identity('a', 4 * MiB), identity('b', 8 * MiB)]);
      return [...answers.values()].every((e) => e === '');
    }, 10_000);
  });
});
