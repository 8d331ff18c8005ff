// Reads an ONNX model's signature (graph inputs and outputs) from a file without loading it, and
// checks that the model is self-contained: a small protobuf walker that reads only the fields it
// needs and seeks past the rest (weights), so a multi-gigabyte artifact costs a few hundred
// kilobytes of memory. Used by the registry to validate pushes and by pods before they load one.
//
// Self-contained: onnxruntime reads a tensor whose data_location is EXTERNAL from the file its
// external_data names, relative to the model's folder ("../" included). On a pod, that folder holds
// every other model's artifact, so such a model could serve another model's weights. Every place a
// TensorProto can sit is checked: initializers, sparse initializers, node attributes (TENSOR,
// TENSORS, SPARSE_TENSOR(S)), subgraphs at any depth, functions and training_info.
import { isUtf8 } from 'node:buffer';
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
  /**
   * The operator types (sorted, each once; another domain's as "domain.Type") through which a
   * run's work or memory can follow what the inputs *hold*, not only their shapes: a Loop, If,
   * Scan or any operator holding a subgraph, a Range, Tile, Pad… whose size-giving input follows
   * the request's values, an operator that multiplies shapes (a broadcast, a MatMul, a Gather) fed
   * a tensor whose shape the request's values chose, a local function or an unknown operator of
   * another domain fed the request, or a value-sized operator inside a subgraph or a function.
   * Empty when a run's cost is fixed by its inputs' shapes (see VALUE_SIZED).
   */
  valueSized: string[];
  /**
   * At least as many levels as the deepest decision tree of an ai.onnx.ml tree ensemble anywhere in
   * the model has (the most nodes one tree has; 0 without one). onnxruntime builds a tree by
   * recursing once per level, on the stack of the thread that creates the session: a tree deep
   * enough ends the process (see treeLevelsFit).
   */
  treeDepth: number;
  /**
   * The operator types (sorted, each once) through which a row of a batch could reach another
   * row's outputs, or the batch's size a row's values, when runs are batched along the first
   * dimension: a reduction or a softmax over it, a matrix product that contracts it, a Reshape
   * (but to a shape that copies the batch's size, constant or computed as PyTorch exports a
   * flatten: copiedBatchRank), Shape or Slice (whose effect on it is not followed otherwise), a
   * subgraph, a local function, another domain's operator (see rowsOut). Empty when every graph output's row i follows row i of the
   * inputs alone: only then may a pod batch the requests of different callers by itself.
   */
  rowMixing: string[];
}

/**
 * Tree levels onnxruntime 1.30 builds within one MiB of a thread's stack, rounded down: measured on
 * chains of decision nodes (TreeEnsembleRegressor), 8 000 levels built on an 8 MiB main thread and
 * 12 000 did not; 5 000 on a 4 MiB worker thread and 8 000 did not; 60 000 on 64 MiB and 100 000 did not.
 */
export const TREE_LEVELS_PER_STACK_MIB = 800;

/** Whether a model whose trees are `treeDepth` levels deep can be loaded on a thread of `stackMib` MiB of stack. */
export function treeLevelsFit(treeDepth: number, stackMib: number): boolean {
  return treeDepth <= stackMib * TREE_LEVELS_PER_STACK_MIB;
}

/** Distinct trees counted one by one in a tree ensemble; past them, its node count bounds its depth. */
const MAX_COUNTED_TREES = 1 << 20;

/** Thrown when a file is not an ONNX model infermesh can serve. */
export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

/** Thrown when a model declares a tensor's data outside the file (external data). */
export class OnnxExternalDataError extends OnnxFormatError {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExternalDataError';
  }
}

/** Longest string (a name) the reader copies out of the file. */
export const MAX_ONNX_STRING_BYTES = 1024 * 1024;

/** Deepest nesting of subgraphs (If/Loop/Scan bodies inside each other) the reader follows. */
export const MAX_ONNX_GRAPH_NESTING = 32;

/**
 * Longest chain of local functions calling one another a model may have. onnxruntime inlines a
 * call by recursing, on the stack of the thread making the session: 1 500 levels (a 90 KB model)
 * ended the process on a 4 MiB worker thread. Exported models nest functions as deep as their
 * modules, a dozen or two.
 */
export const MAX_ONNX_FUNCTION_NESTING = 64;

/**
 * Most the graph's inputs and outputs may take to describe (names plus 8 bytes a dimension): the
 * signature is kept in memory and stored in the version's registry record, whose KV value must fit
 * in a NATS message (max_payload, 1 MiB by default).
 */
export const MAX_ONNX_SIGNATURE_BYTES = 1024 * 1024;

/**
 * Most nodes a model may have, its graph's, its subgraphs' (at any depth) and its local functions'
 * together, unless its reader is told otherwise (INFERMESH_MAX_GRAPH_NODES). onnxruntime's session
 * creation grows faster than the node count (measured on one input read by N Identity nodes: 8 000
 * in 0.5 s, 16 000 in 2.8 s, 24 000 in 7 s, 32 000 in 14 s, 64 000 in over a minute, 200 000 in
 * over five minutes), and a load holds a thread for all of it. Exported models have a few to a few
 * hundred (MNIST here: 6; the Silero VAD models: 90 to 689) and the largest language models tens of
 * thousands: the default refuses none of them, and bounds what a pathological graph may cost.
 */
export const DEFAULT_MAX_ONNX_GRAPH_NODES = 100_000;

/** What readOnnxSignature refuses beyond its fixed bounds. */
export interface OnnxLimits {
  /** Most nodes, graph, subgraphs and local functions together (INFERMESH_MAX_GRAPH_NODES; default DEFAULT_MAX_ONNX_GRAPH_NODES). */
  maxGraphNodes?: number;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_I32 = 5;

/** Deepest nesting of (deprecated, never ONNX's own) groups skipped in unknown fields: protobuf's recursion limit. */
const MAX_GROUP_NESTING = 100;

/** How often the graph field may repeat (protobuf merges the occurrences; tools write it once). */
const MAX_GRAPH_FIELDS = 16;

/**
 * Most bytes of tensor names the value-sized analysis keeps (names plus 64 bytes each): past them,
 * a name it has not kept is taken as following the request's values, so the answer only errs
 * towards value-sized, and memory stays bounded for a model of millions of nodes.
 */
export const MAX_ONNX_FLOW_NAME_BYTES = 16 * 1024 * 1024;

/** Bytes read ahead from the file at a time. */
const READ_AHEAD = 64 * 1024;
/** A field's tag and its varint value or length together take at most this many bytes. */
const MAX_FIELD_HEADER = 20;

/** Positional reads over a file handle through one reused read-ahead buffer. */
class Cursor {
  private readonly buf: Buffer;
  private bufStart = 0;
  private bufLen = 0;
  /** NodeProtos the scan has met so far, anywhere in the model (scanNode counts each once). */
  nodes = 0;

  constructor(private readonly fh: fs.FileHandle, readonly size: number) {
    this.buf = Buffer.allocUnsafe(Math.min(READ_AHEAD, size));
  }

  /** Whether [pos, pos + n) is buffered. */
  has(pos: number, n: number): boolean {
    return pos >= this.bufStart && pos + n <= this.bufStart + this.bufLen;
  }

  /** Buffers [pos, pos + n) and what follows, up to the read-ahead size; n ≤ READ_AHEAD. */
  async load(pos: number, n: number): Promise<void> {
    if (pos + n > this.size) throw new OnnxFormatError('truncated file');
    const len = Math.min(this.buf.length, this.size - pos);
    const { bytesRead } = await this.fh.read(this.buf, 0, len, pos);
    if (bytesRead < n) throw new OnnxFormatError('truncated file');
    this.bufStart = pos;
    this.bufLen = bytesRead;
  }

  /** The byte at pos, which must be buffered. */
  at(pos: number): number {
    return this.buf[pos - this.bufStart]!;
  }

  /** The buffered bytes [pos, pos + n), not copied: valid until the next load. */
  view(pos: number, n: number): Buffer {
    return this.buf.subarray(pos - this.bufStart, pos - this.bufStart + n);
  }

  /** The buffered bytes [pos, pos + n) decoded as UTF-8. */
  text(pos: number, n: number): string {
    return this.buf.toString('utf8', pos - this.bufStart, pos - this.bufStart + n);
  }

  /** A copy of [pos, pos + n). */
  async bytes(pos: number, n: number): Promise<Buffer> {
    if (pos + n > this.size) throw new OnnxFormatError('truncated file');
    if (this.has(pos, n)) return Buffer.from(this.buf.subarray(pos - this.bufStart, pos - this.bufStart + n));
    const out = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(out, 0, n, pos);
    if (bytesRead < n) throw new OnnxFormatError('truncated file');
    return out;
  }
}

/** One protobuf field: its number, wire type, and where its payload is. */
interface Field {
  num: number;
  wire: number;
  /** A varint's value (wire 0) as two 32-bit halves, unsigned. */
  lo: number;
  hi: number;
  /** Start of the payload (wire 2). */
  start: number;
  /** Position after the field. */
  next: number;
}

/** Reads a varint from buffered bytes at pos, ending before `end`. */
function varint(c: Cursor, pos: number, end: number): { lo: number; hi: number; next: number } {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new OnnxFormatError('truncated varint');
    const b = c.at(pos++);
    const bits = b & 0x7f;
    if (i < 4) lo |= bits << (7 * i);
    else if (i === 4) {
      lo |= (bits & 0x0f) << 28;
      hi |= bits >>> 4;
    } else hi |= bits << (7 * i - 32);
    // The tenth byte carries the 64th bit; protobuf drops the bits above it, and so does this.
    if ((b & 0x80) === 0) return { lo: lo >>> 0, hi: hi >>> 0, next: pos };
  }
  throw new OnnxFormatError('malformed varint (more than 10 bytes)');
}

/** A varint as an unsigned safe integer, or NaN when above 2^53 - 1. */
function unsigned(lo: number, hi: number): number {
  return hi < 0x200000 ? hi * 0x1_0000_0000 + lo : Number.NaN;
}

/** A varint as a two's complement int64 (how protobuf encodes a negative int64). */
function int64(f: Field): bigint {
  return BigInt.asIntN(64, (BigInt(f.hi) << 32n) | BigInt(f.lo));
}

/** Reads the field at pos, whose header is buffered, inside a message ending at `end`. */
function readField(c: Cursor, pos: number, end: number): Field {
  const tag = varint(c, pos, end);
  if (tag.hi !== 0) throw new OnnxFormatError('field number out of range');
  const num = tag.lo >>> 3;
  const wire = tag.lo & 7;
  if (num === 0) throw new OnnxFormatError('field number 0');
  const p = tag.next;
  let lo = 0;
  let hi = 0;
  let start = p;
  let next: number;
  if (wire === WIRE_VARINT) ({ lo, hi, next } = varint(c, p, end));
  else if (wire === WIRE_I64) next = p + 8;
  else if (wire === WIRE_I32) next = p + 4;
  else if (wire === WIRE_LEN) {
    const len = varint(c, p, end);
    const n = unsigned(len.lo, len.hi);
    if (Number.isNaN(n)) throw new OnnxFormatError('field length out of range');
    start = len.next;
    next = start + n;
  } else if (wire === WIRE_START_GROUP || wire === WIRE_END_GROUP) next = p; // walk() skips the group
  else throw new OnnxFormatError(`unsupported wire type ${wire}`);
  if (next > end) throw new OnnxFormatError('field runs past its message');
  return { num, wire, lo, hi, start, next };
}

/**
 * Skips a group (wire type 3) that started before `pos`: protobuf parsers skip one in an unknown
 * field, so a model onnxruntime loads may have one. Returns the position after its end-group tag.
 */
async function skipGroup(c: Cursor, pos: number, end: number, num: number, depth: number): Promise<number> {
  if (depth > MAX_GROUP_NESTING) throw new OnnxFormatError(`groups nested more than ${MAX_GROUP_NESTING} deep`);
  for (;;) {
    if (pos >= end) throw new OnnxFormatError('unterminated group');
    const header = Math.min(MAX_FIELD_HEADER, end - pos);
    if (!c.has(pos, header)) await c.load(pos, header);
    const f = readField(c, pos, end);
    if (f.wire === WIRE_END_GROUP) {
      if (f.num !== num) throw new OnnxFormatError('mismatched end of group');
      return f.next;
    }
    pos = f.wire === WIRE_START_GROUP ? await skipGroup(c, f.next, end, f.num, depth + 1) : f.next;
  }
}

