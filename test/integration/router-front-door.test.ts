// The router's front door (services/router/front-door.ts): ModelInfer relayed on bare HTTP/2 with
// the client's deadline, clear statuses for bad requests, every other call piped to the typed
// handlers (metadata, streams, health), and a drain on shutdown that finishes calls in flight.
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/proto';
import { InferenceApi, InfermeshError } from '../../client/index';
import { healthClient } from '../../lib/grpc/client';
import { MAX_STATUS_MESSAGE_CHARS } from '../../lib/errors';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import type { ModelConfigResponse__Output } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import { decodeOutputs } from '../../client/inference';
import { heldOutDigits } from '../../tools/models/mnist-data';
import type { RouterService } from '../../services/router/router-service';
import { startTestMesh, waitReady, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { heavyInput } from '../helpers/models';

jest.setTimeout(120_000);

const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';
const identity = (b: Buffer) => b;
const digit = heldOutDigits(1)[0]!;
const mnistInput = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: digit.pixels }];

/** Sends `bytes` as a ModelInfer request message, untouched, and resolves to the call's status. */
function rawCall(address: string, bytes: Buffer): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(MODEL_INFER, identity, identity, bytes, (err) => {
      client.close();
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' });
    });
  });
}

/** A message with gRPC's 5-byte frame header (uncompressed). */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Calls ModelInfer over bare HTTP/2 with `extra` headers and resolves to the trailing status. */
function h2Status(address: string, frame: Buffer, extra: http2.OutgoingHttpHeaders): Promise<{ code: number; message: string }> {
  const session = http2.connect(`http://${address}`);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': MODEL_INFER, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let status: { code: number; message: string } | undefined;
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) status = { code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) };
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', () => undefined);
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      if (status) resolve(status);
      else reject(new Error('stream closed without grpc-status'));
    });
    stream.end(frame);
  });
}

