// The Open Inference Protocol's HTTP/REST inference body ⇄ its gRPC messages. A request, in the
// spec's JSON tensor form or with Triton's binary tensor data extension, becomes a
// ModelInferRequest whose every input travels as raw little-endian bytes (raw_input_contents), as
// a gRPC client would send it: the pod never sees JSON. A ModelInferResponse becomes JSON, each
// output written as JSON data or as binary data after the JSON header, as the request asked.
//
// Every value is checked on the way in and never changed: an integer out of its datatype's range,
// a float beyond its (1e400 too, which JSON.parse makes infinite), a number where a boolean
// belongs, an unpaired surrogate in a BYTES string, or a 64-bit integer JSON cannot carry exactly
// (beyond 2^53) is refused naming the tensor. Non-finite floats, which JSON has no literal for, are
// written and read as the strings "NaN", "Infinity" and "-Infinity".
// No sockets here.
import { isUtf8 } from 'node:buffer';
import { settings } from '../config';
import { errors, ErrorCode, MeshError } from '../errors';
import type { InferParameter__Output as InferParameterOut } from '../grpc/generated/inference/InferParameter';
import type { ModelInferRequest } from '../grpc/generated/inference/ModelInferRequest';
import type { ModelInferResponse__Output as ModelInferResponseOut } from '../grpc/generated/inference/ModelInferResponse';
import { checkBytesElements, DATATYPES, elementCount, halfBitsOf, isDatatype, numbersOfHalves, parseShape, type Datatype } from '../tensor';

/** The header that gives the JSON part's length when binary tensor data follows it (both ways). */
export const INFERENCE_HEADER_LENGTH = 'inference-header-content-length';

/** Longest tensor name taken (ONNX names are identifiers; an error repeats the name whole). */
const MAX_NAME_CHARS = 1024;

/** Parameters of the binary extension, read here and never passed on to the pod. */
const BINARY_DATA = 'binary_data';
const BINARY_DATA_SIZE = 'binary_data_size';
const BINARY_DATA_OUTPUT = 'binary_data_output';

/** Bounds on a request (the same limits the gRPC door's scan applies, lib/grpc/request-scan.ts). */
export interface RestInferLimits {
  /** Inputs and requested outputs, each. */
  maxTensors: number;
  /** Parameters of the request and of each tensor, each. */
  maxParameters: number;
  /** Dimensions of a shape. */
  maxRank: number;
  /** Elements of one tensor. */
  maxElements: number;
  /**
   * BYTES elements of the request, all inputs together, counted from their shapes before any is
   * converted (INFERMESH_MAX_BYTES_ELEMENTS, as the pod counts them); default that setting's, 1 Mi.
   */
  maxBytesElements?: number;
  /**
   * Bytes of the request's tensors as raw contents, all inputs together, counted before each is
   * made: the gRPC message they go in may be no larger (INFERMESH_MAX_MESSAGE_BYTES); default that
   * setting's, 64 MiB. Beyond it MessageTooLarge.
   */
  maxMessageBytes?: number;
}

/**
 * A request whose tensors make a gRPC message larger than the limit, though its body is within
 * it (8 bytes an FP64 element from the 2 of `0,`): no retry makes it fit, so it is not
 * RESOURCE_EXHAUSTED. INVALID_ARGUMENT to gRPC; the REST door answers it 413.
 */
export class MessageTooLarge extends MeshError {
  constructor(message: string) {
    super(ErrorCode.InvalidArgument, message);
  }
}

/** A REST inference request, turned into the gRPC request a pod takes, and what its answer must look like. */
export interface RestInferRequest {
  request: ModelInferRequest;
  /** Whether each output named in the request is wanted as binary data (others: `binaryByDefault`). */
  binaryOutputs: Map<string, boolean>;
  /** The request's binary_data_output: outputs not named (or named without binary_data) as binary. */
  binaryByDefault: boolean;
}

/** A pod's answer the router cannot write out: the pod's fault, never the client's. */
const internalError = (message: string) => new MeshError(ErrorCode.Internal, message);

