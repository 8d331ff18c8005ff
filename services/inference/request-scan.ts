// A first look at an encoded ModelInferRequest before protobufjs decodes it. protobufjs builds an
// object for every entry it reads, so a 66 MB request of 33 million empty `inputs` costs gigabytes
// of heap; this scan costs a pass over the top-level fields (and over the headers of each input
// tensor, where the shape, parameters and BYTES elements are) and refuses, with INVALID_ARGUMENT,
// a request that is malformed or holds more of them than the limits allow. Both of the pod's paths
// call it: the front door (services/inference/front-door.ts) and the grpc-js deserializer
// (grpc-handlers.ts, inferenceServiceDefinition).
import type { Config } from '../../lib/config';
import { errors, messageOf } from '../../lib/errors';
import { checkBytesElements } from '../../lib/tensor';

/** How much one request may hold, counted before it is decoded. */
export interface RequestScanLimits {
  /** Inputs, requested outputs and raw_input_contents entries, each. */
  maxTensors: number;
  /** Parameters of the request, its inputs and its outputs, together. */
  maxParameters: number;
  /** Dimensions of one input's shape. */
  maxRank: number;
  /** BYTES elements given in typed contents (bytes_contents), all inputs together. */
  maxBytesElements: number;
}

/** The scan limits of a pod's configuration. */
export function scanLimitsOf(config: Pick<Config, 'maxRequestTensors' | 'maxRequestParameters' | 'maxTensorRank' | 'maxBytesElements'>): RequestScanLimits {
  return {
    maxTensors: config.maxRequestTensors,
    maxParameters: config.maxRequestParameters,
    maxRank: config.maxTensorRank,
    maxBytesElements: config.maxBytesElements,
  };
}

/** What a scan counted (tests read it; the pod only needs the scan to pass). */
export interface ScanCounts {
  inputs: number;
  outputs: number;
  rawContents: number;
  parameters: number;
  bytesElements: number;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const malformed = (problem: string) => errors.invalidArgument(`malformed request: ${problem}`);

/** A cursor over protobuf bytes; every read is checked against `end`. */
class Cursor {
  constructor(readonly buf: Uint8Array, public pos: number, readonly end: number) {}

  /** A varint; values above 2^53 lose precision, which no length or tag here can reach unrefused. */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** A length-delimited field's bounds; the cursor moves past it. */
  delimited(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw malformed(`a field of ${len} bytes runs past the end of its message`);
    this.pos = start + len;
    return [start, this.pos];
  }

  /** Skips a field's value of wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT: this.varint(); return;
      case WIRE_FIXED64: this.advance(8); return;
      case WIRE_LEN: this.delimited(); return;
      case WIRE_FIXED32: this.advance(4); return;
      default: throw malformed(`wire type ${wire}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw malformed('a fixed-size field runs past the end of its message');
    this.pos += n;
  }

  /** The next tag as [field number, wire type]. */
  tag(): [number, number] {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) throw malformed('field number 0');
    return [field, tag % 8];
  }
}

function expectWire(what: string, wire: number, ...allowed: number[]): void {
  if (!allowed.includes(wire)) throw malformed(`${what} has wire type ${wire}`);
}

/** Varints in bytes [start, end) of a packed field: the bytes that end one. */
function packedVarints(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if (buf[i]! < 0x80) n++;
  if (end > start && buf[end - 1]! >= 0x80) throw malformed('truncated varint in a packed field');
  return n;
}

/**
 * Scans an encoded ModelInferRequest; throws INVALID_ARGUMENT when it is malformed or holds more
 * tensors, parameters, dimensions or BYTES elements than `limits` allow.
 */
