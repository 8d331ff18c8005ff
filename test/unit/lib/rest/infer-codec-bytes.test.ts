// The REST codec's BYTES data and nested data, with what they cost: BYTES elements bounded by
// INFERMESH_MAX_BYTES_ELEMENTS before any is converted, each element's bytes written into one
// buffer (no object per element), and nested data walked without an entry per row.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MeshError, toGrpcStatus } from '../../../../lib/errors';
import { httpStatusOf } from '../../../../lib/rest/http-status';
import { parseInferRequest, type RestInferLimits } from '../../../../lib/rest/infer-codec';

const LIMITS: RestInferLimits = { maxTensors: 8, maxParameters: 8, maxRank: 8, maxElements: 1 << 24, maxBytesElements: 1 << 21 };
const body = (o: unknown) => Buffer.from(JSON.stringify(o));
const bytesInput = (name: string, data: unknown[], shape = [data.length]) => ({ name, datatype: 'BYTES', shape, data });

function refusal(f: () => unknown): MeshError {
  try {
    f();
  } catch (err) {
    if (err instanceof MeshError) return err;
    throw err;
  }
  throw new Error('not refused');
}

/** The protocol's raw BYTES form, built by hand: a 4-byte little-endian length before each element's UTF-8. */
function rawBytes(items: string[]): Buffer {
  return Buffer.concat(items.flatMap((s) => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return [len, b];
  }));
}

/** A collector of garbage: node's --expose-gc one, or one exposed for this test. */
const collect: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** Heap bytes `f` leaves behind, garbage included: collected before, not after. */
function heapGrowth(f: () => unknown): number {
  collect();
  const before = process.memoryUsage().heapUsed;
  const kept = f();
  const grown = process.memoryUsage().heapUsed - before;
  expect(kept).toBeDefined();
  return grown;
}

describe('BYTES data', () => {
  it('refuses more BYTES elements than the limit, all inputs together, naming the tensor and the limit, before converting any', () => {
    const limits = { ...LIMITS, maxBytesElements: 4 };
    // Element 0 is not a string: a conversion would say so, the count comes first.
    const tooMany = body({ inputs: [bytesInput('INPUT0', [5, '', '', '', ''])] });
    const err = refusal(() => parseInferRequest('m', '', tooMany, undefined, limits));
    expect(httpStatusOf(toGrpcStatus(err).code)).toBe(400);
    expect(err.message).toBe("tensor 'INPUT0': the request's BYTES elements pass the limit of 4");
    const together = body({ inputs: [bytesInput('A', ['a', 'b']), { name: 'N', datatype: 'FP32', shape: [3], data: [1, 2, 3] }, bytesInput('B', ['c', 'd', 'e'])] });
    expect(refusal(() => parseInferRequest('m', '', together, undefined, limits)).message).toBe("tensor 'B': the request's BYTES elements pass the limit of 4");
    // Counted from the shape, data or binary data alike.
    const binary = Buffer.concat([body({ inputs: [{ name: 'R', datatype: 'BYTES', shape: [5], parameters: { binary_data_size: 20 } }] }), Buffer.alloc(20)]);
    expect(refusal(() => parseInferRequest('m', '', binary, binary.length - 20, limits)).message).toBe("tensor 'R': the request's BYTES elements pass the limit of 4");
    expect(parseInferRequest('m', '', body({ inputs: [bytesInput('A', ['a', 'b', 'c', 'd'])] }), undefined, limits).request.raw_input_contents).toEqual([rawBytes(['a', 'b', 'c', 'd'])]);
  });

  it('refuses past INFERMESH_MAX_BYTES_ELEMENTS\'s default (1 Mi) when no limit is given', () => {
    const { maxBytesElements: _unset, ...noLimit } = LIMITS;
    const text = `{"inputs":[{"name":"S","datatype":"BYTES","shape":[${2 ** 20 + 1}],"data":[]}]}`;
    expect(refusal(() => parseInferRequest('m', '', Buffer.from(text), undefined, noLimit)).message).toBe("tensor 'S': the request's BYTES elements pass the limit of 1048576");
  });

  it('writes ASCII, multi-byte UTF-8 and empty strings as the protocol\'s raw form, flat or nested', () => {
    const items = ['', 'a', 'hello', 'héllo wörld', '日本語', '\u{1F600}', '', 'x'.repeat(300), '\u0000', ''];
    const flat = parseInferRequest('m', '', body({ inputs: [bytesInput('S', items)] }), undefined, LIMITS);
    expect(flat.request.raw_input_contents).toEqual([rawBytes(items)]);
    const nested = parseInferRequest('m', '', body({ inputs: [bytesInput('S', [items.slice(0, 5), items.slice(5)], [2, 5])] }), undefined, LIMITS);
    expect(nested.request.raw_input_contents).toEqual([rawBytes(items)]);
    const empty = parseInferRequest('m', '', body({ inputs: [bytesInput('S', [])] }), undefined, LIMITS);
    expect(empty.request.raw_input_contents).toEqual([Buffer.alloc(0)]);
  });

  it.each<[string, unknown[], string]>([
    ['a number', ['a', 7], "tensor 'S': element 1 is not a string (BYTES data is given as strings)"],
    ['null', [null, 'a'], "tensor 'S': element 0 is not a string (BYTES data is given as strings)"],
    ['an object', ['a', 'b', {}], "tensor 'S': element 2 is not a string (BYTES data is given as strings)"],
    ['an unpaired surrogate', ['a', '\ud800'], "tensor 'S': element 1 holds an unpaired surrogate, which UTF-8 cannot carry"],
  ])('still refuses %s as an element, naming it', (_what, data, message) => {
    expect(refusal(() => parseInferRequest('m', '', body({ inputs: [bytesInput('S', data)] }), undefined, LIMITS)).message).toBe(message);
  });

  it('costs no object per element: a million empty strings grow the heap by under 50 bytes each', () => {
    const n = 1_000_000;
    const text = Buffer.from(`{"inputs":[{"name":"S","datatype":"BYTES","shape":[1,${n}],"data":[${'"",'.repeat(n - 1)}""]}]}`);
    let raw: Buffer | undefined;
    // The body's text and parsed array included (about 11 bytes an element); a Buffer an element was about 300.
    const grown = heapGrowth(() => (raw = parseInferRequest('m', '', text, undefined, LIMITS).request.raw_input_contents![0] as Buffer));
    expect(grown / n).toBeLessThan(50);
    expect(raw!.length).toBe(4 * n);
    expect(raw!.every((b) => b === 0)).toBe(true);
  });
});

