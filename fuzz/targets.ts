// The fuzz targets: each parser of network or file bytes, with the only errors it may throw and the
// bounds its output must keep. A target throws FuzzFinding (or anything unexpected) on a finding.
// `npm run fuzz` runs them for long; test/unit/fuzz/fuzz-targets.test.ts runs a fixed budget and
// every kept regression case in npm test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MeshError } from '../lib/errors';
import { HpackDecoder, HpackError, encodeHeaders, type Header } from '../lib/h2/hpack';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { H2Connection, type H2Stream } from '../lib/h2/connection';
import * as frames from '../lib/h2/frames';
import { cutShort, MessageFraming } from '../lib/h2/grpc';
import { protos } from '../lib/grpc/proto';
import type { ModelInferRequest, ModelInferRequestOut } from '../lib/grpc/types';
import { OnnxFormatError, readOnnxSignature } from '../lib/onnx';
import { peekRequest } from '../services/router/request-peek';
import { scanAndDecode, scanModelInferRequest, type RequestScanLimits } from '../lib/grpc/request-scan';
import { decodeRequest, type Signature } from '../services/inference/request-codec';
import { parseInferRequest } from '../lib/rest/infer-codec';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeHeartbeat, encodeHeartbeat, SchemaError, SCHEMA_VERSION, type Heartbeat } from '../lib/events';
import { canonicalJson, HeartbeatSignatures, HeartbeatSigner } from '../lib/heartbeat-signatures';
import { ClaimWarnings } from '../lib/pod-claims';
import { silentLogger } from '../lib/log';

/** A broken invariant: not an error the parser may throw, a bug. */
export class FuzzFinding extends Error {}

export interface FuzzTarget {
  name: string;
  /** What it parses, for the reports. */
  doc: string;
  /** Valid inputs to mutate from. */
  seeds(): Buffer[];
  /** Parses one input; resolves, or throws FuzzFinding / an unexpected error on a finding. */
  run(data: Buffer): void | Promise<void>;
}

/** Rethrows `err` unless it is one of the errors the parser documents. */
function expected(err: unknown, ...kinds: (abstract new (...args: never[]) => Error)[]): void {
  if (!kinds.some((k) => err instanceof k)) throw err;
}

const MAX_LIST_BYTES = 65_536;

const hpack: FuzzTarget = {
  name: 'hpack',
  doc: 'HPACK decoder (lib/h2/hpack.ts): two header blocks through one decoder, so the dynamic table carries over',
  seeds() {
    const grpcHeaders: Header[] = [
      [':method', 'POST'], [':scheme', 'http'], [':path', '/inference.GRPCInferenceService/ModelInfer'],
      [':authority', '127.0.0.1:8001'], ['content-type', 'application/grpc'], ['te', 'trailers'], ['grpc-timeout', '5S'],
    ];
    return [
      Buffer.concat([Buffer.from([7]), encodeHeaders(grpcHeaders)]),
      // RFC 7541 C.4.1–C.4.3: Huffman-coded requests sharing a dynamic table.
      Buffer.from('11828684418cf1e3c2e5f23a6ba0ab90f4ff828684be5886a8eb10649cbf', 'hex'),
      // C.6.1: a response with Huffman literals and incremental indexing.
      Buffer.from('00488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3', 'hex'),
    ];
  },
  run(data) {
    const d = new HpackDecoder(4096, MAX_LIST_BYTES);
    const cut = data.length > 1 ? 1 + (data[0]! % (data.length - 1)) : data.length;
    try {
      for (const block of [data.subarray(1, cut), data.subarray(cut)]) {
        let bytes = 0;
        for (const [name, value] of d.decode(block)) bytes += name.length + value.length + 32;
        if (bytes > MAX_LIST_BYTES) throw new FuzzFinding(`decoded a header list of ${bytes} bytes past the limit of ${MAX_LIST_BYTES}`);
      }
    } catch (err) {
      expected(err, HpackError);
    }
  },
};

