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
});
