// The fuzz targets: each parser of network or file bytes, with the only errors it may throw and the
// bounds its output must keep. A target throws FuzzFinding (or anything unexpected) on a finding.
// `npm run fuzz` runs them for long; test/unit/fuzz/fuzz-targets.test.ts runs a fixed budget and
// every kept regression case in npm test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MeshError } from '../lib/errors';
import { HpackDecoder, HpackError, encodeHeaders, type Header } from '../lib/h2/hpack';
import { protos } from '../lib/grpc/proto';
import type { ModelInferRequest, ModelInferRequestOut } from '../lib/grpc/types';
import { OnnxFormatError, readOnnxSignature } from '../lib/onnx';
import { peekRequest } from '../services/router/request-peek';
import { scanAndDecode, type RequestScanLimits } from '../lib/grpc/request-scan';
import { decodeRequest, type Signature } from '../services/inference/request-codec';

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
  seeds: inferSeeds,
  run(data) {
    try {
      const { model, version } = peekRequest(data);
      // U+FFFD is what a lenient decode of invalid UTF-8 leaves: protobuf strings must be UTF-8.
      if (`${model}${version}`.includes('\uFFFD')) throw new FuzzFinding('a name that is not UTF-8 was read leniently, not refused');
    } catch (err) {
      expected(err, MeshError);
    }
  },
};

const LIMITS: RequestScanLimits = { maxTensors: 64, maxParameters: 64, maxRank: 8, maxBytesElements: 4096 };
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
        const decoded = decodeRequest(req, SIGNATURE, { maxTensorElements: MAX_ELEMENTS, maxBytesElements: LIMITS.maxBytesElements }, rows);
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
    const small = ['identity_fp32.onnx', 'identity_bytes.onnx', 'add_sub_fp16.onnx', 'fails.onnx'];
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

/** Every target, by name. */
export const TARGETS: readonly FuzzTarget[] = [hpack, peek, modelInfer, onnx];

/** The folder of a target's kept regression cases (inputs that once were findings). */
export function regressionDir(root: string, target: string): string {
  return path.join(root, 'test', 'fixtures', 'fuzz', target);
}