const inferMethod = () => protos().inference.GRPCInferenceService.service.ModelInfer;

function inferSeeds(): Buffer[] {
  const serialize = (r: ModelInferRequest) => inferMethod().requestSerialize(r);
  const f32 = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
  return [
    serialize({ model_name: 'add_sub', model_version: '1', id: 'a', inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 4] },
    ], outputs: [{ name: 'OUTPUT0' }], raw_input_contents: [f32, f32] }),
    serialize({ model_name: 'add_sub', inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
      { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [5, 6, 7, 8] } },
    ], parameters: { priority: { int64_param: 1 } } }),
    serialize({ model_name: 'strings', inputs: [{ name: 'TEXT', datatype: 'BYTES', shape: [1, 3], contents: { bytes_contents: [Buffer.from('a'), Buffer.alloc(0), Buffer.from('héllo')] } }],
      outputs: [{ name: 'OUT', parameters: { classification: { int64_param: 2 } } }] }),
  ];
}

const peek: FuzzTarget = {
  name: 'request-peek',
  doc: 'the router\'s ModelInferRequest peek (services/router/request-peek.ts): model name and version from the top-level fields',
  seeds: () => [
    ...inferSeeds(),
    // model_name again under tag 10 written in 10 bytes (protobufjs reads 5 and steps over 5), and
    // an input whose tag takes 5 bytes: long varints for the fuzzer to change.
    Buffer.concat([inferSeeds()[0]!, Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01, 0x62])]),
    Buffer.concat([inferSeeds()[0]!, Buffer.from([0xaa, 0x80, 0x80, 0x80, 0x00, 0x03, 0x0a, 0x01, 0x49])]),
  ],
  run(data) {
    let peeked: { model: string; version: string; id: string };
    try {
      peeked = peekRequest(data, true);
      // U+FFFD is what a lenient decode of invalid UTF-8 leaves: protobuf strings must be UTF-8.
      if (`${peeked.model}${peeked.version}${peeked.id}`.includes('\uFFFD')) throw new FuzzFinding('a name that is not UTF-8 was read leniently, not refused');
    } catch (err) {
      expected(err, MeshError);
      return;
    }
    // What the pod decodes when its scan lets it: the model the router checked and routed by.
    try {
      scanModelInferRequest(data, LIMITS);
    } catch (err) {
      expected(err, MeshError);
      return;
    }
    let req: ModelInferRequestOut;
    try {
      req = inferMethod().requestDeserialize(data) as ModelInferRequestOut;
    } catch {
      return; // protobufjs refuses it: the pod answers INVALID_ARGUMENT
    }
    if (req.model_name !== peeked.model || req.model_version !== peeked.version) {
      throw new FuzzFinding(`the router routes by ${JSON.stringify([peeked.model, peeked.version])}, the pod decodes ${JSON.stringify([req.model_name, req.model_version])}`);
    }
  },
};

const LIMITS: RequestScanLimits = { maxTensors: 64, maxParameters: 64, maxRank: 8, maxBytesElements: 4096, maxElements: 1 << 16 };
const SIGNATURE: Signature = {
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [-1, 4] },
    { name: 'TEXT', datatype: 'BYTES', shape: [-1, -1] },
  ],
  outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] }, { name: 'OUT', datatype: 'FP32', shape: [-1, 3] }],
};
const MAX_ELEMENTS = 1 << 16;

const modelInfer: FuzzTarget = {
  name: 'model-infer',
  doc: 'the pod\'s ModelInferRequest pre-scan, protobuf decode and validation (request-scan.ts, request-codec.ts, lib/tensor.ts)',
  seeds: inferSeeds,
  run(data) {
    try {
      const req = scanAndDecode(data, LIMITS, (b) => inferMethod().requestDeserialize(b) as ModelInferRequestOut);
      for (const rows of [0, 64]) {
        const decoded = decodeRequest(req, SIGNATURE, { maxTensorElements: MAX_ELEMENTS, maxBytesElements: LIMITS.maxBytesElements, maxClassificationResults: 1 << 16 }, rows);
        for (const [name, t] of Object.entries(decoded.feeds)) {
          if (t.data.length > MAX_ELEMENTS) throw new FuzzFinding(`tensor ${name} decoded ${t.data.length} elements past the limit`);
        }
      }
    } catch (err) {
      expected(err, MeshError);
    }
  },
};

