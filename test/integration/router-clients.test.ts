// One client cannot hurt the others through the router: real router, real pods, real NATS. A client
// that cancels, resets, disconnects or lets its deadline pass 50 times a second ejects no pod; one
// that abandons piped calls with a zero window, or sends malformed headers by the thousand, leaves
// every other call answering; connections whose stream ids run out are replaced; a gzip ModelInfer
// is routed and counted like a plain one, and a gzip bomb is refused.
import net from 'node:net';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from '@nats-io/transport-node';
import { InferenceApi } from '../../client/index';
import { freePort } from '../../cli/local-mesh/free-port';
import { healthClient } from '../../lib/grpc/client';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import type { ModelInferRequest } from '../../lib/grpc/generated/inference/ModelInferRequest';
import type { ModelConfigResponse__Output } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import { H2Connection, type H2Stream, type Header } from '../../lib/h2/connection';
import { statusOf } from '../../lib/h2/grpc';
import { silentLogger } from '../../lib/log';
import { connectNats } from '../../lib/nats';
import { decodeWindowReport, windowSubject, type WindowReport } from '../../lib/window-stats';
import { heldOutDigits } from '../../tools/models/mnist-data';
import type { RouterService } from '../../services/router/router-service';
import { runLoad, sleep } from '../helpers/load';
import { inferenceClient, startTestMesh, unary, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter, testConfig } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(240_000);

const digit = heldOutDigits(1)[0]!;
const mnist = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: digit.pixels }];
const MiB = 1 << 20;
const infer = protos().inference.GRPCInferenceService.service.ModelInfer;

/** A ModelInfer request as gRPC frames it (5-byte prefix), compressed with `gzip` if asked. */
function frame(req: ModelInferRequest, gzip = false): Buffer {
  let message = infer.requestSerialize(req);
  if (gzip) message = zlib.gzipSync(message);
  const head = Buffer.alloc(5);
  head[0] = gzip ? 1 : 0;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The held model's request: identity on 4 floats, which the pod keeps queued for 3 s. */
const heldRequest = frame({ model_name: 'held', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [Buffer.alloc(16)] });

/** A raw HTTP/2 client of the project's own layer: it sends exactly the frames a test asks for. */
async function rawClient(port: number, opts: { streamWindowBytes?: number } = {}): Promise<H2Connection> {
  const conn = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, { keepaliveIntervalMs: 0, ...opts });
  await conn.ping(5_000);
  return conn;
}

const grpcHeaders = (port: number, path: string, extra: Header[] = []): Header[] => [
  [':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', `127.0.0.1:${port}`], ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra,
];

/** Reads one of our streams to its close: its headers, trailers and reset code. */
function collect(stream: H2Stream): Promise<{ headers?: Header[]; trailers?: Header[]; body: Buffer; code: number | undefined }> {
  return new Promise((resolve) => {
    let headers: Header[] | undefined;
    let trailers: Header[] | undefined;
    const chunks: Buffer[] = [];
    stream.onHeaders = (h) => (headers === undefined ? (headers = h) : (trailers = h));
    stream.onData = (c) => chunks.push(Buffer.from(c));
    stream.onClose = (code) => resolve({ headers, trailers, body: Buffer.concat(chunks), code });
  });
}

/** Resolves to what ServerLive, ModelMetadata and health answer through `address` within 5 s each. */
async function everyOtherCall(address: string): Promise<string[]> {
  const typed = inferenceClient(address);
  const health = healthClient(address);
  const deadline = () => ({ deadline: Date.now() + 5_000 });
  try {
    return await Promise.all([
      unary<{ live: boolean }>((cb) => typed.ServerLive({}, deadline(), cb)).then((r) => `live ${r.live}`, (e: grpc.ServiceError) => `ServerLive: ${e.details}`),
      unary<{ name: string }>((cb) => typed.ModelMetadata({ name: 'mnist', version: '' }, deadline(), cb)).then((r) => `metadata ${r.name}`, (e: grpc.ServiceError) => `ModelMetadata: ${e.details}`),
      unary<{ status: string }>((cb) => health.Check({ service: '' }, deadline(), cb)).then((r) => `health ${r.status}`, (e: grpc.ServiceError) => `health: ${e.details}`),
    ]);
  } finally {
    typed.close();
    health.close();
  }
}
const ANSWERING = ['live true', 'metadata mnist', 'health SERVING'];

