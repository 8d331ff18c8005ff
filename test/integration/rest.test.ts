// The router's HTTP/REST door with a plain HTTP client (fetch), against a real mesh: every endpoint,
// JSON and binary inference for every datatype giving what gRPC gives for the same request, the
// documented errors, and bearer tokens checked as gRPC checks them.
import http from 'node:http';
import zlib from 'node:zlib';
import net from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { InferenceApi, type InferInput } from '../../client/index';
import { encodeKeyRecord, keysBucket, newApiKey } from '../../lib/auth';
import { numbersOfHalves, type Datatype } from '../../lib/tensor';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startTestMesh, inferenceClient, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const MAX_JSON_BYTES = 64 * 1024;

let mesh: TestMesh;
let router: RouterService;
let grpcApi: InferenceApi;
let base: string;

/** Sample values of each datatype, its edges included (64-bit integers: what JSON carries exactly). */
const SAMPLES: Record<Datatype, (number | boolean | string)[]> = {
  BOOL: [true, false, true, false],
  UINT8: [0, 1, 254, 255],
  INT8: [-128, -1, 0, 127],
  UINT16: [0, 1, 65534, 65535],
  INT16: [-32768, -1, 0, 32767],
  UINT32: [0, 1, 2 ** 32 - 2, 2 ** 32 - 1],
  INT32: [-(2 ** 31), -1, 0, 2 ** 31 - 1],
  UINT64: [0, 1, 12345, Number.MAX_SAFE_INTEGER],
  INT64: [Number.MIN_SAFE_INTEGER, -1, 0, Number.MAX_SAFE_INTEGER],
  FP16: [0.5, -2, 65504, 0.0001],
  FP32: [0.1, -1.5, 3.4e38, 1e-45],
  FP64: [0.1, -1e308, 5e-324, 1 / 3],
  BYTES: ['a', '', 'héllo wörld', '\u{1F600}'],
};
const DATATYPES = Object.keys(SAMPLES) as Datatype[];
const modelOf = (dt: Datatype) => `identity_${dt.toLowerCase()}`;

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** The JSON and binary parts of an answer (Inference-Header-Content-Length splits them). */
function split(res: { headers: Headers; body: Buffer }): { json: { outputs: { name: string; datatype: string; shape: number[]; data?: unknown[]; parameters?: Record<string, unknown> }[] } & Record<string, unknown>; binary: Buffer } {
  const n = res.headers.get('inference-header-content-length');
  const end = n === null ? res.body.length : Number(n);
  return { json: JSON.parse(res.body.toString('utf8', 0, end)), binary: res.body.subarray(end) };
}

/** Raw little-endian bytes of values of `dt`, as a gRPC client's raw_input_contents. */
function rawOf(dt: Datatype, values: (number | boolean | string)[]): Buffer {
  if (dt === 'BYTES') return Buffer.concat((values as string[]).flatMap((s) => { const b = Buffer.from(s); const l = Buffer.alloc(4); l.writeUInt32LE(b.length); return [l, b]; }));
  const size = { BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, UINT32: 4, INT32: 4, UINT64: 8, INT64: 8, FP16: 2, FP32: 4, FP64: 8 }[dt];
  const b = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    switch (dt) {
      case 'BOOL': b[i] = v ? 1 : 0; break;
      case 'UINT8': b.writeUInt8(v as number, i); break;
      case 'INT8': b.writeInt8(v as number, i); break;
      case 'UINT16': b.writeUInt16LE(v as number, 2 * i); break;
      case 'INT16': b.writeInt16LE(v as number, 2 * i); break;
      case 'UINT32': b.writeUInt32LE(v as number, 4 * i); break;
      case 'INT32': b.writeInt32LE(v as number, 4 * i); break;
      case 'UINT64': b.writeBigUInt64LE(BigInt(v as number), 8 * i); break;
      case 'INT64': b.writeBigInt64LE(BigInt(v as number), 8 * i); break;
      case 'FP16': b.writeUInt16LE(new Uint16Array(new Float32Array([0]).buffer)[0]!, 2 * i); break;
      case 'FP32': b.writeFloatLE(v as number, 4 * i); break;
      case 'FP64': b.writeDoubleLE(v as number, 8 * i); break;
    }
  });
  return b;
}

/** What the gRPC door answers for the same values: plain numbers, booleans or strings. */
async function viaGrpc(dt: Datatype, values: (number | boolean | string)[]): Promise<unknown[]> {
  const input: InferInput = { name: 'INPUT0', datatype: dt, shape: [1, values.length], data: dt === 'INT64' || dt === 'UINT64' ? (values as number[]).map(BigInt) : values as never };
  const res = await grpcApi.infer(modelOf(dt), [input]);
  const data = res.outputs[0]!.data as ArrayLike<unknown>;
  // FP16 comes as its bits (a Uint16Array), as onnxruntime holds it.
  if (dt === 'FP16') return numbersOfHalves(data as Uint16Array);
  return Array.from(data, (v) => (typeof v === 'bigint' ? Number(v) : dt === 'BOOL' ? v === 1 || v === true : v));
}

beforeAll(async () => {
  mesh = await startTestMesh();
  await mesh.push('mnist', 'mnist.onnx');
  for (const dt of DATATYPES) await mesh.push(modelOf(dt), `fixtures/identity_${dt.toLowerCase()}.onnx`);
  await mesh.push('slow', 'fixtures/slow_fp32.onnx');
  const pod = await mesh.startPod();
  await waitReady(inferenceClient(`127.0.0.1:${pod.port}`), ['mnist', 'slow', ...DATATYPES.map(modelOf)]);
  router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_HTTP_MAX_JSON_BYTES: String(MAX_JSON_BYTES), INFERMESH_HTTP_MAX_HEADER_BYTES: '4096' });
  base = `http://127.0.0.1:${router.httpPort}`;
  grpcApi = new InferenceApi(`127.0.0.1:${router.port}`);
  await waitFor('the router to route every model', () => ['mnist', 'slow', ...DATATYPES.map(modelOf)].every((m) => router.membership.candidates(m, 1).length + router.membership.readyVersions(m).size > 0));
});

