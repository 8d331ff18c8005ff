// The scan before protobufjs: counts what decoding would build, refuses malformed bytes and
// requests over the limits with INVALID_ARGUMENT, and never throws anything but a MeshError.
import fc from 'fast-check';
import { status } from '@grpc/grpc-js';
import { MeshError, toGrpcStatus } from '../../../../lib/errors';
import { protos } from '../../../../lib/grpc/proto';
import type { ModelInferRequest } from '../../../../lib/grpc/types';
import { scanAndDecode, scanModelInferRequest, type RequestScanLimits } from '../../../../lib/grpc/request-scan';
import { peekRequest } from '../../../../services/router/request-peek';
import { varint } from '../../../helpers/protobuf';

const LIMITS: RequestScanLimits = { maxTensors: 4, maxParameters: 5, maxRank: 3, maxBytesElements: 6, maxElements: 16 };
const method = protos().inference.GRPCInferenceService.service.ModelInfer;
const encode = (req: ModelInferRequest): Buffer => method.requestSerialize(req);
const int64 = { int64_param: 2 };

const valid = (): ModelInferRequest => ({
  model_name: 'm', model_version: '1', id: 'x',
  parameters: { a: { bool_param: true } },
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [2, 4], parameters: { b: int64 }, contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7, 8] } },
    { name: 'S', datatype: 'BYTES', shape: [3], contents: { bytes_contents: [Buffer.from('a'), Buffer.alloc(0), Buffer.from('c')] } },
  ],
  outputs: [{ name: 'OUTPUT0', parameters: { classification: int64 } }],
  raw_input_contents: [],
});

/** The MeshError `f` throws. */
function refusal(f: () => unknown): MeshError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    return err as MeshError;
  }
  throw new Error('not refused');
}

const scan = (bytes: Uint8Array, limits = LIMITS) => scanModelInferRequest(bytes, limits);


