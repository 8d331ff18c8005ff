// ModelInfer requests → host tensors, validated against the model's signature before anything runs;
// and host tensors → the response, in the form the client used (raw bytes or typed contents).
import { errors } from '../../lib/errors';
import type { TensorSignature } from '../../lib/onnx';
import { DATATYPES, checkBytesElements, datatypeOfOrt, elementCount, fromContents, fromRaw, isDatatype, parseShape, toContents, toRaw, type Datatype, type HostTensor } from '../../lib/tensor';
import type { InferTensorContentsOut, ModelInferRequestOut } from '../../lib/grpc/types';
import type { AnswerTensor, InferAnswer } from '../../lib/grpc/infer-answer';
import { classificationCountOf, classify } from './classification';

/** A model version's signature, as validation needs it. */
export interface Signature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** Limits applied while decoding one request. */
export interface DecodeLimits {
  /** Elements of one tensor. */
  maxTensorElements: number;
  /** BYTES elements of the request, all tensors together. */
  maxBytesElements: number;
  /** Strings one classified output may answer (rows × k). */
  maxClassificationResults: number;
}

/** A validated request. */
export interface DecodedRequest {
  feeds: Record<string, HostTensor>;
  /** Output names to compute, in the order the response lists them. */
  outputs: string[];
  /** The client sent raw_input_contents, so it gets raw_output_contents. */
  raw: boolean;
  /**
   * The request's batch, the first dimension every input agrees on, when the version batches; null
   * when it does not, and the request runs alone whatever its inputs' shapes.
   */
  rows: number | null;
  /** Outputs asked for as classifications (Triton's extension), with their counts. */
  classifications: ReadonlyMap<string, number>;
}

const NO_CLASSIFICATIONS: ReadonlyMap<string, number> = new Map();
const NO_CONTENTS: InferTensorContentsOut = Object.freeze({
  bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [],
});

const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;

function checkShape(name: string, dims: number[], expected: number[]): void {
  if (expected.length === 0) return; // the graph declares no shape: onnxruntime checks it
  if (dims.length !== expected.length) {
    throw errors.invalidTensor(name, `shape ${fmt(dims)} has rank ${dims.length}, but the model expects rank ${expected.length} ${fmt(expected)}`);
  }
  for (let i = 0; i < dims.length; i++) {
    const want = expected[i]!;
    if (want >= 0 && dims[i] !== want) {
      throw errors.invalidTensor(name, `shape ${fmt(dims)} does not match the model's ${fmt(expected)} at dimension ${i}`);
    }
  }
}

/**
 * The batch of a request to a version that batches: every input's first dimension, which must be
 * the same for all (else INVALID_ARGUMENT naming each tensor and its rows) and at most
 * `maxBatchSize`. This is what keeps one caller's rows from landing in another's answer.
 */
function batchRows(inputs: readonly { name: string; dims: number[] }[], maxBatchSize: number): number {
  const first = inputs[0];
  if (!first) return 0;
  for (const t of inputs) if (t.dims.length === 0) throw errors.invalidTensor(t.name, 'a scalar cannot be batched; the model takes a batch dimension first');
  const rows = first.dims[0]!;
  if (inputs.some((t) => t.dims[0] !== rows)) {
    throw errors.invalidArgument(`inputs disagree on the batch (first) dimension: ${inputs.map((t) => `'${t.name}' has ${t.dims[0]}`).join(', ')}`);
  }
  if (rows > maxBatchSize) throw errors.invalidTensor(first.name, `batch of ${rows} exceeds the model's max batch size ${maxBatchSize}`);
  return rows;
}

/**
 * Validates and decodes a request; throws INVALID_ARGUMENT naming the tensor and the problem.
 * `maxBatchSize` is the version's, 0 when it does not batch (Triton's max_batch_size): then the
 * inputs' first dimensions need not agree, and the request will run alone. Every check that needs
 * no tensor data runs before any is decoded.
 */