/**
 * Calls `visit` for each field of the message occupying [start, end). Fields a visitor skips cost
 * no await: the file is read once per read-ahead buffer, not once per field.
 */
async function walk(c: Cursor, start: number, end: number, visit: (f: Field) => void | Promise<void>): Promise<void> {
  let pos = start;
  while (pos < end) {
    const header = Math.min(MAX_FIELD_HEADER, end - pos);
    if (!c.has(pos, header)) await c.load(pos, header);
    const f = readField(c, pos, end);
    if (f.wire === WIRE_START_GROUP) {
      pos = await skipGroup(c, f.next, end, f.num, 1);
      continue;
    }
    if (f.wire === WIRE_END_GROUP) throw new OnnxFormatError('end of a group that never started');
    const r = visit(f);
    if (r) await r;
    pos = f.next;
  }
}

/**
 * walk() without an await while [start, end) is buffered, holds no group and `visit` returns
 * nothing: a node of the graph, read three times over, costs no turn of the event loop. Returns
 * walk()'s promise for what is left otherwise.
 */
function walkBuffered(c: Cursor, start: number, end: number, visit: (f: Field) => void | Promise<void>): void | Promise<void> {
  if (!c.has(start, end - start)) return walk(c, start, end, visit);
  let pos = start;
  while (pos < end) {
    const f = readField(c, pos, end);
    if (f.wire === WIRE_START_GROUP || f.wire === WIRE_END_GROUP) return walk(c, pos, end, visit);
    const r = visit(f);
    if (r) return r.then(() => walk(c, f.next, end, visit));
    pos = f.next;
  }
  return undefined;
}

const isLen = (f: Field) => f.wire === WIRE_LEN;
const isVarint = (f: Field) => f.wire === WIRE_VARINT;

async function str(c: Cursor, f: Field): Promise<string> {
  if (!isLen(f)) throw new OnnxFormatError('expected a string');
  if (f.next - f.start > MAX_ONNX_STRING_BYTES) throw new OnnxFormatError(`string field longer than ${MAX_ONNX_STRING_BYTES} bytes`);
  return (await c.bytes(f.start, f.next - f.start)).toString('utf8');
}

/** The last string field number `num` of message `m` ('' when absent). */
async function stringField(c: Cursor, m: Field, num: number): Promise<string> {
  let last: Field | undefined;
  await walk(c, m.start, m.next, (f) => {
    if (f.num === num && isLen(f)) last = f;
  });
  return last ? str(c, last) : '';
}

/** A name as it appears in messages: quoted, escaped, and cut when long. */
function shown(name: string): string {
  const s = JSON.stringify(name).slice(1, -1);
  return `'${s.length > 200 ? `${s.slice(0, 200)}…` : s}'`;
}

// ---------------------------------------------------------------------------------------------
// Self-containment: every TensorProto anywhere in the model.

// Field numbers of onnx.proto (onnx/onnx.proto3).
const MODEL = { irVersion: 1, graph: 7, trainingInfo: 20, functions: 25 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, t: 5, g: 6, tensors: 10, graphs: 11, sparseTensor: 22, sparseTensors: 23 } as const;
const TENSOR = { dims: 1, dataType: 2, int64Data: 7, name: 8, rawData: 9, externalData: 13, dataLocation: 14 } as const;
const TENSOR_INT64 = 7;
const SPARSE_TENSOR = { values: 1, indices: 2 } as const;
const FUNCTION = { name: 1, node: 7, domain: 10, attributeProto: 11 } as const;
const TRAINING_INFO = { initialization: 1, algorithm: 2 } as const;
const STRING_ENTRY = { key: 1, value: 2 } as const;

/** Where a tensor sits: the enclosing messages, outermost first (the main graph is implied). */
type Frame =
  | { kind: 'graph' | 'node' | 'attribute' | 'function'; field: Field }
  | { kind: 'training_info' };

const NAME_FIELD = { graph: GRAPH.name, node: NODE.name, attribute: ATTRIBUTE.name, function: FUNCTION.name } as const;

/** "of graph 'body' in attribute 'body' of node 'loop_0'": names read only when an error needs them. */
async function describe(c: Cursor, frames: Frame[]): Promise<string> {
  const parts: string[] = [];
  for (const frame of [...frames].reverse()) {
    if (frame.kind === 'training_info') {
      parts.push('in training_info');
      continue;
    }
    const name = await stringField(c, frame.field, NAME_FIELD[frame.kind]);
    const label = name ? shown(name) : '(unnamed)';
    parts.push(frame.kind === 'graph' ? `of graph ${label}`
      : frame.kind === 'attribute' ? `in attribute ${label}`
      : frame.kind === 'node' ? `of node ${label}`
      : `in function ${label}`);
  }
  return parts.join(' ');
}

/** What a scan does with the tensors it meets besides checking them. */
interface ScanContext {
  /** Receives the name of each initializer (dense or sparse) of the main graph, and its rank (-1: not known). */
  onMainInitializer?: (name: string, rank: TensorRank) => void;
  /**
   * Receives the type of each value-sized operator, or operator holding a subgraph, inside a
   * subgraph or a function (run by a Loop, If, Scan or a call), whatever feeds it.
   */
  onNestedValueSized?: (opType: string) => void;
  /** Receives the most nodes one tree of a tree ensemble has (anywhere: the main graph, subgraphs, functions). */
  onTrees?: (nodes: number) => void;
}

/** The file named by a tensor's external_data entry with key "location" ('' when none). */
async function externalLocation(c: Cursor, t: Field): Promise<string> {
  let found = '';
  await walk(c, t.start, t.next, async (f) => {
    if (found || f.num !== TENSOR.externalData || !isLen(f)) return;
    if ((await stringField(c, f, STRING_ENTRY.key)) === 'location') found = await stringField(c, f, STRING_ENTRY.value);
  });
  return found;
}

/** A tensor's rank (-1: not known) and whether its first dimension is 1, as scanTensor reads them. */
interface TensorRank {
  of: number;
  firstOne: boolean;
  /**
   * As a Reshape's shape, the rank it gives a batch it keeps whole: the number of values of a 1-D
   * INT64 tensor whose first value is 0 (copy the batch's size), at most MAX_ROW_INTS; -1 otherwise.
   */
  keepsBatch: number;
  /**
   * The values of an INT64 scalar or 1-D tensor of 1 to MAX_ROW_INTS values, as onnxruntime reads
   * them (exact within ±2^53); undefined for any other tensor. What a shape's arithmetic starts from.
   */
  ints?: readonly number[];
}

/**
 * Checks one TensorProto; returns its name when `wantName` (undefined when flowName cannot read
 * it), and its rank into `rank` when given.
 */
async function scanTensor(c: Cursor, t: Field, kind: string, frames: Frame[], wantName: boolean, rank?: TensorRank): Promise<string | undefined> {
  let nameField: Field | undefined;
  let entries = false;
  let location = 0;
  let dims = 0;
  let firstOne = false;
  let firstDim = -1;
  const dim = (lo: number, hi: number) => {
    if (dims++ === 0) {
      firstOne = lo === 1 && hi === 0;
      firstDim = hi === 0 && lo <= MAX_ROW_INTS ? lo : -1;
    }
  };
  // What a Reshape's shape needs (keepsBatch, ints): its type and its values, from int64_data or
  // raw_data (onnxruntime reads raw_data when both are there: then not followed).
  let dataType = 0;
  let int64s = 0;
  const values: number[] = [];
  const int64 = (lo: number, hi: number) => {
    if (int64s++ < MAX_ROW_INTS) values.push(signedOf(lo, hi));
  };
  let raw: Field | undefined;
  await walk(c, t.start, t.next, async (f) => {
    if (f.num === TENSOR.name && isLen(f)) nameField = f;
    else if (f.num === TENSOR.externalData && isLen(f)) entries = true;
    else if (f.num === TENSOR.dataLocation && isVarint(f)) location = f.lo || f.hi;
    else if (!rank) return;
    else if (f.num === TENSOR.dims) {
      if (isVarint(f)) dim(f.lo, f.hi);
      else if (isLen(f)) await eachPackedVarint(c, f, dim);
    } else if (f.num === TENSOR.dataType && isVarint(f)) dataType = f.hi === 0 ? f.lo : -1;
    else if (f.num === TENSOR.int64Data) {
      // Only a short list is read: a longer one is no Reshape's shape to follow.
      if (isVarint(f)) int64(f.lo, f.hi);
      else if (isLen(f) && f.next - f.start <= MAX_ROW_INTS * 10) await eachPackedVarint(c, f, int64);
      else int64s = Number.POSITIVE_INFINITY;
    } else if (f.num === TENSOR.rawData && isLen(f)) raw = f; // a bytes field given twice: the last counts
  });
  if (rank) {
    rank.of = dims;
    rank.firstOne = firstOne;
    rank.ints = undefined;
    // A scalar holds one value; a 1-D tensor as many as its one dimension says.
    const count = dims === 0 ? 1 : dims === 1 ? firstDim : -1;
    if (count >= 1 && dataType === TENSOR_INT64) {
      if (raw === undefined && int64s === count) rank.ints = values;
      else if (raw !== undefined && int64s === 0 && raw.next - raw.start === 8 * count) {
        const bytes = await c.bytes(raw.start, 8 * count);
        rank.ints = Array.from({ length: count }, (_, i) => Number(bytes.readBigInt64LE(8 * i)));
      }
    }
    rank.keepsBatch = dims === 1 && rank.ints?.[0] === 0 ? rank.ints.length : -1;
  }
  // The name is wanted by the value-sized analysis, which keys names as flowName reads them.
  if (location === 0 && !entries) return wantName && nameField ? flowName(c, nameField) : undefined;
  const name = nameField ? await str(c, nameField) : '';
  const file = await externalLocation(c, t);
  const where = await describe(c, frames);
  const what = `${kind} ${name ? shown(name) : '(unnamed)'}${where ? ` ${where}` : ''}`;
  const detail = file ? `location ${shown(file)}` : location ? 'data_location EXTERNAL' : 'external_data entries';
  throw new OnnxExternalDataError(`${what} declares external data (${detail}); infermesh serves only self-contained models: save the model with every tensor's data inside the file`);
}

async function scanSparseTensor(c: Cursor, s: Field, kind: string, frames: Frame[], ctx?: ScanContext): Promise<void> {
  await walk(c, s.start, s.next, async (f) => {
    if (!isLen(f)) return;
    if (f.num === SPARSE_TENSOR.values) {
      const name = await scanTensor(c, f, kind, frames, !!ctx?.onMainInitializer);
      if (name !== undefined) ctx?.onMainInitializer?.(name, { of: -1, firstOne: false, keepsBatch: -1 });
    } else if (f.num === SPARSE_TENSOR.indices) await scanTensor(c, f, `${kind} (indices)`, frames, false);
  });
}

/** Checks an attribute's tensors and subgraphs; returns whether it holds a subgraph. */
async function scanAttribute(c: Cursor, a: Field, frames: Frame[], ctx?: ScanContext): Promise<boolean> {
  const inner: Frame[] = [...frames, { kind: 'attribute', field: a }];
  let graphs = false;
  await walk(c, a.start, a.next, (f) => {
    if (!isLen(f)) return undefined;
    switch (f.num) {
      case ATTRIBUTE.t:
      case ATTRIBUTE.tensors:
        return scanTensor(c, f, 'tensor', inner, false).then(() => undefined);
      case ATTRIBUTE.g:
      case ATTRIBUTE.graphs:
        graphs = true;
        return scanGraph(c, f, inner, { onNestedValueSized: ctx?.onNestedValueSized, onTrees: ctx?.onTrees });
      case ATTRIBUTE.sparseTensor:
      case ATTRIBUTE.sparseTensors:
        return scanSparseTensor(c, f, 'sparse tensor', inner);
      default:
        return undefined;
    }
  });
  return graphs;
}