describe('scanModelInferRequest', () => {
  it('counts tensors, parameters and BYTES elements without decoding', () => {
    expect(scan(encode(valid()))).toEqual({ inputs: 2, outputs: 1, rawContents: 0, parameters: 3, bytesElements: 3, elements: 11 });
    expect(scan(encode({ ...valid(), inputs: [{ name: 'A', shape: [1] }, { name: 'B', shape: [1] }], raw_input_contents: [Buffer.alloc(4), Buffer.alloc(0)] })).rawContents).toBe(2);
    expect(scan(Buffer.alloc(0))).toEqual({ inputs: 0, outputs: 0, rawContents: 0, parameters: 0, bytesElements: 0, elements: 0 });
  });

  it.each([
    ['inputs', (r: ModelInferRequest) => ({ ...r, inputs: Array.from({ length: 5 }, (_, i) => ({ name: `I${i}` })) }), 'request has more than the limit of 4 inputs'],
    ['outputs', (r: ModelInferRequest) => ({ ...r, outputs: Array.from({ length: 5 }, (_, i) => ({ name: `O${i}` })) }), 'request has more than the limit of 4 outputs'],
    ['raw contents', (r: ModelInferRequest) => ({ ...r, raw_input_contents: Array.from({ length: 5 }, () => Buffer.alloc(1)) }), 'request has more than the limit of 4 raw_input_contents'],
    ['parameters, request and tensors together', (r: ModelInferRequest) => ({ ...r, parameters: { w: int64, x: int64, y: int64, z: int64 } }), 'request has more than the limit of 5 parameters'],
    ['dimensions', (r: ModelInferRequest) => ({ ...r, inputs: [{ name: 'INPUT0', shape: [1, 1, 1, 1] }] }), "tensor 'INPUT0': shape has more than the limit of 3 dimensions"],
    ['BYTES elements', (r: ModelInferRequest) => ({ ...r, inputs: [{ name: 'S', contents: { bytes_contents: Array.from({ length: 7 }, () => Buffer.alloc(0)) } }] }), "tensor 'S': the request's BYTES elements pass the limit of 6"],
    ['typed-contents elements, all inputs together', (r: ModelInferRequest) => ({ ...r, inputs: [...(r.inputs ?? []), { name: 'I', contents: { int64_contents: [1, 2, 3, 4, 5, 6] } }] }), "tensor 'I': the request's typed contents pass the limit of 16 elements (send large tensors in raw_input_contents)"],
  ])('refuses more %s than the limits allow', (_name, change, message) => {
    const err = refusal(() => scan(encode(change(valid()))));
    expect(toGrpcStatus(err)).toEqual({ code: status.INVALID_ARGUMENT, details: message });
  });

  it('counts unpacked shapes and typed contents as protobufjs reads them', () => {
    // inputs { name "A" shape 1 shape 2 shape 3 shape 4 } written unpacked (wire type 0).
    const input = Buffer.from([0x0a, 0x01, 0x41, 0x18, 1, 0x18, 2, 0x18, 3, 0x18, 4]);
    expect(refusal(() => scan(Buffer.concat([Buffer.from([0x2a, input.length]), input]))).message).toBe("tensor 'A': shape has more than the limit of 3 dimensions");
    expect(scan(Buffer.concat([Buffer.from([0x2a, input.length - 2]), input.subarray(0, -2)])).inputs).toBe(1);
    // contents { fp32_contents 1.0 (unpacked, wire type 5) }
    const contents = Buffer.from([0x35, 0, 0, 0x80, 0x3f]);
    expect(scan(Buffer.from([0x2a, contents.length + 2, 0x2a, contents.length, ...contents])).inputs).toBe(1);
  });

  /** One input named I whose contents are `contents` (encoded InferTensorContents fields). */
  const withContents = (contents: number[] | Buffer) => {
    const c = Buffer.from(contents);
    const input = Buffer.concat([Buffer.from([0x0a, 0x01, 0x49, 0x2a]), varint(c.length), c]);
    return Buffer.concat([Buffer.from([0x2a]), varint(input.length), input]);
  };
  const elements = (contents: number[] | Buffer, limits = { ...LIMITS, maxElements: 1000 }) => scan(withContents(contents), limits).elements;

  it.each([
    // field, wire type 0 or 5 or 1 (one element), then the same field packed.
    ['bool_contents', 1], ['int_contents', 2], ['int64_contents', 3], ['uint_contents', 4], ['uint64_contents', 5],
  ])('counts every element of %s, packed varints by their last bytes and unpacked entries one each', (_name, field) => {
    // Packed: 0, 1, 300 (2 bytes), 2^63 (10 bytes; for a bool, 1 in 10 bytes): four varints in 14 bytes.
    const ten = field === 1 ? [0x81, ...Array(8).fill(0x80), 0x00] : [...Array(9).fill(0x80), 0x01];
    const packed = [field * 8 + 2, 14, 0x00, 0x01, 0xac, 0x02, ...ten];
    expect(elements(packed)).toBe(4);
    expect(elements([field * 8, 0x00, field * 8, 0xac, 0x02, ...packed])).toBe(6);
    expect(elements([field * 8 + 2, 0])).toBe(0);
    expect(refusal(() => scan(withContents([field * 8 + 2, 2, 0x01, 0x80]))).message).toBe('malformed request: truncated varint in a packed field');
  });

  it('counts fp32 and fp64 contents as their bytes / 4 and / 8, and refuses a packed field of partial values', () => {
    expect(elements([0x32, 12, ...Array(12).fill(0)])).toBe(3);
    expect(elements([0x35, 0, 0, 0x80, 0x3f, 0x35, 0, 0, 0, 0])).toBe(2);
    expect(elements([0x3a, 16, ...Array(16).fill(0), 0x39, ...Array(8).fill(0)])).toBe(3);
    expect(refusal(() => scan(withContents([0x32, 6, ...Array(6).fill(0)]))).message).toBe('malformed request: inputs[0] contents field 6 has 6 bytes, not a multiple of 4');
    expect(refusal(() => scan(withContents([0x3a, 12, ...Array(12).fill(0)]))).message).toBe('malformed request: inputs[0] contents field 7 has 12 bytes, not a multiple of 8');
    // Fields InferTensorContents does not have: protobufjs skips them, keeping nothing.
    expect(elements([0x48, 0x01, 0x52, 3, 1, 2, 3])).toBe(0);
  });

  it('counts what protobufjs decodes, for every typed contents field, packed as protobufjs writes them', () => {
    const fields = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'] as const;
    const arb = fc.array(fc.record({ field: fc.constantFrom(...fields), values: fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { maxLength: 40 }) }), { maxLength: 3 });
    fc.assert(fc.property(arb, (ins) => {
      const req: ModelInferRequest = {
        inputs: ins.map((i, k) => ({
          name: `I${k}`,
          contents: { [i.field]: i.field === 'bytes_contents' ? i.values.map(() => Buffer.alloc(1)) : i.field === 'bool_contents' ? i.values.map((v) => v % 2 === 1) : i.values },
        })),
      };
      const bytes = encode(req);
      const decoded = method.requestDeserialize(bytes);
      const expected = decoded.inputs.reduce((n, i) => n + fields.reduce((m, f) => m + (i.contents?.[f]?.length ?? 0), 0), 0);
      expect(scan(bytes, { ...LIMITS, maxBytesElements: 1000, maxElements: 1000 }).elements).toBe(expected);
    }), { seed: 45, numRuns: 500 });
  });

  it('refuses 66 million packed int64 zeros (66 MB) by counting them, not decoding them', () => {
    const n = 66_000_000;
    const huge = Buffer.alloc(n + 20);
    let at = 0;
    const put = (b: Buffer) => { b.copy(huge, at); at += b.length; };
    const contents = Buffer.concat([Buffer.from([0x1a]), varint(n)]);
    const input = Buffer.concat([Buffer.from([0x0a, 0x01, 0x49, 0x2a]), varint(contents.length + n)]);
    put(Buffer.concat([Buffer.from([0x2a]), varint(input.length + contents.length + n)]));
    put(input);
    put(contents);
    const bytes = huge.subarray(0, at + n);
    expect(refusal(() => scan(bytes, { ...LIMITS, maxElements: 4 * 1024 * 1024 })).message).toBe("tensor 'I': the request's typed contents pass the limit of 4194304 elements (send large tensors in raw_input_contents)");
  });

  it('refuses 33 million empty inputs (66 MB) after counting past the limit, not decoding them', () => {
    const huge = Buffer.alloc(66_000_000);
    for (let i = 0; i < huge.length; i += 2) huge[i] = 0x2a; // field 5, length 0
    expect(refusal(() => scan(huge, { ...LIMITS, maxTensors: 1024 })).message).toBe('request has more than the limit of 1024 inputs');
  });

  it.each([
    ['a truncated varint', [0x08 | 0x80]],
    ['a varint longer than 10 bytes', [0x08, ...Array(10).fill(0xff), 0x01]],
    ['a length past the end', [0x0a, 0x05, 0x61]],
    ['a length past the end of a nested message', [0x2a, 0x03, 0x0a, 0x05, 0x61]],
    ['a fixed64 past the end', [0x09, 1, 2, 3]],
    ['a fixed32 past the end', [0x7d, 1, 2]],
    ['wire type 3 (groups)', [0x0b]],
    ['wire type 7', [0x7f, 0x01]],
    ['field number 0', [0x02, 0x00]],
    ['inputs with wire type 0', [0x28, 0x01]],
    ['raw_input_contents with wire type 5', [0x3d, 0, 0, 0, 0]],
    ['a model name with wire type 1', [0x09, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['a shape with wire type 5', [0x2a, 0x05, 0x1d, 0, 0, 0, 0]],
    ['a packed shape ending inside a varint', [0x2a, 0x04, 0x1a, 0x02, 0x01, 0x80]],
    ['bytes_contents with wire type 0', [0x2a, 0x04, 0x2a, 0x02, 0x40, 0x01]],
    ['fp64_contents with wire type 5', [0x2a, 0x07, 0x2a, 0x05, 0x3d, 0, 0, 0, 0]],
    ['an output with a name of wire type 0', [0x32, 0x02, 0x08, 0x01]],
    // What protobufjs reads otherwise than protobuf (it keeps the last where protobuf merges, or
    // answers a oneof by field order), or cannot take (an entry whose value is null).
    ['an input with contents twice', [0x2a, 0x04, 0x2a, 0x00, 0x2a, 0x00]],
    ['a parameter entry with no value', [0x22, 0x03, 0x0a, 0x01, 0x61]],
    ['a parameter entry with its value twice', [0x22, 0x08, 0x12, 0x02, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01]],
    ['a parameter value with two of its choices', [...Buffer.from('220a0a016112051a01780801', 'hex')]],
  ])('refuses %s as malformed', (_name, bytes) => {
    const err = refusal(() => scan(Buffer.from(bytes)));
    expect(toGrpcStatus(err).code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/^malformed request: /);
  });

  it('throws nothing but MeshError, whatever the bytes', () => {
    const check = (bytes: Uint8Array) => {
      try {
        scan(bytes);
      } catch (err) {
        if (!(err instanceof MeshError) || toGrpcStatus(err).code !== status.INVALID_ARGUMENT) throw err;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { seed: 42, numRuns: 20_000 });
    // Valid requests with bytes changed, cut or inserted: close to what the scanner reads.
    const base = encode(valid());
    fc.assert(fc.property(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: base.length }), fc.boolean(), (at, value, cut, insert) => {
      const b = Buffer.from(base);
      b[at] = value;
      check(insert ? Buffer.concat([b.subarray(0, at), Buffer.of(value), b.subarray(at)]) : b.subarray(0, cut));
    }), { seed: 43, numRuns: 20_000 });
  });

  it('counts exactly what a valid request holds', () => {
    const tensorName = fc.string({ minLength: 1, maxLength: 4 });
    const param = fc.dictionary(fc.string({ maxLength: 3 }), fc.constant({ bool_param: true }), { maxKeys: 2 });
    const arb = fc.record({
      parameters: param,
      inputs: fc.array(fc.record({ name: tensorName, shape: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 3 }), parameters: param, bytes: fc.nat({ max: 2 }) }), { maxLength: 4 }),
      outputs: fc.array(fc.record({ name: tensorName, parameters: param }), { maxLength: 4 }),
      raw: fc.nat({ max: 4 }),
    });
    fc.assert(fc.property(arb, (r) => {
      const req: ModelInferRequest = {
        model_name: 'm',
        parameters: r.parameters,
        inputs: r.inputs.map((i) => ({ name: i.name, shape: i.shape, parameters: i.parameters, contents: { bytes_contents: Array.from({ length: i.bytes }, () => Buffer.from('x')) } })),
        outputs: r.outputs,
        raw_input_contents: Array.from({ length: r.raw }, () => Buffer.alloc(2)),
      };
      const params = Object.keys(r.parameters).length + r.inputs.reduce((n, i) => n + Object.keys(i.parameters).length, 0) + r.outputs.reduce((n, o) => n + Object.keys(o.parameters).length, 0);
      const limits = { maxTensors: 4, maxParameters: 100, maxRank: 3, maxBytesElements: 100, maxElements: 100 };
      const bytesElements = r.inputs.reduce((n, i) => n + i.bytes, 0);
      expect(scan(encode(req), limits)).toEqual({
        inputs: r.inputs.length, outputs: r.outputs.length, rawContents: r.raw, parameters: params, bytesElements, elements: bytesElements,
      });
    }), { seed: 44, numRuns: 1000 });
  });
});

