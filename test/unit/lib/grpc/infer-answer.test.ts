// A pod's answers written by hand (lib/grpc/infer-answer.ts), read by protobufjs as a client reads
// them: random answers of every typed datatype (extreme integers, NaN, -0, infinities, any UTF-8)
// and raw outputs decode to exactly their values; the size is known before the answer is built,
// and one byte over the limit is refused; a stream answer wraps the bytes, marked final.
import fc from 'fast-check';
import { encodeInferAnswer, streamAnswerBytes, type AnswerTensor, type InferAnswer } from '../../../../lib/grpc/infer-answer';
import { protos } from '../../../../lib/grpc/proto';
import type { ModelInferResponseOut } from '../../../../lib/grpc/types';
import type { ModelStreamInferResponse__Output } from '../../../../lib/grpc/generated/inference/ModelStreamInferResponse';
import { DATATYPES, type Datatype, type TensorData } from '../../../../lib/tensor';
import { ErrorCode, MeshError } from '../../../../lib/errors';

const service = protos().inference.GRPCInferenceService.service;
const read = (bytes: Buffer) => service.ModelInfer.responseDeserialize(bytes) as ModelInferResponseOut;

/** Arbitrary elements of `dt` as the run's typed array (or strings), and as protobufjs reads them back. */
function elements(dt: Exclude<Datatype, 'FP16'>, n: number): fc.Arbitrary<{ data: TensorData; expected: unknown[] }> {
  const ints = (min: number, max: number, make: (v: number[]) => TensorData) =>
    fc.array(fc.oneof(fc.constantFrom(min, max, 0, -1 < min ? 0 : -1), fc.integer({ min, max })), { minLength: n, maxLength: n }).map((v) => ({ data: make(v), expected: v }));
  const big = (min: bigint, max: bigint, make: (v: bigint[]) => TensorData) =>
    fc.array(fc.oneof(fc.constantFrom(min, max, 0n, 1n, 127n, 128n, 2n ** 32n, 2n ** 53n + 1n), fc.bigInt({ min, max })), { minLength: n, maxLength: n }).map((v) => ({ data: make(v), expected: v.map(String) }));
  const floats = [NaN, -0, 0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38];
  switch (dt) {
    case 'BOOL': return fc.array(fc.boolean(), { minLength: n, maxLength: n }).map((v) => ({ data: Uint8Array.from(v, Number), expected: v }));
    case 'UINT8': return ints(0, 255, (v) => Uint8Array.from(v));
    case 'UINT16': return ints(0, 65535, (v) => Uint16Array.from(v));
    case 'UINT32': return ints(0, 2 ** 32 - 1, (v) => Uint32Array.from(v));
    case 'INT8': return ints(-128, 127, (v) => Int8Array.from(v));
    case 'INT16': return ints(-32768, 32767, (v) => Int16Array.from(v));
    case 'INT32': return ints(-(2 ** 31), 2 ** 31 - 1, (v) => Int32Array.from(v));
    case 'INT64': return big(-(2n ** 63n), 2n ** 63n - 1n, (v) => BigInt64Array.from(v));
    case 'UINT64': return big(0n, 2n ** 64n - 1n, (v) => BigUint64Array.from(v));
    case 'FP32': return fc.array(fc.oneof(fc.constantFrom(...floats), fc.float()), { minLength: n, maxLength: n }).map((v) => {
      const data = Float32Array.from(v);
      return { data, expected: Array.from(data) };
    });
    case 'FP64': return fc.array(fc.oneof(fc.constantFrom(...floats, Number.MAX_VALUE), fc.double()), { minLength: n, maxLength: n }).map((v) => ({ data: Float64Array.from(v), expected: v }));
    case 'BYTES': return fc.array(fc.string({ unit: 'binary', maxLength: 200 }), { minLength: n, maxLength: n }).map((v) => ({ data: v, expected: v }));
  }
}

const TYPED = (Object.keys(DATATYPES) as Datatype[]).filter((d): d is Exclude<Datatype, 'FP16'> => d !== 'FP16');
const name = fc.string({ unit: 'binary', maxLength: 20 });

