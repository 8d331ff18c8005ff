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

  /**
   * A varint where protobufjs reads 64 bits (int64, uint64) or skips one (an unknown field); values
   * above 2^53 lose precision, which only the checks against 2^32 below see.
   */
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

  /**
   * A varint where protobufjs reads 32 bits (tags, lengths, int32, uint32, bool): it reads five
   * bytes and, when the fifth says more follow, steps over five more without looking at them. A
   * varint of 6 to 9 bytes ends elsewhere for it than for any other reader: refused, or the fields
   * after it would be other fields to protobufjs than to this scan (and to the router's peek).
   */
  varint32(end: number, what: string): number {
    const from = this.pos;
    const value = this.varint(end);
    const n = this.pos - from;
    if (n > 5 && n < 10) throw malformed(`${what} is a varint of ${n} bytes`);
    return value;
  }

  /**
   * The next tag, into `field` and `wire`; returns the field number. A tag of 2^32 or more is
   * another field to protobufjs (it keeps the low 32 bits), and to no reader a valid one.
   */
  tag(end: number): number {
    const tag = this.varint32(end, 'a tag');
    if (tag >= 2 ** 32) throw malformed('a tag above 32 bits');
    this.field = Math.floor(tag / 8);
    this.wire = tag % 8;
    if (this.field === 0) throw malformed('field number 0');
    return this.field;
  }

  /** Skips a length-delimited field: its bounds are [start, pos). */
  delimited(end: number): void {
    const len = this.varint32(end, 'a length');
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

/**
 * Varints in bytes [start, end) of a packed field: the bytes that end one. `bits` 32: protobufjs
 * reads each as Scanner.varint32 says, so one of 6 to 9 bytes is refused; any: one past 10 bytes.
 * `bool`: one of 2^32 or more is refused too (protobufjs would read it false, any other reader true).
 */
function packedVarints(buf: Uint8Array, start: number, end: number, bits: 32 | 64, bool = false): number {
  let n = 0;
  let run = 0;
  let high = false;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    // Byte 5 of a varint carries bits 28 to 34, later ones bits 35 on.
    if (bool && ((run === 4 && (b & 0x70) !== 0) || (run > 4 && (b & 0x7f) !== 0))) high = true;
    run++;
    if (b >= 0x80) continue;
    if (run > 10 || (bits === 32 && run > 5 && run < 10)) throw malformed(`a packed field holds a varint of ${run} bytes`);
    if (high) throw malformed('a packed bool above 32 bits');
    n++;
    run = 0;
  }
  if (run > 0) throw malformed('truncated varint in a packed field');
  return n;
}

/**
 * Scans an encoded ModelInferRequest; throws INVALID_ARGUMENT when it is malformed or holds more
 * tensors, parameters, dimensions or BYTES elements than `limits` allow.
 */
export function scanModelInferRequest(bytes: Uint8Array, limits: RequestScanLimits): ScanCounts {
  const s = new Scanner(bytes, limits);
  scanTop(s, true);
  return s.counts;
}

/** Where model_name, model_version and id lie in an encoded ModelInferRequest: [start, end), -1 when absent. */
export interface RoutingFields {
  name: [number, number];
  version: [number, number];
  id: [number, number];
}

const UNLIMITED: RequestScanLimits = { maxTensors: Infinity, maxParameters: Infinity, maxRank: Infinity, maxBytesElements: Infinity, maxElements: Infinity };

/**
 * The router's read of a ModelInferRequest it forwards untouched: model_name and model_version
 * (the last of each, as protobuf keeps), its top-level fields read by the same rules as the pod's
 * scan, so that the model the router authorizes and routes by is the one the pod's protobufjs
 * decodes. What is inside the tensors is the pod's to scan.
 */
export function routingFieldsOf(bytes: Uint8Array): RoutingFields {
  return scanTop(new Scanner(bytes, UNLIMITED), false);
}

