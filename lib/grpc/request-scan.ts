// A first look at an encoded ModelInferRequest before protobufjs decodes it. protobufjs builds an
// object for every entry it reads, so a 66 MB request of 33 million empty `inputs` costs gigabytes
// of heap; this scan costs a pass over the top-level fields (and over the headers of each input
// tensor, where the shape, parameters and BYTES elements are) and refuses, with INVALID_ARGUMENT,
// a request that is malformed or holds more of them than the limits allow. Typed contents count too:
// protobufjs keeps every element of int64_contents and its kin as a JS value (about 85 bytes of heap
// for a packed int64 zero that takes one byte on the wire), so they are counted here, every
// element of every contents field, and bounded all inputs together. Every path that decodes
// one calls it: the pod's front door (services/inference/front-door.ts) and the grpc-js
// deserializers of the pods' and the router's servers (scanned-service.ts), whose ModelStreamInfer
// requests the router decodes to route them one by one.
import type { Config } from '../config';
import { errors, messageOf, type MeshError } from '../errors';
import { checkBytesElements } from '../tensor';

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
  /** Elements given in typed contents (every contents field, BYTES included), all inputs together. */
  maxElements: number;
}

/** The scan limits of a configuration (INFERMESH_MAX_REQUEST_TENSORS and friends). */
export function scanLimitsOf(config: Pick<Config, 'maxRequestTensors' | 'maxRequestParameters' | 'maxTensorRank' | 'maxBytesElements' | 'maxRequestElements'>): RequestScanLimits {
  return {
    maxTensors: config.maxRequestTensors,
    maxParameters: config.maxRequestParameters,
    maxRank: config.maxTensorRank,
    maxBytesElements: config.maxBytesElements,
    maxElements: config.maxRequestElements,
  };
}

/** What a scan counted (tests read it; the pod only needs the scan to pass). */
export interface ScanCounts {
  inputs: number;
  outputs: number;
  rawContents: number;
  parameters: number;
  bytesElements: number;
  /** Elements of typed contents, all fields (bytes_contents too) of all inputs. */
  elements: number;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const NONE = -1;

const malformed = (problem: string) => errors.invalidArgument(`malformed request: ${problem}`);

/**
 * One pass over the bytes of a request. Reads are checked against the end of the message being
 * read; nothing is allocated per field (this runs on the hot path for every request).
 */
class Scanner {
  pos = 0;
  /** Field number and wire type of the last tag read. */
  field = 0;
  wire = 0;
  /** Bounds of the last length-delimited field read. */
  start = 0;
  readonly counts: ScanCounts = { inputs: 0, outputs: 0, rawContents: 0, parameters: 0, bytesElements: 0, elements: 0 };

  constructor(readonly buf: Uint8Array, readonly limits: RequestScanLimits) {}

  /** A varint; values above 2^53 lose precision, which no length or tag here can reach unrefused. */
  varint(end: number): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** The next tag, into `field` and `wire`; returns the field number. */
  tag(end: number): number {
    const tag = this.varint(end);
    this.field = Math.floor(tag / 8);
    this.wire = tag % 8;
    if (this.field === 0) throw malformed('field number 0');
    return this.field;
  }

  /** Skips a length-delimited field: its bounds are [start, pos). */
  delimited(end: number): void {
    const len = this.varint(end);
    if (len > end - this.pos) throw malformed(`a field of ${len} bytes runs past the end of its message`);
    this.start = this.pos;
    this.pos += len;
  }

  /** Skips the value of the field whose tag was just read. */
  skip(end: number): void {
    switch (this.wire) {
      case WIRE_VARINT: this.varint(end); return;
      case WIRE_FIXED64: this.advance(8, end); return;
      case WIRE_LEN: this.delimited(end); return;
      case WIRE_FIXED32: this.advance(4, end); return;
      default: throw malformed(`wire type ${this.wire}`);
    }
  }

  private advance(n: number, end: number): void {
    if (n > end - this.pos) throw malformed('a fixed-size field runs past the end of its message');
    this.pos += n;
  }

  /** Whether the field just read has wire type `a` or `b`. */
  wireIs(a: number, b = NONE): boolean {
    return this.wire === a || this.wire === b;
  }

  /** The refusal of a field of `what` with the wrong wire type. */
  badWire(what: string): MeshError {
    return malformed(`${what} has wire type ${this.wire}`);
  }