let onnxFile: string | undefined;
const onnx: FuzzTarget = {
  name: 'onnx',
  doc: 'the ONNX signature reader (lib/onnx.ts), on a file as the registry reads a pushed artifact',
  seeds() {
    const dir = path.resolve(__dirname, '..', 'models', 'fixtures');
    const small = ['identity_fp32.onnx', 'identity_bytes.onnx', 'add_sub_fp16.onnx', 'fails.onnx', 'flatten_mlp_fp32.onnx'];
    return small.filter((f) => fs.existsSync(path.join(dir, f))).map((f) => fs.readFileSync(path.join(dir, f)));
  },
  async run(data) {
    onnxFile ??= path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-fuzz-onnx-')), 'model.onnx');
    fs.writeFileSync(onnxFile, data);
    try {
      const sig = await readOnnxSignature(onnxFile);
      for (const t of [...sig.inputs, ...sig.outputs]) {
        if (Buffer.byteLength(t.name) > data.length) throw new FuzzFinding('a tensor name longer than the file');
      }
    } catch (err) {
      expected(err, OnnxFormatError);
    }
  },
};

/** A socket for an H2Connection that keeps nothing: what the connection writes is counted, never read. */
class NullSocket extends EventEmitter {
  writableLength = 0;
  written = 0;
  setNoDelay(): this { return this; }
  cork(): void {}
  uncork(): void {}
  pause(): this { return this; }
  resume(): this { return this; }
  write(b: Uint8Array): boolean {
    this.written += b.length;
    return true;
  }
  end(): this { return this; }
  destroy(): this {
    this.emit('close');
    return this;
  }
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A frame as a client writes it. */
function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  frames.writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, 9);
  return out;
}

/** A door's answer to every stream: reads the body (reserving some of it, as the door reads a message whole), answers, ends. */
function answer(stream: H2Stream, _headers: Header[], endStream: boolean): void {
  stream.manualFlowControl = true;
  stream.reserveRequestBytes(64);
  stream.onData = (chunk, end) => {
    stream.consume(chunk.length);
    if (end && stream.mayQueue(3)) stream.end([['grpc-status', '0']], Buffer.from('abc'));
  };
  stream.sendHeaders([[':status', '200'], ['content-type', 'application/grpc']]);
  if (endStream) stream.end([['grpc-status', '0']], Buffer.from('abc'));
}