async function scanNode(c: Cursor, n: Field, frames: Frame[], ctx?: ScanContext): Promise<void> {
  c.nodes++;
  const inner: Frame[] = [...frames, { kind: 'node', field: n }];
  let opType: Field | undefined;
  let graphs = false;
  await walk(c, n.start, n.next, (f) => {
    if (f.num === NODE.opType && isLen(f)) opType = f;
    else if (f.num === NODE.attribute && isLen(f)) {
      return scanAttribute(c, f, inner, ctx).then((held) => {
        graphs ||= held;
      });
    }
    return undefined;
  });
  if (ctx?.onTrees && opType && TREE_ENSEMBLE_LENGTHS.has(opType.next - opType.start) && TREE_ENSEMBLES.has(await str(c, opType))) {
    ctx.onTrees(await treeNodes(c, n));
  }
  if (opType && opType.next - opType.start === BATCH_NORMALIZATION.length && (await str(c, opType)) === BATCH_NORMALIZATION && (await trains(c, n))) {
    throw new OnnxFormatError(`BatchNormalization ${await describe(c, inner)} is in training mode: onnxruntime keeps its running statistics from run to run, so one caller's inputs would reach the next callers' answers; export the model in inference (eval) mode`);
  }
  // The main graph's own nodes are judged by what feeds them (flowNode); nested ones whatever feeds them.
  if (frames.length > 0 && opType && ctx?.onNestedValueSized) {
    const op = await str(c, opType);
    if (Object.hasOwn(VALUE_SIZED, op) || graphs) ctx.onNestedValueSized(op);
  }
}

const BATCH_NORMALIZATION = 'BatchNormalization';

/**
 * Whether a BatchNormalization node trains: training_mode set (opset 14 on), or more than one
 * output named (before 14, what asks for its running statistics). onnxruntime then updates those
 * statistics in its session with every run's batch (measured: the same input answered 0.10, 0.19,
 * 0.27 on three runs in a row), a state that carries callers' data to later callers.
 */
async function trains(c: Cursor, n: Field): Promise<boolean> {
  // Every output field counts, an optional one left out ('') included: onnxruntime trains when the
  // node has more than one (and, with them left out, crashed the process on the first run).
  let outputs = 0;
  await walk(c, n.start, n.next, (f) => {
    if (f.num === NODE.output && isLen(f)) outputs++;
  });
  return outputs > 1 || ((await rowAttributes(c, n)).trainingMode ?? 0) !== 0;
}

/** Checks a graph: its nodes (and through them subgraphs), initializers and sparse initializers. */
async function scanGraph(c: Cursor, g: Field, frames: Frame[], ctx?: ScanContext): Promise<void> {
  if (frames.filter((f) => f.kind === 'graph').length >= MAX_ONNX_GRAPH_NESTING) {
    throw new OnnxFormatError(`subgraphs nested more than ${MAX_ONNX_GRAPH_NESTING} deep`);
  }
  // The main graph is described by its absence; subgraphs by name.
  const inner: Frame[] = frames.length === 0 ? frames : [...frames, { kind: 'graph', field: g }];
  await walk(c, g.start, g.next, async (f) => {
    if (!isLen(f)) return;
    if (f.num === GRAPH.node) await scanNode(c, f, inner, ctx);
    else if (f.num === GRAPH.initializer) {
      const rank: TensorRank = { of: -1, firstOne: false, keepsBatch: -1 };
      const name = await scanTensor(c, f, 'initializer', inner, !!ctx?.onMainInitializer, ctx?.onMainInitializer ? rank : undefined);
      if (name !== undefined) ctx?.onMainInitializer?.(name, rank);
    } else if (f.num === GRAPH.sparseInitializer) await scanSparseTensor(c, f, 'sparse initializer', inner, ctx);
  });
}

/** ai.onnx.ml's tree ensembles (TreeEnsemble from opset 5 names no tree per node). */
const TREE_ENSEMBLES = new Set(['TreeEnsembleRegressor', 'TreeEnsembleClassifier', 'TreeEnsemble']);
const TREE_ENSEMBLE_LENGTHS = new Set([...TREE_ENSEMBLES].map((op) => op.length));
const ATTRIBUTE_INTS = 8;

/**
 * The most nodes one tree of a tree ensemble node has, from its attributes: nodes_treeids counted
 * by tree (unpacked or packed), or, past MAX_COUNTED_TREES trees or without it, every node of the
 * ensemble (nodes_modes, nodes_featureids, nodes_splits…: the longest list that names one per node).
 */
async function treeNodes(c: Cursor, node: Field): Promise<number> {
  const perTree = new Map<number, number>();
  let most = 0;
  let lost = false;
  let longest = 0;
  await walk(c, node.start, node.next, async (a) => {
    if (a.num !== NODE.attribute || !isLen(a)) return;
    const name = await stringField(c, a, ATTRIBUTE.name);
    if (!name.startsWith('nodes_')) return;
    let entries = 0;
    const count = (lo: number) => {
      entries++;
      if (name !== 'nodes_treeids' || lost) return;
      // onnxruntime reads a tree id as a 32-bit int: ids that differ above it are one tree there.
      const key = lo | 0;
      const n = (perTree.get(key) ?? 0) + 1;
      if (n === 1 && perTree.size >= MAX_COUNTED_TREES) lost = true;
      else perTree.set(key, n);
      most = Math.max(most, n);
    };
    await walk(c, a.start, a.next, async (f) => {
      if (f.num === ATTRIBUTE_INTS && isVarint(f)) count(f.lo);
      else if (isLen(f) && f.num !== ATTRIBUTE.name) await eachPackedVarint(c, f, count);
      else if (f.wire === WIRE_I32 || f.wire === WIRE_I64) entries++; // floats: one per node
    });
    longest = Math.max(longest, entries);
  });
  return perTree.size > 0 && !lost ? most : longest;
}

/** Calls `each` for every varint packed in a length-delimited field, reading it a buffer at a time. */
async function eachPackedVarint(c: Cursor, f: Field, each: (lo: number, hi: number) => void): Promise<void> {
  let pos = f.start;
  while (pos < f.next) {
    const n = Math.min(MAX_FIELD_HEADER, f.next - pos);
    if (!c.has(pos, n)) await c.load(pos, Math.min(READ_AHEAD, f.next - pos));
    const v = varint(c, pos, f.next);
    each(v.lo, v.hi);
    pos = v.next;
  }
}

async function scanFunction(c: Cursor, fn: Field, ctx: ScanContext): Promise<void> {
  const frames: Frame[] = [{ kind: 'function', field: fn }];
  await walk(c, fn.start, fn.next, (f) => {
    if (!isLen(f)) return undefined;
    if (f.num === FUNCTION.node) return scanNode(c, f, frames, ctx);
    if (f.num === FUNCTION.attributeProto) return scanAttribute(c, f, frames, ctx).then(() => undefined);
    return undefined;
  });
}

/** Records a local function, by its domain and name, as one a node may call. */
async function addFunction(c: Cursor, fn: Field, flow: Flow): Promise<void> {
  let name: Field | undefined;
  let domain: Field | undefined;
  await walk(c, fn.start, fn.next, (f) => {
    if (f.num === FUNCTION.name && isLen(f)) name = f;
    else if (f.num === FUNCTION.domain && isLen(f)) domain = f;
  });
  const calls = new Map<string | undefined, number>();
  await operatorsOf(c, fn, FUNCTION.node, calls, flow);
  flow.addFunction(domain ? await flowName(c, domain) : '', name ? await flowName(c, name) : '', calls);
}

/**
 * Adds the operator (its domain and type, as Flow keys them; undefined when unreadable or past
 * the flow's budget) of every node of `msg` (a function, or a subgraph in one: `nodeField` names
 * its nodes) to `into`, at any depth of subgraphs (scanGraph has bounded it).
 */
async function operatorsOf(c: Cursor, msg: Field, nodeField: number, into: Map<string | undefined, number>, flow: Flow): Promise<void> {
  await walk(c, msg.start, msg.next, async (n) => {
    if (n.num !== nodeField || !isLen(n)) return;
    let op: Field | undefined;
    let domain: Field | undefined;
    await walk(c, n.start, n.next, async (f) => {
      if (f.num === NODE.opType && isLen(f)) op = f;
      else if (f.num === NODE.domain && isLen(f)) domain = f;
      else if (f.num === NODE.attribute && isLen(f)) {
        await walk(c, f.start, f.next, async (a) => {
          if (isLen(a) && (a.num === ATTRIBUTE.g || a.num === ATTRIBUTE.graphs)) await operatorsOf(c, a, GRAPH.node, into, flow);
        });
      }
    });
    // Kept once for every function, within the flow's budget: past it, the functions are not all known.
    const key = flow.operator(functionKey(domain ? await flowName(c, domain) : '', op ? await flowName(c, op) : ''));
    into.set(key, (into.get(key) ?? 0) + 1);
  });
}

async function scanTrainingInfo(c: Cursor, t: Field): Promise<void> {
  const frames: Frame[] = [{ kind: 'training_info' }];
  await walk(c, t.start, t.next, (f) => {
    if (isLen(f) && (f.num === TRAINING_INFO.initialization || f.num === TRAINING_INFO.algorithm)) return scanGraph(c, f, frames);
    return undefined;
  });
}

// ---------------------------------------------------------------------------------------------
// Value-sized operators: where a run's work or memory can follow what the inputs hold.
//
// infermesh lets a version share session workers with other teams' versions, or run on the pod's
// own thread, by how long its runs took when timed at load. That holds only when a run's cost is
// fixed by its inputs' shapes, which the request's size limits bound. A Loop whose trip count is an
// input, or a Range, Tile or Pad sized by one, makes a run as long and as large as a caller asks,
// whatever it took when timed. So does a tensor whose *shape* a caller's numbers chose (a Reshape
// to them, what NonZero found) once it meets an operator that multiplies shapes: broadcast against
// another tensor, a MatMul's outer product, a Gather of its rows. What the analysis cannot follow
// (a subgraph, another domain's operator, a local function, a name it did not keep) counts as
// following the request, so it errs only towards value-sized.

/**
 * Operators whose work, or the size of what they make, can follow the values of their inputs at
 * these indices ('always': whatever feeds them): a loop's trip count and condition, the branch
 * taken, a range's ends, a shape to fill, repeats, pads and their axes, scales and sizes, a depth,
 * a window's or a transform's length, a string's tokens or length, an image's encoded size, a
 * region's extent, boxes kept, a crop's size or
 * a cache's length (onnxruntime's com.microsoft operators), a generation's length. Names are
 * matched in every operator domain.
 */
const VALUE_SIZED: Readonly<Record<string, 'always' | readonly number[]>> = {
  Loop: 'always', If: 'always', Scan: 'always',
  Range: [0, 1, 2], ConstantOfShape: [0], Tile: [1], Expand: [1], Pad: [1, 3], CenterCropPad: [1],
  Resize: [1, 2, 3], Upsample: [1], OneHot: [1], Col2Im: [1, 2], MaxUnpool: [2],
  DFT: [1], STFT: [1, 2, 3], MelWeightMatrix: [0, 1], HannWindow: [0], HammingWindow: [0], BlackmanWindow: [0],
  AffineGrid: [1], StringSplit: [0], ImageDecoder: [0], StringConcat: [0, 1],
  // Work that follows coordinates, scores and thresholds: RoiAlign samples as many points as a box
  // is large; NonMaxSuppression compares boxes as many times as they are kept.
  RoiAlign: [1], NonMaxSuppression: [0, 1, 2, 3, 4],
  CropAndResize: [3], GroupQueryAttention: [5, 6],
  BeamSearch: 'always', GreedySearch: 'always', Sampling: 'always', WhisperBeamSearch: 'always',
};

/**
 * Standard operators whose outputs' shapes follow their inputs' shapes alone, never their values
 * (elementwise, matrix products, convolutions, pooling, normalizations, recurrences, layout).
 */
