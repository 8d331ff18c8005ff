// BYTES are bytes: every element either round-trips exactly (raw and typed form) or is refused
// naming the tensor and the element; never U+FFFD, never cut at a NUL. Decoding costs memory in
// proportion to the request.
import v8 from 'node:v8';
import fc from 'fast-check';
import { checkBytesElements, fromContents, fromRaw, toContents, toRaw } from '../../../lib/tensor';
import { MeshError } from '../../../lib/errors';
import type { InferTensorContentsOut } from '../../../lib/grpc/types';

const typed = (elements: Buffer[]): InferTensorContentsOut => ({
  bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: elements,
});

/** Raw form: a 4-byte little-endian length before each element. */
const rawOf = (elements: Buffer[]): Buffer => Buffer.concat(elements.flatMap((e) => [Buffer.from(Uint32Array.of(e.length).buffer), e]));

/** Decodes `elements` in both forms and encodes the result back in both; returns what came back. */
function roundTrip(elements: Buffer[]): { raw: Buffer; typed: Buffer[] } {
  const fromWire = fromRaw('T', 'BYTES', [elements.length], rawOf(elements));
  const fromTyped = fromContents('T', 'BYTES', [elements.length], typed(elements));
  expect(fromTyped.data).toEqual(fromWire.data);
  return { raw: toRaw(fromWire), typed: (toContents('BYTES', fromTyped)!.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
}

/** Expects decoding `elements` to be refused, in both forms, with `message`. */
function expectRefused(elements: Buffer[], message: string): void {
  for (const decode of [() => fromRaw('T', 'BYTES', [elements.length], rawOf(elements)), () => fromContents('T', 'BYTES', [elements.length], typed(elements))]) {
    expect(decode).toThrow(MeshError);
    expect(decode).toThrow(message);
  }
}

describe('BYTES tensors', () => {
  it('round-trip every byte value that is UTF-8 without NUL (1..127) exactly, as single-byte elements', () => {
    const elements = Array.from({ length: 127 }, (_, i) => Buffer.of(i + 1));
    const back = roundTrip(elements);
    expect(back.raw.equals(rawOf(elements))).toBe(true);
    expect(back.typed).toEqual(elements);
  });

  it('refuses NUL, naming the tensor and the element', () => {
    expectRefused([Buffer.from('ok'), Buffer.of(0)], "tensor 'T': BYTES element 1 has a NUL byte at 0; onnxruntime's string tensors cannot carry it");
    expectRefused([Buffer.from('a\0b')], "tensor 'T': BYTES element 0 has a NUL byte at 1");
  });

  it.each(Array.from({ length: 128 }, (_, i) => i + 128))('refuses the lone byte %i (not UTF-8), naming the element', (byte) => {
    expectRefused([Buffer.from('x'), Buffer.from(''), Buffer.of(byte)], "tensor 'T': BYTES element 2 is not valid UTF-8; onnxruntime's string tensors cannot carry it");
  });

  it.each([
    ['an overlong NUL', [0xc0, 0x80]],
    ['an overlong slash', [0xe0, 0x80, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['a continuation byte alone', [0x80]],
  ])('refuses %s', (_name, bytes) => {
    expectRefused([Buffer.of(...bytes)], "tensor 'T': BYTES element 0 is not valid UTF-8");
  });

  it('round-trips multi-byte UTF-8, a leading byte order mark, empty elements and a large element exactly', () => {
    const large = Buffer.from('aé€𝄞'.repeat(1 << 20)); // 10 MiB, every sequence length
    const elements = [Buffer.from('é'), Buffer.from('€'), Buffer.from('𝄞'), Buffer.from('\uFEFFbom'), Buffer.alloc(0), Buffer.from('\uFFFD'), large, Buffer.alloc(0)];
    const back = roundTrip(elements);
    expect(back.raw.equals(rawOf(elements))).toBe(true);
    expect(back.typed.length).toBe(elements.length);
    back.typed.forEach((b, i) => expect(b.equals(elements[i]!)).toBe(true));
  });

  it('round-trips exactly or refuses naming an element, for any bytes', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 8 }), (arrays) => {
      const elements = arrays.map((a) => Buffer.from(a));
      let back: ReturnType<typeof roundTrip>;
      try {
        back = roundTrip(elements);
      } catch (err) {
        expect(err).toBeInstanceOf(MeshError);
        const index = Number(/element (\d+)/.exec((err as Error).message)?.[1]);
        const bad = elements[index]!;
        expect(bad.includes(0) || Buffer.from(bad.toString('utf8'), 'utf8').equals(bad) === false).toBe(true);
        return;
      }
      expect(back.raw.equals(rawOf(elements))).toBe(true);
      back.typed.forEach((b, i) => expect(b.equals(elements[i]!)).toBe(true));
    }), { seed: 13, numRuns: 2000 });
  });

  it('bounds the BYTES elements of one request', () => {
    expect(() => checkBytesElements('T', 1024, 1024)).not.toThrow();
    expect(() => checkBytesElements('T', 1025, 1024)).toThrow("tensor 'T': the request's BYTES elements pass the limit of 1024");
  });

  it('decodes 64 MiB of empty elements with memory in proportion: the strings array, not gigabytes', () => {
    const count = 16 * 1024 * 1024;
    const raw = Buffer.alloc(count * 4); // 16 Mi zero lengths
    const { peakBytes, allocatedBytes, result } = heapCost(() => fromRaw('T', 'BYTES', [count], raw));
    expect(result.data.length).toBe(count);
    // The result is an array of 16 Mi references to one empty string: 128 MiB.
    expect(peakBytes).toBeLessThan(384 * 1024 * 1024);
    expect(allocatedBytes).toBeLessThan(512 * 1024 * 1024);
    const back = toRaw(result);
    expect(back.equals(raw)).toBe(true);
  });
});

/** Runs `fn` and reports the most heap it held at once (at GCs and at the end) and all it allocated. */
function heapCost<T>(fn: () => T): { peakBytes: number; allocatedBytes: number; result: T } {
  const profiler = new v8.GCProfiler();
  const start = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const result = fn();
  const end = v8.getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let peak = end;
  let collected = 0;
  for (const gc of statistics) {
    peak = Math.max(peak, gc.beforeGC.heapStatistics.usedHeapSize);
    collected += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize);
  }
  return { peakBytes: peak - start, allocatedBytes: end - start + collected, result };
}