afterAll(async () => {
  grpcApi?.close();
  await router?.shutdown(5_000);
  await mesh?.close();
});

describe('inference over HTTP/REST', () => {
  it('classifies a held-out digit from the JSON of the spec, as the README shows', async () => {
    const digit = heldOutDigits(200).find((d) => d.label === 7)!;
    const res = await post('/v2/models/mnist/infer', JSON.stringify({ id: 'seven', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array.from(digit.pixels) }] }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const { json } = split(res);
    expect(json).toMatchObject({ model_name: 'mnist', model_version: '1', id: 'seven' });
    const p = json.outputs.find((o) => o.name === 'probabilities')!;
    expect(p).toMatchObject({ datatype: 'FP32', shape: [1, 10] });
    const probs = p.data as number[];
    expect(probs.indexOf(Math.max(...probs))).toBe(7);
  });

  it.each(DATATYPES)('%s: JSON data in and out gives what gRPC gives for the same request', async (dt) => {
    const values = SAMPLES[dt];
    const expected = await viaGrpc(dt, values);
    const res = await post(`/v2/models/${modelOf(dt)}/infer`, JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, values.length], data: values }] }));
    expect(res.status).toBe(200);
    const out = split(res).json.outputs[0]!;
    expect(out).toMatchObject({ name: 'OUTPUT0', datatype: dt, shape: [1, values.length] });
    expect(out.data).toEqual(expected);
  });

  it.each(DATATYPES)('%s: binary data in and out gives the bytes gRPC gives', async (dt) => {
    const values = SAMPLES[dt];
    const expected = await viaGrpc(dt, values);
    // The binary input is the JSON answer's values written raw: what tritonclient.http sends.
    const json = await post(`/v2/models/${modelOf(dt)}/infer`, JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, values.length], data: values }], outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }] }));
    expect(json.status).toBe(200);
    const { json: head, binary: raw } = split(json);
    expect(head.outputs[0]!.parameters).toEqual({ binary_data_size: raw.length });
    expect(head.outputs[0]!.data).toBeUndefined();
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, values.length], parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: false } }));
    const res = await post(`/v2/models/${modelOf(dt)}/infer`, Buffer.concat([header, raw]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
    expect(res.status).toBe(200);
    expect(res.headers.get('inference-header-content-length')).toBeNull();
    expect(split(res).json.outputs[0]!.data).toEqual(expected);
    if (dt !== 'FP16') expect(raw).toEqual(rawOf(dt, values));
  });

  it('carries 64-bit integers beyond 2^53 exactly as binary data, and writes them exactly as JSON', async () => {
    const big = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -1n];
    const raw = Buffer.alloc(32);
    big.forEach((v, i) => raw.writeBigInt64LE(v, 8 * i));
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: [1, 4], parameters: { binary_data_size: 32 } }] }));
    const res = await post('/v2/models/identity_int64/infer', Buffer.concat([header, raw]), { 'inference-header-content-length': String(header.length) });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toContain('"data":[9223372036854775807,-9223372036854775808,9007199254740993,-1]');
  });

  it('writes non-finite floats as the strings JSON readers agree on, and reads them back', async () => {
    const res = await post('/v2/models/identity_fp32/infer', JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 3], data: ['NaN', 'Infinity', '-Infinity'] }] }));
    expect(res.status).toBe(200);
    expect(split(res).json.outputs[0]!.data).toEqual(['NaN', 'Infinity', '-Infinity']);
  });

  it('takes data nested as its shape, and a version named in the path', async () => {
    const res = await post('/v2/models/identity_int32/versions/1/infer', JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [2, 2], data: [[1, 2], [3, 4]] }] }));
    expect(res.status).toBe(200);
    expect(split(res).json).toMatchObject({ model_version: '1', outputs: [{ shape: [2, 2], data: [1, 2, 3, 4] }] });
  });
});

describe('the other endpoints', () => {
  it('answers server metadata, liveness and readiness', async () => {
    expect(await get('/v2')).toEqual({ status: 200, json: expect.objectContaining({ name: 'infermesh', extensions: expect.arrayContaining(['binary_tensor_data']) }) });
    expect((await get('/v2/health/live')).status).toBe(200);
    expect((await get('/v2/health/ready')).status).toBe(200);
  });

  it('answers model metadata, readiness, config and statistics, by model and by version', async () => {
    const meta = await get('/v2/models/mnist');
    expect(meta).toEqual({ status: 200, json: { name: 'mnist', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }], outputs: expect.arrayContaining([{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }]) } });
    expect((await get('/v2/models/mnist/versions/1')).json).toEqual(meta.json);
    expect((await get('/v2/models/mnist/ready')).status).toBe(200);
    expect((await get('/v2/models/mnist/versions/1/ready')).status).toBe(200);
    expect(await get('/v2/models/mnist/versions/9/ready')).toEqual({ status: 400, json: { error: expect.stringMatching(/version 9/) } });
    expect(await get('/v2/models/mnist/config')).toEqual({ status: 200, json: expect.objectContaining({ name: 'mnist', platform: 'onnxruntime_onnx', max_batch_size: expect.any(Number) }) });
    const stats = await get('/v2/models/mnist/stats');
    expect(stats).toEqual({ status: 200, json: { model_stats: [expect.objectContaining({ name: 'mnist', version: '1' })] } });
    expect(Number((stats.json as { model_stats: { inference_count: string }[] }).model_stats[0]!.inference_count)).toBeGreaterThan(0);
    expect((await get('/v2/models/stats')).json).toEqual({ model_stats: expect.arrayContaining([expect.objectContaining({ name: 'mnist' })]) });
  });

  it('lists the repository, ready models only when asked', async () => {
    const res = await post('/v2/repository/index', JSON.stringify({ ready: true }));
    expect(res.status).toBe(200);
    const index = JSON.parse(res.body.toString()) as { name: string; version: string; state: string }[];
    expect(index).toEqual(expect.arrayContaining([{ name: 'mnist', version: '1', state: 'READY', reason: '' }]));
    expect((await post('/v2/repository/index', '')).status).toBe(200);
  });
});