/** Whether `s` converts to UTF-8 unchanged (no unpaired surrogate); String#isWellFormed is in every Node line served. */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A caller's string as an error repeats it: whole up to 128 characters. */
const shown = (s: string): string => (s.length > 128 ? `${s.slice(0, 128)}…` : s);

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON value of a request body's first `end` bytes (default: all), or INVALID_ARGUMENT. Bytes
 * that are not UTF-8 (RFC 8259) are refused, never read as U+FFFD: a tensor name, parameter or
 * BYTES element would reach the pod changed, where the same bytes over gRPC are refused. One home
 * for every JSON body of the REST door.
 */
export function parseJsonBody(body: Buffer, end = body.length): unknown {
  const json = body.subarray(0, end);
  if (!isUtf8(json)) throw errors.invalidArgument(`the request body${end < body.length ? '\'s JSON part' : ''} is not valid UTF-8`);
  try {
    return JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw errors.invalidArgument(`the request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Parses an inference request body for `model` (`version`: '' for the traffic split's). With
 * `headerLength` (Inference-Header-Content-Length), the first `headerLength` bytes are the JSON and
 * the rest is the inputs' binary data, in the order of the inputs that declare binary_data_size.
 * Throws INVALID_ARGUMENT naming what is wrong.
 */
export function parseInferRequest(model: string, version: string, body: Buffer, headerLength: number | undefined, limits: RestInferLimits): RestInferRequest {
  if (headerLength !== undefined && (headerLength < 0 || headerLength > body.length)) {
    throw errors.invalidArgument(`${INFERENCE_HEADER_LENGTH} is ${headerLength}, but the body has ${body.length} bytes`);
  }
  const jsonEnd = headerLength ?? body.length;
  const parsed = parseJsonBody(body, jsonEnd);
  if (!isObject(parsed)) throw errors.invalidArgument('the request body must be a JSON object');
  const { id, parameters, inputs, outputs } = parsed;
  if (id !== undefined && typeof id !== 'string') throw errors.invalidArgument('"id" must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw errors.invalidArgument('"inputs" must be a non-empty array');
  if (inputs.length > limits.maxTensors) throw errors.invalidArgument(`the request has ${inputs.length} inputs, more than the limit of ${limits.maxTensors}`);
  if (outputs !== undefined && !Array.isArray(outputs)) throw errors.invalidArgument('"outputs" must be an array');
  if (outputs && outputs.length > limits.maxTensors) throw errors.invalidArgument(`the request asks for ${outputs.length} outputs, more than the limit of ${limits.maxTensors}`);

  const requestParameters = parametersOf('the request', parameters, limits.maxParameters);
  const binaryByDefault = takeBool(requestParameters, BINARY_DATA_OUTPUT, 'the request') ?? false;

  let offset = jsonEnd;
  const request: ModelInferRequest = {
    model_name: model,
    model_version: version,
    id: id ?? '',
    parameters: requestParameters,
    inputs: [],
    outputs: [],
    raw_input_contents: [],
  };
  const names = new Set<string>();
  const maxBytesElements = limits.maxBytesElements ?? settings.maxBytesElements.default;
  let bytesElements = 0;
  const maxMessageBytes = limits.maxMessageBytes ?? settings.maxMessageBytes.default;
  let tensorBytes = 0;
  /** Counts `bytes` more of raw contents, for input `name`, before they are made. */
  const countTensorBytes = (name: string, bytes: number) => {
    tensorBytes += bytes;
    if (tensorBytes > maxMessageBytes) {
      throw new MessageTooLarge(`tensor '${name}': the request's tensors come to ${tensorBytes} bytes with it, more than the limit of ${maxMessageBytes} for a request; send fewer elements per request`);
    }
  };
  for (const input of inputs) {
    if (!isObject(input)) throw errors.invalidArgument('each of "inputs" must be an object');
    const name = input.name;
    if (typeof name !== 'string' || name === '') throw errors.invalidArgument('each input needs a "name"');
    if (name.length > MAX_NAME_CHARS) throw errors.invalidArgument(`an input's name has ${name.length} characters, more than ${MAX_NAME_CHARS}`);
    if (names.has(name)) throw errors.invalidTensor(name, 'the input is given twice');
    names.add(name);
    const datatype = input.datatype;
    if (typeof datatype !== 'string' || !isDatatype(datatype)) throw errors.invalidTensor(name, `unknown datatype ${typeof datatype === 'string' ? JSON.stringify(shown(datatype)) : `(a JSON ${Array.isArray(datatype) ? 'array' : typeof datatype})`}`);
    if (!Array.isArray(input.shape)) throw errors.invalidTensor(name, '"shape" must be an array of integers');
    if (input.shape.length > limits.maxRank) throw errors.invalidTensor(name, `shape has ${input.shape.length} dimensions, more than the limit of ${limits.maxRank}`);
    for (const d of input.shape) if (typeof d !== 'number') throw errors.invalidTensor(name, '"shape" must be an array of integers');
    const dims = parseShape(name, input.shape as number[], limits.maxElements);
    const count = elementCount(dims);
    // Each BYTES element costs a string and its bytes here, whatever it takes in the body: bounded
    // as the pod bounds them (which would refuse the request anyway), before any is converted.
    if (datatype === 'BYTES') checkBytesElements(name, (bytesElements += count), maxBytesElements);
    const tensorParameters = parametersOf(`input '${name}'`, input.parameters, limits.maxParameters);
    const binarySize = takeInt(tensorParameters, BINARY_DATA_SIZE, `input '${name}'`);
    let raw: Buffer;
    if (binarySize !== undefined) {
      if (input.data !== undefined) throw errors.invalidTensor(name, `has both "data" and ${BINARY_DATA_SIZE}`);
      if (headerLength === undefined) throw errors.invalidTensor(name, `has ${BINARY_DATA_SIZE} but the request has no ${INFERENCE_HEADER_LENGTH} header`);
      if (binarySize > body.length - offset) throw errors.invalidTensor(name, `${BINARY_DATA_SIZE} is ${binarySize}, but only ${body.length - offset} bytes of binary data are left`);
      const size = DATATYPES[datatype].bytes;
      if (size > 0 && binarySize !== count * size) {
        throw errors.invalidTensor(name, `${BINARY_DATA_SIZE} is ${binarySize}, but shape [${dims.join(',')}] of ${datatype} needs ${count * size} bytes`);
      }
      countTensorBytes(name, binarySize);
      raw = body.subarray(offset, offset + binarySize);
      offset += binarySize;
    } else {
      if (input.data === undefined) throw errors.invalidTensor(name, `has neither "data" nor ${BINARY_DATA_SIZE}`);
      raw = rawOfJson(name, datatype, dims, count, input.data, (bytes) => countTensorBytes(name, bytes));
    }
    request.inputs!.push({ name, datatype, shape: dims, parameters: tensorParameters });
    request.raw_input_contents!.push(raw);
  }
  if (offset !== body.length) throw errors.invalidArgument(`the body has ${body.length - offset} bytes of binary data that no input claims`);

  const binaryOutputs = new Map<string, boolean>();
  for (const output of outputs ?? []) {
    if (!isObject(output)) throw errors.invalidArgument('each of "outputs" must be an object');
    const name = output.name;
    if (typeof name !== 'string' || name === '') throw errors.invalidArgument('each requested output needs a "name"');
    if (name.length > MAX_NAME_CHARS) throw errors.invalidArgument(`a requested output's name has ${name.length} characters, more than ${MAX_NAME_CHARS}`);
    if (binaryOutputs.has(name)) throw errors.invalidTensor(name, 'the output is requested twice');
    const outputParameters = parametersOf(`output '${name}'`, output.parameters, limits.maxParameters);
    binaryOutputs.set(name, takeBool(outputParameters, BINARY_DATA, `output '${name}'`) ?? binaryByDefault);
    request.outputs!.push({ name, parameters: outputParameters });
  }
  return { request, binaryOutputs, binaryByDefault };
}

