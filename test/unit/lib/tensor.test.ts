import { DATATYPES, fromContents, fromRaw, parseShape, toContents, toRaw, type Datatype } from '../../../lib/tensor';
import { encodeInferAnswer } from '../../../lib/grpc/infer-answer';
import { protos } from '../../../lib/grpc/proto';
import type { ModelInferResponseOut } from '../../../lib/grpc/types';
import { MeshError } from '../../../lib/errors';
import type { InferTensorContentsOut } from '../../../lib/grpc/types';

const empty = (): InferTensorContentsOut => ({
  bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [],
});

const samples: Record<Datatype, unknown[]> = {
  BOOL: [true, false, true, true],
  UINT8: [0, 1, 200, 255],
  UINT16: [0, 1, 60000, 65535],
  UINT32: [0, 1, 4_000_000_000, 7],
  UINT64: ['0', '1', '18446744073709551615', '42'],
  INT8: [-128, -1, 0, 127],
  INT16: [-32768, -1, 0, 32767],
  INT32: [-2147483648, -1, 0, 2147483647],
  INT64: ['-9223372036854775808', '-1', '0', '9223372036854775807'],
  FP16: [],
  FP32: [1.5, -2.25, 0, 3.125],
  FP64: [1e300, -2.5, 0, Math.PI],
  BYTES: [Buffer.from('a'), Buffer.from(''), Buffer.from('héllo'), Buffer.from('xyz')],
};

describe('tensor codecs', () => {
  for (const dt of Object.keys(DATATYPES) as Datatype[]) {
    if (dt === 'FP16') continue;
    it(`round-trips ${dt} through typed contents and raw bytes`, () => {
      const field = DATATYPES[dt].contents!;
      const contents = { ...empty(), [field]: samples[dt] };
      const t = fromContents('x', dt, [2, 2], contents);
      expect(t.dims).toEqual([2, 2]);
      // Typed contents as a pod answers them (lib/grpc/infer-answer), read back by a client's protobufjs.
      const answer = encodeInferAnswer({ model_name: 'm', model_version: '1', id: '', outputs: [{ name: 'y', datatype: dt, shape: t.dims, contents: toContents(dt, t) }], raw_output_contents: [] }, 1 << 20);
      const read = protos().inference.GRPCInferenceService.service.ModelInfer.responseDeserialize(answer) as ModelInferResponseOut;
      const values = read.outputs[0]!.contents![field] as unknown[];
      expect(values.map(String)).toEqual(samples[dt].map(String));
      const raw = toRaw(t);
      const back = fromRaw('x', dt, [2, 2], raw);
      expect(Array.from(back.data as ArrayLike<unknown>).map(String)).toEqual(Array.from(t.data as ArrayLike<unknown>).map(String));
    });
  }

  it('carries FP16 only as raw bytes', () => {
    const raw = Buffer.from(new Uint16Array([0x3c00, 0xc000, 0, 0x7bff]).buffer);
    const t = fromRaw('h', 'FP16', [4], raw);
    expect(Array.from(t.data as Uint16Array)).toEqual([0x3c00, 0xc000, 0, 0x7bff]);
    expect(toContents('FP16', t)).toBeUndefined();
    expect(() => fromContents('h', 'FP16', [4], empty())).toThrow(/FP16 has no typed contents/);
  });

  it('copies raw bytes at unaligned offsets into an aligned buffer', () => {
    const backing = Buffer.alloc(17);
    const raw = backing.subarray(1);
    new Float32Array([1, 2, 3, 4]).forEach((v, i) => raw.writeFloatLE(v, i * 4));
    const t = fromRaw('f', 'FP32', [4], raw);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it.each([
    ['too few raw bytes', () => fromRaw('a', 'FP32', [2, 2], Buffer.alloc(12)), "tensor 'a': raw content has 12 bytes, but shape [2,2] of FP32 needs 16"],
    ['too many contents', () => fromContents('b', 'INT32', [2], { ...empty(), int_contents: [1, 2, 3] }), "tensor 'b': contents has 3 elements, but shape [2] needs 2"],
    ['the wrong contents field', () => fromContents('c', 'FP32', [1], { ...empty(), fp32_contents: [1], int_contents: [1] }), "tensor 'c': datatype FP32 takes fp32_contents, but int_contents is set"],
    ['an out-of-range value', () => fromContents('d', 'UINT8', [1], { ...empty(), uint_contents: [300] }), "tensor 'd': contents value 300 at 0 does not fit UINT8"],
    ['truncated BYTES', () => fromRaw('e', 'BYTES', [1], Buffer.from([5, 0, 0, 0, 1])), "tensor 'e': raw BYTES element 0 runs past the end of the content"],
    ['a negative dimension', () => parseShape('f', ['2', '-1'], 100), "tensor 'f': shape [2,-1] has an invalid dimension -1"],
    ['too many elements', () => parseShape('g', ['1000', '1000'], 1000), "tensor 'g': shape [1000,1000] has more than the limit of 1000 elements"],
    ['a huge dimension after a 0', () => parseShape('h', ['0', String(2 ** 32)], 1000), "tensor 'h': shape [0,4294967296] has a dimension 4294967296 above the limit of 1000"],
    ['2^53-1 after a 0', () => parseShape('i', [0, 2 ** 53 - 1], 1000), "tensor 'i': shape [0,9007199254740991] has a dimension 9007199254740991 above the limit of 1000"],
    ['a dimension above 2^31-1 after a 0, whatever the element limit', () => parseShape('j', ['0', String(2 ** 31)], 2 ** 40), "tensor 'j': shape [0,2147483648] has a dimension 2147483648 above the limit of 2147483647"],
    ['a dimension above the element limit before a 0', () => parseShape('k', ['1001', '0'], 1000), "tensor 'k': shape [1001,0] has a dimension 1001 above the limit of 1000"],
  ])('rejects %s naming the tensor', (_name, fn, message) => {
    expect(fn).toThrow(MeshError);
    expect(fn).toThrow(message);
  });

  it('takes empty tensors whose dimensions are each within the limits', () => {
    expect(parseShape('e', ['0', '1000'], 1000)).toEqual([0, 1000]);
    expect(parseShape('e', [1000, 0, 1000], 1000)).toEqual([1000, 0, 1000]);
  });
});