describe('router: one client cannot hurt the others', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let address: string;
  let api: InferenceApi;
  let nc: NatsConnection;

  beforeAll(async () => {
    // Every pod holds every version (pods are added below and must serve mnist).
    mesh = await startTestMesh({ INFERMESH_PLACEMENT_MIN_COPIES: '1000' });
    await mesh.push('mnist', 'mnist.onnx');
    await mesh.push('held', 'fixtures/identity_fp32.onnx');
    await mesh.push('ident8', 'fixtures/identity_uint8.onnx');
    // held: requests wait up to 3 s in the pod's queue for batchmates, so a client's cancel or
    // deadline always finds its call in flight at the pod.
    await mesh.registryApi.updateModel('held', { config: { dynamic_batching: { enabled: true, max_batch_size: 1024, max_queue_delay_us: 3_000_000, preferred_batch_sizes: [], max_queue_size: 0 } } });
    const pods = await Promise.all([0, 1].map(() => mesh.startPod({ INFERMESH_INTRA_OP_THREADS: '1' })));
    for (const pod of pods) {
      const c = inferenceClient(`127.0.0.1:${pod.port}`);
      await waitReady(c, ['mnist', 'held', 'ident8']);
      await waitFor('the pod to hold requests of model held for 3 s', async () => {
        const { config } = await unary<ModelConfigResponse__Output>((cb) => c.ModelConfig({ name: 'held', version: '' }, cb));
        return config?.dynamic_batching?.max_queue_delay_microseconds === '3000000';
      });
      c.close();
    }
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_ANALYSIS_WINDOW_MS: '200' });
    address = `127.0.0.1:${router.port}`;
    api = new InferenceApi(address);
    await waitFor('the router to know both pods', () => ['mnist', 'held', 'ident8'].every((m) => router.membership.candidates(m, 1).length === 2));
    nc = await connectNats(testConfig(mesh.nats.url), 'router-clients-test', silentLogger);
  });

  afterAll(async () => {
    await nc?.close();
    api?.close();
    await router?.shutdown(5_000);
    await mesh?.close();
  });

  it('a client that cancels, resets, disconnects or times out 50 calls a second for 15 s ejects no pod; the others see no error', async () => {
    const port = router.port;
    const blamed: string[] = [];
    const watch = setInterval(() => {
      for (const p of router.membership.all()) if (p.failures > 0 || p.ejectedUntil > Date.now()) blamed.push(`${p.id}: ${p.failures} failures, ejected ${p.ejectedUntil > Date.now()}`);
    }, 20);
    const stop = sleep(15_000);
    let stopped = false;
    void stop.then(() => (stopped = true));
    const others = runLoad(api, 'mnist', mnist, { concurrency: 4, until: stop });
    const outcomes = new Map<string, number>();
    const note = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    const rude = await rawClient(port);
    const streams = inferenceClient(address);
    const pending: Promise<unknown>[] = [];
    const started = Date.now();
    for (let i = 0; !stopped; i++) {
      const kind = i % 3;
      if (kind === 0) {
        // Its own deadline (grpc-timeout), which it never acts on itself: the router's to enforce.
        const s = rude.request(grpcHeaders(port, MODEL_INFER_PATH, [['grpc-timeout', '30m']]));
        s.end(undefined, heldRequest);
        pending.push(collect(s).then((r) => note(`deadline: ${statusOf(r.trailers ?? r.headers)?.code}`)));
      } else if (kind === 1) {
        // RST_STREAM(CANCEL) while the pod holds the call.
        const s = rude.request(grpcHeaders(port, MODEL_INFER_PATH));
        s.end(undefined, heldRequest);
        pending.push(sleep(30).then(() => (s.reset(), note('reset'))));
      } else {
        // A connection that goes away with its call.
        const gone = await rawClient(port);
        gone.request(grpcHeaders(port, MODEL_INFER_PATH)).end(undefined, heldRequest);
        pending.push(sleep(30).then(() => (gone.destroy(), note('disconnect'))));
      }
      if (i % 25 === 0) {
        // Twice a second, a ModelStreamInfer stream (the typed transport) cancelled while the pod holds its request.
        const streamCall = streams.ModelStreamInfer();
        streamCall.on('error', () => undefined);
        streamCall.write({ model_name: 'held', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
        pending.push(sleep(40).then(() => (streamCall.cancel(), note('stream cancel'))));
      }
      // 50 calls a second, on a fixed schedule whatever each one took to send.
      await sleep(started + (i + 1) * 20 - Date.now());
    }
    const res = await others;
    await Promise.all(pending);
    rude.destroy();
    streams.close();
    clearInterval(watch);
    console.log(`rude client: ${JSON.stringify([...outcomes])}; others: ${res.ok} ok`);
    expect(res.errors).toEqual(new Map());
    expect(res.failed).toBe(0);
    expect(res.ok).toBeGreaterThan(200);
    // Every deadline was the router's to answer (the pod holds the call for 3 s).
    expect(outcomes.get(`deadline: ${grpc.status.DEADLINE_EXCEEDED}`)).toBeGreaterThanOrEqual(200);
    expect((outcomes.get('reset') ?? 0) + (outcomes.get('disconnect') ?? 0)).toBeGreaterThanOrEqual(480);
    expect(outcomes.get('stream cancel')).toBeGreaterThanOrEqual(25);
    expect(blamed).toEqual([]);
    expect(router.membership.candidates('mnist', 1)).toHaveLength(2);
    await waitFor('every call to end at the pods', () => router.membership.all().every((p) => p.outstanding === 0), 5_000);
  });

  it('a client that abandons 20 piped calls with a zero window leaves ServerLive, metadata and health answering', async () => {
    const port = router.port;
    // 1.5 MiB answers (identity on 1.5 MiB), more than a stream window of the router's connection
    // to its own grpc-js server: 20 of them held would be more than that connection's window.
    const stream = protos().inference.GRPCInferenceService.service.ModelStreamInfer;
    const message = stream.requestSerialize({ model_name: 'ident8', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 1.5 * MiB] }], raw_input_contents: [Buffer.alloc(1.5 * MiB, 7)] });
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
    body.writeUInt32BE(message.length, 1);
    const stingy = await rawClient(port, { streamWindowBytes: 0 });
    const abandoned = Array.from({ length: 20 }, () => {
      const s = stingy.request(grpcHeaders(port, '/inference.GRPCInferenceService/ModelStreamInfer'));
      s.end(undefined, body);
      return s;
    });
    await waitFor('the 20 answers to have started', () => abandoned.every((s) => s.headersReceived), 30_000);
    await sleep(500);
    expect(await everyOtherCall(address)).toEqual(ANSWERING);
    expect((await api.infer('mnist', mnist)).modelVersion).toBe('1');
    // Gone for good, with its connection.
    stingy.destroy();
    expect(await everyOtherCall(address)).toEqual(ANSWERING);
  });

  it('refuses malformed headers at the door; 1,200 of them leave a long-lived call and every other call answering', async () => {
    const port = router.port;
    // A ModelStreamInfer stream of another client, open across the flood on the router's shared
    // connection to its grpc-js server.
    const typed = inferenceClient(address);
    const long = typed.ModelStreamInfer();
    const answers: string[] = [];
    long.on('data', (r: { error_message: string; infer_response: ModelInferResponseOut | null }) => answers.push(r.error_message || `ok ${r.infer_response?.model_version}`));
    const ended = new Promise<void>((resolve, reject) => {
      long.on('end', resolve);
      long.on('error', reject);
    });
    const ask = () => long.write({ model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] });
    ask();
    await waitFor('the stream to answer', () => answers.length === 1);

    const rude = await rawClient(port);
    // Calls the door pipes to grpc-js, each of a kind node:http2 counts against the session (it
    // ends one after 1,000), then a few on ModelInfer's path.
    const piped: Header[][] = [
      [...grpcHeaders(port, '/inference.GRPCInferenceService/ServerLive'), ['connection', 'keep-alive']],
      [['x-first', '1'], ...grpcHeaders(port, '/inference.GRPCInferenceService/ServerLive')],
      [...grpcHeaders(port, '/grpc.health.v1.Health/Check'), [':path', '/grpc.health.v1.Health/Watch']],
      [...grpcHeaders(port, '/grpc.health.v1.Health/Check'), ['X-Upper', 'a']],
      grpcHeaders(port, '/inference.GRPCInferenceService/ServerLive').map((h): Header => (h[0] === 'te' ? ['te', 'gzip'] : h)),
    ];
    const hot: Header[][] = [
      [...grpcHeaders(port, MODEL_INFER_PATH), ['x-split', 'a\r\nb']],
      grpcHeaders(port, MODEL_INFER_PATH).filter((h) => h[0] !== ':method'),
    ];
    const malformed = [...Array.from({ length: 1_100 }, (_, i) => piped[i % piped.length]!), ...Array.from({ length: 100 }, (_, i) => hot[i % hot.length]!)];
    // In batches of 100: the door allows 128 streams at once (INFERMESH_H2_MAX_CONCURRENT_STREAMS).
    const refused: Awaited<ReturnType<typeof collect>>[] = [];
    for (let i = 0; i < malformed.length; i += 100) refused.push(...(await Promise.all(malformed.slice(i, i + 100).map((headers) => collect(rude.request(headers, true))))));
    rude.destroy();

    ask();
    long.end();
    await ended;
    typed.close();
    expect(answers).toEqual(['ok 1', 'ok 1']);
    // Each was refused at the door (RST_STREAM PROTOCOL_ERROR), none answered by anything behind it.
    expect(refused.filter((r) => r.code !== 0x1 || r.headers !== undefined)).toEqual([]);
    expect(await everyOtherCall(address)).toEqual(ANSWERING);
    expect((await api.infer('mnist', mnist)).modelVersion).toBe('1');
  });

  it('routes and counts a gzip ModelInfer as a plain one, and refuses a gzip bomb', async () => {
    // Windows (200 ms, aligned) that start after this hold only this test's calls.
    const since = Date.now();
    const windows: WindowReport[] = [];
    const sub = nc.subscribe(windowSubject('held'), { callback: (_e, m) => void windows.push(decodeWindowReport(m.data)) });
    const mnistWindows: WindowReport[] = [];
    const subMnist = nc.subscribe(windowSubject('mnist'), { callback: (_e, m) => void mnistWindows.push(decodeWindowReport(m.data)) });
    const gzip = inferenceClient(address, { channel: { 'grpc.default_compression_algorithm': 2 } });
    const plain = inferenceClient(address);
    await sleep(250);
    try {
      const request = { model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] };
      for (const c of [gzip, plain]) {
        const res = await unary<ModelInferResponseOut>((cb) => c.ModelInfer(request, cb));
        const probs = res.outputs[0]!.contents!.fp32_contents;
        expect(probs.indexOf(Math.max(...probs))).toBe(digit.label);
      }
      // A deadline that passes while the pod holds the call: the version's error (deadline_exceeded),
      // blaming no pod, compressed or not (the typed path once counted a compressed one apart).
      // Sent raw with a grpc-timeout the client never acts on itself, so the router's timer ends
      // each call (a grpc-js client's own deadline races it, and its cancel counts for nothing).
      const rawHeld = await rawClient(router.port);
      try {
        for (const gz of [true, false]) {
          const held = frame({ model_name: 'held', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [Buffer.alloc(16)] }, gz);
          const s = rawHeld.request(grpcHeaders(router.port, MODEL_INFER_PATH, [['grpc-timeout', '100m'], ...(gz ? [['grpc-encoding', 'gzip'] as Header] : [])]));
          s.end(undefined, held);
          const r = await collect(s);
          expect(statusOf(r.trailers ?? r.headers)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
        }
      } finally {
        rawHeld.close();
      }
      // And both reach the model the same way: 2 successes and nothing else for mnist.
      await sleep(600); // three windows of 200 ms
      const count = (ws: WindowReport[]) => ws.filter((w) => w.windowStart >= since).flatMap((w) => w.versions).reduce((n, v) => ({ requests: n.requests + v.requests, errors: n.errors + v.errors }), { requests: 0, errors: 0 });
      expect(count(mnistWindows)).toEqual({ requests: 2, errors: 0 });
      expect(count(windows)).toEqual({ requests: 2, errors: 2 });
      // Errors add no latency: the held model's windows have none.
      expect(windows.filter((w) => w.windowStart >= since).flatMap((w) => w.versions).flatMap((v) => v.latency).reduce((a, n) => a + n, 0)).toBe(0);

      // 64 MiB of zeros in about 64 KiB of gzip, for a router that takes 64 MiB messages: refused as
      // soon as the output passes the limit, the pods never see it.
      const bomb = zlib.gzipSync(Buffer.alloc(65 * MiB), { level: 9 });
      const raw = await rawClient(router.port);
      const head = Buffer.from([1, 0, 0, 0, 0]);
      head.writeUInt32BE(bomb.length, 1);
      const s = raw.request(grpcHeaders(router.port, MODEL_INFER_PATH, [['grpc-encoding', 'gzip']]));
      const res = collect(s);
      s.end(undefined, Buffer.concat([head, bomb]));
      expect(statusOf((await res).headers)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, message: `request is larger than the router's limit of ${64 * MiB} bytes once decompressed` });
      raw.destroy();
      // A gzip request the door can read goes on through the same raw client path.
      const good = await rawClient(router.port);
      const ok = good.request(grpcHeaders(router.port, MODEL_INFER_PATH, [['grpc-encoding', 'gzip']]));
      const okRes = collect(ok);
      ok.end(undefined, frame({ model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] }, true));
      expect(statusOf((await okRes).trailers)).toEqual({ code: 0, message: '' });
      good.destroy();
    } finally {
      sub.unsubscribe();
      subMnist.unsubscribe();
      gzip.close();
      plain.close();
    }
  });

  it('refuses 33 million empty inputs in a stream before decoding them, and the stream goes on', async () => {
    // 66 MB of `inputs` entries of two bytes each (field 5, length 0), under the 64 MiB limit:
    // protobufjs would build 33 million objects. The router reads only the request's model and
    // version and forwards its bytes; the pod's scan refuses it before protobufjs decodes it.
    const codec = protos().inference.GRPCInferenceService.service.ModelStreamInfer;
    const named = codec.requestSerialize({ model_name: 'ident8' });
    const huge = Buffer.alloc(66_000_000);
    named.copy(huge);
    for (let i = named.length; i < huge.length; i += 2) huge[i] = 0x2a;
    const identity = (b: Buffer) => b;
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest('/inference.GRPCInferenceService/ModelStreamInfer', identity, codec.responseDeserialize);
    const answers: { error_message: string; infer_response: ModelInferResponseOut | null }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (a) => answers.push(a));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write(huge);
    call.write(codec.requestSerialize({ model_name: 'ident8', id: 'after', inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 3] }], raw_input_contents: [Buffer.from([1, 2, 3])] }));
    call.end();
    await done;
    raw.close();
    expect(answers.map((a) => a.error_message).filter(Boolean)).toEqual(['request has more than the limit of 1024 inputs']);
    expect([...answers.find((a) => a.infer_response?.id === 'after')!.infer_response!.raw_output_contents[0]!]).toEqual([1, 2, 3]);
    expect(await api.serverReady()).toBe(true);
  });

  it('replaces connections whose stream ids run out: calls keep succeeding, on new connections', async () => {
    // A TCP relay in front of one more pod counts the router's connections to it.
    const podPort = await freePort();
    let connections = 0;
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      connections++;
      const upstream = net.connect(podPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const relayPort = (relay.address() as net.AddressInfo).port;
    await mesh.startPod({ INFERMESH_INFERENCE_PORT: String(podPort), INFERMESH_ADVERTISE_ADDRESS: `127.0.0.1:${relayPort}`, INFERMESH_INTRA_OP_THREADS: '1' });
    // 3 requests per connection, one connection per pod: the ids run out every third call.
    const small = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_ROUTER_MAX_REQUESTS_PER_CONNECTION: '3', INFERMESH_ROUTER_CONNECTIONS_PER_POD: '1', INFERMESH_HEALTH_CHECK_INTERVAL_MS: '0' });
    const smallApi = new InferenceApi(`127.0.0.1:${small.port}`);
    try {
      await small.synced;
      await waitFor('the router to know the relayed pod ready', () => small.membership.candidates('mnist', 1).some((p) => p.address === `127.0.0.1:${relayPort}`), 60_000);
      // Only the relayed pod serves this router's mnist: the others are ejected for the test.
      for (const p of small.membership.all()) if (p.address !== `127.0.0.1:${relayPort}`) p.ejectedUntil = Date.now() + 120_000;
      const seq: string[] = [];
      for (let i = 0; i < 30; i++) seq.push((await smallApi.infer('mnist', mnist)).modelVersion);
      expect(seq).toEqual(Array(30).fill('1'));
      const burst = await runLoad(smallApi, 'mnist', mnist, { concurrency: 8, count: 200 });
      expect(burst.errors).toEqual(new Map());
      expect(burst.ok).toBe(200);
      // 230 calls at 3 a connection: at least 77 connections (a few more while one finished its last).
      expect(connections).toBeGreaterThanOrEqual(77);
      // And the piped calls, on the router's connection to its own grpc-js server: 30 in a row.
      for (let i = 0; i < 10; i++) expect(await everyOtherCall(`127.0.0.1:${small.port}`)).toEqual(ANSWERING);
    } finally {
      smallApi.close();
      await small.shutdown(5_000);
      for (const s of sockets) s.destroy();
      relay.close();
    }
  });
});
