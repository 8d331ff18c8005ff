// Inputs for the fuzz targets: random bytes, and real encodings mutated byte by byte (set, insert,
// delete, cut, splice), which keep most of a valid structure and so reach deeper than noise.
import fc from 'fast-check';

/** One edit of a byte string. */
interface Mutation {
  op: 'set' | 'insert' | 'delete' | 'cut' | 'dup';
  at: number;
  byte: number;
  len: number;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('set', 'set', 'set', 'insert', 'delete', 'cut', 'dup'),
  at: fc.nat(),
  byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x7f, 0x80, 0xff)),
  len: fc.integer({ min: 1, max: 64 }),
});

/** `base` with `edits` applied; positions wrap around the current length. */
export function mutate(base: Uint8Array, edits: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of edits) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.op) {
      case 'set': if (b.length) b[at] = m.byte; break;
      case 'insert': b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]); break;
      case 'cut': b = b.subarray(0, at); break;
      // A run repeated: grows lengths and counts past what a parser expects.
      case 'dup': b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at, at + m.len), b.subarray(at + m.len)]); break;
    }
  }
  return b;
}

/** Random bytes, or one of `seeds` mutated; `maxLength` bounds the random ones. */
export function fuzzInput(seeds: readonly Buffer[], maxLength = 4096): fc.Arbitrary<Buffer> {
  const noise = fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
  if (seeds.length === 0) return noise;
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 8 })).map(([s, m]) => mutate(s, m));
  const spliced = fc.tuple(fc.constantFrom(...seeds), fc.constantFrom(...seeds), fc.nat(), fc.nat())
    .map(([a, b, i, j]) => Buffer.concat([a.subarray(0, a.length ? i % a.length : 0), b.subarray(b.length ? j % b.length : 0)]));
  return fc.oneof({ arbitrary: mutated, weight: 6 }, { arbitrary: spliced, weight: 1 }, { arbitrary: noise, weight: 2 }, { arbitrary: fc.constantFrom(...seeds), weight: 1 });
}