/** The top level of a request; `deep`: into its tensors and parameters too. */
function scanTop(s: Scanner, deep: boolean): RoutingFields {
  const { counts, limits } = s;
  const end = s.buf.length;
  const fields: RoutingFields = { name: [-1, -1], version: [-1, -1], id: [-1, -1] };
  while (s.pos < end) {
    switch (s.tag(end)) {
      case 1: case 2: case 3: // model_name, model_version, id
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`field ${s.field}`);
        s.delimited(end);
        if (s.field === 1) fields.name = [s.start, s.pos];
        else if (s.field === 2) fields.version = [s.start, s.pos];
        else fields.id = [s.start, s.pos];
        break;
      case 4: // parameters
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('parameters');
        s.delimited(end);
        if (deep) scanParameter(s, 'parameters');
        break;
      case 5: // inputs
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('inputs');
        if (++counts.inputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} inputs`);
        s.delimited(end);
        if (deep) scanInput(s, s.start, s.pos, counts.inputs - 1);
        break;
      case 6: { // outputs
        if (!s.wireIs(WIRE_LEN)) throw s.badWire('outputs');
        if (++counts.outputs > limits.maxTensors) throw errors.invalidArgument(`request has more than the limit of ${limits.maxTensors} outputs`);
        s.delimited(end);
        if (!deep) break;
        const outputEnd = s.pos;
        s.pos = s.start;
        while (s.pos < outputEnd) {
          const field = s.tag(outputEnd);
          if ((field === 1 || field === 2) && !s.wireIs(WIRE_LEN)) throw s.badWire(`outputs[${counts.outputs - 1}] field ${field}`);
          s.skip(outputEnd);
          if (field === 2) scanParameter(s, `outputs[${counts.outputs - 1}] parameters`);
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
  return fields;
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
  let contents = false;
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
          rank += packedVarints(s.buf, s.start, s.pos, 64);
        }
        if (rank > s.limits.maxRank) throw errors.invalidTensor(nameOf(s.buf, nameStart, nameEnd, index), `shape has more than the limit of ${s.limits.maxRank} dimensions`);
        break;
      case 4: // parameters
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} parameters`);
        s.delimited(end);
        scanParameter(s, `${at(index)} parameters`);
        break;
      case 5: { // contents
        if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${at(index)} contents`);
        // Given twice, protobuf merges the two, protobufjs keeps the last (and builds each first).
        if (contents) throw malformed(`${at(index)} has contents more than once`);
        contents = true;
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
/** The contents fields protobufjs reads as 32-bit varints: bool, int and uint_contents. */
const CONTENTS_32 = [false, true, true, false, true, false, false, false];

/**
 * One parameter entry (a map entry: key = 1, value = 2, an InferParameter) whose bytes are
 * [start, pos) of the field just read; the scan then goes on after it. protobufjs reads every
 * known field whatever its wire type says, so each must have its own: a bool_param read as a
 * length, or a key as a varint, would make the fields after it others to protobufjs.
 */
function scanParameter(s: Scanner, what: string): void {
  s.addParameter();
  const after = s.pos;
  const end = s.pos;
  s.pos = s.start;
  let key = false;
  let value = false;
  while (s.pos < end) {
    const field = s.tag(end);
    // A key or a value given twice: protobufjs keeps the last value where protobuf merges them.
    if ((field === 1 && key) || (field === 2 && value)) throw malformed(`${what} entry has its ${field === 1 ? 'key' : 'value'} more than once`);
    if (field === 1) {
      if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${what} key`);
      s.delimited(end);
      key = true;
    } else if (field === 2) {
      if (!s.wireIs(WIRE_LEN)) throw s.badWire(`${what} value`);
      s.delimited(end);
      value = true;
      const valueEnd = s.pos;
      s.pos = s.start;
      let choices = 0;
      while (s.pos < valueEnd) {
        // bool_param, int64_param, string_param, double_param, uint64_param: one of them (a oneof,
        // which protobufjs answers by field order where protobuf takes the last on the wire).
        const choice = s.tag(valueEnd);
        const wire = choice === 1 || choice === 2 || choice === 5 ? WIRE_VARINT : choice === 3 ? WIRE_LEN : choice === 4 ? WIRE_FIXED64 : NONE;
        if (wire !== NONE && !s.wireIs(wire)) throw s.badWire(`${what} value field ${choice}`);
        if (wire !== NONE && ++choices > 1) throw malformed(`${what} value sets more than one of its choices`);
        if (choice === 1) {
          // protobufjs keeps the low 32 bits of a bool: 2^32 would be false to it, true to others.
          if (s.varint32(valueEnd, `${what} bool_param`) >= 2 ** 32) throw malformed(`${what} bool_param is above 32 bits`);
        } else s.skip(valueEnd);
      }
    } else s.skip(end);
  }
  // protobufjs would make the entry's value null, which the request's reader cannot take.
  if (!value) throw malformed(`${what} entry has no value`);
  s.pos = after;
}