/** The gRPC status name a call ended with ('OK' when it succeeded). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (err instanceof InfermeshError) return grpc.status[err.grpcCode]!;
    throw err;
  }
}

describe('router front door', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let address: string;
  let api: InferenceApi;

  beforeAll(async () => {
    mesh = await startTestMesh();
    await mesh.push('mnist', 'mnist.onnx');
    await mesh.push('heavy', 'fixtures/heavy.onnx');
    const pod = await mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1', INFERMESH_HEARTBEAT_INTERVAL_MS: '200', INFERMESH_DYNAMIC_BATCHING: 'false' });
    await waitReady(inferenceClient(`127.0.0.1:${pod.port}`), ['mnist', 'heavy']);
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_MAX_MESSAGE_BYTES: String(1 << 20) });
    address = `127.0.0.1:${router.port}`;
    api = new InferenceApi(address);
    await waitFor('the router to know the pod', () => router.membership.candidates('mnist', 1).length === 1 && router.membership.candidates('heavy', 1).length === 1);
  });

  afterAll(async () => {
    api?.close();
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it('relays ModelInfer and pipes every other call to the typed handlers', async () => {
    const res = await api.infer('mnist', mnistInput, { id: 'digit-0' });
    expect(res.id).toBe('digit-0');
    expect(res.modelVersion).toBe('1');
    const probs = res.outputs.find((o) => o.name === 'probabilities')!.data as Float32Array;
    expect(probs.indexOf(Math.max(...probs))).toBe(digit.label);

    const typed = inferenceClient(address);
    try {
      const meta = await unary<{ name: string; extensions: string[] }>((cb) => typed.ServerMetadata({}, cb));
      expect(meta.name).toBe('infermesh');
      const model = await api.metadata('mnist');
      expect(model.platform).toBe('onnxruntime_onnx');
      expect(model.inputs.map((i) => i.name)).toEqual(['input']);
      // Batching is off on this pod: Triton's config gives the whole shape.
      const { config } = await unary<ModelConfigResponse__Output>((cb) => typed.ModelConfig({ name: 'mnist', version: '' }, cb));
      expect(config!.max_batch_size).toBe(0);
      expect(config!.input[0]!.dims).toEqual(['-1', '784']);

      const health = healthClient(address);
      const status = await unary<{ status: string }>((cb) => health.Check({ service: 'inference.GRPCInferenceService' }, cb));
      health.close();
      expect(status.status).toBe('SERVING');

      // A bidirectional stream goes through the pipe, with errors in-band.
      const stream = typed.ModelStreamInfer();
      const answers: { error_message: string; infer_response: ModelInferResponseOut | null }[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (r) => answers.push(r));
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      const req = (id: string, model = 'mnist') => ({
        id, model_name: model, model_version: '', parameters: {},
        inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '784'], parameters: {}, contents: { fp32_contents: [...digit.pixels] } }],
        outputs: [], raw_input_contents: [],
      });
      stream.write(req('s1'));
      stream.write(req('s2', 'nope'));
      stream.write(req('s3'));
      stream.end();
      await done;
      const byId = Object.fromEntries(answers.map((a) => [a.infer_response!.id, a]));
      expect(Object.keys(byId).sort()).toEqual(['s1', 's2', 's3']);
      expect(byId.s2!.error_message).toMatch(/nope/);
      const streamed = decodeOutputs(byId.s3!.infer_response!).find((o) => o.name === 'probabilities')!.data;
      expect(streamed).toEqual(probs);
    } finally {
      typed.close();
    }
  });

  it('routes a compressed request like any other: decompressed at the door, relayed by the same path', async () => {
    const gzip = inferenceClient(address, { channel: { 'grpc.default_compression_algorithm': 2 } });
    try {
      const res = await unary<ModelInferResponseOut>((cb) => gzip.ModelInfer({
        id: 'gz',
        model_name: 'mnist',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }],
      }, cb));
      expect(res.id).toBe('gz');
      expect(res.model_version).toBe('1');
      const probs = res.outputs[0]!.contents!.fp32_contents;
      expect(probs.indexOf(Math.max(...probs))).toBe(digit.label);
    } finally {
      gzip.close();
    }
  });

  it('answers bad requests with clear statuses and keeps serving', async () => {
    expect(await codeOf(api.infer('nope', mnistInput))).toBe('NOT_FOUND');
    expect(await codeOf(api.infer('mnist', mnistInput, { version: '9' }))).toBe('NOT_FOUND');

    // Field 1 claims 100 bytes that are not there.
    const truncated = await rawCall(address, Buffer.from([0x0a, 0x64, 0x61]));
    expect(truncated.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(truncated.details).toMatch(/malformed request/);

    // Not gRPC at all: HTTP 415, as grpc-js answers it.
    const session = http2.connect(`http://${address}`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': MODEL_INFER, 'content-type': 'application/json' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end('{}');
    });
    session.close();
    expect(status).toBe(415);

    const tooLarge = await rawCall(address, Buffer.alloc(2 << 20));
    expect(tooLarge.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(tooLarge.details).toMatch(/larger than the router's limit of 1048576 bytes/);

    const res = await api.infer('mnist', mnistInput);
    expect(res.outputs.length).toBeGreaterThan(0);
  });

  it('answers a call whose metadata the pod would not take, with the router\'s own headers, RESOURCE_EXHAUSTED, blaming no pod', async () => {
    // Just under the door's 16 KiB header list (RFC 9113 counts names, values and 32 per field),
    // the router's infermesh-version and the pod's :authority take it over the pod's 16 KiB.
    const fixed = [[':method', 'POST'], [':path', MODEL_INFER], ['content-type', 'application/grpc'], ['te', 'trailers'], [':scheme', 'http'], [':authority', address]];
    const used = fixed.reduce((n, [k, v]) => n + k!.length + v!.length + 32, 0) + 'x-pad'.length + 32;
    const pad = 'p'.repeat(16 * 1024 - 20 - used);
    const message = protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize({ model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] });
    // Ten in a row: five failures in a row would eject the pod, and the next caller would wait.
    // Before the pod's SETTINGS reach the router, the pod refuses the stream itself (ENHANCE_YOUR_CALM);
    // after, the router does not send it.
    for (let i = 0; i < 10; i++) {
      const answer = await h2Status(address, frame(message), { 'x-pad': pad });
      expect(answer.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(answer.message).toMatch(i === 0
        ? /^(request metadata of \d+ bytes with the router's own headers, more than the 16384 pod 127\.0\.0\.1:\d+ takes|pod 127\.0\.0\.1:\d+ refused the request's metadata as more than it takes)$/
        : /^request metadata of \d+ bytes with the router's own headers, more than the 16384 pod 127\.0\.0\.1:\d+ takes$/);
    }
    expect(router.membership.candidates('mnist', 1)).toHaveLength(1);
    expect((await h2Status(address, frame(message), {})).code).toBe(grpc.status.OK);
  });

  it('answers anyone\'s health Check for a 100 000-character service name NOT_FOUND, its message cut, and another caller\'s Watch lives on', async () => {
    // Whole, the name made a status past what the door reads of its own grpc-js server's answer:
    // the door's one connection to it failed, and every call on it with it.
    const watcher = healthClient(address);
    const asker = healthClient(address);
    try {
      const watch = watcher.Watch({ service: '' });
      const seen: string[] = [];
      let failed: grpc.ServiceError | undefined;
      watch.on('data', (d: { status: string }) => seen.push(d.status));
      watch.on('error', (e: grpc.ServiceError) => (failed = e));
      await waitFor('the watch to start', () => seen.length > 0);
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        asker.Check({ service: 'x'.repeat(100_000) }, { deadline: Date.now() + 10_000 }, (e) => resolve(e)));
      expect({ code: err?.code, length: err?.details.length }).toEqual({ code: grpc.status.NOT_FOUND, length: MAX_STATUS_MESSAGE_CHARS });
      await new Promise((r) => setTimeout(r, 300));
      expect(failed).toBeUndefined();
      watch.removeAllListeners('error');
      watch.on('error', () => undefined);
      watch.cancel();
    } finally {
      watcher.close();
      asker.close();
    }
  });

  it('enforces and passes on the deadline the request carries, with no timer in the client', async () => {
    // The client sets grpc-timeout and never gives up by itself: a DEADLINE_EXCEEDED status can only
    // come from the mesh, and without the header the same call succeeds.
    const request = frame(protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize({
      model_name: 'heavy',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [64, 1024] }],
      raw_input_contents: [Buffer.from(new Float32Array(64 * 1024).fill(0.01).buffer)],
    }));
    // 64 rows through the heavy model's layers take far longer than 5 ms.
    expect(await h2Status(address, request, { 'grpc-timeout': '5m' })).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, message: expect.stringMatching(/deadline/i) });
    expect((await h2Status(address, request, {})).code).toBe(grpc.status.OK);
    expect((await api.infer('mnist', mnistInput)).modelVersion).toBe('1');
  });

  it('refuses a malformed grpc-timeout INVALID_ARGUMENT on every path, not running without the deadline meant', async () => {
    const request = frame(protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize({ model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }], raw_input_contents: [Buffer.alloc(784 * 4)] }));
    for (const timeout of ['1.5S', '1x', '1e3m', '123456789m']) {
      expect(await h2Status(address, request, { 'grpc-timeout': timeout })).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringContaining('is not a timeout') });
    }
    // A piped call (ServerMetadata, to the typed handlers) too, where grpc-js answered INTERNAL.
    const session = http2.connect(`http://${address}`);
    const piped = await new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ServerMetadata', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '1x' });
      let code: string | undefined;
      stream.on('response', (h) => (code ??= h['grpc-status'] as string | undefined));
      stream.on('trailers', (h) => (code ??= h['grpc-status'] as string | undefined));
      stream.on('data', () => undefined);
      stream.on('error', reject);
      stream.on('close', () => resolve(code));
      stream.end(frame(Buffer.alloc(0)));
    });
    session.close();
    expect(piped).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect((await h2Status(address, request, { 'grpc-timeout': '10S' })).code).toBe(grpc.status.OK);
  });

  it('sends long-lived clients GOAWAY after the max connection age, without failing a call', async () => {
    const aging = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_ROUTER_MAX_CONNECTION_AGE_MS: '300' });
    const agingApi = new InferenceApi(`127.0.0.1:${aging.port}`);
    const session = http2.connect(`http://127.0.0.1:${aging.port}`);
    session.on('error', () => undefined);
    try {
      await waitFor('the router to know the pod', () => aging.membership.candidates('mnist', 1).length === 1);
      let goaway = false;
      session.once('goaway', () => (goaway = true));
      // Calls back to back for several connection lifetimes: grpc-js reconnects on GOAWAY, and
      // every call in flight when it came finishes.
      const until = Date.now() + 1_500;
      let calls = 0;
      while (Date.now() < until) {
        expect((await agingApi.infer('mnist', mnistInput)).modelVersion).toBe('1');
        calls++;
      }
      expect(calls).toBeGreaterThan(10);
      await waitFor('the idle connection to get GOAWAY', () => goaway, 5_000);
    } finally {
      session.destroy();
      agingApi.close();
      await aging.shutdown(5_000);
    }
  });

  it('finishes the calls in flight when it shuts down, and takes no new ones', async () => {
    const second = await startTestRouter(mesh.nats.url, mesh.registry.port);
    const secondApi = new InferenceApi(`127.0.0.1:${second.port}`);
    try {
      await waitFor('the second router to know the pod', () => second.membership.candidates('heavy', 1).length === 1);
      let settled = 0;
      const inFlight = Array.from({ length: 4 }, () => secondApi.infer('heavy', heavyInput(16)).finally(() => settled++));
      // Every call has reached the pod (or already finished) before the router is told to stop.
      await waitFor('the 4 calls to reach the pod', () => second.membership.all()[0]!.outstanding + settled === 4, 10_000, 5);
      await second.shutdown(20_000);
      const results = await Promise.allSettled(inFlight);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      expect(await codeOf(secondApi.infer('mnist', mnistInput, { timeoutMs: 2_000 }))).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
    } finally {
      secondApi.close();
    }
  });
});