describe('errors, as the spec writes them', () => {
  const infer = (body: unknown, model = 'identity_fp32') => post(`/v2/models/${model}/infer`, typeof body === 'string' ? body : JSON.stringify(body));
  const fp32 = (data: unknown, shape = [1, 2]) => ({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape, data }] });

  it.each<[string, () => Promise<{ status: number; body: Buffer }>, number, RegExp]>([
    ['an unknown model', () => infer(fp32([1, 2]), 'nope'), 404, /model 'nope'/],
    ['malformed JSON', () => infer('{"inputs": [', 'identity_fp32'), 400, /not valid JSON/],
    ['a body that is not an object', () => infer('[1,2]'), 400, /JSON object/],
    ['no inputs', () => infer({ inputs: [] }), 400, /"inputs"/],
    ['an unknown datatype', () => infer({ inputs: [{ name: 'INPUT0', datatype: 'FP128', shape: [1], data: [1] }] }), 400, /tensor 'INPUT0': unknown datatype/],
    ['a string where a number belongs', () => infer(fp32([1, 'two'])), 400, /tensor 'INPUT0': element 1 is not a number/],
    ['data that does not fill the shape', () => infer(fp32([1, 2, 3])), 400, /tensor 'INPUT0': "data" has 3 elements, but shape \[1,2\] needs 2/],
    ['nesting that does not follow the shape', () => infer(fp32([[1], [2]], [1, 2])), 400, /does not follow shape/],
    ['an integer out of range', () => infer({ inputs: [{ name: 'INPUT0', datatype: 'UINT8', shape: [1, 1], data: [256] }] }, 'identity_uint8'), 400, /element 0 \(256\) does not fit UINT8/],
    ['a 64-bit integer JSON cannot carry', () => infer({ inputs: [{ name: 'INPUT0', datatype: 'INT64', shape: [1, 1], data: [2 ** 60] }] }, 'identity_int64'), 400, /beyond 2\^53.*binary data/],
    ['an unpaired surrogate in BYTES', () => infer('{"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1,1],"data":["\\ud800"]}]}', 'identity_bytes'), 400, /unpaired surrogate/],
    // Bytes the pod would refuse over gRPC ("not valid UTF-8"), not read as U+FFFD on the way.
    ['bytes that are not UTF-8 in BYTES', () => post('/v2/models/identity_bytes/infer', Buffer.from('{"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1,2],"data":["\xff\xfe","caf\xc3"]}]}', 'latin1')), 400, /^the request body is not valid UTF-8$/],
    ['a NUL in BYTES', () => infer({ inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 1], data: ['a\u0000b'] }] }, 'identity_bytes'), 400, /NUL/],
    ['a wrong input name', () => infer({ inputs: [{ name: 'X', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }), 400, /X/],
    ['a header length past the body', () => post('/v2/models/identity_fp32/infer', '{}', { 'inference-header-content-length': '99' }), 400, /inference-header-content-length is 99/],
    ['binary data of the wrong size', () => {
      const h = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 4 } }] }));
      return post('/v2/models/identity_fp32/infer', Buffer.concat([h, Buffer.alloc(4)]), { 'inference-header-content-length': String(h.length) });
    }, 400, /binary_data_size is 4, but shape \[1,2\] of FP32 needs 8 bytes/],
    ['binary data no input claims', () => {
      const h = Buffer.from(JSON.stringify(fp32([1, 2])));
      return post('/v2/models/identity_fp32/infer', Buffer.concat([h, Buffer.alloc(8)]), { 'inference-header-content-length': String(h.length) });
    }, 400, /8 bytes of binary data that no input claims/],
    ['a JSON body over the limit', () => infer(fp32(new Array(20_000).fill(1.5), [1, 20_000])), 413, /more than the limit of 65536/],
    ['a deadline that passes', () => post('/v2/models/slow/infer', JSON.stringify({ inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] })) }), { 'grpc-timeout': '2m' }), 504, /deadline/i],
    ['a malformed deadline', () => post('/v2/models/identity_fp32/infer', JSON.stringify(fp32([1, 2])), { 'grpc-timeout': '1.5S' }), 400, /grpc-timeout "1.5S" is not a timeout/],
    ['a bad version in the path', () => post('/v2/models/mnist/versions/one/infer', '{}'), 400, /not a version number/],
    ['an unknown endpoint', () => post('/v2/nothing', '{}'), 404, /no endpoint/],
    ['a repository index body that is not JSON', () => post('/v2/repository/index', '{"ready":'), 400, /not valid JSON/],
    ['a repository index body that is not UTF-8', () => post('/v2/repository/index', Buffer.from('{"\xff":1}', 'latin1')), 400, /^the request body is not valid UTF-8$/],
    ['a repository index "ready" that is not a boolean', () => post('/v2/repository/index', '{"ready":"yes"}'), 400, /"ready" must be true or false/],
    ['a method the endpoint does not take', () => post('/v2/health/live', ''), 405, /POST is not allowed/],
  ])('%s', async (_what, call, status, message) => {
    const res = await call();
    expect({ status: res.status, body: JSON.parse(res.body.toString()) }).toEqual({ status, body: { error: expect.stringMatching(message) } });
  });

  it('names the methods an endpoint takes in a 405 (Allow)', async () => {
    const allowed = async (method: string, path: string) => {
      const res = await fetch(`${base}${path}`, { method });
      return [res.status, res.headers.get('allow')];
    };
    expect(await allowed('POST', '/v2/health/live')).toEqual([405, 'GET, HEAD']);
    expect(await allowed('DELETE', '/v2/models/identity_fp32')).toEqual([405, 'GET, HEAD']);
    expect(await allowed('GET', '/v2/models/identity_fp32/infer')).toEqual([405, 'POST']);
  });

  it('refuses a compressed body 415, naming the coding it takes, and takes one marked identity', async () => {
    const body = JSON.stringify(fp32([1, 2]));
    const gzipped = await post('/v2/models/identity_fp32/infer', zlib.gzipSync(body), { 'content-encoding': 'gzip' });
    expect({ status: gzipped.status, accept: gzipped.headers.get('accept-encoding'), body: JSON.parse(gzipped.body.toString()) })
      .toEqual({ status: 415, accept: 'identity', body: { error: expect.stringMatching(/Content-Encoding.*uncompressed/) } });
    // Even a body that happens to be JSON: what the client says it sent is not what it means.
    expect((await post('/v2/models/identity_fp32/infer', body, { 'content-encoding': 'br' })).status).toBe(415);
    expect((await post('/v2/models/identity_fp32/infer', body, { 'content-encoding': 'identity' })).status).toBe(200);
  });

  it('refuses a body in a transfer coding other than chunked 501, and takes one chunked', async () => {
    const body = Buffer.from(JSON.stringify(fp32([1, 2])));
    const send = (coding: string, data: Buffer) => new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(base).port), '127.0.0.1', () => {
        s.write(`POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n${data.length.toString(16)}\r\n`);
        s.write(data);
        s.write('\r\n0\r\n\r\n');
      });
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('close', () => resolve(text));
      s.on('error', reject);
    });
    // Before, the gzip bytes were read as the body ("not valid JSON"), and an unknown coding ignored.
    expect(await send('gzip, chunked', zlib.gzipSync(body))).toMatch(/^HTTP\/1\.1 501 [^]*\{"error":"the body has a Transfer-Encoding other than chunked: [^"]+"\}$/);
    expect(await send('foo, chunked', body)).toMatch(/^HTTP\/1\.1 501 /);
    expect(await send('chunked', body)).toMatch(/^HTTP\/1\.1 200 [^]*"data":\[1,2\]/);
  });

  it('answers headers over the limit 431, and keeps serving', async () => {
    const res = await fetch(`${base}/v2/health/live`, { headers: { 'x-big': 'x'.repeat(8_000) } });
    expect(res.status).toBe(431);
    expect((await get('/v2/health/live')).status).toBe(200);
  });

  it.each<[string, string, number]>([
    ['a malformed header line', 'GET /v2 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400],
    ['headers over the limit', `GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(5_000)}\r\n\r\n`, 431],
  ])('answers a pipelined request it cannot parse (%s) after the inference before it, not in its place', async (_what, broken, status) => {
    const body = JSON.stringify(fp32([1, 2]));
    // One write: the door meets the broken request while the inference is still on its pod.
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(base).port), '127.0.0.1', () => s.write(`POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}${broken}`));
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', reject);
    });
    expect([...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200, status]);
    expect(answer).toContain('"outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[1,2],"data":[1,2]}]');
  });

  it('answers a declared body over INFERMESH_MAX_MESSAGE_BYTES 413 before reading it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/v2/models/identity_fp32/infer`, { method: 'POST', headers: { 'content-length': String(2 ** 31), 'inference-header-content-length': '2' } }, (res) => resolve(res.statusCode!));
      req.on('error', reject);
      req.write('{}');
    });
    expect(status).toBe(413);
  });
});

