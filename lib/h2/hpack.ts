// HPACK (RFC 7541) for this project's HTTP/2 layer. The decoder is complete (static and dynamic
// tables, Huffman, table size updates), because peers use all of it. The encoder never adds to
// the dynamic table and never Huffman-codes: it sends static-table indices where a header matches
// and literals otherwise, so it keeps no state, and a proxy can re-encode a header block for any
// connection. Strings are latin1 (one char per octet), so any octets a peer sends are kept as they
// are.
import { huffmanDecode, HuffmanError } from './huffman';

/** A header as it is on the wire: lower-case name, value. */
export type Header = [name: string, value: string];

const STATIC_TABLE: readonly Header[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Static index (1-based) of the first entry with each name, and of each exact name+value. */
const STATIC_NAME = new Map<string, number>();
const STATIC_EXACT = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  if (value) STATIC_EXACT.set(`${name}\0${value}`, i + 1);
});

/** Per-entry overhead of the dynamic table (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

const EMPTY = Buffer.alloc(0);
const HUFFMAN_CACHE_PER_LENGTH = 4;
/** Longer coded strings are decoded every time (which bounds the cache to 64 KiB). */
const HUFFMAN_CACHE_MAX_LENGTH = 128;

/** Thrown for a header block that cannot be decoded: the connection must end (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/** A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: names, values and 32 octets per field (RFC 9113 §6.5.2). */
export function headerListBytes(headers: readonly Header[]): number {
  let n = 0;
  for (const h of headers) n += h[0].length + h[1].length + ENTRY_OVERHEAD;
  return n;
}

/** One connection's decoding state. */
export class HpackDecoder {
  /** Newest first. */
  private readonly table: Header[] = [];
  private tableBytes = 0;
  private maxTableBytes: number;
  /** The block being decoded and the read position in it. */
  private block: Buffer = EMPTY;
  private p = 0;
  /** Huffman-coded strings already decoded, by their coded length . */
  private readonly huffmanCache = new Map<number, { raw: Buffer; value: string }[]>();

  /**
   * `maxTableBytes`: the SETTINGS_HEADER_TABLE_SIZE this side advertised (4096 by default), the
   * most a peer may size the table to; `maxListBytes`: the largest header list accepted (names,
   * values and 32 bytes per header, as SETTINGS_MAX_HEADER_LIST_SIZE counts).
   */
  constructor(private readonly settingsMaxTableBytes = 4096, private readonly maxListBytes = 65_536) {
    this.maxTableBytes = settingsMaxTableBytes;
  }

  /**
   * Whether the last block decoded to more than `maxListBytes`. Such a block is decoded to its end
   * all the same, so that the dynamic table stays in step with the peer's and the connection can go
   * on (its stream is refused instead), but what lies beyond the limit is neither kept nor, where
   * the table does not need it, built: a few octets that name a large table entry many times (an
   * "HPACK bomb") cost a lookup each, never the decoded size.
   */
  listTooLarge = false;