describe('the scan and protobufjs read a request alike', () => {
  /** `n` in `bytes` bytes (an over-long varint when more than it needs). */
  const longVarint = (n: number, bytes: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < bytes; i++) {
      out.push((n % 0x80) | (i < bytes - 1 ? 0x80 : 0));
      n = Math.floor(n / 0x80);
    }
    return out;
  };
  const victim = [...Buffer.from('victim')];
  /** Bytes that read one way to a careless reader and another to protobufjs. */
  const tricks: number[][] = [
    [0x8a, 0x80, 0x80, 0x80, 0x10, victim.length, ...victim], // tag 2^32 + 10: field 1 to protobufjs
    [...longVarint(10, 7), victim.length, ...victim], // tag 10 in 7 bytes: protobufjs reads 10
    [...longVarint(10, 10), victim.length, ...victim], // tag 10 in 10 bytes: the same to both
    [0x0a, ...longVarint(victim.length, 6), ...victim, 0, 0, 0, 0], // a length in 6 bytes
    [0x08, victim.length, ...victim], // model_name as a varint: protobufjs reads a string
    [0x22, 0x04, 0x12, 0x02, 0x08, 0x02], // a parameter whose bool_param is 2
    [0x22, 0x09, 0x12, 0x07, 0x0a, 0x05, ...longVarint(1, 5)], // bool_param as a length
    [0x22, 0x0a, 0x12, 0x08, 0x08, ...longVarint(1, 7)], // bool_param in 7 bytes
  ];
  const decode = (b: Buffer) => method.requestDeserialize(b) as ReturnType<typeof method.requestDeserialize> & DecodedShape;
  type DecodedShape = { model_name: string; model_version: string; inputs: { contents?: Record<string, unknown[]> | null }[]; outputs: unknown[]; raw_input_contents: unknown[] };
  const elementsOf = (r: DecodedShape) => r.inputs.reduce((n, i) => n + Object.values(i.contents ?? {}).reduce((m, a) => m + (Array.isArray(a) ? a.length : 0), 0), 0);

  it('finds the same model, version, tensors and elements, or refuses the request', () => {
    const base = encode(valid());
    let agreed = 0;
    fc.assert(fc.property(fc.nat({ max: base.length }), fc.constantFrom(...tricks), fc.nat({ max: 20 }), (at, trick, nested) => {
      // Somewhere at the top level (between fields), or inside the first input (nested > 10).
      const b = nested > 10
        ? (() => {
          const input = Buffer.concat([Buffer.from([0x0a, 0x01, 0x49]), Buffer.from(trick)]);
          return Buffer.concat([base, Buffer.from([0x2a]), varint(input.length), input]);
        })()
        : Buffer.concat([base.subarray(0, at), Buffer.from(trick), base.subarray(at)]);
      let counts;
      try {
        counts = scan(b, { ...LIMITS, maxTensors: 100, maxElements: 1000 });
      } catch (err) {
        expect(err).toBeInstanceOf(MeshError);
        return;
      }
      let req: DecodedShape;
      try {
        req = decode(b);
      } catch {
        return; // protobufjs refuses it: nothing runs
      }
      let routed;
      try {
        routed = peekRequest(b);
      } catch (err) {
        expect((err as Error).message).toBe('malformed request: model_name is not valid UTF-8'); // the router refuses it
        return;
      }
      expect([req.model_name, req.model_version]).toEqual([routed.model, routed.version]);
      expect([req.inputs.length, req.outputs.length, req.raw_input_contents.length, elementsOf(req)]).toEqual([counts.inputs, counts.outputs, counts.rawContents, counts.elements]);
      agreed++;
    }), { seed: 45, numRuns: 3000 });
    expect(agreed).toBeGreaterThan(100);
  });

  it('refuses what protobufjs would read as another model than the router routes by', () => {
    const b = Buffer.concat([encode({ model_name: 'mine' }), Buffer.from(tricks[0]!)]);
    expect((decode(b)).model_name).toBe('victim');
    expect(refusal(() => scanAndDecode(b, LIMITS, method.requestDeserialize)).message).toBe('malformed request: a tag above 32 bits');
  });
});

describe('scanAndDecode', () => {
  it('decodes what the scan passes, and answers what protobufjs refuses INVALID_ARGUMENT', () => {
    expect(scanAndDecode(encode(valid()), LIMITS, method.requestDeserialize).inputs.map((i) => i.name)).toEqual(['INPUT0', 'S']);
    // A parameter entry whose value says it is longer than it is: the scan skips the entry, protobufjs reads it.
    const bad = Buffer.from([0x22, 0x02, 0x12, 0x05]);
    const err = refusal(() => scanAndDecode(bad, LIMITS, method.requestDeserialize));
    expect(toGrpcStatus(err).code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/^malformed request: /);
  });
});