const SHAPED_BY_SHAPES = [
  'Abs', 'Acos', 'Acosh', 'Add', 'And', 'ArgMax', 'ArgMin', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Attention',
  'AveragePool', 'BatchNormalization', 'Bernoulli', 'BitShift', 'BitwiseAnd', 'BitwiseNot', 'BitwiseOr',
  'BitwiseXor', 'Cast', 'CastLike', 'Ceil', 'Celu', 'Clip', 'Concat', 'Conv', 'ConvInteger', 'ConvTranspose', 'Cos',
  'Cosh', 'CumSum', 'DepthToSpace', 'DequantizeLinear', 'Det', 'Div', 'Dropout', 'DynamicQuantizeLinear', 'Einsum',
  'Elu', 'Equal', 'Erf', 'Exp', 'EyeLike', 'Flatten', 'Floor', 'GRU', 'Gather', 'GatherElements', 'GatherND', 'Gelu',
  'Gemm', 'GlobalAveragePool', 'GlobalLpPool', 'GlobalMaxPool', 'Greater', 'GreaterOrEqual', 'GridSample',
  'GroupNormalization', 'HardSigmoid', 'HardSwish', 'Hardmax', 'Identity', 'InstanceNormalization', 'IsInf', 'IsNaN',
  'LRN', 'LSTM', 'LayerNormalization', 'LeakyRelu', 'Less', 'LessOrEqual', 'Log', 'LogSoftmax', 'LpNormalization',
  'LpPool', 'MatMul', 'MatMulInteger', 'Max', 'MaxPool', 'MaxRoiPool', 'Mean', 'MeanVarianceNormalization', 'Min',
  'Mish', 'Mod', 'Mul', 'Multinomial', 'Neg', 'NegativeLogLikelihoodLoss', 'Not', 'Or', 'PRelu', 'Pow', 'QLinearConv',
  'QLinearMatMul', 'QuantizeLinear', 'RMSNormalization', 'RNN', 'RandomNormalLike', 'RandomUniformLike', 'Reciprocal',
  'RegexFullMatch', 'Relu', 'ReverseSequence', 'RoiAlign', 'RotaryEmbedding', 'Round', 'Scatter', 'ScatterElements',
  'ScatterND', 'Selu', 'Shrink', 'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Softmax', 'SoftmaxCrossEntropyLoss', 'Softplus',
  'Softsign', 'SpaceToDepth', 'Sqrt', 'Sub', 'Sum', 'Swish', 'Tan', 'Tanh', 'TfIdfVectorizer',
  'ThresholdedRelu', 'Transpose', 'Trilu', 'Where', 'Xor',
];

/** The reductions, whose outputs' shapes follow their axes (input 1 from opset 13 or 18) and their input's shape. */
const REDUCTIONS = ['ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare'];

/**
 * Standard operators whose outputs' shapes follow their inputs' shapes and the values at these
 * indices (a Reshape's shape, a Slice's bounds, what NonZero finds), including the value-sized
 * ones' size-giving inputs. Any other operator's outputs are taken as shaped by every input's values.
 */
const SHAPE_GIVEN_BY: ReadonlyMap<string, readonly number[]> = new Map<string, readonly number[]>([
  ...SHAPED_BY_SHAPES.map((op): [string, readonly number[]] => [op, []]),
  ...REDUCTIONS.map((op): [string, readonly number[]] => [op, [1]]),
  ['Reshape', [1]], ['Squeeze', [1]], ['Unsqueeze', [1]], ['Slice', [1, 2, 3, 4]], ['Split', [1]], ['TopK', [1]],
  ['Compress', [1]], ['NonZero', [0]], ['Unique', [0]], ['StringNormalizer', [0]],
  ...Object.entries(VALUE_SIZED).flatMap(([op, at]): [string, readonly number[]][] => (at === 'always' ? [] : [[op, at]])),
]);

/**
 * Standard operators that keep a run linear in what they are fed whatever its shape: elementwise
 * on one tensor, layout, slicing and splitting, what works along one axis. Any other (broadcasting
 * two tensors, a matrix product, a Gather, a convolution…) fed a tensor whose shape follows the
 * request's values makes the run value-sized. Not reductions: an empty [K, 0] reduced over its
 * second axis makes K values from none. A Concat keeps size only with one such input (flowNode):
 * the same tensor joined to itself, again and again, doubles each time.
 */
const KEEPS_SIZE = new Set([
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'BitwiseNot', 'Cast', 'CastLike', 'Ceil',
  'Celu', 'Clip', 'Compress', 'Concat', 'Cos', 'Cosh', 'CumSum', 'DepthToSpace', 'Dropout', 'Elu', 'Erf', 'Exp', 'EyeLike',
  'Flatten', 'Floor', 'GatherElements', 'Gelu', 'HardSigmoid', 'HardSwish', 'Hardmax', 'Identity', 'IsInf', 'IsNaN',
  'LeakyRelu', 'Log', 'LogSoftmax', 'LpNormalization', 'Mish', 'Neg', 'NonZero', 'Not', 'Reciprocal', 'Relu', 'Reshape',
  'ReverseSequence', 'Round', 'ScatterElements', 'Selu', 'Shape', 'Shrink', 'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Size',
  'Slice', 'Softmax', 'Softplus', 'Softsign', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze', 'Swish', 'Tan', 'Tanh',
  'ThresholdedRelu', 'TopK', 'Transpose', 'Trilu', 'Unique', 'Unsqueeze',
]);

/** ai.onnx.ml operators (classical models: trees, linear models, encoders), whose outputs' shapes follow their inputs' shapes. */
const ML_SHAPED_BY_SHAPES = new Set([
  'ArrayFeatureExtractor', 'Binarizer', 'CategoryMapper', 'FeatureVectorizer', 'Imputer', 'LabelEncoder',
  'LinearClassifier', 'LinearRegressor', 'Normalizer', 'OneHotEncoder', 'SVMClassifier', 'SVMRegressor', 'Scaler',
  'TreeEnsemble', 'TreeEnsembleClassifier', 'TreeEnsembleRegressor', 'ZipMap',
]);

/**
 * onnxruntime's com.microsoft operators its offline optimizer writes for small models (fused
 * elementwise, matrix products, convolutions, normalizations, quantized forms), whose outputs'
 * shapes follow their inputs' shapes. Any other operator of another domain fed the request's
 * values makes the run value-sized: what it does with them is not known here.
 */
const MS_SHAPED_BY_SHAPES = new Set([
  'BiasGelu', 'DynamicQuantizeMatMul', 'FastGelu', 'FusedConv', 'FusedGemm', 'FusedMatMul', 'Gelu', 'LayerNormalization',
  'MatMulInteger16', 'MatMulIntegerToFloat', 'MatMulNBits', 'NhwcConv', 'QGemm', 'QLinearAdd', 'QLinearAveragePool',
  'QLinearConcat', 'QLinearGlobalAveragePool', 'QLinearLeakyRelu', 'QLinearMul', 'QLinearSigmoid', 'QuickGelu',
  'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'TransposeMatMul',
]);

/** Operators whose output describes an input's shape: it follows the request's values only where that shape does. */
const SHAPE_OF = new Set(['Shape', 'Size']);

/** A tensor's values follow the request's values (a graph input, or computed from one). */
const VALUES = 1;
/** A tensor's shape follows the request's values. */
const SHAPE = 2;
/**
 * A row of the tensor may follow other rows of the batch, or the batch's size (rowsOut); the
 * rank of a tensor, when known, is kept above RANK_SHIFT (rank + 1; 0: not known).
 */
const MIXED = 4;
/** A constant whose first dimension is 1: broadcast against a batch, it adds no rows. */
const FIRST_ONE = 8;
const RANK_SHIFT = 8;
const rankBits = (rank: number): number => (rank >= 0 && rank < 255 ? (rank + 1) << RANK_SHIFT : 0);
const rankOf = (bits: number): number => ((bits >> RANK_SHIFT) & 0xff) - 1;
/** A constant's keepsBatch (TensorRank), kept above KEEPS_BATCH_SHIFT (rank + 1; 0: none). */
const KEEPS_BATCH_SHIFT = 16;
const constantBits = (r: TensorRank): number =>
  rankBits(r.of) | (r.of >= 1 && r.firstOne ? FIRST_ONE : 0) | (r.keepsBatch >= 1 && r.keepsBatch <= MAX_ROW_INTS ? (r.keepsBatch + 1) << KEEPS_BATCH_SHIFT : 0);
/** The rank a Reshape to this constant gives a batch it keeps whole (TensorRank's keepsBatch); -1 when none. */
const keepsBatchOf = (bits: number): number => ((bits >> KEEPS_BATCH_SHIFT) & 0xff) - 1;
/** What is assumed of a name not (yet) known: declared later, in an outer scope, or past the budget. */
const UNKNOWN = VALUES | SHAPE | MIXED;

/** A declared first dimension that is a number (dim_value, negative included). */
const DECLARED_FIRST_VALUE = 1;
/** A declared first dimension that is a name (dim_param). */
const DECLARED_FIRST_PARAM = 2;
/** A name declared for another dimension. */
const DECLARED_LATER_PARAM = 4;
/** First dimensions declared as different numbers. */
const DECLARED_FIRST_VALUES = 8;

/**
 * What the rows analysis knows of the values of a small INT64 tensor (a shape being computed, or a
 * part of one): its rank, 0 or 1, and each value: a number, the name of the tensor whose first
 * dimension it is (what Shape reads), or null (another dimension, not followed).
 */
interface KnownInts {
  rank: 0 | 1;
  values: readonly (number | string | null)[];
}

/**
 * What the main graph's tensors follow, by name, and the model's local functions, by domain and
 * name, within MAX_ONNX_FLOW_NAME_BYTES together. Past it a name is not kept: a tensor then counts
 * as following the request, and every operator as a local function.
 */
class Flow {
  private readonly of = new Map<string, number>();
  private readonly functions = new Set<string>();
  /** Each local function's operators, by its key (functionKey). */
  private readonly calls = new Map<string, string[]>();
  /** How many of each function's nodes use each of its operators (calls' order), to expand it. */
  private readonly uses = new Map<string, number[]>();
  /** Every operator a local function uses, kept once. */
  private readonly operators = new Set<string>();
  private readonly judgements = new Map<string, Map<string, Judgement>>();
  /** The values known of small INT64 tensors, by name (KnownInts). */
  private readonly known = new Map<string, KnownInts>();
  /** What the graph declares of tensors' dimensions (DECLARED_* flags, and a first dimension's value), by name. */
  private readonly declared = new Map<string, { flags: number; first: number }>();
  /** Declarations not kept (past the budget, or a name not read). */
  private declaredLost = false;
  /** Whether a Reshape kept rows by a shape computed from a dimension (copiedBatchRank). */
  computedShape = false;
  private bytes = 0;
  private functionsLost = false;
  /**
   * A tensor named twice (two initializers, a Constant and an initializer, two nodes' outputs):
   * onnxruntime makes every Constant an initializer and keeps the last of a name for every reader,
   * before or after it, so what a reader was judged on may not be what it reads.
   */
  redefined = false;

  get(name: string | undefined): number {
    return name === undefined ? UNKNOWN : (this.of.get(name) ?? UNKNOWN);
  }

  set(name: string | undefined, bits: number): void {
    if (name === undefined) return; // unreadable: its readers take it as following the request
    if (!this.of.has(name)) {
      if (!this.spend(name)) return;
    } else if (name !== '') this.redefined = true; // '': an optional output left out, by any node
    this.of.set(name, bits);
    this.known.delete(name);
  }

  /** What is known of the values of tensor `name`; undefined when nothing is. */
  knownInts(name: string | undefined): KnownInts | undefined {
    return name === undefined || name === '' ? undefined : this.known.get(name);
  }

  /**
   * Records the values of tensor `name`, just set(); within the budget (a tensor named in them
   * is charged too), past it they are not known.
   */
  setKnown(name: string | undefined, ints: KnownInts): void {
    if (name === undefined || name === '' || !this.of.has(name)) return;
    let bytes = 16 * ints.values.length;
    for (const v of ints.values) if (typeof v === 'string') bytes += v.length;
    if (this.spend(bytes + 64)) this.known.set(name, ints);
  }

  /** Records what a graph input, output or value_info declares of tensor `name`'s dimensions (DECLARED_* flags). */
  declare(name: string | undefined, flags: number, first: number): void {
    if (flags === 0) return;
    if (name === undefined) {
      this.declaredLost = true;
      return;
    }
    const was = this.declared.get(name);
    if (was) {
      if (was.flags & flags & DECLARED_FIRST_VALUE && was.first !== first) was.flags |= DECLARED_FIRST_VALUES;
      was.flags |= flags;
    } else if (this.spend(name)) this.declared.set(name, { flags, first });
    else this.declaredLost = true;
  }