export function scanModelInferRequest(bytes: Uint8Array, limits: RequestScanLimits): ScanCounts {
  const counts: ScanCounts = { inputs: 0, outputs: 0, rawContents: 0, parameters: 0, bytesElements: 0 };
  const addParameter = () => {
    if (++counts.parameters > limits.maxParameters) throw errors.invalidArgument(`request has more than the limit of ${limits.maxParameters} parameters`);
  };
  const c = new Cursor(bytes, 0, bytes.length);
  while (c.pos < c.end) {
    const [field, wire] = c.tag();
    switch (field) {
      case 1: case 2: case 3: // model_name, model_version, id
        expectWire(`field ${field}`, wire, WIRE_LEN);
        c.delimited();
        break;
      case 4: // parameters
        expectWire('parameters', wire, WIRE_LEN);
        c.delimited();
        addParameter();
        break;
      case 5: { // inputs
        expectWire('inputs', wire, WIRE_LEN);
        if (++counts.inputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} inputs`);
        const [start, end] = c.delimited();
        scanInput(new Cursor(bytes, start, end), counts.inputs - 1, limits, counts, addParameter);
        break;
      }
      case 6: { // outputs
        expectWire('outputs', wire, WIRE_LEN);
        if (++counts.outputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} outputs`);
        const [start, end] = c.delimited();
        const o = new Cursor(bytes, start, end);
        while (o.pos < o.end) {
          const [f, w] = o.tag();
          if (f === 1 || f === 2) expectWire(`outputs[${counts.outputs - 1}] field ${f}`, w, WIRE_LEN);
          o.skip(w);
          if (f === 2) addParameter();
        }
        break;
      }
      case 7: // raw_input_contents
        expectWire('raw_input_contents', wire, WIRE_LEN);
        if (++counts.rawContents > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} raw_input_contents`);
        c.delimited();
        break;
      default: // unknown fields: protobufjs skips them without keeping anything
        c.skip(wire);
    }
  }
  return counts;
}

/** One InferInputTensor: its shape's rank, its parameters and its typed BYTES elements. */
function scanInput(c: Cursor, index: number, limits: RequestScanLimits, counts: ScanCounts, addParameter: () => void): void {
  const what = `inputs[${index}]`;
  let name = what;
  let rank = 0;
  while (c.pos < c.end) {
    const [field, wire] = c.tag();
    switch (field) {
      case 1: case 2: { // name, datatype
        expectWire(`${what} field ${field}`, wire, WIRE_LEN);
        const [start, end] = c.delimited();
        // Errors name the tensor once its name is known (at most maxTensors short strings).
        if (field === 1) name = Buffer.from(c.buf.buffer, c.buf.byteOffset + start, end - start).toString('utf8');
        break;
      }
      case 3: { // shape: repeated int64, packed or not
        expectWire(`${what} shape`, wire, WIRE_LEN, WIRE_VARINT);
        if (wire === WIRE_VARINT) {
          c.varint();
          rank++;
        } else {
          const [start, end] = c.delimited();
          rank += packedVarints(c.buf, start, end);
        }
        if (rank > limits.maxRank) throw errors.invalidTensor(name, `shape has more than the limit of ${limits.maxRank} dimensions`);
        break;
      }
      case 4: // parameters
        expectWire(`${what} parameters`, wire, WIRE_LEN);
        c.delimited();
        addParameter();
        break;
      case 5: { // contents
        expectWire(`${what} contents`, wire, WIRE_LEN);
        const [start, end] = c.delimited();
        scanContents(new Cursor(c.buf, start, end), what, name, limits, counts);
        break;
      }
      default:
        c.skip(wire);
    }
  }
}

/** Wire types protobufjs accepts for each InferTensorContents field: packed (2) or one value. */
const CONTENTS_WIRE: Record<number, number> = { 1: WIRE_VARINT, 2: WIRE_VARINT, 3: WIRE_VARINT, 4: WIRE_VARINT, 5: WIRE_VARINT, 6: WIRE_FIXED32, 7: WIRE_FIXED64 };

function scanContents(c: Cursor, what: string, name: string, limits: RequestScanLimits, counts: ScanCounts): void {
  while (c.pos < c.end) {
    const [field, wire] = c.tag();
    if (field === 8) { // bytes_contents: one string per entry
      expectWire(`${what} bytes_contents`, wire, WIRE_LEN);
      c.delimited();
      checkBytesElements(name, ++counts.bytesElements, limits.maxBytesElements);
      continue;
    }
    const single = CONTENTS_WIRE[field];
    if (single !== undefined) expectWire(`${what} contents field ${field}`, wire, WIRE_LEN, single);
    c.skip(wire);
  }
}

/**
 * The one way the pod decodes a ModelInferRequest: scan, then let protobufjs (`decode`) build it;
 * a refused scan or a protobufjs error is INVALID_ARGUMENT.
 */
export function scanAndDecode<T>(bytes: Uint8Array, limits: RequestScanLimits, decode: (bytes: Buffer) => T): T {
  scanModelInferRequest(bytes, limits);
  try {
    return decode(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw malformed(messageOf(err));
  }
}
