// The CLI's JSON formats: inference requests and responses in the shape of the Open Inference
// Protocol's REST/JSON form ({"inputs": [{"name", "datatype", "shape", "data"}]}).
import type { InferInput, InferResult } from '../client/index';
import { isDatatype, numbersOfHalves } from '../lib/tensor';
import { jsonForTerminal } from '../lib/text';

/** A request body as the CLI reads it. */
export interface JsonRequest {
  inputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
  outputs?: { name: string }[];
  id?: string;
}

/** Parses and checks a JSON request; throws a message naming what is wrong. */
export function parseRequest(text: string): { inputs: InferInput[]; outputs: string[]; id: string } {
  let body: JsonRequest;
  try {
    body = JSON.parse(text) as JsonRequest;
  } catch (err) {
    throw new Error(`input is not JSON: ${(err as Error).message}`);
  }
  if (!body || !Array.isArray(body.inputs)) throw new Error('input JSON needs an "inputs" array');
  const inputs = body.inputs.map((i, n) => {
    if (typeof i.name !== 'string') throw new Error(`inputs[${n}] needs a "name"`);
    if (!isDatatype(i.datatype)) throw new Error(`inputs[${n}] ("${i.name}") has unknown datatype ${JSON.stringify(i.datatype)}`);
    if (!Array.isArray(i.shape) || !Array.isArray(i.data)) throw new Error(`inputs[${n}] ("${i.name}") needs "shape" and "data" arrays`);
    const data = (i.data as unknown[]).flat(Infinity);
    return { name: i.name, datatype: i.datatype, shape: i.shape, data: data as number[] };
  });
  return { inputs, outputs: (body.outputs ?? []).map((o) => o.name), id: body.id ?? '' };
}

/** A response as JSON (64-bit integers as numbers when safe, else strings; FP16 as numbers; control characters as JSON escapes). */
export function formatResult(r: InferResult): string {
  return jsonForTerminal({
    model_name: r.modelName,
    model_version: r.modelVersion,
    id: r.id,
    outputs: r.outputs.map((o) => ({
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      data: o.datatype === 'FP16' ? numbersOfHalves(o.data as Uint16Array) : Array.from(o.data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v)),
    })),
  }, 2);
}