  /**
   * Whether every declared dimension holds whatever the batch, so that onnxruntime reads the
   * dimension a computed shape was judged on: a declared first dimension that is a number could be
   * folded into a Shape (ConstantFolding), and a name could make a Shape read another tensor of the
   * same declared shape (ShapeInputMerge). Holds: a name for the first dimension of a tensor whose
   * rows stay apart (each has the batch's size), a number for the length of a known INT64 vector;
   * a name of any other dimension does not.
   */
  declarationsHold(): boolean {
    if (this.declaredLost) return false;
    for (const [name, { flags, first }] of this.declared) {
      if (flags & (DECLARED_LATER_PARAM | DECLARED_FIRST_VALUES)) return false;
      const bits = this.get(name);
      if (flags & DECLARED_FIRST_PARAM && !((bits & VALUES) !== 0 && (bits & MIXED) === 0 && rankOf(bits) >= 1)) return false;
      const known = this.known.get(name);
      if (flags & DECLARED_FIRST_VALUE && !(known?.rank === 1 && known.values.length === first)) return false;
    }
    return true;
  }

  /** Records a local function and the operators its nodes use (some of which may be functions). */
  addFunction(domain: string | undefined, name: string | undefined, operators: Map<string | undefined, number>): void {
    const key = functionKey(domain, name);
    if (key === undefined || !this.spend(key)) this.functionsLost = true;
    else this.functions.add(key);
    if (key === undefined) return;
    const keys: string[] = [];
    const counts: number[] = [];
    for (const [op, n] of operators) {
      if (op === undefined) this.functionsLost = true;
      else {
        keys.push(op);
        counts.push(n);
      }
    }
    if (!this.spend(16 * keys.length)) this.functionsLost = true;
    else {
      this.calls.set(key, keys);
      this.uses.set(key, counts);
    }
  }

  /**
   * The nodes onnxruntime makes of nodes using `operators` (with how many use each): a call of a
   * local function becomes that function's nodes, its own calls expanded in turn, as onnxruntime
   * inlines them when it makes the session (30 calls of a function of 30 calls of one of 30 nodes
   * are 27,000 nodes, in 91 written). Counted up to `cap`; only once functionNesting() is finite.
   */
  expandedNodes(operators: Map<string | undefined, number>, cap: number): number {
    const sizes = new Map<string, number>();
    const sizeOf = (fn: string): number => {
      const known = sizes.get(fn);
      if (known !== undefined) return known;
      // Nesting is bounded (MAX_ONNX_FUNCTION_NESTING) and acyclic by now: recursion is shallow.
      const keys = this.calls.get(fn)!;
      const counts = this.uses.get(fn)!;
      let n = 0;
      for (let i = 0; i < keys.length && n < cap; i++) n += counts[i]! * (this.calls.has(keys[i]!) ? sizeOf(keys[i]!) : 1);
      const size = Math.min(n, cap);
      sizes.set(fn, size);
      return size;
    };
    let total = 0;
    for (const [op, n] of operators) {
      total += n * (op !== undefined && this.calls.has(op) ? sizeOf(op) : 1);
      if (total >= cap) return cap;
    }
    return total;
  }

  /** Whether the model has local functions. */
  hasFunctions(): boolean {
    return this.calls.size > 0;
  }

  /** An operator's key as functions' calls keep it, once for them all; undefined past the budget. */
  operator(key: string | undefined): string | undefined {
    if (key === undefined || this.operators.has(key)) return key;
    if (!this.spend(key)) return undefined;
    this.operators.add(key);
    return key;
  }

  /**
   * The longest chain of local functions calling one another (1: none calls another; 0 without
   * functions); infinite when one calls itself, directly or not, or when they were not all kept.
   */
  functionNesting(): number {
    if (this.functionsLost) return Number.POSITIVE_INFINITY;
    const depth = new Map<string, number>(); // 0 while its callees are being measured
    let most = 0;
    for (const root of this.calls.keys()) {
      if (depth.has(root)) continue;
      // Depth first without recursion: the chain may be as long as the model is large.
      const stack: { key: string; next: number }[] = [{ key: root, next: 0 }];
      depth.set(root, 0);
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        const callees = this.calls.get(top.key)!;
        if (top.next < callees.length) {
          const callee = callees[top.next++]!;
          if (!this.calls.has(callee)) continue;
          const d = depth.get(callee);
          if (d === 0) return Number.POSITIVE_INFINITY; // a cycle
          if (d === undefined) {
            depth.set(callee, 0);
            stack.push({ key: callee, next: 0 });
          }
          continue;
        }
        stack.pop();
        let d = 1;
        for (const callee of callees) if (this.calls.has(callee)) d = Math.max(d, depth.get(callee)! + 1);
        depth.set(top.key, d);
        most = Math.max(most, d);
      }
    }
    return most;
  }

  /** The judgement of an operator, made once per domain and type (a graph uses a few dozen). */
  judged(domain: string | undefined, op: string | undefined, make: () => Judgement): Judgement {
    if (domain === undefined || op === undefined) return make();
    let ops = this.judgements.get(domain);
    if (!ops) {
      if (!this.spend(domain)) return make();
      this.judgements.set(domain, (ops = new Map()));
    }
    let j = ops.get(op);
    if (!j) {
      j = make();
      // Kept within the names' budget; past it, made anew each time.
      if (this.spend(op)) ops.set(op, j);
    }
    return j;
  }

  isFunction(domain: string, name: string): boolean {
    return this.functionsLost || this.functions.has(functionKey(domain, name)!);
  }

  /** Charges a key kept (its length and 64 bytes of bookkeeping), or `bytes`; false past MAX_ONNX_FLOW_NAME_BYTES. */
  private spend(key: string | number): boolean {
    const bytes = typeof key === 'number' ? key : key.length + 64;
    if (this.bytes + bytes > MAX_ONNX_FLOW_NAME_BYTES) return false;
    this.bytes += bytes;
    return true;
  }
}

/** An operator's or a local function's key: its domain and type; undefined when either is unreadable. */
function functionKey(domain: string | undefined, name: string | undefined): string | undefined {
  return domain === undefined || name === undefined ? undefined : `${domain}\u0000${name}`;
}

/**
 * A name as the analysis keys it; undefined when it is not UTF-8 (decoded, it could read as
 * another name) or longer than MAX_ONNX_STRING_BYTES. No await when its bytes are buffered.
 */
function flowName(c: Cursor, f: Field): string | undefined | Promise<string | undefined> {
  const n = f.next - f.start;
  if (!isLen(f) || n > MAX_ONNX_STRING_BYTES) return undefined;
  // A replacement character is where invalid bytes would show: only then is the name checked.
  if (c.has(f.start, n)) {
    const s = c.text(f.start, n);
    return s.includes('\uFFFD') && !isUtf8(c.view(f.start, n)) ? undefined : s;
  }
  return c.bytes(f.start, n).then((b) => (isUtf8(b) ? b.toString('utf8') : undefined));
}

/** Calls `held` if an attribute holds a subgraph (g or graphs); without an await when it is buffered. */
function holdsGraph(c: Cursor, a: Field, held: () => void): void | Promise<void> {
  return walkBuffered(c, a.start, a.next, (f) => {
    if (isLen(f) && (f.num === ATTRIBUTE.g || f.num === ATTRIBUTE.graphs)) held();
  });
}

/** How one operator is judged: its domain's tables, or none (a local function, an unknown domain). */
function judge(flow: Flow, domain: string | undefined, op: string | undefined): Judgement {
  const readable = domain !== undefined && op !== undefined;
  const call = !readable || flow.isFunction(domain, op);
  const standard = !call && (domain === '' || domain === 'ai.onnx');
  const known = standard || (!call && domain === 'ai.onnx.ml' && ML_SHAPED_BY_SHAPES.has(op!)) || (!call && domain === 'com.microsoft' && MS_SHAPED_BY_SHAPES.has(op!));
  return flow.judged(domain, op, () => ({
    label: !readable ? '(unreadable operator)' : domain === '' || domain === 'ai.onnx' ? op : `${domain}.${op}`,
    call,
    standard,
    ml: !call && domain === 'ai.onnx.ml',
    known,
    sized: readable && Object.hasOwn(VALUE_SIZED, op) ? VALUE_SIZED[op]! : undefined,
    // Outside the standard domain only the listed operators are known to keep shapes.
    shapeBy: standard ? SHAPE_GIVEN_BY.get(op!) : known ? [] : undefined,
    keepsSize: standard && KEEPS_SIZE.has(op!),
  }));
}

interface Judgement {
  label: string;
  call: boolean;
  standard: boolean;
  /** An ai.onnx.ml operator (not a local function of that domain). */
  ml: boolean;
  known: boolean;
  sized: 'always' | readonly number[] | undefined;
  shapeBy: readonly number[] | undefined;
  keepsSize: boolean;
}

/**
 * One node of the main graph, in the graph's order (ONNX lists nodes topologically; a name used
 * before it is made counts as following the request): adds its operator to `found` when the run
 * can cost what the request's values ask through it, and to `mixing` when a row of its outputs can
 * follow other rows (rowsOut), and records what its outputs follow. Input and output names are
 * read one at a time, never kept for the node.
 */
async function flowNode(c: Cursor, n: Field, flow: Flow, found: Set<string>, mixing: Set<string>): Promise<void> {
  // Most nodes are a few dozen bytes: buffered whole, they are read without an await.
  const size = n.next - n.start;
  if (size <= READ_AHEAD && !c.has(n.start, size)) await c.load(n.start, size);
  let opField: Field | undefined;
  let domainField: Field | undefined;
  let graphs = false;
  const read = walkBuffered(c, n.start, n.next, (f) => {
    if (f.num === NODE.opType && isLen(f)) opField = f;
    else if (f.num === NODE.domain && isLen(f)) domainField = f;
    else if (f.num === NODE.attribute && isLen(f) && !graphs) {
      return holdsGraph(c, f, () => {
        graphs = true;
      });
    }
    return undefined;
  });
  if (read) await read;
  let op = opField ? flowName(c, opField) : '';
  if (op instanceof Promise) op = await op;
  let domain = domainField ? flowName(c, domainField) : '';
  if (domain instanceof Promise) domain = await domain;
  const j = judge(flow, domain, op);
  let index = 0;
  let fed = 0;
  let fedShape = 0;
  let shapeFromValues = false;
  let shaped = 0;
  // What each input follows, for rowsOut (past MAX_ROW_INPUTS, only that there were more).
  const ins: number[] = [];
  // For a shape's arithmetic (shapeValues): what is known of each input's values, and the first
  // input's name (what Shape reads the size of, what Reshape reshapes).
  const arithmetic = j.standard && !graphs && SHAPE_ARITHMETIC.has(op!);
  const known: (KnownInts | undefined)[] = [];
  let first: string | undefined;
  const input = (i: number, name: string | undefined) => {
    const bits = name === '' ? 0 : flow.get(name); // '': an optional input left out
    if (i < MAX_ROW_INPUTS) ins.push(name === '' ? ABSENT : bits);
    if (arithmetic && i < MAX_ROW_INPUTS) {
      known.push(flow.knownInts(name));
      if (i === 0) first = name;
    }
    if (name === '') return;
    fed |= bits & (VALUES | SHAPE);
    if (bits & SHAPE) shaped++;
    if (i === 0) fedShape = bits;
    if (bits & VALUES && j.sized !== undefined && j.sized !== 'always' && j.sized.includes(i)) found.add(j.label);
    if (bits & VALUES && j.shapeBy?.includes(i)) shapeFromValues = true;
  };
  const inputs = walkBuffered(c, n.start, n.next, (f) => {
    if (f.num !== NODE.input || !isLen(f)) return undefined;
    const i = index++;
    const name = flowName(c, f);
    return name instanceof Promise ? name.then((s) => input(i, s)) : input(i, name);
  });
  if (inputs) await inputs;
  if (j.sized === 'always' || graphs) found.add(j.label);
  // A local function's or an unknown operator's body is not followed; a shape that follows the
  // request's values, fed to what multiplies shapes, can make any size.
  if ((fed && j.call) || (fed & VALUES && !j.known) || (fed & SHAPE && (!j.keepsSize || (j.standard && op === 'Concat' && shaped > 1)))) found.add(j.label);
  let out: number;
  if (j.standard && op === 'Constant') out = 0;
  else if (graphs) out = UNKNOWN; // its subgraphs may read any tensor of the graph
  else if (j.standard && SHAPE_OF.has(op!)) out = fedShape & SHAPE ? VALUES : 0;
  else if (!fed) out = 0;
  else out = VALUES | (fed & SHAPE || (j.shapeBy ? shapeFromValues : true) ? SHAPE : 0);
  // Shape's bounds are read whatever it is fed: without them, what it gives is not known.
  const reads = arithmetic && (op === 'Shape' || known.some((k) => k !== undefined));
  const attrs = j.standard && !graphs && (op === 'Constant' || reads || (fed & VALUES && ROW_ATTRIBUTES.has(op!))) ? await rowAttributes(c, n) : NO_ATTRIBUTES;
  const made = reads || (j.standard && !graphs && op === 'Constant') ? shapeValues(op!, attrs, ins, known, first, index) : undefined;
  const copies = reads && op === 'Reshape' ? copiedBatchRank(known[1], first) : -1;
  // Outputs, an optional one left out ('') included: BatchNormalization trains when it has more than one.
  let named = 0;
  const counted = walkBuffered(c, n.start, n.next, (f) => {
    if (f.num === NODE.output && isLen(f)) named++;
  });
  if (counted) await counted;
  const rows = rowsOut(j, op, ins, index > MAX_ROW_INPUTS, attrs, graphs, named, copies);
  if (copies >= 1 && !(rows(0) & MIXED)) flow.computedShape = true;
  let outIndex = 0;
  const set = (name: string | undefined) => {
    const at = outIndex++;
    const r = rows(at);
    if (r & MIXED && !ins.some((b) => b !== ABSENT && b & MIXED)) mixing.add(j.label);
    flow.set(name, out | r);
    if (at === 0 && made !== undefined) flow.setKnown(name, made);
  };
  const outputs = walkBuffered(c, n.start, n.next, (f) => {
    if (f.num !== NODE.output || !isLen(f)) return undefined;
    const name = flowName(c, f);
    return name instanceof Promise ? name.then(set) : set(name);
  });
  if (outputs) await outputs;
}

