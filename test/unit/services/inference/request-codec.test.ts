// decodeRequest is the one place a request's rows are decided: inputs of a request to a version
// that batches must agree on them; checks that need no tensor data come before any is decoded.
import { decodeRequest, encodeResponse, type Signature } from '../../../../services/inference/request-codec';
import type { ModelInferRequestOut } from '../../../../lib/grpc/types';
import { ErrorCode, MeshError } from '../../../../lib/errors';

const sig: Signature = {
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }, { name: 'INPUT1', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] }, { name: 'OUTPUT1', datatype: 'FP32', shape: [-1, 4] }],
};
const LIMITS = { maxTensorElements: 1 << 20, maxBytesElements: 8, maxClassificationResults: 4 };

function request(rows0: number, rows1: number, raw: [Buffer, Buffer] = [Buffer.alloc(rows0 * 16), Buffer.alloc(rows1 * 16)]): ModelInferRequestOut {
  return {
    model_name: 'm', model_version: '', id: 'x', parameters: {},
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [String(rows0), '4'], parameters: {}, contents: null },
      { name: 'INPUT1', datatype: 'FP32', shape: [String(rows1), '4'], parameters: {}, contents: null },
    ],
    outputs: [],
    raw_input_contents: raw,
  };
}

const refusal = (f: () => unknown): MeshError => {
  try {
    f();
  } catch (err) {
    return err as MeshError;
  }
  throw new Error('not refused');
};

describe('decodeRequest', () => {
  it('gives the rows every input agrees on, when the version batches', () => {
    expect(decodeRequest(request(3, 3), sig, LIMITS, 8).rows).toBe(3);
    expect(decodeRequest(request(0, 0), sig, LIMITS, 8).rows).toBe(0);
  });

  it.each([[1, 0], [1, 3], [0, 2]])('refuses inputs of %i and %i rows to a version that batches, naming each tensor and its rows', (a, b) => {
    const err = refusal(() => decodeRequest(request(a, b), sig, LIMITS, 8));
    expect(err).toBeInstanceOf(MeshError);
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.message).toBe(`inputs disagree on the batch (first) dimension: 'INPUT0' has ${a}, 'INPUT1' has ${b}`);
  });

  it('leaves the rows to onnxruntime when the version does not batch: the request runs alone', () => {
    const d = decodeRequest(request(1, 3), sig, LIMITS, 0);
    expect(d.rows).toBeNull();
    expect(d.feeds.INPUT1!.dims).toEqual([3, 4]);
  });

  it('refuses a batch above the max batch size, naming the tensor', () => {
    expect(refusal(() => decodeRequest(request(9, 9), sig, LIMITS, 8)).message).toBe("tensor 'INPUT0': batch of 9 exceeds the model's max batch size 8");
  });

  it('decides on rows before decoding any tensor data', () => {
    // INPUT1's bytes are wrong too; the rows are what it is refused for.
    const err = refusal(() => decodeRequest(request(1, 2, [Buffer.alloc(16), Buffer.alloc(3)]), sig, LIMITS, 8));
    expect(err.message).toMatch(/^inputs disagree on the batch/);
  });

  it('bounds the BYTES elements of the whole request before decoding them', () => {
    const bytesSig: Signature = {
      inputs: [{ name: 'A', datatype: 'BYTES', shape: [-1] }, { name: 'B', datatype: 'BYTES', shape: [-1] }],
      outputs: [{ name: 'OUT', datatype: 'BYTES', shape: [-1] }],
    };
    const req = (a: number, b: number): ModelInferRequestOut => ({
      ...request(0, 0),
      inputs: [
        { name: 'A', datatype: 'BYTES', shape: [String(a)], parameters: {}, contents: null },
        { name: 'B', datatype: 'BYTES', shape: [String(b)], parameters: {}, contents: null },
      ],
      raw_input_contents: [Buffer.alloc(a * 4), Buffer.alloc(b * 4)],
    });
    expect(decodeRequest(req(4, 4), bytesSig, LIMITS, 0).feeds.B!.data).toEqual(['', '', '', '']);
    expect(refusal(() => decodeRequest(req(4, 5), bytesSig, LIMITS, 0)).message).toBe("tensor 'B': the request's BYTES elements pass the limit of 8");
  });

  it('answers classifications in place of the outputs that ask for one, per row when the version batches', () => {
    const req: ModelInferRequestOut = {
      ...request(2, 2),
      outputs: [{ name: 'OUTPUT1', parameters: { classification: { int64_param: '2', parameter_choice: 'int64_param' } } }, { name: 'OUTPUT0', parameters: {} }],
    };
    const d = decodeRequest(req, sig, LIMITS, 8);
    expect([...d.classifications]).toEqual([['OUTPUT1', 2]]);
    const results = {
      OUTPUT0: { type: 'float32' as const, dims: [2, 4], data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
      OUTPUT1: { type: 'float32' as const, dims: [2, 4], data: Float32Array.of(0.1, 0.7, 0.2, 0, 3, 2, 1, 4) },
    };
    const res = encodeResponse('m', 1, 'x', d, results, LIMITS);
    expect(res.outputs!.map((o) => [o.name, o.datatype, o.shape])).toEqual([['OUTPUT1', 'BYTES', [2, 2]], ['OUTPUT0', 'FP32', [2, 4]]]);
    const strings = (buf: Buffer) => {
      const out: string[] = [];
      for (let off = 0; off < buf.length; off += 4 + buf.readUInt32LE(off)) out.push(buf.toString('utf8', off + 4, off + 4 + buf.readUInt32LE(off)));
      return out;
    };
    expect(strings(res.raw_output_contents![0] as Buffer)).toEqual(['0.700000:1', '0.200000:2', '4.000000:3', '3.000000:0']);
    // Without batching the whole tensor is one classification.
    const alone = encodeResponse('m', 1, 'x', decodeRequest(req, sig, LIMITS, 0), results, LIMITS);
    expect(alone.outputs![0]!.shape).toEqual([2]);
    expect(strings(alone.raw_output_contents![0] as Buffer)).toEqual(['4.000000:7', '3.000000:4']);
  });
});
