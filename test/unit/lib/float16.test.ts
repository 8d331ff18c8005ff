// FP16 conversions: the software rounding against hand-checked values and against every one of the
// 65,536 bit patterns, and, where the runtime has Float16Array (Node 24+), against it; raw bytes are
// the same whether a tensor holds Uint16Array bits or a Float16Array.
import { fromRaw, halfBitsOf, halfValueOf, halvesOf, numbersOfHalves, toRaw } from '../../../lib/tensor';
import { seededRandom } from '../../../tools/models/prng';

type F16Ctor = { from(v: ArrayLike<number>): ArrayLike<number> & ArrayBufferView; new (b: ArrayBufferLike, o: number, n: number): ArrayLike<number> };
const Float16 = (globalThis as { Float16Array?: F16Ctor }).Float16Array;

/** Every finite-or-special double worth rounding: halves, midpoints between them, and random values. */
function probes(): number[] {
  const out: number[] = [];
  for (let b = 0; b < 0x10000; b++) {
    const v = halfValueOf(b);
    if (Number.isNaN(v)) continue;
    out.push(v);
    const next = halfValueOf(b + 1);
    if (Number.isFinite(next) && (b & 0x7fff) !== 0x7bff) {
      const mid = (v + next) / 2;
      out.push(mid, mid + Math.abs(mid) * 2 ** -40, mid - Math.abs(mid) * 2 ** -40);
    }
  }
  const rand = seededRandom(20261130);
  for (let i = 0; i < 20_000; i++) out.push((rand() - 0.5) * 2 ** Math.floor(rand() * 60 - 30));
  out.push(65504, 65519.99, 65520, 65536, 1e10, -1e10, 2 ** -25, 2 ** -25 + 2 ** -40, 3 * 2 ** -26, 1e-10, -1e-10);
  return out;
}

describe('FP16 conversion', () => {
  it('rounds known values to nearest, ties to even, with ∞, NaN, −0 and subnormals', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
      [65519.99, 0x7bff], [65520, 0x7c00], [Infinity, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [2 ** -25 + 2 ** -40, 0x0001], [3 * 2 ** -25, 0x0002],
      [2 ** -14, 0x0400], [2 ** -14 - 2 ** -24, 0x03ff], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
      [1 / 3, 0x3555], [0.1, 0x2e66],
    ];
    for (const [x, bits] of cases) expect([x, halfBitsOf(x).toString(16)]).toEqual([x, bits.toString(16)]);
  });

  it('reads back every non-NaN bit pattern to the value that rounds to it', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = halfValueOf(b);
      if (Number.isNaN(v)) {
        expect((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0).toBe(true);
        continue;
      }
      if (halfBitsOf(v) !== b) throw new Error(`0x${b.toString(16)} reads as ${v}, which rounds to 0x${halfBitsOf(v).toString(16)}`);
    }
  });

  // Only a runtime with Float16Array (Node 24+) has the reference; .ci/run runs the suite on one.
  if (Float16) it('matches the runtime\'s Float16Array on every half, midpoint and random double', () => {
    const F = Float16;
    const xs = probes();
    const native = new Uint16Array(F.from(xs).buffer);
    for (let i = 0; i < xs.length; i++) {
      if (native[i] !== halfBitsOf(xs[i]!)) throw new Error(`${xs[i]}: Float16Array 0x${native[i]!.toString(16)}, software 0x${halfBitsOf(xs[i]!).toString(16)}`);
    }
    const all = Uint16Array.from({ length: 0x10000 }, (_, b) => b);
    const viaNative = Array.from(new F(all.buffer, 0, all.length));
    all.forEach((b, i) => expect(Object.is(viaNative[i], halfValueOf(b)) || (Number.isNaN(viaNative[i]) && Number.isNaN(halfValueOf(b)))).toBe(true));
  });

  it('converts arrays with whichever implementation the runtime has, to the same bits', () => {
    const xs = [1.5, -0, Infinity, NaN, 2 ** -24, 70000, 1 / 3];
    expect(Array.from(halvesOf(xs))).toEqual(xs.map(halfBitsOf));
    const back = numbersOfHalves(halvesOf(xs));
    expect(back.map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual(['1.5', '-0', 'Infinity', 'NaN', String(2 ** -24), 'Infinity', String(halfValueOf(0x3555))]);
  });

  it('carries the same raw bytes for Uint16Array bits and a Float16Array', () => {
    const bits = Uint16Array.from([0x7c00, 0xfe00, 0x0001, 0x8000, 0x7bff, 0x3555]);
    const raw = toRaw({ type: 'float16', dims: [6], data: bits });
    expect(Array.from(raw)).toEqual([0x00, 0x7c, 0x00, 0xfe, 0x01, 0x00, 0x00, 0x80, 0xff, 0x7b, 0x55, 0x35]);
    const decoded = fromRaw('h', 'FP16', [6], raw);
    expect(decoded.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(decoded.data as Uint16Array)).toEqual(Array.from(bits));
    if (Float16) {
      const f = new Float16(bits.buffer.slice(0), 0, bits.length) as unknown as Uint16Array;
      expect(Buffer.compare(toRaw({ type: 'float16', dims: [6], data: f }), raw)).toBe(0);
    }
  });
});