describe('values as they are', () => {
  it('answers -0 as -0, for every float datatype', async () => {
    for (const dt of ['FP16', 'FP32', 'FP64']) {
      // By hand: JSON.stringify writes -0 as 0.
      const res = await post(`/v2/models/${modelOf(dt as Datatype)}/infer`, `{"inputs":[{"name":"INPUT0","datatype":"${dt}","shape":[1,2],"data":[-0,0]}]}`);
      expect(res.body.toString()).toContain('"data":[-0,0]');
    }
  });

  it.each<[string, unknown]>([['FP32', 1e39], ['FP32', -1e39], ['FP16', 70000]])('refuses %s %p, beyond its range, rather than make it infinite', async (dt, v) => {
    const res = await post(`/v2/models/${modelOf(dt as Datatype)}/infer`, JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, 1], data: [v] }] }));
    expect({ status: res.status, body: JSON.parse(res.body.toString()) }).toEqual({ status: 400, body: { error: `tensor 'INPUT0': element 0 (${String(v)}) is beyond ${dt}'s range` } });
  });

  it.each<[string, string]>([['FP16', '1e400'], ['FP32', '-1e400'], ['FP64', '1.7976931348623159e308']])('refuses %s %s, a literal beyond a double, rather than make it infinite', async (dt, literal) => {
    // By hand: JSON.stringify cannot write such a literal.
    const res = await post(`/v2/models/${modelOf(dt as Datatype)}/infer`, `{"inputs":[{"name":"INPUT0","datatype":"${dt}","shape":[1,2],"data":[1,${literal}]}]}`);
    expect({ status: res.status, body: JSON.parse(res.body.toString()) }).toEqual({ status: 400, body: { error: `tensor 'INPUT0': element 1 is beyond ${dt}'s range` } });
  });

});

