import { protos } from '../../../../lib/grpc/proto';
import { peekRequest } from '../../../../services/router/request-peek';

const serialize = (req: object) => protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize(req);

describe('peekRequest', () => {
  it('reads model name and version from encoded bytes and keeps the bytes', () => {
    const bytes = serialize({
      model_name: 'mnist',
      model_version: '12',
      id: 'req-1',
      parameters: { priority: { int64_param: 3 } },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }],
      raw_input_contents: [Buffer.alloc(784 * 4, 7)],
    });
    const peeked = peekRequest(bytes);
    expect(peeked).toEqual({ model: 'mnist', version: '12', bytes });
  });

  it('takes the last occurrence of a field, as protobuf does', () => {
    const a = serialize({ model_name: 'a', model_version: '1' });
    const b = serialize({ model_version: '2' });
    expect(peekRequest(Buffer.concat([a, b]))).toMatchObject({ model: 'a', version: '2' });
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
    // Field 3 as fixed64 (tag 0x19) with only 3 of its 8 bytes.
    expect(() => peekRequest(Buffer.from('190102', 'hex'))).toThrow('malformed request: field runs past the end');
    expect(() => peekRequest(Buffer.from('1d01', 'hex'))).toThrow('malformed request: field runs past the end');
    expect(peekRequest(serialize({ model_name: 'modèle_名前', model_version: '3' }))).toMatchObject({ model: 'modèle_名前', version: '3' });
  });
});