const h2Frames: FuzzTarget = {
  name: 'h2-frames',
  doc: 'HTTP/2 framing (lib/h2/frames.ts) and a door\'s session on it (lib/h2/connection.ts): a client\'s bytes after the preface',
  seeds() {
    const block = encodeHeaders([
      [':method', 'POST'], [':scheme', 'http'], [':path', '/inference.GRPCInferenceService/ModelInfer'],
      [':authority', 'router:8001'], ['content-type', 'application/grpc'], ['te', 'trailers'], ['grpc-timeout', '5S'],
    ]);
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(frames.SETTINGS_INITIAL_WINDOW_SIZE, 0);
    settings.writeUInt32BE(1 << 20, 2);
    settings.writeUInt16BE(frames.SETTINGS_MAX_FRAME_SIZE, 6);
    settings.writeUInt32BE(1 << 15, 8);
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const message = Buffer.concat([Buffer.from([0, 0, 0, 0, 6]), Buffer.from('abcdef')]);
    const start = h2Frame(frames.SETTINGS, 0, 0, settings);
    return [
      // A call: HEADERS, DATA with END_STREAM, the ACK of the door's SETTINGS, a window.
      Buffer.concat([start, h2Frame(frames.SETTINGS, frames.FLAG_ACK, 0), h2Frame(frames.HEADERS, frames.FLAG_END_HEADERS, 1, block),
        h2Frame(frames.DATA, frames.FLAG_END_STREAM, 1, message), h2Frame(frames.WINDOW_UPDATE, 0, 0, u32(1 << 20))]),
      // A block in HEADERS (padded, with priority) and CONTINUATION, padded DATA, trailers.
      Buffer.concat([start, h2Frame(frames.HEADERS, frames.FLAG_PADDED | frames.FLAG_PRIORITY, 3,
        Buffer.concat([Buffer.from([4]), u32(0), Buffer.from([15]), block.subarray(0, 10), Buffer.alloc(4)])),
        h2Frame(frames.CONTINUATION, frames.FLAG_END_HEADERS, 3, block.subarray(10)),
        h2Frame(frames.DATA, frames.FLAG_PADDED, 3, Buffer.concat([Buffer.from([2]), message, Buffer.alloc(2)])),
        h2Frame(frames.HEADERS, frames.FLAG_END_HEADERS | frames.FLAG_END_STREAM, 3, encodeHeaders([['x-trailer', '1']]))]),
      // Control frames: PING, PRIORITY, RST_STREAM of an open stream, GOAWAY.
      Buffer.concat([start, h2Frame(frames.PING, 0, 0, Buffer.alloc(8, 7)), h2Frame(frames.HEADERS, frames.FLAG_END_HEADERS, 5, block),
        h2Frame(frames.PRIORITY, 0, 7, Buffer.concat([u32(5), Buffer.from([3])])), h2Frame(frames.RST_STREAM, 0, 5, u32(8)),
        h2Frame(frames.GOAWAY, 0, 0, Buffer.concat([u32(0), u32(0), Buffer.from('bye')]))]),
    ];
  },
  async run(data) {
    // The framing alone: every frame is sized, checked, and its content found within it.
    for (let p = 0; ;) {
      const size = frames.frameSizeAt(data, p, frames.DEFAULT_MAX_FRAME_BYTES);
      if (size <= 0) break;
      const type = frames.frameType(data, p);
      const flags = frames.frameFlags(data, p);
      const payload = data.subarray(p + 9, p + size);
      if (payload.length !== size - 9) throw new FuzzFinding('a frame larger than its input');
      if (frames.frameError(type, flags, frames.frameStreamId(data, p), payload) === frames.FRAME_OK && (type === frames.DATA || type === frames.HEADERS)) {
        const start = frames.contentStart(type, flags);
        const end = frames.contentEnd(flags, payload);
        if (start > end || end > payload.length) throw new FuzzFinding(`content [${start}, ${end}) outside a payload of ${payload.length} octets`);
      }
      p += size;
    }
    // The session: the same bytes after the preface, in two reads (a frame may span them).
    const socket = new NullSocket();
    const conn = new H2Connection(socket as unknown as net.Socket, 'server', answer, { keepaliveIntervalMs: 0, maxRequestBytesPerConnection: 1 << 16 });
    const input = Buffer.concat([H2_PREFACE, data]);
    const cut = data.length > 0 ? 1 + (data[0]! % input.length) : input.length;
    conn.receive(input.subarray(0, cut));
    conn.receive(input.subarray(cut));
    conn.tick(Date.now());
    // Its output is written on the next tick: let it go (and the connection with it, once ended).
    await new Promise((resolve) => setImmediate(resolve));
    if (conn.goawaySent === frames.H2_INTERNAL_ERROR) throw new FuzzFinding('the session threw where it must refuse (GOAWAY INTERNAL_ERROR)');
    if (conn.requestBytes < 0 || conn.responseBytes < 0) throw new FuzzFinding(`negative bytes held: ${conn.requestBytes} request, ${conn.responseBytes} answer`);
    if (conn.requestBytes > (1 << 16) + frames.DEFAULT_MAX_FRAME_BYTES * 2) throw new FuzzFinding(`${conn.requestBytes} request bytes held past the budget`);
    conn.destroy();
    // The socket's end, also for a connection that failed (its own end waits for the peer's).
    socket.destroy();
    if (conn.requestBytes !== 0 || conn.responseBytes !== 0 || conn.requestDoor.used !== 0 || conn.responseDoor.used !== 0) {
      throw new FuzzFinding(`bytes still counted after the end: ${conn.requestBytes} request, ${conn.responseBytes} answer`);
    }
  },
};