describe('the door\'s budgets', () => {
  let limited: RouterService;
  let at: string;
  const MiB = 1 << 20;

  beforeAll(async () => {
    limited = await startTestRouter(mesh.nats.url, mesh.registry.port, {
      INFERMESH_HTTP_MAX_REQUEST_BYTES: String(24 * MiB), INFERMESH_MAX_MESSAGE_BYTES: String(24 * MiB),
      INFERMESH_HTTP_MAX_JSON_ANSWER_BYTES: String(1 * MiB), INFERMESH_HTTP_MAX_REQUESTS_PER_CONNECTION: '3',
    });
    at = `http://127.0.0.1:${limited.httpPort}`;
    await waitFor('the limited router to route identity_fp32', () => limited.membership.readyVersions('identity_fp32').size > 0);
  });

  afterAll(async () => {
    await limited?.shutdown(5_000);
  });

  /** A socket that sent `head` (and `body`, when given) and reads nothing back. */
  const silent: net.Socket[] = [];
  afterEach(() => {
    for (const s of silent.splice(0)) s.destroy();
  });
  const openSilent = (head: string, body?: Buffer) => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(limited.httpPort!, '127.0.0.1', () => {
      s.write(head);
      if (body) s.write(body);
      resolve(s);
    });
    s.on('error', reject);
    s.pause();
    silent.push(s);
  });
  /** Whether the door answers `head` (which declares a body and sends none of it) with 429 at once. */
  const refusedByDeclaredLength = (head: string) => new Promise<boolean>((resolve) => {
    let got = '';
    const s = net.connect(limited.httpPort!, '127.0.0.1', () => s.write(head));
    const settle = (refused: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(refused);
    };
    // A length that fits is taken, and the door waits for its body: not refused.
    const timer = setTimeout(() => settle(false), 300);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n\r\n')) settle(got.startsWith('HTTP/1.1 429'));
    });
    s.on('error', () => settle(false));
  });
  /** An infer body of `n` FP32 elements as binary data, answered as binary data. */
  const binaryInfer = (n: number) => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, n], parameters: { binary_data_size: 4 * n } }], parameters: { binary_data_output: true } }));
    return { body: Buffer.concat([header, Buffer.alloc(4 * n, 1)]), headers: { 'inference-header-content-length': String(header.length) } };
  };
  const call = async (body: Buffer | string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${at}/v2/models/identity_fp32/infer`, { method: 'POST', body, headers });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  const small = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });

  it('charges request bytes as they arrive: declared lengths alone hold nothing, sent bytes do', async () => {
    // Binary data may make a body up to INFERMESH_MAX_MESSAGE_BYTES (a JSON body alone: 8 MiB).
    const head = (length: number) => `POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\nInference-Header-Content-Length: 2\r\n\r\n`;
    for (let i = 0; i < 4; i++) await openSilent(head(20 * MiB));
    // 5 MiB more fits beside four declared 20 MiB bodies of which nothing came (it is read, and is not JSON).
    expect((await call(Buffer.alloc(5 * MiB, 0x20))).status).toBe(400);
    expect((await call(small)).status).toBe(200);
    // 20 MiB really sent (the body unfinished) leaves 4 MiB.
    await openSilent(head(21 * MiB), Buffer.alloc(20 * MiB, 0x20));
    // Asked by declared lengths alone, which hold nothing: a probe that sent bytes could take budget the
    // silent body still needs while its last bytes arrive, and have that body refused instead.
    await waitFor('the door to hold the sent bytes', () => refusedByDeclaredLength(head(4 * MiB + 1)), 10_000);
    const refused = await call(Buffer.alloc(5 * MiB, 0x20));
    expect({ status: refused.status, body: JSON.parse(refused.body.toString()) }).toEqual({ status: 429, body: { error: expect.stringMatching(/too many request bytes/) } });
    expect((await call(small)).status).toBe(200);
  });

  it('holds answers its clients do not read within INFERMESH_HTTP_MAX_RESPONSE_BYTES, refusing the next ones 429', async () => {
    // Its own router: answers of 48 MiB, 56 MiB of them held at most, requests within the default budget.
    const answering = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_HTTP_MAX_RESPONSE_BYTES: String(56 * MiB) });
    try {
      await waitFor('the router to route identity_fp32', () => answering.membership.readyVersions('identity_fp32').size > 0);
      // 48 MiB answers: more than loopback TCP takes off the door's hands for a client that does not
      // read (tcp_rmem's autotuned receive buffer goes up to 32 MiB here, the send buffer 4 MiB).
      const { body, headers } = binaryInfer(12 * MiB);
      // Each answer is read whole: an answer left unread would itself be held, until the fetch is collected.
      const send = async (b: Buffer | string, h: Record<string, string> = {}) => {
        const res = await fetch(`http://127.0.0.1:${answering.httpPort}/v2/models/identity_fp32/infer`, { method: 'POST', body: b, headers: h });
        await res.arrayBuffer();
        return res.status;
      };
      // A client that reads the first bytes of its answer and no more: the kernel's socket buffers
      // take part of it, the door holds the rest.
      const reader = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(answering.httpPort!, '127.0.0.1', () => {
          s.write(`POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\ninference-header-content-length: ${headers['inference-header-content-length']}\r\n\r\n`);
          s.write(body);
        });
        s.once('data', (first: Buffer) => {
          s.pause();
          if (first.toString('latin1').startsWith('HTTP/1.1 200')) resolve(s);
          else reject(new Error(`the silent client's answer: ${first.toString('latin1', 0, 200)}`));
        });
        s.on('error', reject);
      });
      try {
        await waitFor('the door to hold the unread answer', async () => (await send(body, headers)) === 429, 20_000);
        const res = await fetch(`http://127.0.0.1:${answering.httpPort}/v2/models/identity_fp32/infer`, { method: 'POST', body, headers });
        expect({ status: res.status, body: await res.json() }).toEqual({ status: 429, body: { error: expect.stringMatching(/too many unread answers/) } });
        // Small answers still go out, and once the client goes its answer's bytes are free again.
        expect(await send(small)).toBe(200);
      } finally {
        reader.destroy();
      }
      await waitFor('the budget to be free again', async () => (await send(body, headers)) === 200, 10_000);
    } finally {
      await answering.shutdown(5_000);
    }
  });

  it('refuses an answer whose JSON could pass INFERMESH_HTTP_MAX_JSON_ANSWER_BYTES, pointing at binary data', async () => {
    const n = 64 * 1024; // 64 Ki floats: up to 1.6 MB as JSON
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, n], parameters: { binary_data_size: 4 * n } }] }));
    const res = await call(Buffer.concat([header, Buffer.alloc(4 * n)]), { 'inference-header-content-length': String(header.length) });
    expect({ status: res.status, body: JSON.parse(res.body.toString()) }).toEqual({ status: 429, body: { error: expect.stringMatching(/JSON data could take \d+ bytes, more than the limit of 1048576; ask for its outputs as binary data/) } });
  });

  it('refuses a datatype nested 200,000 deep 400, naming what it got', async () => {
    const res = await call(`{"inputs":[{"name":"INPUT0","datatype":${'['.repeat(200_000)}${']'.repeat(200_000)},"shape":[1],"data":[1]}]}`);
    expect({ status: res.status, body: JSON.parse(res.body.toString()) }).toEqual({ status: 400, body: { error: "tensor 'INPUT0': unknown datatype (a JSON array)" } });
  });

  it('closes a connection after INFERMESH_HTTP_MAX_REQUESTS_PER_CONNECTION requests, the last answer saying so', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(limited.httpPort!, '127.0.0.1', () => s.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(5)));
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    const statuses = [...answer.matchAll(/^HTTP\/1.1 (\d+)/gm)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '200']);
    expect(answer.split('HTTP/1.1').at(-1)).toMatch(/connection: close/i);
  });
});

