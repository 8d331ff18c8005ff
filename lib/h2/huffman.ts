// HPACK's static Huffman code (RFC 7541 appendix B), decode only: what this project's HTTP/2 layer
// sends it never Huffman-encodes, but every peer may. The code is canonical (within one length,
// codes rise with the symbol), so the table is just each symbol's code length; codes follow.

/** Code length in bits of each symbol 0..255, then EOS (256). */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const MAX_LENGTH = 30;

/** Canonical decoding tables: per length, the first code, how many codes, and where their symbols start. */
const firstCode = new Int32Array(MAX_LENGTH + 1);
const limitCode = new Int32Array(MAX_LENGTH + 1);
const firstIndex = new Int32Array(MAX_LENGTH + 1);
const symbols = new Uint16Array(CODE_LENGTHS.length);
{
  const order = CODE_LENGTHS.map((_, s) => s).sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  order.forEach((s, i) => (symbols[i] = s));
  let code = 0;
  let i = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    firstCode[len] = code;
    firstIndex[len] = i;
    while (i < order.length && CODE_LENGTHS[order[i]!] === len) {
      code++;
      i++;
    }
    limitCode[len] = code;
    code <<= 1;
  }
}

/** Thrown for bytes that are not a valid Huffman-coded string (a COMPRESSION_ERROR). */
export class HuffmanError extends Error {}

/** Decodes `buf[start, end)` into a latin1 string (one char per octet). */
export function huffmanDecode(buf: Buffer, start: number, end: number): string {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (let p = start; p < end; p++) {
    const byte = buf[p]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      if (code < limitCode[len]!) {
        const sym = symbols[firstIndex[len]! + code - firstCode[len]!]!;
        if (sym === EOS) throw new HuffmanError('Huffman string contains EOS');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_LENGTH) throw new HuffmanError('invalid Huffman code');
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HuffmanError('invalid Huffman padding');
  return String.fromCharCode.apply(null, out);
}