/** Elements of a packed contents field of wire type `single` in bytes [start, end). */
function packedElements(buf: Uint8Array, start: number, end: number, single: number, what: string, bits: 32 | 64, bool: boolean): number {
  if (single === WIRE_VARINT) return packedVarints(buf, start, end, bits, bool);
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
      const bits = s.field < CONTENTS_32.length && CONTENTS_32[s.field]! ? 32 : 64;
      const bool = s.field === 1;
      if (single !== NONE && s.wire === WIRE_VARINT && bits === 32) {
        if (s.varint32(end, `${at(index)} contents field ${s.field}`) >= 2 ** 32 && bool) throw malformed(`${at(index)} bool_contents above 32 bits`);
      } else s.skip(end);
      // Unknown fields protobufjs skips without keeping anything; known ones: one element per
      // unpacked entry, or as many as a packed one holds.
      n = single === NONE ? 0 : s.wire === WIRE_LEN ? packedElements(s.buf, s.start, s.pos, single, `${at(index)} contents field ${s.field}`, bits, bool) : 1;
    }
    if ((s.counts.elements += n) > s.limits.maxElements) {
      throw errors.invalidTensor(nameOf(s.buf, nameStart, nameEnd, index), `the request's typed contents pass the limit of ${s.limits.maxElements} elements (send large tensors in raw_input_contents)`);
    }
  }
}

/** What scanAndDecode compares of a decoded request with its scan. */
interface DecodedRequest {
  model_name?: string;
  model_version?: string;
  inputs?: readonly unknown[];
  outputs?: readonly unknown[];
  raw_input_contents?: readonly unknown[];
}

/**
 * The one way the pod decodes a ModelInferRequest: scan, then let protobufjs (`decode`) build it;
 * a refused scan or a protobufjs error is INVALID_ARGUMENT. The scan reads fields as protobufjs
 * does; should the two ever read a request otherwise (the model it names, the tensors it holds),
 * the request is refused rather than run as what the router did not authorize.
 */
export function scanAndDecode<T extends DecodedRequest>(bytes: Uint8Array, limits: RequestScanLimits, decode: (bytes: Buffer) => T): T {
  const s = new Scanner(bytes, limits);
  const fields = scanTop(s, true);
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let req: T;
  try {
    req = decode(buf);
  } catch (err) {
    throw malformed(messageOf(err));
  }
  const text = ([from, to]: [number, number]) => (from < 0 ? '' : buf.toString('utf8', from, to));
  const c = s.counts;
  if ((req.model_name ?? '') !== text(fields.name) || (req.model_version ?? '') !== text(fields.version)
    || (req.inputs?.length ?? 0) !== c.inputs || (req.outputs?.length ?? 0) !== c.outputs || (req.raw_input_contents?.length ?? 0) !== c.rawContents) {
    throw malformed('its fields read two ways');
  }
  return req;
}