export function decodeRequest(req: ModelInferRequestOut, sig: Signature, limits: DecodeLimits, maxBatchSize: number): DecodedRequest {
  const raw = req.raw_input_contents.length > 0;
  if (raw && req.raw_input_contents.length !== req.inputs.length) {
    throw errors.invalidArgument(`raw_input_contents has ${req.raw_input_contents.length} entries for ${req.inputs.length} inputs`);
  }
  const checked: { name: string; datatype: Datatype; dims: number[] }[] = new Array(req.inputs.length);
  const seenInputs = new Set<string>();
  let bytesElements = 0;
  for (let index = 0; index < req.inputs.length; index++) {
    const input = req.inputs[index]!;
    const name = input.name;
    const spec = sig.inputs.find((i) => i.name === name);
    if (!spec) throw errors.invalidTensor(name, `unknown input; the model's inputs are ${sig.inputs.map((i) => i.name).join(', ')}`);
    if (seenInputs.has(name)) throw errors.invalidTensor(name, 'input given more than once');
    seenInputs.add(name);
    if (!isDatatype(input.datatype)) throw errors.invalidTensor(name, `unknown datatype '${input.datatype}'`);
    if (input.datatype !== spec.datatype) throw errors.invalidTensor(name, `datatype ${input.datatype} does not match the model's ${spec.datatype}`);
    const dims = parseShape(name, input.shape, limits.maxTensorElements);
    checkShape(name, dims, spec.shape);
    if (input.datatype === 'BYTES') checkBytesElements(name, (bytesElements += elementCount(dims)), limits.maxBytesElements);
    checked[index] = { name, datatype: input.datatype, dims };
  }
  for (const spec of sig.inputs) if (!seenInputs.has(spec.name)) throw errors.invalidTensor(spec.name, 'input is missing');
  const rows = maxBatchSize > 0 ? batchRows(checked, maxBatchSize) : null;

  const outputs = req.outputs.length ? req.outputs.map((o) => o.name) : sig.outputs.map((o) => o.name);
  let classifications = NO_CLASSIFICATIONS;
  const seenOutputs = new Set<string>();
  for (let i = 0; i < outputs.length; i++) {
    const name = outputs[i]!;
    const spec = sig.outputs.find((o) => o.name === name);
    if (!spec) throw errors.invalidTensor(name, `unknown output; the model's outputs are ${sig.outputs.map((o) => o.name).join(', ')}`);
    if (seenOutputs.has(name)) throw errors.invalidTensor(name, 'output requested more than once');
    seenOutputs.add(name);
    const requested = req.outputs[i];
    const count = requested ? classificationCountOf(requested, spec.datatype) : 0;
    if (count > 0) {
      if (classifications === NO_CLASSIFICATIONS) classifications = new Map();
      (classifications as Map<string, number>).set(name, count);
    }
  }

  const feeds: Record<string, HostTensor> = {};
  for (let index = 0; index < checked.length; index++) {
    const { name, datatype, dims } = checked[index]!;
    const contents = req.inputs[index]!.contents;
    if (raw) {
      if (contents !== null && hasTypedContents(contents)) throw errors.invalidTensor(name, 'has both raw_input_contents and contents; send one');
      feeds[name] = fromRaw(name, datatype, dims, req.raw_input_contents[index]!);
    } else {
      feeds[name] = fromContents(name, datatype, dims, contents ?? NO_CONTENTS);
    }
  }
  return { feeds, outputs, raw, rows, classifications };
}

function hasTypedContents(contents: InferTensorContentsOut): boolean {
  for (const v of Object.values(contents)) if (Array.isArray(v) && v.length > 0) return true;
  return false;
}

/**
 * Builds the response to `decoded` from the run's `results`: raw when the client sent raw, or when
 * an output (FP16) has no typed form; outputs asked for as classifications become their classes.
 */
export function encodeResponse(
  model: string,
  version: number,
  id: string,
  decoded: Pick<DecodedRequest, 'outputs' | 'raw' | 'rows' | 'classifications'>,
  results: Record<string, HostTensor>,
  limits: Pick<DecodeLimits, 'maxClassificationResults'>,
): InferAnswer {
  const tensors = decoded.outputs.map((name) => {
    let t = results[name];
    if (!t) throw new Error(`onnxruntime returned no output '${name}'`);
    const classes = decoded.classifications.get(name);
    if (classes !== undefined) t = classify(name, t, classes, decoded.rows !== null, limits.maxClassificationResults);
    const datatype = datatypeOfOrt(t.type);
    if (!datatype) throw new Error(`output '${name}' has a type (${t.type}) the protocol cannot carry`);
    return { name, t, datatype };
  });
  const useRaw = decoded.raw || tensors.some(({ datatype }) => DATATYPES[datatype].contents === null);
  const outputs: AnswerTensor[] = tensors.map(({ name, t, datatype }) => ({
    name,
    datatype,
    shape: t.dims,
    contents: useRaw ? undefined : toContents(datatype, t),
  }));
  return {
    model_name: model,
    model_version: String(version),
    id,
    outputs,
    raw_output_contents: useRaw ? tensors.map(({ t }) => toRaw(t)) : [],
  };
}
