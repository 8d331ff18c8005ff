// ModelInfer requests → host tensors, validated against the model's signature before anything runs;
// and host tensors → the response, in the form the client used (raw bytes or typed contents).
import { errors } from '../../lib/errors';
import type { TensorSignature } from '../../lib/onnx';
import { DATATYPES, fromContents, fromRaw, isDatatype, parseShape, toContents, toRaw, datatypeOfOrt, type HostTensor } from '../../lib/tensor';
import type { InferOutputTensor, ModelInferRequestOut, ModelInferResponse } from '../../lib/grpc/types';

/** A model version's signature, as validation needs it. */
export interface Signature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** A validated request. */
export interface DecodedRequest {
  feeds: Record<string, HostTensor>;
  /** Output names to compute, in the order the response lists them. */
  outputs: string[];
  /** The client sent raw_input_contents, so it gets raw_output_contents. */
  raw: boolean;
}

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

/** Validates and decodes a request; throws INVALID_ARGUMENT naming the tensor and the problem. */
export function decodeRequest(req: ModelInferRequestOut, sig: Signature, maxElements: number): DecodedRequest {
  const raw = req.raw_input_contents.length > 0;
  if (raw && req.raw_input_contents.length !== req.inputs.length) {
    throw errors.invalidArgument(`raw_input_contents has ${req.raw_input_contents.length} entries for ${req.inputs.length} inputs`);
  }
  const byName = new Map(sig.inputs.map((i) => [i.name, i]));
  const feeds: Record<string, HostTensor> = {};
  req.inputs.forEach((input, index) => {
    const name = input.name;
    const spec = byName.get(name);
    if (!spec) throw errors.invalidTensor(name, `unknown input; the model's inputs are ${sig.inputs.map((i) => i.name).join(', ')}`);
    if (Object.hasOwn(feeds, name)) throw errors.invalidTensor(name, 'input given more than once');
    if (!isDatatype(input.datatype)) throw errors.invalidTensor(name, `unknown datatype '${input.datatype}'`);
    if (input.datatype !== spec.datatype) throw errors.invalidTensor(name, `datatype ${input.datatype} does not match the model's ${spec.datatype}`);
    const dims = parseShape(name, input.shape, maxElements);
    checkShape(name, dims, spec.shape);
    const contents = input.contents;
    const hasTyped = contents !== null && Object.values(contents).some((v) => Array.isArray(v) && v.length > 0);
    if (raw) {
      if (hasTyped) throw errors.invalidTensor(name, 'has both raw_input_contents and contents; send one');
      feeds[name] = fromRaw(name, input.datatype, dims, req.raw_input_contents[index]!);
    } else {
      feeds[name] = fromContents(name, input.datatype, dims, contents ?? {
        bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [],
      });
    }
  });
  for (const spec of sig.inputs) if (!Object.hasOwn(feeds, spec.name)) throw errors.invalidTensor(spec.name, 'input is missing');

  const known = new Set(sig.outputs.map((o) => o.name));
  const outputs = req.outputs.length ? req.outputs.map((o) => o.name) : sig.outputs.map((o) => o.name);
  const seen = new Set<string>();
  for (const name of outputs) {
    if (!known.has(name)) throw errors.invalidTensor(name, `unknown output; the model's outputs are ${[...known].join(', ')}`);
    if (seen.has(name)) throw errors.invalidTensor(name, 'output requested more than once');
    seen.add(name);
  }
  return { feeds, outputs, raw };
}

/** Builds the response; raw when the client sent raw, or when an output (FP16) has no typed form. */
export function encodeResponse(
  model: string,
  version: number,
  id: string,
  names: string[],
  results: Record<string, HostTensor>,
  raw: boolean,
): ModelInferResponse {
  const tensors = names.map((name) => {
    const t = results[name];
    if (!t) throw new Error(`onnxruntime returned no output '${name}'`);
    const datatype = datatypeOfOrt(t.type);
    if (!datatype) throw new Error(`output '${name}' has a type (${t.type}) the protocol cannot carry`);
    return { name, t, datatype };
  });
  const useRaw = raw || tensors.some(({ datatype }) => DATATYPES[datatype].contents === null);
  const outputs: InferOutputTensor[] = tensors.map(({ name, t, datatype }) => ({
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
