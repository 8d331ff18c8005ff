import { protos } from '../../../../lib/grpc/proto';
import { peekRequest } from '../../../../services/router/request-peek';

const serialize = (req: object) => protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize(req);

describe('peekRequest', () => {
  it('reads model name, version and id from encoded bytes and keeps the bytes', () => {
    const bytes = serialize({
      model_name: 'mnist',
      model_version: '12',
      id: 'req-1',
      parameters: { priority: { int64_param: 3 } },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
      raw_input_contents: [Buffer.alloc(784 * 4, 7)],
    });
    expect(peekRequest(bytes, true)).toEqual({ model: 'mnist', version: '12', id: 'req-1', bytes });
    // The relay's hot path reads no id.
    expect(peekRequest(bytes)).toEqual({ model: 'mnist', version: '12', id: '', bytes });
  });

  it('takes the last occurrence of a field, as protobuf does', () => {
    const a = serialize({ model_name: 'a', model_version: '1' });
    const b = serialize({ model_version: '2' });
    expect(peekRequest(Buffer.concat([a, b]))).toMatchObject({ model: 'a', version: '2' });
  });

  it('reads tags as the pod does: one of 2^32 or more, or of 6 to 9 bytes, is refused, not taken as another field', () => {
    const victim = Buffer.from('team-b-secret');
    // Tag 2^32 + 10: protobufjs keeps its low 32 bits, field 1 (model_name), length-delimited.
    const big = Buffer.concat([serialize({ model_name: 'team-a' }), Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x10, victim.length]), victim]);
    expect(() => peekRequest(big)).toThrow('malformed request: a tag above 32 bits');
    // Tag 10 in 7 bytes: protobufjs reads 10 bytes for it.
    const long = Buffer.concat([serialize({ model_name: 'team-a' }), Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, victim.length]), victim]);
    expect(() => peekRequest(long)).toThrow('malformed request: a tag is a varint of 7 bytes');
  });

  it('returns empty names for an empty request and rejects truncated bytes', () => {
    expect(peekRequest(Buffer.alloc(0))).toMatchObject({ model: '', version: '' });
    const bytes = serialize({ model_name: 'mnist', raw_input_contents: [Buffer.alloc(100)] });
    expect(() => peekRequest(bytes.subarray(0, bytes.length - 10))).toThrow('malformed request');
  });

  it('refuses a name that is not UTF-8 and a fixed-width field cut short, and reads UTF-8 names exactly', () => {
    // model_name = 0x80 0x80 "_sub": two continuation bytes with no lead byte.
    expect(() => peekRequest(Buffer.from('0a0680805f737562', 'hex'))).toThrow('malformed request: model_name is not valid UTF-8');
    expect(() => peekRequest(Buffer.from('12028080', 'hex'))).toThrow('malformed request: model_version is not valid UTF-8');
    // Field 9 (unknown) as fixed64 (tag 0x49) with only 2 of its 8 bytes, and as fixed32.
    expect(() => peekRequest(Buffer.from('490102', 'hex'))).toThrow('malformed request: a fixed-size field runs past the end of its message');
    expect(() => peekRequest(Buffer.from('4d01', 'hex'))).toThrow('malformed request: a fixed-size field runs past the end of its message');
    // A known field with another wire type: protobufjs would read it as its own type anyway.
    expect(() => peekRequest(Buffer.from('190102030405060708', 'hex'))).toThrow('malformed request: field 3 has wire type 1');
    expect(peekRequest(serialize({ model_name: 'modèle_名前', model_version: '3' }))).toMatchObject({ model: 'modèle_名前', version: '3' });
  });
});