const REST_LIMITS = { maxTensors: 16, maxParameters: 16, maxRank: 8, maxElements: 1 << 16 };

const restInfer: FuzzTarget = {
  name: 'rest-infer',
  doc: 'REST inference body (lib/rest/infer-codec.ts): JSON, or JSON and binary data split by the first byte as Inference-Header-Content-Length',
  seeds() {
    const json = (o: unknown) => Buffer.concat([Buffer.from([0]), Buffer.from(JSON.stringify(o))]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'X', datatype: 'INT32', shape: [1, 2], parameters: { binary_data_size: 8 } }], outputs: [{ name: 'Y', parameters: { binary_data: true } }] }));
    return [
      json({ id: 'a', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2.5, 'NaN', -3] }], parameters: { binary_data_output: true, x: 1 } }),
      json({ inputs: [{ name: 'B', datatype: 'BYTES', shape: [2], data: ['x', 'é'] }, { name: 'C', datatype: 'BOOL', shape: [2, 1], data: [[true], [false]] }] }),
      json({ inputs: [{ name: 'I', datatype: 'INT64', shape: [], data: 9007199254740991 }, { name: 'H', datatype: 'FP16', shape: [1], data: [65504] }] }),
      Buffer.concat([Buffer.from([header.length]), header, Buffer.alloc(8, 1)]),
    ];
  },
  run(data) {
    // First byte 0: JSON alone; else its value is the JSON part's length (cut to what there is).
    const body = data.subarray(1);
    const headerLength = data.length === 0 || data[0] === 0 ? undefined : Math.min(data[0]!, body.length);
    let parsed;
    try {
      parsed = parseInferRequest('m', '', body, headerLength, REST_LIMITS);
    } catch (err) {
      expected(err, MeshError);
      return;
    }
    const raws = parsed.request.raw_input_contents as Buffer[];
    if (raws.length !== parsed.request.inputs!.length) throw new FuzzFinding('an input without its raw contents');
    const total = raws.reduce((n, r) => n + r.length, 0);
    // Raw bytes come from the body: its binary part as it is, and JSON elements at most 8 bytes each
    // (a BYTES element: its length prefix and at most 3 bytes of UTF-8 for each JSON character).
    if (total > 8 * body.length + 64) throw new FuzzFinding(`${total} raw bytes from a ${body.length}-byte body`);
    protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize(parsed.request);
  },
};

const grpcFraming: FuzzTarget = {
  name: 'grpc-framing',
  doc: 'gRPC message framing of an upload (lib/h2/grpc.ts MessageFraming): fed in pieces cut where the input says, it must find the message cut short exactly where a walk of the whole upload does',
  seeds() {
    const message = (n: number, flag = 0) => {
      const head = Buffer.alloc(5);
      head[0] = flag;
      head.writeUInt32BE(n, 1);
      return Buffer.concat([head, Buffer.alloc(n, 0xab)]);
    };
    // The first octet says where to cut the rest into pieces.
    return [
      Buffer.concat([Buffer.from([3]), message(10), message(0), message(7, 1)]),
      Buffer.concat([Buffer.from([1]), message(300).subarray(0, 200)]),
      Buffer.concat([Buffer.from([0]), message(2), Buffer.from([0, 0, 1])]),
    ];
  },
  run(data) {
    if (data.length === 0) return;
    const step = 1 + (data[0]! % 64);
    const upload = data.subarray(1);
    const framing = new MessageFraming();
    for (let off = 0; off < upload.length; off += step) framing.feed(upload.subarray(off, off + step));
    // The walk of the whole: prefix by prefix, as gRPC frames messages.
    let off = 0;
    let want: string | undefined;
    while (off < upload.length) {
      if (upload.length - off < 5) {
        want = cutShort(undefined, upload.length - off);
        break;
      }
      const length = upload.readUInt32BE(off + 1);
      if (upload.length - off - 5 < length) {
        want = cutShort(length, upload.length - off - 5);
        break;
      }
      off += 5 + length;
    }
    const got = framing.cutShort();
    if (got !== want) throw new FuzzFinding(`fed in pieces of ${step}: ${String(got)}, where the whole says ${String(want)}`);
  },
};

