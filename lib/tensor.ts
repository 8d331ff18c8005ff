// Protocol tensors ⇄ host tensors (typed arrays onnxruntime accepts), datatypes and sizes.
// The Open Inference Protocol carries a tensor either as raw little-endian bytes
// (raw_input_contents) or as typed repeated fields (contents); both decode to the same HostTensor.
import { errors } from './errors';
import type { InferTensorContentsOut } from './grpc/types';

/** onnxruntime's tensor element type names. */
export type OrtType =
  | 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64'
  | 'float16' | 'float32' | 'float64' | 'string';

export type ContentsField = keyof Omit<InferTensorContentsOut, never>;

interface DatatypeInfo {
  ort: OrtType;
  /** Bytes per element in raw form; 0 for BYTES (length-prefixed). */
  bytes: number;
  /** The typed-contents field that carries it; null where the protocol has none (FP16). */
  contents: ContentsField | null;
  /** ONNX TensorProto.DataType code. */
  onnx: number;
}

/** Every protocol datatype infermesh serves, with onnxruntime type, size and contents field. */
export const DATATYPES = {
  BOOL: { ort: 'bool', bytes: 1, contents: 'bool_contents', onnx: 9 },
  UINT8: { ort: 'uint8', bytes: 1, contents: 'uint_contents', onnx: 2 },
  UINT16: { ort: 'uint16', bytes: 2, contents: 'uint_contents', onnx: 4 },
  UINT32: { ort: 'uint32', bytes: 4, contents: 'uint_contents', onnx: 12 },
  UINT64: { ort: 'uint64', bytes: 8, contents: 'uint64_contents', onnx: 13 },
  INT8: { ort: 'int8', bytes: 1, contents: 'int_contents', onnx: 3 },
  INT16: { ort: 'int16', bytes: 2, contents: 'int_contents', onnx: 5 },
  INT32: { ort: 'int32', bytes: 4, contents: 'int_contents', onnx: 6 },
  INT64: { ort: 'int64', bytes: 8, contents: 'int64_contents', onnx: 7 },
  FP16: { ort: 'float16', bytes: 2, contents: null, onnx: 10 },
  FP32: { ort: 'float32', bytes: 4, contents: 'fp32_contents', onnx: 1 },
  FP64: { ort: 'float64', bytes: 8, contents: 'fp64_contents', onnx: 11 },
  BYTES: { ort: 'string', bytes: 0, contents: 'bytes_contents', onnx: 8 },
} as const satisfies Record<string, DatatypeInfo>;

/** A protocol datatype name (FP32, INT64, BYTES, ...). */
export type Datatype = keyof typeof DATATYPES;

/** True when `s` names a datatype infermesh serves. */
export function isDatatype(s: string): s is Datatype {
  return Object.hasOwn(DATATYPES, s);
}

/** The protocol datatype of an ONNX element type code, or undefined for types we do not serve. */
export function datatypeOfOnnx(code: number): Datatype | undefined {
  return (Object.keys(DATATYPES) as Datatype[]).find((d) => DATATYPES[d].onnx === code);
}

/** The protocol datatype of an onnxruntime type name. */
export function datatypeOfOrt(ort: string): Datatype | undefined {
  return (Object.keys(DATATYPES) as Datatype[]).find((d) => DATATYPES[d].ort === ort);
}

/** The typed array (or string array) holding a tensor's elements. */
export type TensorData =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | BigUint64Array | BigInt64Array | Float32Array | Float64Array | string[];

/** A tensor on the host, ready for onnxruntime and cheap to move between threads. */
export interface HostTensor {
  type: OrtType;
  dims: number[];
  data: TensorData;
}

type NumericCtor =
  | Uint8ArrayConstructor | Int8ArrayConstructor | Uint16ArrayConstructor | Int16ArrayConstructor
  | Uint32ArrayConstructor | Int32ArrayConstructor | BigUint64ArrayConstructor | BigInt64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

const arrayCtor: Record<Exclude<OrtType, 'string'>, NumericCtor> = {
  bool: Uint8Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  float16: Uint16Array, float32: Float32Array, float64: Float64Array,
};

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** The largest dimension any tensor may have, whatever its element limit (onnxruntime's int32 sizes). */
const MAX_DIMENSION = 2 ** 31 - 1;

/**
 * Parses a protocol shape (int64 values as strings or numbers) into numbers, rejecting negative,
 * fractional or absurd dimensions, and products above `maxElements`. Each dimension is bounded on its
 * own too: once one is 0 the product says nothing about the rest ([0, 2^53-1] has no elements, but
 * onnxruntime fails on it).
 */
export function parseShape(tensor: string, shape: readonly (string | number)[], maxElements: number): number[] {
  const dims: number[] = [];
  const maxDimension = Math.min(maxElements, MAX_DIMENSION);
  let count = 1;
  for (const raw of shape) {
    const d = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isSafeInteger(d) || d < 0) throw errors.invalidTensor(tensor, `shape [${shape.join(',')}] has an invalid dimension ${raw}`);
    if (d > maxDimension) throw errors.invalidTensor(tensor, `shape [${shape.join(',')}] has a dimension ${d} above the limit of ${maxDimension}`);
    count *= d;
    if (count > maxElements) throw errors.invalidTensor(tensor, `shape [${shape.join(',')}] has more than the limit of ${maxElements} elements`);
    dims.push(d);
  }
  return dims;
}