// ---------------------------------------------------------------------------------------------
// Rows: whether a batch's rows stay apart.
//
// A pod batches the requests of different callers into one run, joined along the first dimension,
// and hands each caller its rows of the outputs. That is only right when row i of every output
// follows row i of the inputs alone: a ReduceSum over the batch, a Softmax over it, a MatMul that
// contracts it, a Reshape that moves rows, would hand one caller's values (a NaN, say) to the
// others. Each tensor of the main graph is CONST (follows no input), ROWS of a known rank (its
// first axis is the batch, rows apart) or MIXED; a standard operator keeps ROWS only under the
// rules of rowsOut, and anything it cannot follow (another domain, a local function, a subgraph,
// an operator not listed, an axis or a rank not known, a Reshape's or a Slice's values) is MIXED.
// Every ROWS tensor's first dimension is the batch's size: the inputs agree on it (decodeRequest)
// and each rule keeps it.

/** Inputs of one node whose bits rowsOut looks at; a node with more is MIXED unless elementwise. */
const MAX_ROW_INPUTS = 64;
/** An optional input left out. */
const ABSENT = -1;
/** Values kept of one ints attribute (axes, perm): a longer one is not followed. */
const MAX_ROW_INTS = 16;

/** Elementwise on input 0: row i of the output follows row i of it (other inputs must not mix). */
const ROW_UNARY = new Set([
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'BitwiseNot', 'Cast', 'CastLike', 'Ceil', 'Celu', 'Clip',
  'Cos', 'Cosh', 'Dropout', 'Elu', 'Erf', 'Exp', 'Floor', 'Gelu', 'HardSigmoid', 'HardSwish', 'Identity', 'IsInf',
  'IsNaN', 'LeakyRelu', 'Log', 'Mish', 'Neg', 'Not', 'Reciprocal', 'Relu', 'Round', 'Selu', 'Shrink', 'Sigmoid', 'Sign',
  'Sin', 'Sinh', 'Softplus', 'Softsign', 'Sqrt', 'Swish', 'Tan', 'Tanh', 'ThresholdedRelu',
]);
/** Elementwise with broadcasting over every input. */
const ROW_ELEMENTWISE = new Set([
  'Add', 'And', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'Div', 'Equal', 'Greater', 'GreaterOrEqual', 'Less',
  'LessOrEqual', 'Max', 'Mean', 'Min', 'Mod', 'Mul', 'Or', 'PRelu', 'Pow', 'Sub', 'Sum', 'Where', 'Xor',
]);
/** Per sample over [N, C, …]: input 0 the batch, the others weights (CONST). */
const ROW_PER_SAMPLE = new Set([
  'AveragePool', 'BatchNormalization', 'Conv', 'ConvTranspose', 'DepthToSpace', 'GlobalAveragePool', 'GlobalLpPool',
  'GlobalMaxPool', 'GroupNormalization', 'InstanceNormalization', 'LRN', 'LpPool', 'MaxPool', 'SpaceToDepth',
]);
/** Along one axis (attribute `axis`), which must not be the batch's. */
const ROW_ALONG_AXIS = new Set(['Softmax', 'LogSoftmax', 'Hardmax', 'LpNormalization', 'LayerNormalization']);
const ROW_REDUCTIONS = new Set([...REDUCTIONS, 'ArgMax', 'ArgMin']);
/**
 * ai.onnx.ml's classical models and transforms, which take [N, F] as N samples of F features and
 * answer each sample from its own row: the rank of each output (a label per row; scores,
 * probabilities or values per row). Fed a tensor of another rank (a [F] vector is one sample),
 * they are not followed.
 */
// Not LinearClassifier: onnxruntime 1.30's binary one with post_transform PROBIT writes one
// row's score into another row (found by a hostile review: [a; b] gave a the score b had alone).
const ROW_ML: Readonly<Record<string, readonly number[]>> = {
  LinearRegressor: [2], SVMClassifier: [1, 2], SVMRegressor: [2],
  TreeEnsembleClassifier: [1, 2], TreeEnsembleRegressor: [2],
  Scaler: [2], Normalizer: [2], Binarizer: [2], Imputer: [2],
};

/** Operators whose attributes rowsOut reads. */
const ROW_ATTRIBUTES = new Set([...ROW_ALONG_AXIS, ...ROW_REDUCTIONS, 'BatchNormalization', 'Concat', 'Flatten', 'Gather', 'Gemm', 'Reshape', 'Split', 'Transpose']);

/** The attributes rowsOut reads; undefined when absent (or not followed). */
interface RowAttributes {
  axis?: number;
  axes?: number[];
  perm?: number[];
  keepdims?: number;
  transA?: number;
  trainingMode?: number;
  /** Reshape's: 1 makes a 0 in the shape a dimension of 0, not a copy. */
  allowZero?: number;
  /** Shape's (opset 15 on): the first dimension it gives, and the one after its last. */
  start?: number;
  end?: number;
  /** A Constant's rank and first dimension, from its value. */
  constantRank?: TensorRank;
}
const NO_ATTRIBUTES: RowAttributes = {};
const ATTRIBUTE_I = 3;
const ATTRIBUTE_FIELD_INTS = 8;
const ATTRIBUTE_TYPE = 20;
const ATTRIBUTE_TYPE_INT = 2;
const ATTRIBUTE_TYPE_TENSOR = 4;
/** The rank of a Constant made of an attribute of each type: FLOAT, INT, STRING scalars; FLOATS, INTS, STRINGS lists. */
const CONSTANT_RANKS: Readonly<Record<number, TensorRank>> = {
  1: { of: 0, firstOne: false, keepsBatch: -1 }, 2: { of: 0, firstOne: false, keepsBatch: -1 }, 3: { of: 0, firstOne: false, keepsBatch: -1 },
  6: { of: 1, firstOne: false, keepsBatch: -1 }, 7: { of: 1, firstOne: false, keepsBatch: -1 }, 8: { of: 1, firstOne: false, keepsBatch: -1 },
};
const ATTRIBUTE_TYPE_INTS = 7;

/** A varint as a signed int64, as a number (exact within ±2^53). */
const signedOf = (lo: number, hi: number): number => (hi | 0) * 0x1_0000_0000 + (lo >>> 0);

/** The attributes of node `n` rowsOut reads. */
async function rowAttributes(c: Cursor, n: Field): Promise<RowAttributes> {
  const out: RowAttributes = {};
  let index = 0;
  await walk(c, n.start, n.next, async (a) => {
    if (a.num !== NODE.attribute || !isLen(a)) return;
    const first = index++ === 0;
    const name = await stringField(c, a, ATTRIBUTE.name);
    let type = 0;
    let int: number | undefined;
    let ints: number[] | undefined = [];
    let tensorRank: TensorRank | undefined;
    await walk(c, a.start, a.next, async (f) => {
      if (f.num === ATTRIBUTE_I && isVarint(f)) int = signedOf(f.lo, f.hi);
      else if (f.num === ATTRIBUTE_TYPE && isVarint(f)) type = f.lo;
      else if (f.num === ATTRIBUTE_FIELD_INTS && ints) {
        const add = (lo: number, hi: number) => {
          if (ints && ints.length < MAX_ROW_INTS) ints.push(signedOf(lo, hi));
          else ints = undefined;
        };
        if (isVarint(f)) add(f.lo, f.hi);
        else if (isLen(f)) await eachPackedVarint(c, f, add);
      } else if (f.num === ATTRIBUTE.t && isLen(f)) {
        // A message field given twice is one message, merged: its dims joined (its values are not followed).
        const rank: TensorRank = { of: -1, firstOne: false, keepsBatch: -1 };
        await scanTensor(c, f, 'tensor', [], false, rank);
        tensorRank = tensorRank ? { of: tensorRank.of + rank.of, firstOne: tensorRank.of > 0 ? tensorRank.firstOne : rank.firstOne, keepsBatch: -1 } : rank;
      }
    });
    // An INT attribute with no value is 0 to onnxruntime (protobuf's default), not absent.
    if (int === undefined && type === ATTRIBUTE_TYPE_INT) int = 0;
    switch (name) {
      case 'axis': out.axis = int; break;
      case 'axes': out.axes = ints; break;
      case 'perm': out.perm = ints; break;
      case 'keepdims': out.keepdims = int; break;
      case 'transA': out.transA = int; break;
      case 'training_mode': out.trainingMode = int; break;
      case 'allowzero': out.allowZero = int; break;
      case 'start': out.start = int; break;
      case 'end': out.end = int; break;
      default:
    }
    // onnxruntime makes a Constant's value of its first attribute, by that attribute's type
    // whatever its name; with more than one, its rank is not known here.
    if (!first) out.constantRank = undefined;
    else if (type === ATTRIBUTE_TYPE_TENSOR) out.constantRank = tensorRank;
    else if (type === ATTRIBUTE_TYPE_INTS) out.constantRank = { of: 1, firstOne: false, keepsBatch: ints && ints.length >= 1 && ints[0] === 0 ? ints.length : -1, ints: ints && ints.length >= 1 ? ints : undefined };
    else if (type === ATTRIBUTE_TYPE_INT) out.constantRank = { of: 0, firstOne: false, keepsBatch: -1, ints: [int ?? 0] };
    else out.constantRank = CONSTANT_RANKS[type];
  });
  return out;
}

/** An axis of a tensor of `rank` dimensions, counted from 0 (a negative one from the end); -1 when out of range. */
function axisOf(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : -1;
}

// A shape computed from the batch's size. PyTorch exports x.view(x.size(0), -1) with a dynamic
// batch as Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])), and from opset 15 as
// Reshape(x, Concat(Shape(x, start=0, end=1), [-1])): the shape's first value is x's own first
// dimension, so each row stays one row, as with a first 0. The values of such a shape are
// followed exactly (KnownInts), through these operators only, from INT64 constants read as
// onnxruntime reads them (initializers that no input overrides, Constants); anything else about
// them is not known, and a Reshape to what is not known moves rows.

/** The standard operators through which the values of a shape are followed (shapeValues). */
const SHAPE_ARITHMETIC = new Set(['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape']);

/**
 * What is known of the values of a node's first output, from its attributes and what is known of
 * its inputs' values (`known`, by index, of `inputs` in all; `first`: the first input's name);
 * undefined when not followed. `ins` are the inputs' flow bits.
 */