/** A JSON parameters object as the protocol's InferParameters (integers as int64, other numbers as double). */
function parametersOf(what: string, value: unknown, max: number): Record<string, InferParameterOut> {
  // No prototype: a parameter named __proto__ is a parameter like any other.
  const out = Object.create(null) as Record<string, InferParameterOut>;
  if (value === undefined) return out;
  if (!isObject(value)) throw errors.invalidArgument(`"parameters" of ${what} must be an object`);
  const entries = Object.entries(value);
  if (entries.length > max) throw errors.invalidArgument(`${what} has ${entries.length} parameters, more than the limit of ${max}`);
  for (const [key, v] of entries) {
    if (typeof v === 'boolean') out[key] = { bool_param: v, parameter_choice: 'bool_param' };
    else if (typeof v === 'string') out[key] = { string_param: v, parameter_choice: 'string_param' };
    else if (typeof v === 'number' && Number.isSafeInteger(v)) out[key] = { int64_param: String(v), parameter_choice: 'int64_param' };
    else if (typeof v === 'number' && Number.isFinite(v)) out[key] = { double_param: v, parameter_choice: 'double_param' };
    else if (typeof v === 'number') throw errors.invalidArgument(`parameter '${shown(key)}' of ${what} is beyond a double's range`);
    else throw errors.invalidArgument(`parameter '${shown(key)}' of ${what} must be a boolean, a number or a string`);
  }
  return out;
}

