// Protobuf's wire format, for tests that write messages byte by byte (fields a library would not
// write: repeated, out of order, over-long).

/** `n` (a non-negative integer up to 2^53) as a protobuf varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}