function shapeValues(op: string, attrs: RowAttributes, ins: readonly number[], known: readonly (KnownInts | undefined)[], first: string | undefined, inputs: number): KnownInts | undefined {
  switch (op) {
    case 'Constant': {
      const c = attrs.constantRank;
      return c?.ints && (c.of === 0 || c.of === 1) ? { rank: c.of, values: c.ints } : undefined;
    }
    case 'Shape': {
      // Dimensions start to end of its input, each bound counted from the end when negative, then
      // clamped to [0, rank] (opset 15; before it, no bounds: onnxruntime refuses them).
      const r = inputs === 1 && ins[0] !== ABSENT ? rankOf(ins[0]!) : -1;
      if (first === undefined || first === '' || r < 1 || r > MAX_ROW_INTS) return undefined;
      const bound = (b: number | undefined, none: number) => (b === undefined ? none : Math.min(Math.max(b < 0 ? b + r : b, 0), r));
      const start = bound(attrs.start, 0);
      const end = bound(attrs.end, r);
      if (end <= start) return undefined;
      return { rank: 1, values: Array.from({ length: end - start }, (_, k) => (start + k === 0 ? first : null)) };
    }
    case 'Gather': {
      // A vector's values picked by constant indices (a scalar picks one, a vector several).
      const [data, indices] = known;
      if (inputs !== 2 || data?.rank !== 1 || !indices || axisOf(attrs.axis ?? 0, 1) !== 0) return undefined;
      const size = data.values.length;
      const picked: (number | string | null)[] = [];
      for (const i of indices.values) {
        if (typeof i !== 'number' || i < -size || i >= size) return undefined;
        picked.push(data.values[i < 0 ? i + size : i]!);
      }
      return { rank: indices.rank, values: picked };
    }
    case 'Unsqueeze': {
      // A scalar made a vector of one: axes [0] (or [-1]), an attribute before opset 13, an input
      // from it (onnxruntime refuses a node with the other form, or with both).
      const [data, given] = known;
      const axes = inputs === 1 ? attrs.axes : inputs === 2 && attrs.axes === undefined && given?.rank === 1 ? given.values : undefined;
      if (data?.rank !== 0 || axes?.length !== 1 || (axes[0] !== 0 && axes[0] !== -1)) return undefined;
      return { rank: 1, values: data.values };
    }
    case 'Concat': {
      // Vectors joined along their one axis, every part known.
      if (inputs > MAX_ROW_INPUTS || attrs.axis === undefined || axisOf(attrs.axis, 1) !== 0) return undefined;
      const values: (number | string | null)[] = [];
      for (const part of known) {
        if (part?.rank !== 1 || values.length + part.values.length > MAX_ROW_INTS) return undefined;
        values.push(...part.values);
      }
      return values.length > 0 ? { rank: 1, values } : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The rank a Reshape of tensor `data` to a shape of these values gives when each row stays one
 * row: the first value is `data`'s own first dimension, each other a positive constant or -1,
 * -1 exactly once; -1 otherwise. Exactly once, because onnxruntime's optimizer (ReshapeFusion)
 * writes a Shape, Gather, Unsqueeze and Concat it matches as a constant shape: the first
 * dimension as 0 (a copy; so allowzero must be 0, rowsOut), or, where it does not match the
 * Gather's index, as -1, which with another -1 it cannot write. A shape without a -1 that does
 * not fit the data would fail unfused, and could be fused to [-1, …] and move rows.
 */
function copiedBatchRank(shape: KnownInts | undefined, data: string | undefined): number {
  if (shape?.rank !== 1 || data === undefined || data === '' || shape.values[0] !== data) return -1;
  let inferred = 0;
  for (let i = 1; i < shape.values.length; i++) {
    const v = shape.values[i];
    if (v === -1) inferred++;
    else if (typeof v !== 'number' || v < 1) return -1;
  }
  return inferred === 1 ? shape.values.length : -1;
}

/**
 * What each output of a node follows, by its index: CONST (0, or a Constant's rank), ROWS with a
 * rank, or MIXED. Input bits are flow bits (ABSENT for an optional input left out); `copies`, a
 * Reshape's copiedBatchRank (-1: none).
 */
function rowsOut(j: Judgement, op: string | undefined, ins: readonly number[], more: boolean, attrs: RowAttributes, graphs: boolean, outputs: number, copies: number): (output: number) => number {
  const present = ins.filter((b) => b !== ABSENT);
  // MIXED without VALUES: what the batch's size made (a Shape of it) mixes like a batch-fed tensor.
  const rows = present.filter((b) => b & (VALUES | MIXED));
  if (rows.length === 0 && !more) {
    // Follows no input: a constant, of a known rank when it is a Constant.
    const rank = j.standard && op === 'Constant' && attrs.constantRank !== undefined ? constantBits(attrs.constantRank) : 0;
    return () => (graphs ? MIXED | VALUES : rank);
  }
  const mixed = () => MIXED;
  // A Reshape to its batch-fed input's own first dimension (copiedBatchRank), before the rule
  // below: the shape is MIXED, as what the batch's size made is, but nothing else of it.
  if (j.standard && op === 'Reshape' && copies >= 1 && !graphs && !more && ins.length === 2 && ins[1] !== ABSENT && !(ins[1]! & VALUES)
    && ins[0] !== ABSENT && (ins[0]! & (VALUES | MIXED)) === VALUES && rankOf(ins[0]!) >= 1 && (attrs.allowZero ?? 0) === 0) return () => rankBits(copies);
  if (graphs || more || rows.some((b) => b & MIXED)) return mixed;
  if (j.ml && op !== undefined && Object.hasOwn(ROW_ML, op)) {
    const ranks = ROW_ML[op]!;
    const only = ins.length === 1 && (ins[0]! & VALUES) !== 0;
    return only && rankOf(ins[0]!) === 2 ? (output) => (output < ranks.length ? rankBits(ranks[output]!) : MIXED) : mixed;
  }
  if (!j.standard) return mixed;
  const keep = (rank: number) => (rank >= 1 ? () => rankBits(rank) : mixed);
  const rankAt = (i: number) => (ins[i] === undefined || ins[i] === ABSENT ? -1 : rankOf(ins[i]!));
  const isRows = (i: number) => ins[i] !== undefined && ins[i] !== ABSENT && (ins[i]! & VALUES) !== 0;
  const onlyFirst = isRows(0) && ins.every((b, i) => i === 0 || b === ABSENT || !(b & VALUES));
  const r0 = rankAt(0);
  const name = op!;
  // A constant beside the batch adds no rows when its rank is lower, or its first dimension is 1:
  // one of the batch's rank with N rows would broadcast to N rows, so a lone caller would get N
  // and each of N callers batched one, by its place in the batch.
  const besideRows = (b: number, r: number) => rankOf(b) >= 0 && (rankOf(b) < r || (rankOf(b) === r && (b & FIRST_ONE) !== 0));
  // Dropout told to train (its third input) drops by a mask drawn over the whole batch.
  if (name === 'Dropout' && ins[2] !== undefined && ins[2] !== ABSENT) return mixed;
  if (ROW_UNARY.has(name)) return onlyFirst && present.every((b, i) => i === 0 || besideRows(b, r0)) ? keep(r0) : mixed;
  if (ROW_ELEMENTWISE.has(name)) {
    // Broadcasting aligns trailing axes: every batch-fed operand of one rank r keeps its rows on
    // the first axis; a constant of a higher rank would put other axes before it.
    const r = rankOf(rows[0]!);
    if (r < 1 || rows.some((b) => rankOf(b) !== r)) return mixed;
    return present.every((b) => b & VALUES || besideRows(b, r)) ? keep(r) : mixed;
  }
  if (ROW_PER_SAMPLE.has(name)) {
    if (!onlyFirst) return mixed;
    // Training-mode statistics are over the batch (from opset 14 the attribute, before it any
    // output past the first); MaxPool's indices count from the batch's start.
    if (name === 'BatchNormalization' && ((attrs.trainingMode ?? 0) !== 0 || outputs > 1)) return mixed;
    return (output) => (output === 0 ? (r0 >= 1 ? rankBits(r0) : MIXED) : MIXED);
  }
  switch (name) {
    case 'MatMul':
      // [B, …, K] × [K, N] weights, or two batches of matrices of one rank.
      if (onlyFirst && r0 >= 2 && rankAt(1) === 2) return keep(r0);
      if (isRows(0) && isRows(1) && r0 >= 3 && rankAt(1) === r0) return keep(r0);
      return mixed;
    case 'Gemm':
      // C is broadcast to [N, M]: a C of N rows would add rows as a constant of the batch's rank does.
      return onlyFirst && r0 === 2 && (attrs.transA ?? 0) === 0 && (ins[2] === undefined || ins[2] === ABSENT || besideRows(ins[2], 2)) ? keep(2) : mixed;
    case 'Flatten': {
      // [d0 · … · d(a-1), d(a) · …], axis a in [-r, r] (a negative one counted from r): N rows
      // only from axis 1; from a later one each row becomes several, from 0 all of them one.
      const axis = attrs.axis ?? 1;
      return onlyFirst && r0 >= 1 && (axis < 0 ? axis + r0 : axis) === 1 ? keep(2) : mixed;
    }
    case 'Reshape': {
      // A shape whose first value is 0 copies the batch's size (unless allowzero): the data keeps
      // its order, so row i stays row i, in the shape's rank. Any other shape can move rows.
      const to = ins.length === 2 && ins[1] !== ABSENT ? keepsBatchOf(ins[1]!) : -1;
      return onlyFirst && r0 >= 1 && to >= 1 && (attrs.allowZero ?? 0) === 0 ? keep(to) : mixed;
    }
    case 'Transpose':
      return onlyFirst && attrs.perm !== undefined && attrs.perm.length === r0 && attrs.perm[0] === 0 ? keep(r0) : mixed;
    case 'Concat': {
      // Every operand batch-fed: a constant joined along another axis has rows of its own.
      const r = rankOf(rows[0]!);
      if (r < 1 || attrs.axis === undefined || axisOf(attrs.axis, r) < 1) return mixed;
      return present.every((b) => b & VALUES && rankOf(b) === r) ? keep(r) : mixed;
    }
    case 'Split':
      return onlyFirst && r0 >= 1 && attrs.axis !== undefined && axisOf(attrs.axis, r0) >= 1 ? () => rankBits(r0) : mixed;
    case 'Gather': {
      const axis = attrs.axis ?? 0;
      // Rows of a batch-fed tensor picked along another axis, or a constant table looked up by
      // batch-fed indices (an embedding): each output row follows one input row.
      if (onlyFirst && r0 >= 1 && rankAt(1) >= 0 && axisOf(axis, r0) >= 1) return keep(r0 - 1 + rankAt(1));
      if (!isRows(0) && isRows(1) && r0 >= 1 && rankAt(1) >= 1 && axisOf(axis, r0) === 0) return keep(rankAt(1) + r0 - 1);
      return mixed;
    }
    default:
  }
  if (ROW_ALONG_AXIS.has(name)) {
    // Without an axis: 1 before opset 13, the last from it; either is past the batch's from rank 2.
    // A scale or bias (LayerNormalization's) is broadcast like an elementwise operand.
    if (!onlyFirst || r0 < 2 || !present.every((b, i) => i === 0 || besideRows(b, r0))) return mixed;
    if (attrs.axis !== undefined && axisOf(attrs.axis, r0) < 1) return mixed;
    return () => rankBits(r0);
  }
  if (ROW_REDUCTIONS.has(name)) {
    // Axes as an attribute, none of them the batch's; from an input (opset 13 or 18 on), not followed.
    if (!onlyFirst || ins.length > 1 || r0 < 1) return mixed;
    const axes = name === 'ArgMax' || name === 'ArgMin' ? (attrs.axis === undefined ? undefined : [attrs.axis]) : attrs.axes;
    if (!axes || axes.length === 0 || axes.some((a) => axisOf(a, r0) < 1)) return mixed;
    return keep((attrs.keepdims ?? 1) !== 0 ? r0 : r0 - new Set(axes.map((a) => axisOf(a, r0))).size);
  }
  return mixed;
}

// ---------------------------------------------------------------------------------------------
// Signature: the main graph's inputs and outputs.

const TYPE = { tensorType: 1, sequenceType: 4, mapType: 5, sparseTensorType: 8, optionalType: 9 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const DIMENSION = { value: 1, param: 2 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;

const TYPE_NAMES: Record<number, string> = {
  [TYPE.sequenceType]: 'a sequence',
  [TYPE.mapType]: 'a map',
  [TYPE.sparseTensorType]: 'a sparse tensor',
  [TYPE.optionalType]: 'an optional',
};

/** Counts what the signature keeps in memory against MAX_ONNX_SIGNATURE_BYTES. */
class Budget {
  private used = 0;
  spend(bytes: number): void {
    this.used += bytes;
    if (this.used > MAX_ONNX_SIGNATURE_BYTES) {
      throw new OnnxFormatError(`the graph's inputs and outputs take more than ${MAX_ONNX_SIGNATURE_BYTES} bytes to describe`);
    }
  }
}

/** A dimension: its size, or -1 when dynamic (dim_param, unset, or a negative dim_value). */
async function readDim(c: Cursor, d: Field, tensor: () => string): Promise<number> {
  let size = -1;
  await walk(c, d.start, d.next, (f) => {
    if (f.num === DIMENSION.value && isVarint(f)) {
      // int64: onnxruntime reads a negative size as unknown, as it does dim_param.
      const v = int64(f);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new OnnxFormatError(`tensor ${shown(tensor())}: dimension ${v} is too large`);
      size = v < 0n ? -1 : Number(v);
    } else if (f.num === DIMENSION.param && isLen(f)) size = -1; // oneof: the last one set wins
  });
  return size;
}

async function readValueInfo(c: Cursor, vi: Field, budget: Budget): Promise<TensorSignature> {
  let nameField: Field | undefined;
  let typeField: Field | undefined;
  // A message field given twice is merged by protobuf (onnxruntime reads the merged type: the dims
  // of both shapes, one after the other), where reading the last alone would declare another
  // signature than the one served. No exporter writes one twice: such a model is refused.
  let types = 0;
  await walk(c, vi.start, vi.next, (f) => {
    if (f.num === VALUE_INFO.name && isLen(f)) nameField = f;
    else if (f.num === VALUE_INFO.type && isLen(f)) {
      typeField = f;
      types++;
    }
  });
  const name = nameField ? await str(c, nameField) : '';
  if (!name) throw new OnnxFormatError('a graph input or output has no name');
  const twice = (what: string) => new OnnxFormatError(`tensor ${shown(name)} declares its ${what} more than once`);
  if (types > 1) throw twice('type');
  budget.spend(name.length + 32);
  let kind = 0;
  let tensorType: Field | undefined;
  let kinds = 0;
  if (typeField) {
    await walk(c, typeField.start, typeField.next, (f) => {
      if (isLen(f) && (f.num === TYPE.tensorType || f.num in TYPE_NAMES)) {
        kind = f.num;
        kinds++;
        tensorType = f.num === TYPE.tensorType ? f : undefined;
      }
    });
  }
  if (kinds > 1) throw twice('type');
  if (kind !== TYPE.tensorType || !tensorType) {
    throw new OnnxFormatError(`${shown(name)} is ${TYPE_NAMES[kind] ?? 'of no declared type'}: infermesh serves tensors only`);
  }
  let elemType = 0;
  let shapeField: Field | undefined;
  let shapes = 0;
  await walk(c, tensorType.start, tensorType.next, (f) => {
    if (f.num === TENSOR_TYPE.elemType && isVarint(f)) elemType = unsigned(f.lo, f.hi);
    else if (f.num === TENSOR_TYPE.shape && isLen(f)) {
      shapeField = f;
      shapes++;
    }
  });
  if (shapes > 1) throw twice('shape');
  const shape: number[] = [];
  if (shapeField) {
    await walk(c, shapeField.start, shapeField.next, async (f) => {
      if (f.num !== 1 || !isLen(f)) return;
      budget.spend(8);
      shape.push(await readDim(c, f, () => name));
    });
  }
  const datatype = datatypeOfOnnx(elemType);
  if (!datatype) throw new OnnxFormatError(`tensor ${shown(name)} has an element type (${elemType}) infermesh cannot serve`);
  return { name, datatype, shape };
}

/**
 * What a ValueInfoProto (a graph input, output or value_info) declares of its tensor's dimensions,
 * as DECLARED_* flags and the first dimension's number, into `flow` under its name. Every shape
 * in it counts, and every dimension field: protobuf merges a message given twice (a type or shape
 * given twice declares the dims of both, in order) and takes the last of a oneof, so what is
 * declared more than one way is taken every way.
 */
async function declareDims(c: Cursor, vi: Field, flow: Flow): Promise<void> {
  let nameField: Field | undefined;
  let flags = 0;
  let first = 0;
  // Counted across every shape given: merged, their dims follow one another, so only the first
  // shape's first dim is the tensor's first.
  let index = 0;
  await walk(c, vi.start, vi.next, async (f) => {
    if (f.num === VALUE_INFO.name && isLen(f)) {
      nameField = f;
      return;
    }
    if (f.num !== VALUE_INFO.type || !isLen(f)) return;
    await walk(c, f.start, f.next, async (t) => {
      if (t.num !== TYPE.tensorType || !isLen(t)) return;
      await walk(c, t.start, t.next, async (sh) => {
        if (sh.num !== TENSOR_TYPE.shape || !isLen(sh)) return;
        await walk(c, sh.start, sh.next, async (d) => {
          if (d.num !== 1 || !isLen(d)) return;
          const at = index++;
          await walk(c, d.start, d.next, (v) => {
            if (v.num === DIMENSION.value && isVarint(v)) {
              if (at > 0) return;
              const value = signedOf(v.lo, v.hi);
              if (flags & DECLARED_FIRST_VALUE && first !== value) flags |= DECLARED_FIRST_VALUES;
              flags |= DECLARED_FIRST_VALUE;
              first = value;
            } else if (v.num === DIMENSION.param && isLen(v)) flags |= at === 0 ? DECLARED_FIRST_PARAM : DECLARED_LATER_PARAM;
          });
        });
      });
    });
  });
  if (flags !== 0) flow.declare(nameField ? await flowName(c, nameField) : undefined, flags, first);
}

/**
 * Reads the signature of the ONNX model at `file`. Throws OnnxFormatError when it is not a model
 * infermesh can serve, OnnxExternalDataError (a kind of it) when it declares external data.
 * Memory stays within a read-ahead buffer, one name at a time and the signature itself.
 */
export async function readOnnxSignature(file: string, limits: OnnxLimits = {}): Promise<OnnxSignature> {
  const maxNodes = limits.maxGraphNodes ?? DEFAULT_MAX_ONNX_GRAPH_NODES;
  const fh = await fs.open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size === 0) throw new OnnxFormatError('empty file');
    const c = new Cursor(fh, size);
    const valueSized = new Set<string>();
    const onNestedValueSized = (op: string) => valueSized.add(op);
    let treeDepth = 0;
    const onTrees = (nodes: number) => {
      treeDepth = Math.max(treeDepth, nodes);
    };
    const flow = new Flow();
    let irVersion = 0;
    // Protobuf merges a message field that occurs twice, so every occurrence of the graph counts.
    const graphs: Field[] = [];
    await walk(c, 0, size, (f) => {
      if (f.num === MODEL.irVersion && isVarint(f)) {
        irVersion = unsigned(f.lo, f.hi);
        if (Number.isNaN(irVersion)) throw new OnnxFormatError('ir_version out of range');
      } else if (!isLen(f)) return undefined;
      else if (f.num === MODEL.graph) {
        if (graphs.length === MAX_GRAPH_FIELDS) throw new OnnxFormatError(`the model's graph field occurs more than ${MAX_GRAPH_FIELDS} times`);
        graphs.push(f);
      } else if (f.num === MODEL.trainingInfo) return scanTrainingInfo(c, f);
      else if (f.num === MODEL.functions) return scanFunction(c, f, { onNestedValueSized, onTrees }).then(() => addFunction(c, f, flow));
      return undefined;
    });
    if (irVersion === 0) throw new OnnxFormatError('no ir_version: not an ONNX model');
    const nesting = flow.functionNesting();
    if (nesting > MAX_ONNX_FUNCTION_NESTING) {
      throw new OnnxFormatError(Number.isFinite(nesting)
        ? `local functions call one another ${nesting} deep, more than ${MAX_ONNX_FUNCTION_NESTING}: onnxruntime would recurse as deep making the session`
        : 'local functions that call themselves, directly or not, or that could not all be read');
    }
    if (graphs.length === 0) throw new OnnxFormatError('no graph: not an ONNX model');

    const budget = new Budget();
    const inputs: TensorSignature[] = [];
    const outputs: TensorSignature[] = [];
    for (const g of graphs) {
      await walk(c, g.start, g.next, async (f) => {
        if (!isLen(f)) return;
        if (f.num === GRAPH.input) inputs.push(await readValueInfo(c, f, budget));
        else if (f.num === GRAPH.output) outputs.push(await readValueInfo(c, f, budget));
        if (f.num === GRAPH.input || f.num === GRAPH.output || f.num === GRAPH.valueInfo) await declareDims(c, f, flow);
      });
    }
    // Before IR 4, initializers were also listed as inputs; they are not fed by clients (and
    // onnxruntime does not list them among its inputs either).
    const inputNames = new Set(inputs.map((i) => i.name));
    const initialized = new Set<string>();
    const onMainInitializer = (name: string) => {
      if (inputNames.has(name)) initialized.add(name);
    };
    for (const g of graphs) {
      await scanGraph(c, g, [], {
        onMainInitializer: (name, rank) => {
          onMainInitializer(name);
          flow.set(name, constantBits(rank));
          // One a graph input names is a default a run may replace: its values are not known.
          if (rank.ints && (rank.of === 0 || rank.of === 1) && !inputNames.has(name)) flow.setKnown(name, { rank: rank.of, values: rank.ints });
        },
        onNestedValueSized,
        onTrees,
      });
    }
    // Every node has been met once: the functions' and training_info's in the first walk, the
    // graph's and its subgraphs' in this one. Counted whole, so that the refusal says how many.
    if (c.nodes > maxNodes) {
      throw new OnnxFormatError(`the model has ${c.nodes} nodes (its graph, subgraphs and local functions together), more than INFERMESH_MAX_GRAPH_NODES (${maxNodes}) allows: onnxruntime's session creation grows faster than the node count, and would hold a pod's thread for minutes`);
    }
    // Calls of local functions are made their nodes: counted as onnxruntime will have them.
    if (flow.hasFunctions()) {
      const used = new Map<string | undefined, number>();
      for (const g of graphs) await operatorsOf(c, g, GRAPH.node, used, flow);
      const expanded = flow.expandedNodes(used, maxNodes + 1);
      if (expanded > maxNodes) {
        throw new OnnxFormatError(`the model makes more than ${maxNodes} nodes once its local functions' calls are expanded, as onnxruntime does, more than INFERMESH_MAX_GRAPH_NODES (${maxNodes}) allows: onnxruntime's session creation grows faster than the node count, and would hold a pod's thread for minutes`);
      }
    }

    const fed = inputs.filter((i) => !initialized.has(i.name));
    if (fed.length === 0) throw new OnnxFormatError('the graph has no inputs');
    if (outputs.length === 0) throw new OnnxFormatError('the graph has no outputs');
    // A name declared twice would be served twice: a request naming no outputs (the usual one)
    // would ask for it twice and be refused as though the caller had.
    for (const [kind, list] of [['input', fed], ['output', outputs]] as const) {
      const seen = new Set<string>();
      for (const t of list) {
        if (seen.has(t.name)) throw new OnnxFormatError(`the graph declares ${kind} ${shown(t.name)} more than once`);
        seen.add(t.name);
      }
    }
    // A string's length is a value: what copies or joins strings grows with them, so their
    // shapes (in bytes) count as following the request too.
    for (const i of fed) flow.set(i.name, (i.datatype === 'BYTES' ? VALUES | SHAPE : VALUES) | rankBits(i.shape.length));
    const mixing = new Set<string>();
    for (const g of graphs) {
      await walk(c, g.start, g.next, (f) => (f.num === GRAPH.node && isLen(f) ? flowNode(c, f, flow, valueSized, mixing) : undefined));
    }
    // Rows stay apart when every output is batch-fed with its rows apart; an output that follows
    // no input (or is not known) cannot be split by rows either.
    const apart = outputs.every((o) => {
      const bits = flow.get(o.name);
      return (bits & VALUES) !== 0 && (bits & MIXED) === 0 && rankOf(bits) >= 1;
    });
    if (!apart && mixing.size === 0) mixing.add('(an output not computed row by row from the inputs)');
    if (apart && flow.redefined) mixing.add('(a tensor defined twice)');
    const declared = !flow.computedShape || flow.declarationsHold();
    if (apart && !declared) mixing.add('(a shape computed from a dimension that a declared shape could change)');
    return { irVersion, inputs: fed, outputs, valueSized: [...valueSized].sort(), treeDepth, rowMixing: apart && !flow.redefined && declared ? [] : [...mixing].sort() };
  } finally {
    await fh.close();
  }
}