/** Removes parameter `key` and returns it as a boolean (undefined: absent). */
function takeBool(params: Record<string, InferParameterOut>, key: string, what: string): boolean | undefined {
  const p = params[key];
  if (p === undefined) return undefined;
  delete params[key];
  if (p.parameter_choice !== 'bool_param') throw errors.invalidArgument(`parameter '${key}' of ${what} must be a boolean`);
  return p.bool_param;
}

/** Removes parameter `key` and returns it as a non-negative integer (undefined: absent). */
function takeInt(params: Record<string, InferParameterOut>, key: string, what: string): number | undefined {
  const p = params[key];
  if (p === undefined) return undefined;
  delete params[key];
  const n = p.parameter_choice === 'int64_param' ? Number(p.int64_param) : NaN;
  if (!(n >= 0)) throw errors.invalidArgument(`parameter '${key}' of ${what} must be a non-negative integer`);
  return n;
}

/** Integer datatypes' ranges (64-bit ones: what a JSON number carries exactly). */
const INTEGER_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-(2 ** 31), 2 ** 31 - 1],
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 2 ** 32 - 1],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], UINT64: [0, Number.MAX_SAFE_INTEGER],
};

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/**
 * A tensor's JSON data (flat, or nested as its shape) as raw protocol bytes. Nesting, when used,
 * must follow the shape; each element must be of the datatype's JSON type and fit it exactly.
 * The data's layout is checked whole, and the buffer's size passed to `sized` (which may refuse
 * it), before the buffer is allocated; it is the only thing made for the data: no list of its
 * elements, no object per element.
 */
