// A typed client of the Open Inference Protocol (the router, or any pod, or any KServe v2 server).
import { inferenceClient, unary } from '../lib/grpc/client';
import type { InferenceClient, ModelInferResponseOut, ModelMetadataResponseOut } from '../lib/grpc/types';
import type { RepositoryIndexResponse__Output } from '../lib/grpc/generated/inference/RepositoryIndexResponse';
import { DATATYPES, fromContents, fromRaw, halvesOf, isDatatype, toRaw, type Datatype, type HostTensor, type TensorData } from '../lib/tensor';
import { wrap } from './errors';
import { clientOptions, type ConnectOptions } from './connection';

/**
 * One input tensor. `data` is flat, row-major; numbers, bigints (64-bit), booleans or strings (BYTES).
 * FP16 numbers are rounded to halves; a typed array is sent as its bytes (for FP16, a Uint16Array of
 * half bits or a Float16Array).
 */
export interface InferInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData | readonly number[] | readonly bigint[] | readonly boolean[] | readonly string[];
}

/** One output tensor. */
export interface InferOutput {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** One model version in RepositoryIndex. */
export interface ModelIndexEntry {
  name: string;
  version: string;
  /** READY, LOADING, UNLOADING or UNAVAILABLE. */
  state: string;
  /** Why it is not ready, or a warning while ready; '' for none. */
  reason: string;
}

/** A response. */
export interface InferResult {
  modelName: string;
  modelVersion: string;
  id: string;
  outputs: InferOutput[];
}

/** Options of one inference; by default the latest served version, all outputs, no deadline. */
export interface InferOptions {
  version?: string;
  /** Output names to return (default all). */
  outputs?: string[];
  id?: string;
  timeoutMs?: number;
}

function toTyped(input: InferInput): HostTensor {
  const info = DATATYPES[input.datatype];
  if (!info) throw new Error(`input '${input.name}': unknown datatype ${String(input.datatype)}`);
  const d = input.data;
  if (input.datatype === 'BYTES') return { type: 'string', dims: input.shape, data: [...(d as readonly string[])] };
  if (ArrayBuffer.isView(d)) return { type: info.ort, dims: input.shape, data: d as TensorData };
  const values = d as readonly (number | bigint | boolean)[];
  let data: TensorData;
  switch (info.ort) {
    case 'int64': data = BigInt64Array.from(values, (v) => BigInt(v)); break;
    case 'uint64': data = BigUint64Array.from(values, (v) => BigInt(v)); break;
    case 'bool': data = Uint8Array.from(values, (v) => (v ? 1 : 0)); break;
    case 'float32': data = Float32Array.from(values as number[]); break;
    case 'float64': data = Float64Array.from(values as number[]); break;
    case 'int32': data = Int32Array.from(values as number[]); break;
    case 'uint32': data = Uint32Array.from(values as number[]); break;
    case 'int16': data = Int16Array.from(values as number[]); break;
    case 'uint16': data = Uint16Array.from(values as number[]); break;
    case 'float16': data = halvesOf(values as number[]); break;
    case 'int8': data = Int8Array.from(values as number[]); break;
    default: data = Uint8Array.from(values as number[]);
  }
  return { type: info.ort, dims: input.shape, data };
}

/** Decodes a response's outputs, raw or typed. */
export function decodeOutputs(res: ModelInferResponseOut): InferOutput[] {
  return res.outputs.map((o, i) => {
    if (!isDatatype(o.datatype)) throw new Error(`output '${o.name}' has unknown datatype ${o.datatype}`);
    const dims = o.shape.map(Number);
    const raw = res.raw_output_contents[i];
    const t = raw ? fromRaw(o.name, o.datatype, dims, raw) : fromContents(o.name, o.datatype, dims, o.contents!);
    return { name: o.name, datatype: o.datatype, shape: dims, data: t.data };
  });
}

export class InferenceApi {
  private readonly client: InferenceClient;

  /** Connects to `address` (host:port); plaintext and without a token by default. */
  constructor(address: string, opts: ConnectOptions = {}) {
    this.client = inferenceClient(address, clientOptions(address, opts));
  }

  /** Runs one inference, sending tensors as raw bytes. */
  async infer(model: string, inputs: InferInput[], opts: InferOptions = {}): Promise<InferResult> {
    const tensors = inputs.map(toTyped);
    const req = {
      model_name: model,
      model_version: opts.version ?? '',
      id: opts.id ?? '',
      inputs: inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape })),
      outputs: (opts.outputs ?? []).map((name) => ({ name })),
      raw_input_contents: tensors.map(toRaw),
    };
    const call = { deadline: opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity };
    const res = await unary<ModelInferResponseOut>((cb) => this.client.ModelInfer(req, call, cb)).catch(wrap);
    return { modelName: res.model_name, modelVersion: res.model_version, id: res.id, outputs: decodeOutputs(res) };
  }

  /** The model's inputs, outputs and versions. */
  metadata(model: string, version = ''): Promise<ModelMetadataResponseOut> {
    return unary<ModelMetadataResponseOut>((cb) => this.client.ModelMetadata({ name: model, version }, cb)).catch(wrap);
  }

  /** Whether the model (version) is ready to serve. */
  async modelReady(model: string, version = ''): Promise<boolean> {
    return (await unary<{ ready: boolean }>((cb) => this.client.ModelReady({ name: model, version }, cb)).catch(wrap)).ready;
  }

  /**
   * Every model version the server knows, with its state and why it is not ready (a failed load)
   * or ready with a warning (a failed warm-up); through a router, what its pods report.
   */
  async repositoryIndex(opts: { readyOnly?: boolean; timeoutMs?: number } = {}): Promise<ModelIndexEntry[]> {
    const call = { deadline: opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity };
    const res = await unary<RepositoryIndexResponse__Output>((cb) => this.client.RepositoryIndex({ repository_name: '', ready: opts.readyOnly ?? false }, call, cb)).catch(wrap);
    return res.models.map((m) => ({ name: m.name, version: m.version, state: m.state, reason: m.reason }));
  }

  /** Whether the server is ready. */
  async serverReady(): Promise<boolean> {
    return (await unary<{ ready: boolean }>((cb) => this.client.ServerReady({}, cb)).catch(wrap)).ready;
  }

  close(): void {
    this.client.close();
  }
}
