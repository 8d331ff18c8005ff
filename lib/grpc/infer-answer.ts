// A pod's answer to ModelInfer, written by hand. protobufjs writes each element of a repeated
// number as an operation queued on its own, after the answer was copied out of onnxruntime's typed
// array into a JavaScript array (INT64s into strings): for an answer of millions of typed elements,
// seconds of the pod's one thread, while its health checks and every other model's requests waited
// and routers ejected it (and retried the call on the next pod, which froze alike). Here the
// outputs stay the arrays onnxruntime made: FP32 and FP64 are copied as they are (packed fixed32
// and fixed64 are little-endian IEEE 754, as the arrays are on a little-endian machine), integers
// are written as varints in one loop, strings straight from the run's; and the answer's size is
// known, and refused past the limit, before anything is built. The stream answer wraps those bytes
// as they are (streamAnswerBytes), at the pod and at the router alike.
import os from 'node:os';
import { MeshError, ErrorCode } from '../errors';
import { protos } from './proto';
import { FINAL_RESPONSE } from './stream-answer';
import type { ContentsField, TensorData } from '../tensor';

/** One output of an answer: its elements in the typed form (`contents`), or none when the answer is raw. */
export interface AnswerTensor {
  name: string;
  datatype: string;
  shape: readonly number[];
  contents?: { field: ContentsField; data: TensorData };
}

/** ModelInferResponse as a pod builds it (no parameters: a stream answer adds its own). */
export interface InferAnswer {
  model_name: string;
  model_version: string;
  id: string;
  outputs: AnswerTensor[];
  raw_output_contents: Buffer[];
}

const WIRE_LEN = 2;
const tag = (field: number, wire: number) => (field << 3) | wire;

/** InferTensorContents' field numbers. */
const CONTENTS_FIELD: Readonly<Record<ContentsField, number>> = {
  bool_contents: 1, int_contents: 2, int64_contents: 3, uint_contents: 4, uint64_contents: 5,
  fp32_contents: 6, fp64_contents: 7, bytes_contents: 8,
};

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Bytes of an unsigned 32-bit varint. */
function size32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x20_0000 ? 3 : v < 0x1000_0000 ? 4 : 5;
}