function rawOfJson(name: string, datatype: Datatype, dims: number[], count: number, data: unknown, sized: (bytes: number) => void): Buffer {
  checkLayout(name, dims, count, data);
  const info = DATATYPES[datatype];
  if (datatype === 'BYTES') {
    // Sized first, then written into one buffer: each element a 4-byte length and its UTF-8 bytes.
    let total = 0;
    eachElement(name, dims, data, (s, i) => {
      if (typeof s !== 'string') throw errors.invalidTensor(name, `element ${i} is not a string (BYTES data is given as strings)`);
      if (!wellFormed(s)) throw errors.invalidTensor(name, `element ${i} holds an unpaired surrogate, which UTF-8 cannot carry`);
      total += 4 + (s.length === 0 ? 0 : Buffer.byteLength(s, 'utf8'));
    });
    sized(total);
    const out = Buffer.allocUnsafe(total);
    let off = 0;
    eachElement(name, dims, data, (s) => {
      const len = (s as string).length === 0 ? 0 : out.write(s as string, off + 4, 'utf8');
      out.writeUInt32LE(len, off);
      off += 4 + len;
    });
    return out;
  }
  sized(count * info.bytes);
  const out = Buffer.allocUnsafe(count * info.bytes);
  if (datatype === 'BOOL') {
    eachElement(name, dims, data, (v, i) => {
      if (typeof v !== 'boolean') throw errors.invalidTensor(name, `element ${i} is not true or false`);
      out[i] = v ? 1 : 0;
    });
    return out;
  }
  const range = INTEGER_RANGE[datatype];
  eachElement(name, dims, data, (element, i) => {
    let v = element;
    if (typeof v === 'string' && !range && Object.hasOwn(NON_FINITE, v)) v = NON_FINITE[v];
    if (typeof v !== 'number') throw errors.invalidTensor(name, `element ${i} is not a number`);
    // A number JSON.parse made infinite is a literal beyond a double's range (1e400): refused as
    // any float beyond its datatype's range is. Infinity is asked for by name, never by overflow.
    if (!range && typeof element === 'number' && !Number.isFinite(element)) throw errors.invalidTensor(name, `element ${i} is beyond ${datatype}'s range`);
    if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) {
      const inexact = info.bytes === 8 && Number.isInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER && (datatype === 'INT64' || v > 0);
      throw errors.invalidTensor(name, inexact
        ? `element ${i} (${v}) is beyond 2^53, where a JSON number is not exact; send it as binary data`
        : `element ${i} (${v}) does not fit ${datatype}`);
    }
    switch (datatype) {
      case 'UINT8': out.writeUInt8(v, i); break;
      case 'INT8': out.writeInt8(v, i); break;
      case 'UINT16': out.writeUInt16LE(v, 2 * i); break;
      case 'INT16': out.writeInt16LE(v, 2 * i); break;
      case 'UINT32': out.writeUInt32LE(v, 4 * i); break;
      case 'INT32': out.writeInt32LE(v, 4 * i); break;
      case 'UINT64': out.writeBigUInt64LE(BigInt(v), 8 * i); break;
      case 'INT64': out.writeBigInt64LE(BigInt(v), 8 * i); break;
      case 'FP16': {
        const bits = halfBitsOf(v);
        if (Number.isFinite(v) && (bits & 0x7fff) === 0x7c00) throw errors.invalidTensor(name, `element ${i} (${v}) is beyond FP16's range`);
        out.writeUInt16LE(bits, 2 * i);
        break;
      }
      case 'FP32':
        if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) throw errors.invalidTensor(name, `element ${i} (${v}) is beyond FP32's range`);
        out.writeFloatLE(v, 4 * i);
        break;
      case 'FP64': out.writeDoubleLE(v, 8 * i); break;
      default: throw errors.invalidTensor(name, `datatype ${datatype} cannot be given as JSON`);
    }
  });
  return out;
}

/** Whether `data` is nested: an array whose first item is an array (a flat one holds elements). */
const isNested = (data: unknown[]): boolean => data.length > 0 && Array.isArray(data[0]);

const NOTHING = (): void => {};

/**
 * Refuses `data` unless it holds the `count` elements of `dims`: a flat array of `count`, arrays
 * nested as `dims`, or (scalar shape []) a one-element array or the value itself. A flat array's
 * length, or a nested one's first dimension, is checked before anything else.
 */
function checkLayout(name: string, dims: number[], count: number, data: unknown): void {
  if (!Array.isArray(data)) {
    if (dims.length === 0) return;
    throw errors.invalidTensor(name, '"data" must be an array');
  }
  if (isNested(data)) walkNested(name, dims, data, NOTHING);
  else if (data.length !== count) throw errors.invalidTensor(name, `"data" has ${data.length} elements, but shape [${dims.join(',')}] needs ${count}`);
}

/** Calls `visit` with each element of `data` (checked by `checkLayout`) and its row-major index. */
function eachElement(name: string, dims: number[], data: unknown, visit: (v: unknown, i: number) => void): void {
  if (!Array.isArray(data)) visit(data, 0);
  else if (isNested(data)) walkNested(name, dims, data, visit);
  else for (let i = 0; i < data.length; i++) visit(data[i], i);
}

/**
 * Walks arrays nested as `dims` in row-major order, calling `visit` with each element and its
 * index; each array at depth d must hold dims[d] items. Iterative, with one open array and one
 * index per dimension: a deeply nested body costs no stack, a long one no entry per row.
 */
