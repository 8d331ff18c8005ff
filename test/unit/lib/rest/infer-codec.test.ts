// The REST inference body codec on its own: parameters as the protocol's, the binary extension's
// own parameters kept from the pod, answers bounded before they are made.
import { MeshError } from '../../../../lib/errors';
import { encodeInferResponse, MessageTooLarge, parseInferRequest } from '../../../../lib/rest/infer-codec';

const LIMITS = { maxTensors: 8, maxParameters: 8, maxRank: 8, maxElements: 1 << 20 };
const body = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));

describe('parseInferRequest', () => {
  it('passes parameters on as the protocol types them, __proto__ included, and keeps the binary extension\'s own', () => {
    const { request, binaryByDefault, binaryOutputs } = parseInferRequest('m', '2', body('{"parameters":{"__proto__":"x","n":3,"f":0.5,"b":true,"binary_data_output":true},' +
      '"inputs":[{"name":"A","datatype":"INT32","shape":[1],"data":[7],"parameters":{"tag":"t"}}],"outputs":[{"name":"Y","parameters":{"binary_data":false}}]}'), undefined, LIMITS);
    expect(Object.entries(request.parameters!)).toEqual([
      ['__proto__', { string_param: 'x', parameter_choice: 'string_param' }],
      ['n', { int64_param: '3', parameter_choice: 'int64_param' }],
      ['f', { double_param: 0.5, parameter_choice: 'double_param' }],
      ['b', { bool_param: true, parameter_choice: 'bool_param' }],
    ]);
    expect(binaryByDefault).toBe(true);
    expect(binaryOutputs.get('Y')).toBe(false);
    expect(request.outputs).toEqual([{ name: 'Y', parameters: {} }]);
    expect(request.inputs![0]!.parameters).toEqual({ tag: { string_param: 't', parameter_choice: 'string_param' } });
    expect(request).toMatchObject({ model_name: 'm', model_version: '2', raw_input_contents: [Buffer.from([7, 0, 0, 0])] });
  });

  it.each<[string, string]>([
    ['a BYTES element', '{"inputs":[{"name":"A","datatype":"BYTES","shape":[1],"data":["caf\xc3"]}]}'],
    ['a tensor name', '{"inputs":[{"name":"\xff\xfe","datatype":"FP32","shape":[1],"data":[1]}]}'],
    ['a parameter', '{"parameters":{"p":"\xed\xa0\x80"},"inputs":[{"name":"A","datatype":"FP32","shape":[1],"data":[1]}]}'],
  ])('refuses bytes that are not UTF-8 in %s, rather than read them as U+FFFD', (_what, text) => {
    expect(() => parseInferRequest('m', '', Buffer.from(text, 'latin1'), undefined, LIMITS)).toThrow(/^the request body is not valid UTF-8$/);
  });

  it('refuses a JSON part that is not UTF-8 and takes binary data that is not', () => {
    const json = Buffer.from('{"id":"\xe9","inputs":[{"name":"A","datatype":"UINT8","shape":[2],"parameters":{"binary_data_size":2}}]}', 'latin1');
    expect(() => parseInferRequest('m', '', Buffer.concat([json, Buffer.from([0xff, 0xfe])]), json.length, LIMITS)).toThrow(/^the request body's JSON part is not valid UTF-8$/);
    const good = Buffer.from(json.toString('latin1').replace('\xe9', 'é'));
    const { request } = parseInferRequest('m', '', Buffer.concat([good, Buffer.from([0xff, 0xfe])]), good.length, LIMITS);
    expect(request).toMatchObject({ id: 'é', raw_input_contents: [Buffer.from([0xff, 0xfe])] });
  });

  it('refuses tensors whose raw bytes pass maxMessageBytes, JSON and binary data together, before making them', () => {
    const limits = { ...LIMITS, maxMessageBytes: 100 };
    const json = Buffer.from('{"inputs":[{"name":"A","datatype":"FP64","shape":[10],"data":[0,0,0,0,0,0,0,0,0,0]},{"name":"B","datatype":"UINT8","shape":[20],"parameters":{"binary_data_size":20}}]}');
    const twenty = Buffer.concat([json, Buffer.alloc(20)]);
    expect(parseInferRequest('m', '', twenty, json.length, limits).request.raw_input_contents).toHaveLength(2);
    const wider = Buffer.from(json.toString().replace(/20/g, '21'));
    expect(() => parseInferRequest('m', '', Buffer.concat([wider, Buffer.alloc(21)]), wider.length, limits)).toThrow(MessageTooLarge);
    expect(() => parseInferRequest('m', '', Buffer.concat([wider, Buffer.alloc(21)]), wider.length, limits)).toThrow("tensor 'B': the request's tensors come to 101 bytes with it, more than the limit of 100 for a request; send fewer elements per request");
    // BYTES: each element's 4-byte length and its UTF-8 bytes (2 for é).
    expect(() => parseInferRequest('m', '', body({ inputs: [{ name: 'S', datatype: 'BYTES', shape: [16], data: new Array(16).fill('é') }] }), undefined, { ...limits, maxMessageBytes: 95 })).toThrow(/come to 96 bytes/);
  });

  it('takes infinity asked for by name, and the largest double as written', () => {
    const { request } = parseInferRequest('m', '', body('{"inputs":[{"name":"A","datatype":"FP64","shape":[3],"data":["Infinity","-Infinity",1.7976931348623157e308]}]}'), undefined, LIMITS);
    const raw = request.raw_input_contents![0] as Buffer;
    expect([0, 1, 2].map((i) => raw.readDoubleLE(8 * i))).toEqual([Infinity, -Infinity, Number.MAX_VALUE]);
  });

  it('takes a scalar\'s value bare or in an array', () => {
    for (const data of ['5', '[5]']) {
      const { request } = parseInferRequest('m', '', body(`{"inputs":[{"name":"S","datatype":"INT64","shape":[],"data":${data}}]}`), undefined, LIMITS);
      expect(request.raw_input_contents).toEqual([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])]);
    }
  });

  it.each<[string, string, RegExp]>([
    ['a name longer than 1024 characters', JSON.stringify({ inputs: [{ name: 'n'.repeat(1025), datatype: 'FP32', shape: [1], data: [1] }] }), /more than 1024/],
    ['a parameter of an object', '{"parameters":{"p":{}},"inputs":[{"name":"A","datatype":"FP32","shape":[1],"data":[1]}]}', /parameter 'p' of the request must be a boolean, a number or a string/],
    ['binary_data_size without the header', '{"inputs":[{"name":"A","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}', /no inference-header-content-length header/],
    ['an input given twice', '{"inputs":[{"name":"A","datatype":"FP32","shape":[1],"data":[1]},{"name":"A","datatype":"FP32","shape":[1],"data":[1]}]}', /given twice/],
    ['too many dimensions', JSON.stringify({ inputs: [{ name: 'A', datatype: 'FP32', shape: new Array(9).fill(1), data: [1] }] }), /9 dimensions, more than the limit of 8/],
    // JSON.parse makes these infinite; only the string "Infinity" asks for infinity.
    ['an FP32 literal beyond a double (1e400)', '{"inputs":[{"name":"A","datatype":"FP32","shape":[2],"data":[1,1e400]}]}', /^tensor 'A': element 1 is beyond FP32's range$/],
    ['an FP16 literal beyond a double (-1e400)', '{"inputs":[{"name":"A","datatype":"FP16","shape":[1],"data":[-1e400]}]}', /^tensor 'A': element 0 is beyond FP16's range$/],
    ['an FP64 literal beyond a double, nested', '{"inputs":[{"name":"A","datatype":"FP64","shape":[1,2],"data":[[1.7976931348623157e308,1.7976931348623159e308]]}]}', /^tensor 'A': element 1 is beyond FP64's range$/],
    ['a parameter beyond a double', '{"parameters":{"p":1e999},"inputs":[{"name":"A","datatype":"FP32","shape":[1],"data":[1]}]}', /^parameter 'p' of the request is beyond a double's range$/],
  ])('refuses %s', (_what, text, message) => {
    let err: unknown;
    try {
      parseInferRequest('m', '', body(text), undefined, LIMITS);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('encodeInferResponse', () => {
  const answer = (n: number) => ({
    model_name: 'm', model_version: '1', id: '', parameters: {},
    outputs: [{ name: 'Y', datatype: 'FP32', shape: ['1', String(n)], parameters: {}, contents: null }],
    raw_output_contents: [Buffer.alloc(4 * n)],
  });

  it('refuses JSON data that could pass its bound, before making it, and writes it as binary data when asked', () => {
    expect(() => encodeInferResponse(answer(1000), { binaryOutputs: new Map(), binaryByDefault: false }, 24_999)).toThrow(/could take 25000 bytes, more than the limit of 24999/);
    expect(encodeInferResponse(answer(1000), { binaryOutputs: new Map(), binaryByDefault: false }, 25_000).body.toString()).toContain('"data":[0,0,');
    const binary = encodeInferResponse(answer(1000), { binaryOutputs: new Map([['Y', true]]), binaryByDefault: false }, 10);
    expect(binary.headerLength).toBeGreaterThan(0);
    expect(binary.body.length).toBe(binary.headerLength! + 4000);
  });
});
