// A tiny typed layer over onnx-proto for writing ONNX models in code. It is the only module in
// tools/models that touches onnx-proto: the model builders speak in nodes, tensors and dims.
import os from 'node:os';
import { onnx } from 'onnx-proto';

/** ONNX TensorProto element type codes (onnx.proto `TensorProto.DataType`). */
export const ElemType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

/** One ONNX element type code. */
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

/** The opset every model here is written for (default domain "", i.e. ai.onnx). */
export const OPSET = 17;

/** The ONNX IR version every model here declares. */
export const IR_VERSION = 8;

// Bytes per element of the fixed-size types an initializer can hold (STRING has none).
const ELEM_BYTES: Record<number, number> = {
  [ElemType.FLOAT]: 4, [ElemType.UINT8]: 1, [ElemType.INT8]: 1, [ElemType.UINT16]: 2,
  [ElemType.INT16]: 2, [ElemType.INT32]: 4, [ElemType.INT64]: 8, [ElemType.BOOL]: 1,
  [ElemType.FLOAT16]: 2, [ElemType.DOUBLE]: 8, [ElemType.UINT32]: 4, [ElemType.UINT64]: 8,
};

/**
 * A dimension: a fixed size, a name (dim_param) for a size chosen at run time, or a negative
 * dim_value (-1), which onnxruntime also reads as a size chosen at run time.
 */
export type Dim = number | string;

/** A graph input or output. */
export interface TensorSpec {
  name: string;
  elemType: ElemType;
  dims: Dim[];
}

/** A constant tensor stored in the model (an initializer), its data as a typed array. */
export interface InitializerSpec {
  name: string;
  elemType: ElemType;
  dims: number[];
  data: ArrayBufferView;
}

/** One operator node. Attributes are integers, integer lists, strings, tensors (a Constant's value) or graphs (a Loop's body): all the models here need. */
export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
}

/** A node attribute's value. */
export type AttributeValue = number | number[] | string | InitializerSpec | GraphSpec;

/** A graph: the main one of a model, or a subgraph held by a node's attribute (it may use the outer graph's names). */
export interface GraphSpec {
  name: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  nodes: NodeSpec[];
  /** Default none. */
  initializers?: InitializerSpec[];
}

/** A whole model: one graph with its inputs, outputs, nodes and initializers. */
export interface ModelSpec extends GraphSpec {
  /** Free text stored as the graph's doc_string; default none. */
  doc?: string;
}

/** Shorthand for a NodeSpec. */
export function node(opType: string, inputs: string[], outputs: string[], attributes?: NodeSpec['attributes']): NodeSpec {
  return { opType, inputs, outputs, attributes };
}

/** Shorthand for a TensorSpec. */
export function tensor(name: string, elemType: ElemType, dims: Dim[]): TensorSpec {
  return { name, elemType, dims };
}

/** Shorthand for an InitializerSpec. */
export function initializer(name: string, elemType: ElemType, dims: number[], data: ArrayBufferView): InitializerSpec {
  return { name, elemType, dims, data };
}

function valueInfo(t: TensorSpec): onnx.IValueInfoProto {
  const dim = t.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name: t.name, type: { tensorType: { elemType: t.elemType, shape: { dim } } } };
}

function tensorProto(t: InitializerSpec): onnx.ITensorProto {
  // raw_data is little-endian by definition; typed arrays are in host order.
  if (os.endianness() !== 'LE') throw new Error('onnx-builder: raw_data needs a little-endian host');
  const elemBytes = ELEM_BYTES[t.elemType];
  if (elemBytes === undefined) throw new Error(`initializer ${t.name}: element type ${t.elemType} has no raw form`);
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.byteLength !== count * elemBytes) {
    throw new Error(`initializer ${t.name}: ${t.data.byteLength} bytes for dims [${t.dims.join(', ')}]`);
  }
  const rawData = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name: t.name, dataType: t.elemType, dims: t.dims, rawData };
}

function attributeProto(name: string, value: AttributeValue): onnx.IAttributeProto {
  if (typeof value === 'object' && 'data' in value) return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t: tensorProto(value) };
  if (typeof value === 'object' && !Array.isArray(value)) return { name, type: onnx.AttributeProto.AttributeType.GRAPH, g: graphProto(value, '', `${value.name}/`) };
  if (typeof value === 'string') return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
  const values = Array.isArray(value) ? value : [value];
  if (!values.every(Number.isInteger)) throw new Error(`attribute ${name}: integers only`);
  return Array.isArray(value)
    ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
    : { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** A graph's protobuf; a subgraph's nodes are named after it (`prefix`), so names stay unique across the model. */
function graphProto(spec: GraphSpec, doc = '', prefix = ''): onnx.IGraphProto {
  const nodes = spec.nodes.map((n, i): onnx.INodeProto => ({
    name: `${prefix}${n.opType.toLowerCase()}_${i}`,
    opType: n.opType,
    domain: '',
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attributes ?? {}).map(([k, v]) => attributeProto(k, v)),
  }));
  return {
    name: spec.name,
    docString: doc,
    node: nodes,
    initializer: (spec.initializers ?? []).map(tensorProto),
    input: spec.inputs.map(valueInfo),
    output: spec.outputs.map(valueInfo),
  };
}

/** Encodes a model (opset 17, IR version 8) to ONNX protobuf bytes; the same spec gives the same bytes. */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: 'infermesh-tools',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: graphProto(spec, spec.doc ?? ''),
  };
  const err = onnx.ModelProto.verify(model);
  if (err) throw new Error(`encodeModel ${spec.name}: ${err}`);
  return onnx.ModelProto.encode(model).finish();
}
