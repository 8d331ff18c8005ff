// Triton's classification extension: "<value>:<index>" for the top k of each row, values written as
// C++'s std::to_string writes them.
import fc from 'fast-check';
import { classify, classificationCountOf, tritonValueString } from '../../../../services/inference/classification';
import type { RequestedOutputOut } from '../../../../lib/grpc/types';
import { MeshError } from '../../../../lib/errors';

/** printf("%f", x) by exact arithmetic: x * 10^6 rounded half to even. */
function exactFixed6(x: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? '-' : '';
  const exp = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  const mant = exp === 0 ? frac : frac | (1n << 52n);
  const e = (exp === 0 ? 1 : exp) - 1075; // x = mant * 2^e
  let q: bigint;
  if (e >= 0) q = (mant * 1_000_000n) << BigInt(e);
  else {
    const num = mant * 1_000_000n;
    const den = 1n << BigInt(-e);
    q = num / den;
    const twice = 2n * (num % den);
    if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
  }
  return `${sign}${q / 1_000_000n}.${(q % 1_000_000n).toString().padStart(6, '0')}`;
}

const MAX = 1 << 20;
const requested = (parameters: RequestedOutputOut['parameters']): RequestedOutputOut => ({ name: 'OUT', parameters });

describe('classification', () => {
  it.each([
    [0.9, '0.900000'], [0.0078125, '0.007812'], [0.0234375, '0.023438'], [-0.0078125, '-0.007812'],
    [1e21, '1000000000000000000000.000000'], [123.456, '123.456000'], [2.5e-7, '0.000000'], [-1e-9, '-0.000000'],
    [-0, '-0.000000'], [Infinity, 'inf'], [-Infinity, '-inf'], [NaN, 'nan'],
  ])('writes %p as printf("%%f") does: %s', (value, text) => {
    expect(tritonValueString(value, false)).toBe(text);
  });

  it('writes every finite double as printf("%f") does', () => {
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
      expect(tritonValueString(x, false)).toBe(exactFixed6(x));
    }), { seed: 7, numRuns: 5000 });
    for (let k = -301; k <= 301; k += 2) expect(tritonValueString(k / 128, false)).toBe(exactFixed6(k / 128));
  });

  it('writes every double halfway between two six-decimal numbers as printf("%f") does, ties to even', () => {
    // The odd multiples of 1/128 below 2^46: from about 9e9 on, their millionths pass 2^53.
    expect(tritonValueString(-40296505385692.73, false)).toBe('-40296505385692.726562');
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 21 - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), (hi, lo, negative) => {
      const x = ((hi * 2 ** 31 + lo) * 2 + 1) / 128;
      const signed = negative ? -x : x;
      expect(tritonValueString(signed, false)).toBe(exactFixed6(signed));
    }), { seed: 7, numRuns: 5000 });
  });

  it('writes integers in decimal', () => {
    expect(tritonValueString(-5, true)).toBe('-5');
    expect(tritonValueString(18446744073709551615n, true)).toBe('18446744073709551615');
  });

  it('gives the top k of each row, highest first, equal values by index', () => {
    const t = { type: 'float32' as const, dims: [2, 4], data: Float32Array.of(1, 5, 10, 4, 0.5, 0.25, 0.5, NaN) };
    expect(classify('OUT', t, 2, true, MAX)).toEqual({ type: 'string', dims: [2, 2], data: ['10.000000:2', '5.000000:1', '0.500000:0', '0.500000:2'] });
    // k is capped at the elements of a row; without batching the whole tensor is one.
    expect(classify('OUT', t, 9, true, MAX).dims).toEqual([2, 4]);
    expect(classify('OUT', t, 3, false, MAX)).toEqual({ type: 'string', dims: [3], data: ['10.000000:2', '5.000000:1', '4.000000:3'] });
    expect(classify('OUT', { type: 'int64', dims: [1, 3], data: BigInt64Array.of(-1n, 7n, 3n) }, 1, true, MAX).data).toEqual(['7:1']);
    expect(classify('OUT', { type: 'uint8', dims: [0, 3], data: new Uint8Array(0) }, 2, true, MAX)).toEqual({ type: 'string', dims: [0, 2], data: [] });
  });

  /** The top k by sorting the whole row, as classify did: the order it must keep. */
  const sortedTopK = (data: ArrayLike<number | bigint>, perRow: number, k: number, rows: number) => {
    const out: number[][] = [];
    for (let r = 0; r < rows; r++) {
      const order = Array.from({ length: perRow }, (_, i) => i);
      order.sort((i, j) => {
        const a = data[r * perRow + i]!;
        const b = data[r * perRow + j]!;
        if (a !== a) return b !== b ? i - j : 1;
        if (b !== b) return -1;
        return a > b ? -1 : a < b ? 1 : i - j;
      });
      out.push(order.slice(0, k));
    }
    return out;
  };

  it('selects exactly the classes a sort of the whole row would, ties and NaN included', () => {
    const value = fc.oneof(fc.constantFrom(0, -0, 1, 2, NaN, Infinity, -Infinity), fc.integer({ min: -3, max: 3 }));
    fc.assert(fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 15 }), fc.array(value, { minLength: 48, maxLength: 48 }), (rows, perRow, count, values) => {
      const data = Float64Array.from(values.slice(0, rows * perRow));
      const got = classify('OUT', { type: 'float64', dims: [rows, perRow], data }, count, true, MAX);
      const k = Math.min(count, perRow);
      const want = sortedTopK(data, perRow, k, rows).flatMap((row, r) => row.map((i) => `${tritonValueString(data[r * perRow + i]!, false)}:${i}`));
      expect(got).toEqual({ type: 'string', dims: [rows, k], data: want });
    }), { seed: 11, numRuns: 3000 });
    const ints = BigInt64Array.of(5n, -1n, 5n, 9n, 0n, 9n);
    expect(classify('OUT', { type: 'int64', dims: [6], data: ints }, 4, false, MAX).data).toEqual(['9:3', '9:5', '5:0', '5:2']);
  });

  it('reads a row about once for a small k, rather than sorting it', () => {
    const n = 100_000;
    const values = new Float32Array(n).map((_, i) => (i * 7919) % n);
    let reads = 0;
    const data = new Proxy(values, { get: (target, key) => (typeof key === 'string' && /^\d+$/.test(key) && reads++, Reflect.get(target, key)) });
    expect(classify('OUT', { type: 'float32', dims: [1, n], data }, 1, true, MAX).data).toEqual([`${n - 1}.000000:${values.indexOf(n - 1)}`]);
    // A sort reads about 2 n log2 n elements (3.3 million here); a pass with a heap of one, 2 n.
    expect(reads).toBeLessThan(3 * n);
  });

  it('caps k at a row\'s elements and refuses more than the limit of results, naming the output', () => {
    const t = { type: 'int32' as const, dims: [3, 4], data: new Int32Array(12) };
    expect(classify('OUT', t, 2 ** 62, true, 12).dims).toEqual([3, 4]);
    const f = () => classify('OUT', t, 2 ** 62, true, 11);
    expect(f).toThrow(MeshError);
    expect(f).toThrow("tensor 'OUT': a classification of 3 rows of 4 classes passes the limit of 11 results");
    expect(() => classify('OUT', t, 12, false, 11)).toThrow("tensor 'OUT': a classification of 1 rows of 12 classes passes the limit of 11 results");
  });

  it('reads the count from an int64 parameter, and refuses anything else by name', () => {
    expect(classificationCountOf(requested({}), 'FP32')).toBe(0);
    expect(classificationCountOf(requested({ classification: { int64_param: '3', parameter_choice: 'int64_param' } }), 'FP32')).toBe(3);
    const refuse = (p: RequestedOutputOut['parameters'], dt: 'FP32' | 'BYTES' | 'BOOL' | 'FP16', message: string) => {
      const f = () => classificationCountOf(requested(p), dt);
      expect(f).toThrow(MeshError);
      expect(f).toThrow(message);
    };
    refuse({ classification: { string_param: '3', parameter_choice: 'string_param' } }, 'FP32', "tensor 'OUT': invalid value type for the 'classification' parameter, expected int64_param");
    refuse({ classification: { int64_param: '0', parameter_choice: 'int64_param' } }, 'FP32', "tensor 'OUT': invalid value 0 for the 'classification' parameter, expected > 0");
    refuse({ classification: { int64_param: '-2', parameter_choice: 'int64_param' } }, 'FP32', 'expected > 0');
    for (const dt of ['BYTES', 'BOOL', 'FP16'] as const) {
      refuse({ classification: { int64_param: '1', parameter_choice: 'int64_param' } }, dt, `tensor 'OUT': class result not available for an output of type ${dt}`);
    }
  });
});