function walkNested(name: string, dims: number[], data: unknown[], visit: (v: unknown, i: number) => void): void {
  const mismatch = () => errors.invalidTensor(name, `nested "data" does not follow shape [${dims.join(',')}]`);
  const last = dims.length - 1;
  if (last < 0 || data.length !== dims[0]) throw mismatch();
  const open: unknown[][] = [data];
  const next: number[] = [0];
  let depth = 0;
  let i = 0;
  while (depth >= 0) {
    const arr = open[depth]!;
    if (depth === last) {
      for (let k = 0; k < arr.length; k++) {
        const v = arr[k];
        if (Array.isArray(v)) throw mismatch();
        visit(v, i++);
      }
      depth--;
      continue;
    }
    const k = next[depth]!;
    if (k === arr.length) {
      depth--;
      continue;
    }
    next[depth] = k + 1;
    const child = arr[k];
    if (!Array.isArray(child) || child.length !== dims[depth + 1]) throw mismatch();
    depth++;
    open[depth] = child;
    next[depth] = 0;
  }
}

/** An inference answer as the REST body: JSON alone, or a JSON header and binary data. */
export interface RestInferResponse {
  body: Buffer;
  /** Set when binary data follows the JSON: its length (Inference-Header-Content-Length). */
  headerLength?: number;
}

/** The most characters one element takes in JSON data, its separator included (BYTES: beside its bytes). */
const JSON_WIDTH: Record<Datatype, number> = {
  BOOL: 6, UINT8: 4, INT8: 5, UINT16: 6, INT16: 7, UINT32: 11, INT32: 12, UINT64: 21, INT64: 21,
  // A double's shortest form ("-2.2250738585072014e-308"), or a quoted non-finite one, and a comma.
  FP16: 25, FP32: 25, FP64: 25,
  // Two quotes and a comma; each byte takes at most 6 characters (\u00XX).
  BYTES: 3,
};

/**
 * Writes a pod's answer as the REST body. An output is binary data when the request asked so for
 * it (binary_data) or for all (binary_data_output); JSON data otherwise. The JSON data's size is
 * bounded before any of it is made: past `maxJsonBytes` the answer is refused RESOURCE_EXHAUSTED,
 * pointing at binary data.
 */
export function encodeInferResponse(res: ModelInferResponseOut, asked: Pick<RestInferRequest, 'binaryOutputs' | 'binaryByDefault'>, maxJsonBytes: number): RestInferResponse {
  const asBinary = (name: string) => asked.binaryOutputs.get(name) ?? asked.binaryByDefault;
  let bound = 0;
  res.outputs.forEach((o, i) => {
    if (asBinary(o.name) || !isDatatype(o.datatype)) return;
    const count = elementCount(o.shape.map(Number));
    bound += count * JSON_WIDTH[o.datatype] + (o.datatype === 'BYTES' ? 6 * Math.max(0, (res.raw_output_contents[i]?.length ?? 0) - 4 * count) : 0);
  });
  if (bound > maxJsonBytes) {
    throw new MeshError(ErrorCode.Overloaded, `the answer's JSON data could take ${bound} bytes, more than the limit of ${maxJsonBytes}; ask for its outputs as binary data ("binary_data_output": true)`);
  }
  const binary: Buffer[] = [];
  const outputs: string[] = [];
  res.outputs.forEach((o, i) => {
    const datatype = o.datatype;
    if (!isDatatype(datatype)) throw internalError(`the pod answered output '${o.name}' with unknown datatype ${datatype}`);
    const raw = res.raw_output_contents[i];
    if (raw === undefined) throw internalError(`the pod answered output '${o.name}' without raw contents`);
    const shape = o.shape.map(Number);
    const params = parametersJson(o.parameters);
    if (asBinary(o.name)) {
      binary.push(raw);
      params.push(`${JSON.stringify(BINARY_DATA_SIZE)}:${raw.length}`);
      outputs.push(`{"name":${JSON.stringify(o.name)},"datatype":"${datatype}","shape":[${shape.join(',')}],"parameters":{${params.join(',')}}}`);
    } else {
      const p = params.length ? `,"parameters":{${params.join(',')}}` : '';
      outputs.push(`{"name":${JSON.stringify(o.name)},"datatype":"${datatype}","shape":[${shape.join(',')}]${p},"data":${jsonOfRaw(o.name, datatype, elementCount(shape), raw)}}`);
    }
  });
  const top = parametersJson(res.parameters);
  const header = Buffer.from(
    `{"model_name":${JSON.stringify(res.model_name)},"model_version":${JSON.stringify(res.model_version)}` +
    (res.id ? `,"id":${JSON.stringify(res.id)}` : '') +
    (top.length ? `,"parameters":{${top.join(',')}}` : '') +
    `,"outputs":[${outputs.join(',')}]}`,
  );
  if (binary.length === 0) return { body: header };
  return { body: Buffer.concat([header, ...binary]), headerLength: header.length };
}