  /** Decodes one complete header block. Throws HpackError; the state is then unusable. */
  decode(block: Buffer): Header[] {
    const headers: Header[] = [];
    this.block = block;
    this.p = 0;
    this.listTooLarge = false;
    let listBytes = 0;
    let sawHeader = false;
    while (this.p < block.length) {
      const b = block[this.p]!;
      // An indexed header is the table's own entry (never changed once made: the list shares it
      // rather than copying it, one array less per header on the hot path).
      let h: Header;
      if (b & 0x80) h = this.entry(this.int(7));
      else if (b & 0x40) {
        const index = this.int(6);
        const name = index === 0 ? this.str() : this.entry(index)[0];
        h = [name, this.str()];
        this.add(h);
      } else if (b & 0x20) {
        // A table size update: only at the start of a block.
        if (sawHeader) throw new HpackError('table size update after a header');
        const size = this.int(5);
        if (size > this.settingsMaxTableBytes) throw new HpackError(`table size ${size} above the advertised ${this.settingsMaxTableBytes}`);
        this.maxTableBytes = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001): past the limit only skipped.
        const index = this.int(4);
        if (this.listTooLarge) {
          if (index === 0) this.skipStr();
          else this.entry(index);
          this.skipStr();
          continue;
        }
        const name = index === 0 ? this.str() : this.entry(index)[0];
        h = [name, this.str()];
      }
      sawHeader = true;
      if (this.listTooLarge) continue;
      listBytes += h[0].length + h[1].length + ENTRY_OVERHEAD;
      if (listBytes > this.maxListBytes) {
        this.listTooLarge = true;
        continue;
      }
      headers.push(h);
    }
    this.block = EMPTY;
    return headers;
  }

  /** Steps over a string literal, checking only that it is within the block. */
  private skipStr(): void {
    if (this.p >= this.block.length) throw new HpackError('truncated string');
    const length = this.int(7);
    if (this.p + length > this.block.length) throw new HpackError('truncated string');
    this.p += length;
  }

  private int(prefixBits: number): number {
    const block = this.block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.p++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (this.p >= block.length) throw new HpackError('truncated integer');
      const b = block[this.p++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return value;
      if (shift > 28) throw new HpackError('integer too large');
    }
  }

  private str(): string {
    const block = this.block;
    if (this.p >= block.length) throw new HpackError('truncated string');
    const huffman = (block[this.p]! & 0x80) !== 0;
    const length = this.int(7);
    const start = this.p;
    const end = start + length;
    if (end > block.length) throw new HpackError('truncated string');
    this.p = end;
    if (!huffman) return block.toString('latin1', start, end);
    if (length > HUFFMAN_CACHE_MAX_LENGTH) return this.huffman(start, end);
    // Peers send some headers as literals on every call (nghttp2 never indexes :path): decoded once,
    // found again by comparing bytes (no key string to build).
    let byLength = this.huffmanCache.get(length);
    if (byLength) {
      for (const e of byLength) if (block.compare(e.raw, 0, length, start, end) === 0) return e.value;
    } else this.huffmanCache.set(length, (byLength = []));
    const s = this.huffman(start, end);
    // A few per length, the oldest dropped: values that change per call (a trace id) cost one compare each.
    if (byLength.length >= HUFFMAN_CACHE_PER_LENGTH) byLength.shift();
    byLength.push({ raw: Buffer.from(block.subarray(start, end)), value: s });
    return s;
  }

  private huffman(start: number, end: number): string {
    try {
      return huffmanDecode(this.block, start, end);
    } catch (err) {
      throw err instanceof HuffmanError ? new HpackError(err.message) : err;
    }
  }

  private entry(index: number): Header {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const h = this.table[index - STATIC_TABLE.length - 1];
    if (!h) throw new HpackError(`index ${index} beyond the tables`);
    return h;
  }

  private add(h: Header): void {
    const size = h[0].length + h[1].length + ENTRY_OVERHEAD;
    this.evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541 §4.4).
    if (size > this.maxTableBytes) return;
    this.table.unshift(h);
    this.tableBytes += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit. */
  private evict(room: number): void {
    while (this.table.length > 0 && this.tableBytes + room > this.maxTableBytes) {
      const h = this.table.pop()!;
      this.tableBytes -= h[0].length + h[1].length + ENTRY_OVERHEAD;
    }
  }
}

/** Appends an HPACK integer with a `prefixBits` prefix whose high bits are `first`. */
function pushInt(out: number[], first: number, prefixBits: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/** Encoded headers by name, then value: most headers a proxy sends repeat on every call. */
const encoded = new Map<string, Map<string, Buffer>>();
let encodedEntries = 0;
const ENCODED_CACHE_ENTRIES = 1024;
/** Scratch list of encodeHeaders (synchronous, so one suffices). */
const encodeParts: Buffer[] = [];
function encodeOne(name: string, value: string): Buffer {
  // Header blocks are small; an array of octets then one Buffer is cheaper than growing Buffers.
  const out: number[] = [];
  const exact = STATIC_EXACT.get(`${name}\0${value}`);
  if (exact !== undefined) pushInt(out, 0x80, 7, exact);
  else {
    const nameIndex = STATIC_NAME.get(name);
    if (nameIndex !== undefined) pushInt(out, 0x00, 4, nameIndex);
    else {
      out.push(0x00);
      pushInt(out, 0x00, 7, name.length);
      for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i) & 0xff);
    }
    pushInt(out, 0x00, 7, value.length);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}

/**
 * Encodes a header list as one block (static indices where they match, plain literals otherwise),
 * after `reserve` bytes left for the caller (a frame header).
 */
export function encodeHeaders(headers: readonly Header[], reserve = 0): Buffer {
  const parts = encodeParts;
  parts.length = 0;
  let bytes = reserve;
  for (const [name, value] of headers) {
    let byValue = encoded.get(name);
    if (!byValue) encoded.set(name, (byValue = new Map()));
    let b = byValue.get(value);
    if (!b) {
      b = encodeOne(name, value);
      // Values that change on every call (a deadline, a trace id) must not grow the cache for ever.
      if (encodedEntries >= ENCODED_CACHE_ENTRIES) {
        encoded.clear();
        encodedEntries = 0;
        encoded.set(name, (byValue = new Map()));
      }
      byValue.set(value, b);
      encodedEntries++;
    }
    parts.push(b);
    bytes += b.length;
  }
  const block = Buffer.allocUnsafe(bytes);
  let off = reserve;
  for (const b of parts) off += b.copy(block, off);
  parts.length = 0;
  return block;
}