/**
 * Refuses a request whose BYTES elements, all tensors together, pass `limit`: each element costs a
 * string (and, in typed contents, a Buffer) however few bytes it takes on the wire.
 */
export function checkBytesElements(tensor: string, total: number, limit: number): void {
  if (total > limit) throw errors.invalidTensor(tensor, `the request's BYTES elements pass the limit of ${limit}`);
}

// fatal: invalid UTF-8 is refused, never replaced by U+FFFD; ignoreBOM: a leading U+FEFF is data.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * One BYTES element, `buf[start..end)`, as the string onnxruntime carries. onnxruntime-node passes
 * string tensors as JS strings and onnxruntime's C API ends each at a NUL, so exactly the elements
 * that are valid UTF-8 without NUL round-trip unchanged; any other is refused, naming the element.
 */
function bytesElement(tensor: string, index: number, buf: Buffer, start: number, end: number): string {
  if (start === end) return '';
  let ascii = true;
  for (let j = start; j < end; j++) {
    const b = buf[j]!;
    if (b === 0) throw errors.invalidTensor(tensor, `BYTES element ${index} has a NUL byte at ${j - start}; onnxruntime's string tensors cannot carry it`);
    if (b > 0x7f) ascii = false;
  }
  if (ascii) return buf.toString('latin1', start, end);
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    throw errors.invalidTensor(tensor, `BYTES element ${index} is not valid UTF-8; onnxruntime's string tensors cannot carry it`);
  }
}

/** Decodes BYTES raw form: each element a 4-byte little-endian length, then that many bytes. */
function decodeRawBytes(tensor: string, raw: Uint8Array, count: number): string[] {
  const buf = asBuffer(raw);
  const out: string[] = new Array(count);
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > buf.byteLength) throw errors.invalidTensor(tensor, `raw BYTES content holds fewer than the ${count} elements of its shape`);
    const len = buf.readUInt32LE(off);
    off += 4;
    if (len > buf.byteLength - off) throw errors.invalidTensor(tensor, `raw BYTES element ${i} runs past the end of the content`);
    out[i] = bytesElement(tensor, i, buf, off, off + len);
    off += len;
  }
  if (off !== buf.byteLength) throw errors.invalidTensor(tensor, `raw BYTES content has ${buf.byteLength - off} bytes beyond the ${count} elements of its shape`);
  return out;
}

/** Decodes a tensor given as raw bytes; copies into a fresh, aligned buffer the tensor owns. */
export function fromRaw(tensor: string, datatype: Datatype, dims: number[], raw: Uint8Array): HostTensor {
  const info = DATATYPES[datatype];
  const count = elementCount(dims);
  if (datatype === 'BYTES') return { type: info.ort, dims, data: decodeRawBytes(tensor, raw, count) };
  const expected = count * info.bytes;
  if (raw.byteLength !== expected) {
    throw errors.invalidTensor(tensor, `raw content has ${raw.byteLength} bytes, but shape [${dims.join(',')}] of ${datatype} needs ${expected}`);
  }
  const Ctor = arrayCtor[info.ort as Exclude<OrtType, 'string'>];
  const data = new Ctor(count);
  new Uint8Array(data.buffer).set(raw);
  if (datatype === 'BOOL') for (let i = 0; i < count; i++) if ((data as Uint8Array)[i]! > 1) (data as Uint8Array)[i] = 1;
  return { type: info.ort, dims, data };
}