/** An output with typed contents, and what a client should read of it. */
const typedOutput = fc.record({ dt: fc.constantFrom(...TYPED), shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }), name }).chain(({ dt, shape, name }) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return elements(dt, n).map(({ data, expected }) => ({
    tensor: { name, datatype: dt, shape, contents: { field: DATATYPES[dt].contents!, data } } satisfies AnswerTensor,
    expected,
  }));
});

const answer = fc.record({
  model_name: name, model_version: fc.constantFrom('', '1', '42'), id: name,
  typed: fc.array(typedOutput, { maxLength: 4 }),
  raw: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }),
});

it('writes answers protobufjs reads back exactly, of every typed datatype and raw', () => {
  fc.assert(fc.property(answer, (a) => {
    // An answer is typed or raw: raw outputs carry no contents.
    const raw = a.raw.length > 0;
    const outputs: AnswerTensor[] = raw
      ? a.raw.map((r, i) => ({ name: `r${i}`, datatype: 'UINT8', shape: [r.length] }))
      : a.typed.map((o) => o.tensor);
    const built: InferAnswer = { model_name: a.model_name, model_version: a.model_version, id: a.id, outputs, raw_output_contents: raw ? a.raw.map((r) => Buffer.from(r)) : [] };
    const bytes = encodeInferAnswer(built, 1 << 24);
    const got = read(bytes);
    // Strings as UTF-8 makes them (lone surrogates become U+FFFD, as Buffer.from would).
    const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
    expect([got.model_name, got.model_version, got.id]).toEqual([utf8(a.model_name), a.model_version, utf8(a.id)]);
    expect(got.outputs.map((o) => [o.name, o.datatype, o.shape.map(Number)])).toEqual(outputs.map((o) => [utf8(o.name), o.datatype, [...o.shape]]));
    if (raw) {
      expect(got.raw_output_contents.map((b) => Buffer.from(b).toString('hex'))).toEqual(a.raw.map((r) => Buffer.from(r).toString('hex')));
      expect(got.outputs.every((o) => o.contents === null)).toBe(true);
      return;
    }
    a.typed.forEach((o, i) => {
      const field = DATATYPES[o.tensor.datatype].contents!;
      const values = got.outputs[i]!.contents![field] as unknown[];
      const want = o.tensor.datatype === 'BYTES' ? (o.expected as string[]).map((s) => Buffer.from(s, 'utf8').toString('hex')) : o.expected;
      expect(o.tensor.datatype === 'BYTES' ? (values as Buffer[]).map((b) => b.toString('hex')) : values).toEqual(want);
    });
  }), { numRuns: 400 });
});

it('knows the answer\'s size before building it, and refuses it one byte over the limit', () => {
  fc.assert(fc.property(answer, (a) => {
    const built: InferAnswer = { model_name: a.model_name, model_version: a.model_version, id: a.id, outputs: a.typed.map((o) => o.tensor), raw_output_contents: [] };
    const size = encodeInferAnswer(built, 1 << 24).length;
    expect(encodeInferAnswer(built, size).length).toBe(size);
    let refusal: unknown;
    try {
      encodeInferAnswer(built, size - 1);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(MeshError);
    expect((refusal as MeshError).code).toBe(ErrorCode.Overloaded);
    expect((refusal as MeshError).message).toBe(`response of ${size} bytes is larger than the limit of ${size - 1} bytes`);
  }), { numRuns: 200 });
});

it('wraps an answer\'s bytes as a stream answer marked final, its fields as they were', () => {
  const bytes = encodeInferAnswer({ model_name: 'm', model_version: '3', id: 'req-1', outputs: [{ name: 'y', datatype: 'INT64', shape: [2], contents: { field: 'int64_contents', data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n) } }], raw_output_contents: [] }, 1 << 20);
  const stream = service.ModelStreamInfer.responseDeserialize(streamAnswerBytes(bytes)) as ModelStreamInferResponse__Output;
  expect(stream.error_message).toBe('');
  expect(stream.infer_response).toMatchObject({ model_name: 'm', model_version: '3', id: 'req-1', parameters: { triton_final_response: { bool_param: true } } });
  expect(stream.infer_response!.outputs[0]!.contents!.int64_contents).toEqual(['-9223372036854775808', '9223372036854775807']);
});