describe('a request that takes more as a gRPC message than as its body', () => {
  let small: RouterService;
  let at: string;
  const MiB = 1 << 20;
  const opened: net.Socket[] = [];

  beforeAll(async () => {
    // Bodies and messages of 1 MiB; 1.5 MiB of request bytes held at once.
    small = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_MAX_MESSAGE_BYTES: String(MiB), INFERMESH_HTTP_MAX_REQUEST_BYTES: String(1.5 * MiB) });
    at = `http://127.0.0.1:${small.httpPort}`;
    await waitFor('the router to route identity_fp64', () => small.membership.readyVersions('identity_fp64').size > 0);
  });

  afterEach(() => {
    for (const s of opened.splice(0)) s.destroy();
  });

  afterAll(async () => {
    await small?.shutdown(5_000);
  });

  /** `n` FP64 zeros as JSON: 2 bytes each in the body, 8 in the message. */
  const zeros = async (n: number) => {
    const res = await fetch(`${at}/v2/models/identity_fp64/infer`, { method: 'POST', body: `{"inputs":[{"name":"INPUT0","datatype":"FP64","shape":[1,${n}],"data":[${new Array(n).fill(0).join(',')}]}]}` });
    const text = await res.text();
    return { status: res.status, error: res.status === 200 ? undefined : (JSON.parse(text) as { error: string }).error };
  };
  /** Whether the door refuses a body of `length` bytes by its declared length alone (429 at once). */
  const refusedByDeclaredLength = (length: number) => new Promise<boolean>((resolve) => {
    let got = '';
    const s = net.connect(small.httpPort!, '127.0.0.1', () => s.write(`POST /v2/models/identity_fp64/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`));
    opened.push(s);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n\r\n')) resolve(got.startsWith('HTTP/1.1 429'));
    });
    // A length that fits is taken, and the door waits for its body: not refused.
    s.on('error', () => resolve(false));
    setTimeout(() => resolve(false), 300);
  });

  it('is refused 413 at the door, naming its size and the limit, when its tensors pass INFERMESH_MAX_MESSAGE_BYTES', async () => {
    // 280 KB of JSON, 1,120,000 bytes of tensor.
    expect(await zeros(140_000)).toEqual({ status: 413, error: `tensor 'INPUT0': the request's tensors come to 1120000 bytes with it, more than the limit of ${MiB} for a request; send fewer elements per request` });
  });

  it('is refused 413 at the door when its tensors fit the limit and its message does not', async () => {
    expect(await zeros(MiB / 8)).toEqual({ status: 413, error: expect.stringMatching(new RegExp(`^the request makes a gRPC message of \\d+ bytes, more than the limit of ${MiB}$`)) });
  });

  it('charges the message it makes to INFERMESH_HTTP_MAX_REQUEST_BYTES in its body\'s place, and gives it back with its answer', async () => {
    // 240 KB of body, 960 KB of message.
    const n = 120_000;
    expect(await zeros(n)).toEqual({ status: 200, error: undefined });
    // A client that has sent 700,000 bytes of a body and stops: the body would fit beside them, its message not.
    const sent = 700_000;
    const silent = net.connect(small.httpPort!, '127.0.0.1', () => silent.write(`POST /v2/models/identity_fp64/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB}\r\nInference-Header-Content-Length: 2\r\n\r\n${' '.repeat(sent)}`));
    opened.push(silent);
    silent.on('error', () => undefined);
    await waitFor('the door to hold the silent body', () => refusedByDeclaredLength(1.5 * MiB - sent + 1), 10_000);
    expect(await zeros(n)).toEqual({ status: 429, error: expect.stringMatching(/^the router holds too many request bytes to take the \d+ bytes this request makes as a gRPC message; retry later$/) });
    silent.destroy();
    // Nothing is left charged once the silent client is gone and the refused request answered.
    await waitFor('the door to let go of the silent body', async () => (await zeros(n)).status === 200, 10_000);
  });
});