describe('nested data', () => {
  it('refuses data that does not follow the shape before making anything for it', () => {
    const refused = (o: unknown) => refusal(() => parseInferRequest('m', '', body({ inputs: [o] }), undefined, LIMITS)).message;
    const needs = 'nested "data" does not follow shape';
    // A shape of 2^24 FP64s would take 128 MiB: its one row is refused first.
    expect(refused({ name: 'N', datatype: 'FP64', shape: [1, 1 << 24], data: [[1]] })).toBe(`tensor 'N': ${needs} [1,16777216]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [3, 2], data: [[1, 2], [3, 4]] })).toBe(`tensor 'N': ${needs} [3,2]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3]] })).toBe(`tensor 'N': ${needs} [2,2]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [2, 2], data: [[1, 2], 3] })).toBe(`tensor 'N': ${needs} [2,2]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [2], data: [[1], [2]] })).toBe(`tensor 'N': ${needs} [2]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [], data: [[1]] })).toBe(`tensor 'N': ${needs} []`);
    expect(refused({ name: 'N', datatype: 'BYTES', shape: [2, 1], data: [['a'], ['b', 'c']] })).toBe(`tensor 'N': ${needs} [2,1]`);
    expect(refused({ name: 'N', datatype: 'FP32', shape: [4], data: [1, 2, 3] })).toBe(`tensor 'N': "data" has 3 elements, but shape [4] needs 4`);
  });

  it('reads rows in order, at any depth, each element\'s index named in a refusal', () => {
    const deep = { name: 'D', datatype: 'INT32', shape: [2, 1, 3, 1], data: [[[[1], [2], [3]]], [[[4], [5], [6]]]] };
    const raw = parseInferRequest('m', '', body({ inputs: [deep] }), undefined, LIMITS).request.raw_input_contents![0]!;
    expect([...new Int32Array(new Uint8Array(raw as Buffer).buffer)]).toEqual([1, 2, 3, 4, 5, 6]);
    const bad = { name: 'D', datatype: 'INT8', shape: [2, 2], data: [[1, 2], [3, 300]] };
    expect(refusal(() => parseInferRequest('m', '', body({ inputs: [bad] }), undefined, LIMITS)).message).toBe("tensor 'D': element 3 (300) does not fit INT8");
    const zero = { name: 'Z', datatype: 'FP32', shape: [2, 0], data: [[], []] };
    expect(parseInferRequest('m', '', body({ inputs: [zero] }), undefined, LIMITS).request.raw_input_contents).toEqual([Buffer.alloc(0)]);
  });

  it('costs no entry per row beyond what parsing the JSON costs', () => {
    const rows = 1_000_000;
    const text = Buffer.from(`{"inputs":[{"name":"N","datatype":"FP32","shape":[${rows},1],"data":[${'[0],'.repeat(rows - 1)}[0]]}]}`);
    // Three tries each, interleaved. A collection's sweeping can finish during a measurement (under
    // load, CI's other workers), which only ever makes a growth read smaller: the largest read of
    // parsing alone and the smallest of the codec are the fair pair. A regression is in every read.
    const parsing: number[] = [];
    const grown: number[] = [];
    for (let i = 0; i < 3; i++) {
      parsing.push(heapGrowth(() => JSON.parse(text.toString())));
      grown.push(heapGrowth(() => parseInferRequest('m', '', text, undefined, LIMITS)));
    }
    // A stack entry and a list entry a row cost about 100 bytes a row more.
    expect((Math.min(...grown) - Math.max(...parsing)) / rows).toBeLessThan(30);
  });
});