/** Decodes a tensor given as typed contents. */
export function fromContents(tensor: string, datatype: Datatype, dims: number[], contents: InferTensorContentsOut): HostTensor {
  const info = DATATYPES[datatype];
  const count = elementCount(dims);
  if (info.contents === null) throw errors.invalidTensor(tensor, `${datatype} has no typed contents in the protocol; send it in raw_input_contents`);
  const values = contents[info.contents] as unknown[];
  for (const field of Object.keys(contents) as ContentsField[]) {
    if (field !== info.contents && Array.isArray(contents[field]) && (contents[field] as unknown[]).length > 0) {
      throw errors.invalidTensor(tensor, `datatype ${datatype} takes ${info.contents}, but ${field} is set`);
    }
  }
  if (values.length !== count) {
    throw errors.invalidTensor(tensor, `contents has ${values.length} elements, but shape [${dims.join(',')}] needs ${count}`);
  }
  if (datatype === 'BYTES') {
    const data: string[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const b = asBuffer(values[i] as Uint8Array);
      data[i] = bytesElement(tensor, i, b, 0, b.byteLength);
    }
    return { type: info.ort, dims, data };
  }
  const Ctor = arrayCtor[info.ort as Exclude<OrtType, 'string'>];
  let data: TensorData;
  if (Ctor === BigInt64Array || Ctor === BigUint64Array) {
    data = new Ctor(count);
    try {
      for (let i = 0; i < count; i++) (data as BigInt64Array)[i] = BigInt(values[i] as string);
    } catch {
      throw errors.invalidTensor(tensor, `contents holds a value that is not an integer`);
    }
  } else if (datatype === 'BOOL') {
    data = Uint8Array.from(values as boolean[], (b) => (b ? 1 : 0));
  } else {
    data = (Ctor as Float64ArrayConstructor).from(values as number[]);
    if (datatype !== 'FP32' && datatype !== 'FP64') {
      for (let i = 0; i < count; i++) {
        if ((data as Float64Array)[i] !== (values[i] as number)) {
          throw errors.invalidTensor(tensor, `contents value ${String(values[i])} at ${i} does not fit ${datatype}`);
        }
      }
    }
  }
  return { type: info.ort, dims, data };
}

/** Encodes BYTES elements (UTF-8) in raw form, a 4-byte little-endian length before each; one buffer, no copy per element. */
function encodeRawBytes(items: readonly string[]): Buffer {
  let total = 0;
  for (const s of items) total += 4 + (s.length === 0 ? 0 : Buffer.byteLength(s, 'utf8'));
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const s of items) {
    const len = s.length === 0 ? 0 : out.write(s, off + 4, 'utf8');
    out.writeUInt32LE(len, off);
    off += 4 + len;
  }
  return out;
}

/** A tensor's elements as raw protocol bytes (no copy for numeric types). */
export function toRaw(t: HostTensor): Buffer {
  if (Array.isArray(t.data)) return encodeRawBytes(t.data);
  const d = t.data as Exclude<TensorData, string[]>;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * A tensor's elements as typed protocol contents: the field that carries them and the run's own
 * array, never copied (lib/grpc/infer-answer writes them); undefined for FP16, which has none.
 */
export function toContents(datatype: Datatype, t: HostTensor): { field: ContentsField; data: TensorData } | undefined {
  const field = DATATYPES[datatype].contents;
  return field === null ? undefined : { field, data: t.data };
}

// FP16 travels as raw little-endian halves and is held as their bits in a Uint16Array (what
// onnxruntime takes on every Node line, see lib/ort.ts). Numbers are converted to and from halves
// with Float16Array where the runtime has it (Node 24+), by the same IEEE 754 rounding in
// software where it does not; test/unit/lib/float16.test.ts holds the two to each other.

type Float16ArrayLike = { from(values: ArrayLike<number>): ArrayBufferView; new (buffer: ArrayBufferLike, offset: number, length: number): ArrayLike<number> };
const Float16: Float16ArrayLike | undefined = (globalThis as { Float16Array?: Float16ArrayLike }).Float16Array;

/** `v` rounded to an integer, ties to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** The IEEE 754 binary16 bits nearest to `x` (ties to even; NaN → the quiet NaN 0x7e00). */
export function halfBitsOf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // 65520 lies halfway between the largest half (65504) and 2^16; ties to even round it up to ∞.
  if (a >= 65520) return sign | 0x7c00;
  // Subnormal halves count in units of 2^-24; a carry into 1024 is the smallest normal, as it should be.
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  // a / 2^e is in [1, 2) and every step below is exact in binary64, so one rounding only.
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  return sign | ((e + 15) << 10) | m;
}

/** The number a binary16 bit pattern stands for (every NaN payload reads as NaN). */
export function halfValueOf(bits: number): number {
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  const s = bits & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Numbers as FP16 bits: Float16Array's conversion where the runtime has one, else halfBitsOf. */
export function halvesOf(values: ArrayLike<number>): Uint16Array {
  if (Float16) {
    const h = Float16.from(values);
    return new Uint16Array(h.buffer, h.byteOffset, values.length);
  }
  return Uint16Array.from(values, halfBitsOf);
}

/** FP16 bits as numbers: through a Float16Array view where the runtime has one, else halfValueOf. */
export function numbersOfHalves(bits: Uint16Array): number[] {
  if (Float16) return Array.from(new Float16(bits.buffer, bits.byteOffset, bits.length));
  return Array.from(bits, halfValueOf);
}