  addParameter(): void {
    if (++this.counts.parameters > this.limits.maxParameters) throw errors.invalidArgument(`request has more than the limit of ${this.limits.maxParameters} parameters`);
  }
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
  const s = new Scanner(bytes, limits);
  const counts = s.counts;
  const end = bytes.length;
  while (s.pos < end) {
    switch (s.tag(end)) {
      case 1: case 2: case 3: // model_name, model_version, id
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`field ${s.field}`);
        s.delimited(end);
        break;
      case 4: // parameters
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('parameters');
        s.delimited(end);
        s.addParameter();
        break;
      case 5: // inputs
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('inputs');
        if (++counts.inputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} inputs`);
        s.delimited(end);
        scanInput(s, s.start, s.pos, counts.inputs - 1);
        break;
      case 6: { // outputs
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('outputs');
        if (++counts.outputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} outputs`);
        s.delimited(end);
        const outputEnd = s.pos;
        s.pos = s.start;
        while (s.pos < outputEnd) {
          const field = s.tag(outputEnd);
          if ((field === 1 || field === 2) && !s.wireIs(WIRE_LEN)) throw s.badWire(`outputs[${counts.outputs - 1}] field ${field}`);
          s.skip(outputEnd);
          if (field === 2) s.addParameter();
        }
        break;
      }
      case 7: // raw_input_contents
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('raw_input_contents');
        if (++counts.rawContents > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} raw_input_contents`);
        s.delimited(end);
        break;
      default: // unknown fields: protobufjs skips them without keeping anything
        s.skip(end);
    }
  }
  return counts;
}

/** How errors call input `index`. */
const at = (index: number) => `inputs[${index}]`;

/** Input `index`'s name, read at [start, end), or its place when it has none (yet). */
function nameOf(buf: Uint8Array, start: number, end: number, index: number): string {
  return start < 0 ? at(index) : Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

/** One InferInputTensor in [start, end): its shape's rank, its parameters and its typed BYTES elements. */
function scanInput(s: Scanner, start: number, end: number, index: number): void {
  // Limit errors name the tensor once its name has been read (it usually comes first).
  let nameStart = -1;
  let nameEnd = -1;
  let rank = 0;
  s.pos = start;
  while (s.pos < end) {
    switch (s.tag(end)) {
      case 1: case 2: // name, datatype
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} field ${s.field}`);
        s.delimited(end);
        if (s.field === 1) {
          nameStart = s.start;
          nameEnd = s.pos;
        }
        break;
      case 3: // shape: repeated int64, packed or not
        if (!s.wireIs(WIRE_LEN, WIRE_VARINT)) throw s.badWire(`${at(index)} shape`);
        if (s.wire === WIRE_VARINT) {
          s.varint(end);
          rank++;
        } else {
          s.delimited(end);
          rank += packedVarints(s.buf, s.start, s.pos);
        }
        if (rank > s.limits.maxRank) throw errors.invalidTensor(nameOf(s.buf, nameStart, nameEnd, index), `shape has more than the limit of ${s.limits.maxRank} dimensions`);
        break;
      case 4: // parameters
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} parameters`);
        s.delimited(end);
        s.addParameter();
        break;
      case 5: { // contents
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} contents`);
        s.delimited(end);
        const contentsEnd = s.pos;
        s.pos = s.start;
        scanContents(s, contentsEnd, index, nameStart, nameEnd);
        break;
      }
      default:
        s.skip(end);
    }
  }
}

/**
 * Wire types protobufjs accepts for each InferTensorContents field but bytes_contents: packed (2) or
 * one value: bool, int, int64, uint and uint64_contents are varints, fp32 fixed32, fp64 fixed64.
 */
const CONTENTS_WIRE = [NONE, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_FIXED32, WIRE_FIXED64];

/** Elements of a packed contents field of wire type `single` in bytes [start, end). */
function packedElements(buf: Uint8Array, start: number, end: number, single: number, what: string): number {
  if (single === WIRE_VARINT) return packedVarints(buf, start, end);
  const size = single === WIRE_FIXED32 ? 4 : 8;
  // protobufjs would read the last, partial value past the field's end.
  if ((end - start) % size !== 0) throw malformed(`${what} has ${end - start} bytes, not a multiple of ${size}`);
  return (end - start) / size;
}

function scanContents(s: Scanner, end: number, index: number, nameStart: number, nameEnd: number): void {
  while (s.pos < end) {
    let n: number;
    if (s.tag(end) === 8) { // bytes_contents: one string per entry
      if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} bytes_contents`);
      s.delimited(end);
      const bytes = ++s.counts.bytesElements;
      if (bytes > s.limits.maxBytesElements) checkBytesElements(nameOf(s.buf, nameStart, nameEnd, index), bytes, s.limits.maxBytesElements);
      n = 1;
    } else {
      const single = s.field < CONTENTS_WIRE.length ? CONTENTS_WIRE[s.field]! : NONE;
      if (single !== NONE && !s.wireIs(WIRE_LEN, single)) throw s.badWire(`${at(index)} contents field ${s.field}`);
      s.skip(end);
      // Unknown fields protobufjs skips without keeping anything; known ones: one element per
      // unpacked entry, or as many as a packed one holds.
      n = single === NONE ? 0 : s.wire === WIRE_LEN ? packedElements(s.buf, s.start, s.pos, single, `${at(index)} contents field ${s.field}`) : 1;
    }
    if ((s.counts.elements += n) > s.limits.maxElements) {
      throw errors.invalidTensor(nameOf(s.buf, nameStart, nameEnd, index), `the request's typed contents pass the limit of ${s.limits.maxElements} elements (send large tensors in raw_input_contents)`);
    }
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