/** InferParameters as JSON members ("key":value), int64s written exactly. */
function parametersJson(params: Record<string, InferParameterOut> | undefined): string[] {
  const out: string[] = [];
  for (const [key, p] of Object.entries(params ?? {})) {
    let v: string;
    switch (p.parameter_choice) {
      case 'bool_param': v = String(p.bool_param); break;
      case 'int64_param': v = BigInt(p.int64_param ?? '0').toString(); break;
      case 'uint64_param': v = BigInt(p.uint64_param ?? '0').toString(); break;
      case 'double_param': v = numberJson(p.double_param ?? 0); break;
      default: v = JSON.stringify(p.string_param ?? '');
    }
    out.push(`${JSON.stringify(key)}:${v}`);
  }
  return out;
}

/** A number as JSON; non-finite ones as the strings JSON readers agree on. */
function numberJson(v: number): string {
  if (!Number.isFinite(v)) return `"${String(v)}"`;
  return v === 0 && 1 / v < 0 ? '-0' : String(v);
}

/** Raw output bytes as a flat JSON array (64-bit integers written exactly, digits as they are). */
function jsonOfRaw(name: string, datatype: Datatype, count: number, raw: Buffer): string {
  const parts: string[] = new Array(count);
  if (datatype === 'BYTES') {
    let off = 0;
    for (let i = 0; i < count; i++) {
      if (off + 4 > raw.length) throw internalError(`the pod's output '${name}' is shorter than its shape`);
      const len = raw.readUInt32LE(off);
      if (off + 4 + len > raw.length) throw internalError(`the pod's output '${name}' is shorter than its shape`);
      parts[i] = JSON.stringify(raw.toString('utf8', off + 4, off + 4 + len));
      off += 4 + len;
    }
    return `[${parts.join(',')}]`;
  }
  const size = DATATYPES[datatype].bytes;
  if (raw.length !== count * size) throw internalError(`the pod's output '${name}' has ${raw.length} bytes for ${count} elements of ${datatype}`);
  if (datatype === 'FP16') {
    const halves = new Uint16Array(count);
    for (let i = 0; i < count; i++) halves[i] = raw.readUInt16LE(2 * i);
    return `[${numbersOfHalves(halves).map(numberJson).join(',')}]`;
  }
  for (let i = 0; i < count; i++) {
    switch (datatype) {
      case 'BOOL': parts[i] = raw[i] ? 'true' : 'false'; break;
      case 'UINT8': parts[i] = String(raw[i]); break;
      case 'INT8': parts[i] = String(raw.readInt8(i)); break;
      case 'UINT16': parts[i] = String(raw.readUInt16LE(2 * i)); break;
      case 'INT16': parts[i] = String(raw.readInt16LE(2 * i)); break;
      case 'UINT32': parts[i] = String(raw.readUInt32LE(4 * i)); break;
      case 'INT32': parts[i] = String(raw.readInt32LE(4 * i)); break;
      case 'UINT64': parts[i] = raw.readBigUInt64LE(8 * i).toString(); break;
      case 'INT64': parts[i] = raw.readBigInt64LE(8 * i).toString(); break;
      case 'FP32': parts[i] = numberJson(raw.readFloatLE(4 * i)); break;
      case 'FP64': parts[i] = numberJson(raw.readDoubleLE(8 * i)); break;
      default: throw internalError(`datatype ${datatype} has no JSON form`);
    }
  }
  return `[${parts.join(',')}]`;
}