/** Bytes of a 64-bit varint given as its low and high unsigned 32-bit halves. */
function size64(lo: number, hi: number): number {
  if (hi === 0) return size32(lo);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Bytes of a length-delimited field of `n` bytes (its tag, length and body). */
const delimited = (n: number) => 1 + size32(n) + n;

/** The 32-bit halves of a 64-bit integer array (little-endian: low half first). */
function halves(d: BigInt64Array | BigUint64Array): Uint32Array {
  return new Uint32Array(d.buffer, d.byteOffset, d.length * 2);
}

/** Bytes of a packed field's body: the elements of `data` as `field` carries them. */
function packedSize(field: ContentsField, data: Exclude<TensorData, string[]>): number {
  switch (field) {
    case 'fp32_contents': return data.length * 4;
    case 'fp64_contents': return data.length * 8;
    case 'bool_contents': return data.length;
    case 'int_contents': {
      // int32 as a varint: a negative one takes ten bytes (sign-extended to 64 bits).
      const d = data as Int8Array | Int16Array | Int32Array;
      let n = 0;
      for (let i = 0; i < d.length; i++) n += d[i]! < 0 ? 10 : size32(d[i]!);
      return n;
    }
    case 'uint_contents': {
      const d = data as Uint8Array | Uint16Array | Uint32Array;
      let n = 0;
      for (let i = 0; i < d.length; i++) n += size32(d[i]!);
      return n;
    }
    case 'int64_contents': case 'uint64_contents': {
      const h = halves(data as BigInt64Array | BigUint64Array);
      let n = 0;
      for (let i = 0; i < h.length; i += 2) n += size64(h[i + (LITTLE_ENDIAN ? 0 : 1)]!, h[i + (LITTLE_ENDIAN ? 1 : 0)]!);
      return n;
    }
    default:
      throw new Error(`${field} is not packed`);
  }
}

/** Writes into a buffer of the answer's exact size. */
class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint32(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  varint64(lo: number, hi: number): void {
    const buf = this.buf;
    while (hi !== 0 || lo >= 0x80) {
      buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[this.pos++] = lo;
  }

  string(field: number, s: string, bytes: number): void {
    this.byte(tag(field, WIRE_LEN));
    this.varint32(bytes);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  bytes(field: number, b: Uint8Array): void {
    this.byte(tag(field, WIRE_LEN));
    this.varint32(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A packed field's elements (its body, `size` bytes known). */
  packed(field: ContentsField, data: Exclude<TensorData, string[]>): void {
    const buf = this.buf;
    switch (field) {
      case 'fp32_contents': case 'fp64_contents': {
        const width = field === 'fp32_contents' ? 4 : 8;
        if (LITTLE_ENDIAN) {
          buf.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), this.pos);
          this.pos += data.byteLength;
        } else {
          for (let i = 0; i < data.length; i++, this.pos += width) {
            if (width === 4) buf.writeFloatLE(data[i] as number, this.pos);
            else buf.writeDoubleLE(data[i] as number, this.pos);
          }
        }
        return;
      }
      case 'bool_contents':
        for (let i = 0; i < data.length; i++) buf[this.pos++] = data[i] === 0 ? 0 : 1;
        return;
      case 'int_contents': {
        const d = data as Int8Array | Int16Array | Int32Array;
        for (let i = 0; i < d.length; i++) {
          const v = d[i]!;
          if (v >= 0) this.varint32(v);
          else this.varint64(v >>> 0, 0xffff_ffff);
        }
        return;
      }
      case 'uint_contents': {
        const d = data as Uint8Array | Uint16Array | Uint32Array;
        for (let i = 0; i < d.length; i++) this.varint32(d[i]!);
        return;
      }
      case 'int64_contents': case 'uint64_contents': {
        const h = halves(data as BigInt64Array | BigUint64Array);
        const lo = LITTLE_ENDIAN ? 0 : 1;
        for (let i = 0; i < h.length; i += 2) this.varint64(h[i + lo]!, h[i + 1 - lo]!);
        return;
      }
      default:
        throw new Error(`${field} is not packed`);
    }
  }
}

/** What one output's InferOutputTensor takes, measured once and written after. */
interface Measured {
  name: number;
  datatype: number;
  shape: number;
  /** The contents message's body, and its one field's body (packed) or each string's bytes. */
  contents: number;
  field: number;
  strings: number[] | undefined;
  body: number;
}

function measure(t: AnswerTensor): Measured {
  const name = Buffer.byteLength(t.name, 'utf8');
  const datatype = Buffer.byteLength(t.datatype, 'utf8');
  let shape = 0;
  for (const d of t.shape) shape += size64(d >>> 0, Math.floor(d / 0x1_0000_0000) >>> 0);
  let contents = 0;
  let field = 0;
  let strings: number[] | undefined;
  const c = t.contents;
  if (c) {
    if (Array.isArray(c.data)) {
      strings = c.data.map((s) => Buffer.byteLength(s, 'utf8'));
      for (const n of strings) contents += delimited(n);
    } else {
      field = packedSize(c.field, c.data);
      if (field > 0) contents = delimited(field);
    }
  }
  const body = (name ? delimited(name) : 0) + (datatype ? delimited(datatype) : 0) + (shape ? delimited(shape) : 0) + (c ? delimited(contents) : 0);
  return { name, datatype, shape, contents, field, strings, body };
}

/**
 * The bytes of ModelInferResponse `a`; `extra`, already encoded ModelInferResponse fields, is
 * appended (protobuf merges fields wherever they come). Past `maxBytes` RESOURCE_EXHAUSTED, before
 * any of it is built.
 */
export function encodeInferAnswer(a: InferAnswer, maxBytes: number, extra?: Uint8Array): Buffer {
  const head = [a.model_name, a.model_version, a.id].map((s) => Buffer.byteLength(s, 'utf8'));
  const outputs = a.outputs.map(measure);
  let size = extra?.length ?? 0;
  for (const n of head) if (n) size += delimited(n);
  for (const m of outputs) size += delimited(m.body);
  for (const r of a.raw_output_contents) size += delimited(r.length);
  if (size > maxBytes) throw new MeshError(ErrorCode.Overloaded, `response of ${size} bytes is larger than the limit of ${maxBytes} bytes`);

  const out = new Out(Buffer.allocUnsafe(size));
  [a.model_name, a.model_version, a.id].forEach((s, i) => {
    if (head[i]) out.string(i + 1, s, head[i]!);
  });
  a.outputs.forEach((t, i) => {
    const m = outputs[i]!;
    out.byte(tag(5, WIRE_LEN));
    out.varint32(m.body);
    if (m.name) out.string(1, t.name, m.name);
    if (m.datatype) out.string(2, t.datatype, m.datatype);
    if (m.shape) {
      out.byte(tag(3, WIRE_LEN));
      out.varint32(m.shape);
      for (const d of t.shape) out.varint64(d >>> 0, Math.floor(d / 0x1_0000_0000) >>> 0);
    }
    const c = t.contents;
    if (!c) return;
    out.byte(tag(5, WIRE_LEN));
    out.varint32(m.contents);
    const number = CONTENTS_FIELD[c.field];
    if (Array.isArray(c.data)) {
      c.data.forEach((s, j) => out.string(number, s, m.strings![j]!));
    } else if (m.field > 0) {
      out.byte(tag(number, WIRE_LEN));
      out.varint32(m.field);
      out.packed(c.field, c.data);
    }
  });
  for (const r of a.raw_output_contents) out.bytes(6, r);
  if (extra) out.buf.set(extra, out.pos);
  return out.buf;
}

let finalParameter: Buffer | undefined;

/**
 * ModelStreamInferResponse carrying the encoded ModelInferResponse `answer`, marked final
 * (stream-answer.ts): its bytes wrapped as they are, with Triton's parameter appended.
 */
export function streamAnswerBytes(answer: Uint8Array): Buffer {
  finalParameter ??= protos().inference.GRPCInferenceService.service.ModelInfer.responseSerialize({ parameters: FINAL_RESPONSE });
  const inner = answer.length + finalParameter.length;
  const out = new Out(Buffer.allocUnsafe(delimited(inner)));
  out.byte(tag(2, WIRE_LEN));
  out.varint32(inner);
  out.buf.set(answer, out.pos);
  out.buf.set(finalParameter, out.pos + answer.length);
  return out.buf;
}