/** One pod's key for the signed-heartbeat target, made once per process: its seeds and runs check against it. */
let heartbeatKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;
const podKey = () => (heartbeatKey ??= generateKeyPairSync('ec', { namedCurve: 'P-256' }));

/** What a heartbeat says, its signature aside: what the pod signed. */
const unsignedPart = (hb: Heartbeat) => canonicalJson({ ...hb, sig: undefined });

const signedHeartbeat: FuzzTarget = {
  name: 'signed-heartbeat',
  doc: 'a heartbeat from NATS (lib/events.ts decodeHeartbeat) and its signature check (lib/heartbeat-signatures.ts): nothing but SchemaError thrown, and nothing taken that the pod did not sign',
  seeds() {
    return (heartbeatSeeds ??= signedSeeds()).map((b) => Buffer.from(b));
  },
  run(data) {
    const signed = new Set((heartbeatSeeds ??= signedSeeds()).map((b) => unsignedPart(decodeHeartbeat(b))));
    let hb: Heartbeat;
    try {
      hb = decodeHeartbeat(data);
    } catch (err) {
      expected(err, SchemaError);
      return;
    }
    const view = new HeartbeatSignatures<object>({ heartbeatVerifiesPerSecond: 1_000, identityRetryMs: 60_000 }, new ClaimWarnings(silentLogger, 60_000), () => undefined);
    const pod = {};
    view.learn(pod, podKey().publicKey);
    if (view.admits(pod, hb) && !signed.has(unsignedPart(hb))) throw new FuzzFinding(`took a heartbeat the pod did not sign: ${unsignedPart(hb).slice(0, 300)}`);
  },
};

/** The signed-heartbeat target's seeds, signed once per process (each signing numbers and signs anew). */
let heartbeatSeeds: Buffer[] | undefined;

function signedSeeds(): Buffer[] {
  const signer = new HeartbeatSigner(() => Buffer.from(podKey().privateKey.export({ type: 'pkcs8', format: 'pem' }) as string));
  const hb: Heartbeat = { schema: SCHEMA_VERSION, pod: 'pod-a', address: '10.0.0.1:8001', state: 'serving', inflight: 2, time: '2026-01-01T00:00:00.000Z',
    models: [{ name: 'mnist', version: 1, state: 'READY', provider: 'cpu', requests: 5, memoryBytes: 1024 }, { name: 'bad', version: 2, state: 'UNAVAILABLE', provider: '', reason: 'no' }],
    memory: { budgetBytes: 1 << 30, usedBytes: 1024, rssBytes: 1 << 26 } };
  return [hb, { ...hb, state: 'stopped' as const, models: [] }, { ...hb, identity: 'inference' }].map((h) => Buffer.from(encodeHeartbeat(signer.sign(h))));
}

/** Every target, by name. */
export const TARGETS: readonly FuzzTarget[] = [hpack, peek, modelInfer, onnx, h2Frames, restInfer, grpcFraming, signedHeartbeat];

/** The folder of a target's kept regression cases (inputs that once were findings). */
export function regressionDir(root: string, target: string): string {
  return path.join(root, 'test', 'fixtures', 'fuzz', target);
}
