// Reads an ONNX model's signature (graph inputs and outputs) from a file without loading it:
// a small protobuf walker that reads only the fields it needs and seeks past the rest, so a
// multi-gigabyte artifact costs a few kilobytes of memory. Used by the registry to validate pushes.
import fs from 'node:fs/promises';
import { datatypeOfOnnx, type Datatype } from './tensor';

/** One graph input or output: protocol datatype and shape, -1 for dynamic dimensions. */
export interface TensorSignature {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** A model's signature, read from its ONNX graph. */
export interface OnnxSignature {
  irVersion: number;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** Thrown when a file is not an ONNX model infermesh can serve. */
export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Positional reads over a file handle with a read-ahead buffer. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  constructor(private readonly fh: fs.FileHandle, readonly size: number) {}

  private async ensure(pos: number, n: number): Promise<void> {
    if (pos >= this.bufStart && pos + n <= this.bufStart + this.buf.length) return;
    const want = Math.max(n, 64 * 1024);
    const buf = Buffer.alloc(Math.min(want, this.size - pos));
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, pos);
    if (bytesRead < n) throw new OnnxFormatError('truncated file');
    this.buf = buf.subarray(0, bytesRead);
    this.bufStart = pos;
  }

  async byte(pos: number): Promise<number> {
    await this.ensure(pos, 1);
    return this.buf[pos - this.bufStart]!;
  }

  async bytes(pos: number, n: number): Promise<Buffer> {
    if (n > 1024 * 1024) throw new OnnxFormatError('string field too long');
    await this.ensure(pos, n);
    return Buffer.from(this.buf.subarray(pos - this.bufStart, pos - this.bufStart + n));
  }

  /** Reads a varint at pos; returns [value, next position]. Values above 2^53 are rejected. */
  async varint(pos: number, end: number): Promise<[number, number]> {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new OnnxFormatError('truncated varint');
      const b = await this.byte(pos++);
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new OnnxFormatError('varint out of range');
        return [result, pos];
      }
      mul *= 128;
    }
    throw new OnnxFormatError('malformed varint');
  }
}

interface Field {
  num: number;
  wire: number;
  /** Varint value (wire 0) or payload length (wire 2). */
  value: number;
  /** Start of the payload (wire 2). */
  start: number;
  /** Position after the field. */
  next: number;
}

/** Iterates the fields of a message occupying [start, end). */
async function* fields(c: Cursor, start: number, end: number): AsyncGenerator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, p] = await c.varint(pos, end);
    const num = Math.floor(tag / 8);
    const wire = tag & 7;
    if (num === 0) throw new OnnxFormatError('field number 0');
    let value = 0;
    let next: number;
    let payload = p;
    if (wire === WIRE_VARINT) [value, next] = await c.varint(p, end);
    else if (wire === WIRE_I64) next = p + 8;
    else if (wire === WIRE_I32) next = p + 4;
    else if (wire === WIRE_LEN) {
      [value, payload] = await c.varint(p, end);
      next = payload + value;
    } else throw new OnnxFormatError(`unsupported wire type ${wire}`);
    if (next > end) throw new OnnxFormatError('field runs past its message');
    yield { num, wire, value, start: payload, next };
    pos = next;
  }
}

async function str(c: Cursor, f: Field): Promise<string> {
  if (f.wire !== WIRE_LEN) throw new OnnxFormatError('expected a string');
  return (await c.bytes(f.start, f.value)).toString('utf8');
}

async function readDim(c: Cursor, f: Field): Promise<number> {
  for await (const d of fields(c, f.start, f.next)) {
    // dim_value (int64, may be encoded as a varint that is negative: treat as dynamic)
    if (d.num === 1 && d.wire === WIRE_VARINT) return d.value > 2 ** 31 ? -1 : d.value;
  }
  return -1; // dim_param or unset: dynamic
}

async function readValueInfo(c: Cursor, f: Field): Promise<TensorSignature> {
  let name = '';
  let elemType = -1;
  let shape: number[] = [];
  let hasShape = false;
  for await (const v of fields(c, f.start, f.next)) {
    if (v.num === 1) name = await str(c, v);
    else if (v.num === 2 && v.wire === WIRE_LEN) {
      for await (const t of fields(c, v.start, v.next)) {
        if (t.num !== 1 || t.wire !== WIRE_LEN) continue; // only tensor_type is served
        for await (const tt of fields(c, t.start, t.next)) {
          if (tt.num === 1 && tt.wire === WIRE_VARINT) elemType = tt.value;
          else if (tt.num === 2 && tt.wire === WIRE_LEN) {
            hasShape = true;
            shape = [];
            for await (const dim of fields(c, tt.start, tt.next)) if (dim.num === 1) shape.push(await readDim(c, dim));
          }
        }
      }
    }
  }
  if (!name) throw new OnnxFormatError('a graph input or output has no name');
  const datatype = datatypeOfOnnx(elemType);
  if (!datatype) throw new OnnxFormatError(`tensor '${name}' has an element type (${elemType}) infermesh cannot serve`);
  return { name, datatype, shape: hasShape ? shape : [] };
}

async function initializerName(c: Cursor, f: Field): Promise<string | undefined> {
  for await (const t of fields(c, f.start, f.next)) if (t.num === 8) return str(c, t);
  return undefined;
}

/** Reads the signature of the ONNX model at `file`; throws OnnxFormatError when it is not one. */
export async function readOnnxSignature(file: string): Promise<OnnxSignature> {
  const fh = await fs.open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size === 0) throw new OnnxFormatError('empty file');
    const c = new Cursor(fh, size);
    let irVersion = 0;
    let graph: Field | undefined;
    for await (const f of fields(c, 0, size)) {
      if (f.num === 1 && f.wire === WIRE_VARINT) irVersion = f.value;
      else if (f.num === 7 && f.wire === WIRE_LEN) graph = f;
    }
    if (irVersion === 0) throw new OnnxFormatError('no ir_version: not an ONNX model');
    if (!graph) throw new OnnxFormatError('no graph: not an ONNX model');
    const inputs: TensorSignature[] = [];
    const outputs: TensorSignature[] = [];
    const initializers = new Set<string>();
    for await (const g of fields(c, graph.start, graph.next)) {
      if (g.num === 11 && g.wire === WIRE_LEN) inputs.push(await readValueInfo(c, g));
      else if (g.num === 12 && g.wire === WIRE_LEN) outputs.push(await readValueInfo(c, g));
      else if (g.num === 5 && g.wire === WIRE_LEN) {
        const n = await initializerName(c, g);
        if (n) initializers.add(n);
      }
    }
    // Before IR 4, initializers were also listed as inputs; they are not fed by clients.
    const fed = inputs.filter((i) => !initializers.has(i.name));
    if (fed.length === 0) throw new OnnxFormatError('the graph has no inputs');
    if (outputs.length === 0) throw new OnnxFormatError('the graph has no outputs');
    return { irVersion, inputs: fed, outputs };
  } finally {
    await fh.close();
  }
}