describe('bearer tokens, as gRPC checks them', () => {
  let secured: RouterService;
  let nc: NatsConnection;
  let keys: KV;
  let securedBase: string;

  const key = async (grants: string[]) => {
    const k = newApiKey();
    await keys.put(k.id, encodeKeyRecord({ id: k.id, name: 'rest test', hash: k.hash, grants, createdAt: new Date().toISOString(), createdBy: 'test' }));
    return k.token;
  };
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const digitBody = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: Array.from(heldOutDigits(1)[0]!.pixels) }] });

  beforeAll(async () => {
    nc = await connect({ servers: mesh.nats.url });
    keys = await keysBucket(nc, { replicas: 1, create: true });
    // Limits scaled down: two bodies of the JSON limit fill the door's budget.
    secured = await startTestRouter(mesh.nats.url, mesh.registry.port, {
      INFERMESH_AUTH: 'true', INFERMESH_HTTP_MAX_JSON_BYTES: String(MAX_JSON_BYTES),
      INFERMESH_HTTP_MAX_REQUEST_BYTES: String(2 * MAX_JSON_BYTES), INFERMESH_MAX_MESSAGE_BYTES: String(2 * MAX_JSON_BYTES),
      INFERMESH_HTTP_BODY_TIMEOUT_MS: '1000',
      // Lingering scaled down: a client that stops sending is let go after a gap of 250 ms, one that
      // never stops after 1 s (time enough to drop the rest of a body of tens of MiB, on a busy machine).
      INFERMESH_HTTP_LINGERING_TIME_MS: '1000', INFERMESH_HTTP_LINGERING_TIMEOUT_MS: '250',
    });
    securedBase = `http://127.0.0.1:${secured.httpPort}`;
    await waitFor('the secured router to route mnist', () => secured.membership.readyVersions('mnist').size > 0);
  });

  afterAll(async () => {
    await secured?.shutdown(5_000);
    await nc?.close();
  });

  it('infers with a token that has infer on the model; refuses none 401 and another model\'s 403', async () => {
    const call = (headers: Record<string, string>) => fetch(`${securedBase}/v2/models/mnist/infer`, { method: 'POST', body: digitBody, headers });
    const ok = await call(auth(await key(['infer:mnist'])));
    expect(ok.status).toBe(200);
    const none = await call({});
    expect({ status: none.status, body: await none.json() }).toEqual({ status: 401, body: { error: expect.any(String) } });
    const other = await call(auth(await key(['infer:digits'])));
    expect({ status: other.status, body: await other.json() }).toEqual({ status: 403, body: { error: "the caller has no 'infer' scope for model 'mnist'" } });
  });

  it('checks the other endpoints as their gRPC calls, and lists only what the caller may read', async () => {
    const reader = await key(['read:mnist']);
    expect((await fetch(`${securedBase}/v2/models/mnist`, { headers: auth(reader) })).status).toBe(200);
    expect((await fetch(`${securedBase}/v2/models/identity_fp32`, { headers: auth(reader) })).status).toBe(403);
    expect((await fetch(`${securedBase}/v2/health/ready`)).status).toBe(401);
    const index = await fetch(`${securedBase}/v2/repository/index`, { method: 'POST', body: '{}', headers: auth(reader) });
    expect(((await index.json()) as { name: string }[]).map((m) => m.name)).toEqual(['mnist']);
  });

  /** A raw client that sent `head` and all but the last byte of the body it declares (MAX_JSON_BYTES), and records what it got. */
  const unfinished = (head: string) => {
    let got = '';
    let closed = false;
    const s = net.connect(secured.httpPort!, '127.0.0.1', () => s.write(`${head}Content-Length: ${MAX_JSON_BYTES}\r\n\r\n${' '.repeat(MAX_JSON_BYTES - 1)}`));
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => (closed = true));
    opened.push(s);
    return { status: () => got.split('\r\n')[0], closed: () => closed };
  };
  const opened: net.Socket[] = [];
  afterEach(() => {
    for (const s of opened.splice(0)) s.destroy();
  });
  const infer = async (token: string) => {
    const res = await fetch(`${securedBase}/v2/models/mnist/infer`, { method: 'POST', body: digitBody, headers: auth(token) });
    return { status: res.status, error: res.status === 200 ? undefined : ((await res.json()) as { error: string }).error };
  };

  it('answers a caller without a valid token 401 before reading its body, and closes: it holds none of the budget', async () => {
    const token = await key(['infer:mnist', 'read:mnist']);
    expect(await infer(token)).toEqual({ status: 200, error: undefined });
    // Bodies of the JSON limit, unfinished, to an endpoint that reads one: two filled the budget, read before their token was checked.
    const callers = [
      unfinished('POST /v2/repository/index HTTP/1.1\r\nHost: x\r\n'),
      unfinished('POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n'),
      unfinished(`POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${await key(['infer:digits'])}\r\n`),
    ];
    await waitFor('the door to answer every one', () => callers.every((c) => c.closed()), 10_000).catch(() => undefined);
    expect(callers.map((c) => ({ status: c.status(), closed: c.closed() }))).toEqual([
      { status: 'HTTP/1.1 401 Unauthorized', closed: true },
      { status: 'HTTP/1.1 401 Unauthorized', closed: true },
      { status: 'HTTP/1.1 403 Forbidden', closed: true },
    ]);
    expect(await infer(token)).toEqual({ status: 200, error: undefined });
    // A request with no body is refused on a connection that stays.
    expect((await fetch(`${securedBase}/v2/models/mnist/config`)).status).toBe(401);
  });

  /** The status line and JSON body of a whole answer in `text` (its Content-Length met), or what `text` is. */
  const wholeAnswer = (text: string) => {
    const m = /^(HTTP\/1\.1 \d{3} [^\r]*)\r\n([^]*?)\r\n\r\n([^]*)$/.exec(text);
    const length = m && /^content-length: *(\d+)$/im.exec(m[2]!);
    if (!m || !length || Buffer.byteLength(m[3]!) !== Number(length[1])) return { incomplete: text.slice(0, 200) };
    return { status: m[1], body: JSON.parse(m[3]!) as unknown };
  };

  it('answers a caller without a token whose large body is still coming 401, and its client reads that answer, not a reset', async () => {
    // More than the sockets' buffers on both ends hold (Linux's defaults at most: 4 MiB to send,
    // 6 MiB to receive): the client is still writing when it is answered. It reads nothing until
    // its write is done (the answer waits in its kernel): a door that closed with the body unread
    // reset the connection, failing the write (EPIPE) and losing the answer, every time.
    const body = Buffer.alloc(24 * 1024 * 1024, 0x20);
    const send = () => new Promise<{ writeError?: string; answer: unknown }>((resolve) => {
      const s = net.connect({ port: secured.httpPort!, host: '127.0.0.1', allowHalfOpen: true });
      opened.push(s);
      s.pause();
      let got = '';
      let writeError: string | undefined;
      const done = () => resolve({ writeError, answer: wholeAnswer(got) });
      s.on('error', (err: NodeJS.ErrnoException) => {
        writeError ??= err.code;
        done();
      });
      s.write(`POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.write(body, (err) => {
        if (err) return;
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('end', () => {
          s.end();
          done();
        });
        s.resume();
      });
    });
    for (let i = 0; i < 5; i++) {
      expect(await send()).toEqual({ writeError: undefined, answer: { status: 'HTTP/1.1 401 Unauthorized', body: { error: expect.any(String) } } });
    }
  });

  it('reads and drops what a refused client still sends, and cuts one that never stops off after INFERMESH_HTTP_LINGERING_TIME_MS', async () => {
    // Half-open, as curl: it goes on sending after the door's FIN.
    const s = net.connect({ port: secured.httpPort!, host: '127.0.0.1', allowHalfOpen: true });
    opened.push(s);
    let got = '';
    let answered = false;
    let closed = false;
    /** Body bytes the door took after its answer came. */
    let takenAfter = 0;
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      answered = !('incomplete' in wholeAnswer(got));
    });
    s.on('error', () => undefined);
    s.on('close', () => (closed = true));
    s.write(`POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 ** 40}\r\n\r\n`);
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const pump = () => {
      while (!s.destroyed) {
        const more = s.write(chunk, (err) => {
          if (!err && answered) takenAfter += chunk.length;
        });
        if (!more) return void s.once('drain', pump);
      }
    };
    pump();
    await waitFor('the door to cut the client off', () => closed, 10_000);
    // More than the sockets' buffers hold (10 MiB at Linux's defaults): read, not left to fill them.
    expect({ answer: wholeAnswer(got), takenAfterMoreThan16MiB: takenAfter > 16 * 1024 * 1024 }).toEqual({
      answer: { status: 'HTTP/1.1 401 Unauthorized', body: { error: expect.any(String) } }, takenAfterMoreThan16MiB: true,
    });
  });

  it('answers 408 a body of which nothing comes for INFERMESH_HTTP_BODY_TIMEOUT_MS, and gives its bytes back', async () => {
    const token = await key(['infer:mnist', 'read:mnist']);
    // Two tenants' bodies that stall one byte short: together they hold the whole budget.
    const stalled = [0, 1].map(() => unfinished(`POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`));
    await waitFor('the door to give up on both', () => stalled.every((c) => c.closed()), 10_000).catch(() => undefined);
    expect(stalled.map((c) => ({ status: c.status(), closed: c.closed() }))).toEqual([0, 1].map(() => ({ status: 'HTTP/1.1 408 Request Timeout', closed: true })));
    expect(await infer(token)).toEqual({ status: 200, error: undefined });
  });

  it('tells a client that waits to send its body (Expect: 100-continue) to send it only once its request is admitted', async () => {
    const token = await key(['infer:mnist']);
    /** A raw client that sent the head of an inference with `headers`, waiting to be told to send its body of `length` bytes. */
    const expecting = (headers: string, length = Buffer.byteLength(digitBody)) => {
      let got = '';
      let closed = false;
      const s = net.connect(secured.httpPort!, '127.0.0.1', () => s.write(`POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\n${headers}Expect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`));
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => (closed = true));
      opened.push(s);
      return { socket: s, got: () => got, closed: () => closed };
    };
    // Without a token, without the scope, or declaring a body past the limit: refused before the
    // client sends the body (node:http told every one to send it first), and the connection closed.
    const refused = [expecting(''), expecting(`Authorization: Bearer ${await key(['infer:digits'])}\r\n`), expecting(`Authorization: Bearer ${token}\r\n`, MAX_JSON_BYTES + 1)];
    await waitFor('the door to answer every one', () => refused.every((c) => c.closed()), 10_000).catch(() => undefined);
    expect(refused.map((c) => ({ status: c.got().slice(0, 12), closed: c.closed() }))).toEqual([
      { status: 'HTTP/1.1 401', closed: true },
      { status: 'HTTP/1.1 403', closed: true },
      { status: 'HTTP/1.1 413', closed: true },
    ]);
    // Admitted: told to go on, it sends its body and is answered.
    const admitted = expecting(`Authorization: Bearer ${token}\r\n`);
    await waitFor('100 Continue', () => admitted.got() === 'HTTP/1.1 100 Continue\r\n\r\n' || admitted.closed(), 10_000);
    admitted.socket.write(digitBody);
    await waitFor('the answer', () => /HTTP\/1\.1 [2-5]\d\d /.test(admitted.got()), 10_000);
    expect(admitted.got()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  });

  it('refuses two authorization headers 401', async () => {
    const token = await key(['infer:mnist']);
    // Written by hand: Node's client merges headers of one name.
    const answer = await new Promise<string>((resolve, reject) => {
      const c = net.connect(secured.httpPort!, '127.0.0.1', () => c.end(
        `POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer other\r\n` +
        `Content-Length: ${Buffer.byteLength(digitBody)}\r\nConnection: close\r\n\r\n${digitBody}`));
      let text = '';
      c.on('data', (d: Buffer) => (text += d.toString()));
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1.1 401 [^]*\{"error":"more than one authorization header"\}$/);
  });

  it('refuses a request with more header fields than INFERMESH_HTTP_MAX_HEADERS 431, rather than read it without the last ones', async () => {
    const token = await key(['infer:mnist']);
    // 2,100 empty fields (8 KB, within the header bytes) hid the second authorization from the door:
    // node:http kept the first 2,000 fields, and the request was served with the first token.
    const answer = await new Promise<string>((resolve, reject) => {
      // Not half-closed: node:http would drop the request's answer.
      const c = net.connect(secured.httpPort!, '127.0.0.1', () => c.write(
        `POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${'X:\r\n'.repeat(2_100)}Authorization: Bearer other\r\n` +
        `Content-Length: ${Buffer.byteLength(digitBody)}\r\nConnection: close\r\n\r\n${digitBody}`));
      let text = '';
      c.on('data', (d: Buffer) => (text += d.toString()));
      c.on('end', () => resolve(text));
      c.on('error', reject);
    });
    // Node 24's parser refuses so many fields itself (as headers too large); Node 20 and 22 leave it to the door.
    expect(answer).toMatch(/^HTTP\/1.1 431 [^]*\{"error":"(the request has more than 100 header fields|request headers too large)"\}$/);
  });
});
