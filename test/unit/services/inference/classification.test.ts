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

  it('writes integers in decimal', () => {
    expect(tritonValueString(-5, true)).toBe('-5');
    expect(tritonValueString(18446744073709551615n, true)).toBe('18446744073709551615');
  });

  it('gives the top k of each row, highest first, equal values by index', () => {
    const t = { type: 'float32' as const, dims: [2, 4], data: Float32Array.of(1, 5, 10, 4, 0.5, 0.25, 0.5, NaN) };
    expect(classify('OUT', t, 2, true)).toEqual({ type: 'string', dims: [2, 2], data: ['10.000000:2', '5.000000:1', '0.500000:0', '0.500000:2'] });
    // k is capped at the elements of a row; without batching the whole tensor is one.
    expect(classify('OUT', t, 9, true).dims).toEqual([2, 4]);
    expect(classify('OUT', t, 3, false)).toEqual({ type: 'string', dims: [3], data: ['10.000000:2', '5.000000:1', '4.000000:3'] });
    expect(classify('OUT', { type: 'int64', dims: [1, 3], data: BigInt64Array.of(-1n, 7n, 3n) }, 1, true).data).toEqual(['7:1']);
    expect(classify('OUT', { type: 'uint8', dims: [0, 3], data: new Uint8Array(0) }, 2, true)).toEqual({ type: 'string', dims: [0, 2], data: [] });
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
