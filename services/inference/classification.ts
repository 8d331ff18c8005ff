// Triton's classification extension: an output requested with the parameter `classification`
// (tritonclient's `class_count`) set to k comes back as BYTES elements "<value>:<index>", the k
// highest values of each batch row (of the whole tensor when the version does not batch), in shape
// [rows, k] (or [k]); k is capped at the elements there are. Triton appends ":<label>" from the
// model's label file; infermesh has no labels, so it never does. As in Triton, BOOL, FP16 and
// BYTES outputs cannot be classified.
import { errors } from '../../lib/errors';
import type { RequestedOutputOut } from '../../lib/grpc/types';
import { elementCount, type Datatype, type HostTensor } from '../../lib/tensor';

/** The request parameter that asks for a classification. */
export const CLASSIFICATION_PARAMETER = 'classification';

/**
 * The classification count `output` asks for, 0 for none; refuses (INVALID_ARGUMENT) a count that
 * is not a positive int64_param, or an output of a datatype that cannot be classified.
 */
export function classificationCountOf(output: RequestedOutputOut, datatype: Datatype): number {
  const p = output.parameters?.[CLASSIFICATION_PARAMETER];
  if (!p) return 0;
  if (p.parameter_choice !== 'int64_param') {
    throw errors.invalidTensor(output.name, `invalid value type for the '${CLASSIFICATION_PARAMETER}' parameter, expected int64_param`);
  }
  const count = Number(p.int64_param);
  if (!(count > 0)) throw errors.invalidTensor(output.name, `invalid value ${p.int64_param} for the '${CLASSIFICATION_PARAMETER}' parameter, expected > 0`);
  if (datatype === 'BOOL' || datatype === 'FP16' || datatype === 'BYTES') {
    throw errors.invalidTensor(output.name, `class result not available for an output of type ${datatype}`);
  }
  return count;
}

/**
 * `value` as Triton writes it (C++ std::to_string): integers in decimal, floating point as printf's
 * "%f" (six decimals, ties to even, "inf", "nan").
 */
export function tritonValueString(value: number | bigint, integer: boolean): string {
  if (typeof value === 'bigint' || integer) return value.toString();
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  const a = Math.abs(value);
  // toFixed switches to exponent notation from 1e21; such a double is an integer, so BigInt is exact.
  if (a >= 1e21) return `${sign}${BigInt(a)}.000000`;
  // The only doubles exactly halfway between two 6-decimal numbers are odd multiples of 1/128;
  // toFixed rounds those away from zero where printf rounds to even. In integers: a · 10^6 is
  // t · 15625 / 2 (odd over two), past 2^53 once a passes 2^53 / 10^6 (about 9e9), so BigInt.
  const t = a * 128;
  if (Number.isInteger(t) && t % 2 === 1) {
    const below = (BigInt(t) * 15625n - 1n) / 2n;
    const even = below % 2n === 0n ? below : below + 1n;
    return `${sign}${even / 1_000_000n}.${(even % 1_000_000n).toString().padStart(6, '0')}`;
  }
  return `${sign}${a.toFixed(6)}`;
}

/**
 * Whether element `i` of the row at `base` ranks above element `j`: higher first, equal values by
 * index, NaN last (C++'s sort leaves ties and NaN unspecified; this order is stable and total).
 */
function above(data: ArrayLike<number | bigint>, base: number, i: number, j: number): boolean {
  const a = data[base + i]!;
  const b = data[base + j]!;
  if (a !== a) return b !== b && i < j;
  if (b !== b) return true;
  return a > b || (a === b && i < j);
}

/**
 * The indices of the top `k` elements of the row at `base` (`perRow` long), best first, into
 * `heap[0..k)`: a heap of the k best seen so far with the worst at its root, so a row costs
 * O(perRow log k) rather than a sort of the whole row.
 */
function topK(data: ArrayLike<number | bigint>, base: number, perRow: number, k: number, heap: Int32Array): void {
  const worse = (x: number, y: number) => above(data, base, heap[y]!, heap[x]!);
  const siftDown = (from: number, size: number) => {
    let p = from;
    for (;;) {
      const l = 2 * p + 1;
      if (l >= size) return;
      const r = l + 1;
      const c = r < size && worse(r, l) ? r : l;
      if (!worse(c, p)) return;
      const t = heap[p]!;
      heap[p] = heap[c]!;
      heap[c] = t;
      p = c;
    }
  };
  for (let i = 0; i < k; i++) heap[i] = i;
  for (let p = (k >> 1) - 1; p >= 0; p--) siftDown(p, k);
  for (let i = k; i < perRow; i++) {
    if (above(data, base, i, heap[0]!)) {
      heap[0] = i;
      siftDown(0, k);
    }
  }
  // Pop the worst to the end, one by one: heap[0..k) ends best first.
  for (let size = k - 1; size > 0; size--) {
    const t = heap[0]!;
    heap[0] = heap[size]!;
    heap[size] = t;
    siftDown(0, size);
  }
}

/**
 * The classification of output `name`, `t`: per batch row when `batched` (rows = the first dimension),
 * else over every element; a string tensor of "<value>:<index>". k is capped at a row's elements; a
 * classification of more than `maxResults` strings (rows × k, INFERMESH_MAX_CLASSIFICATION_RESULTS)
 * is refused with INVALID_ARGUMENT naming the output.
 */
export function classify(name: string, t: HostTensor, count: number, batched: boolean, maxResults: number): HostTensor {
  if (Array.isArray(t.data) || t.type === 'bool' || t.type === 'float16') {
    throw errors.invalidTensor(name, `class result not available for an output of type ${t.type}`);
  }
  const data = t.data as ArrayLike<number | bigint>;
  const integer = t.type !== 'float32' && t.type !== 'float64';
  const rows = batched && t.dims.length > 0 ? t.dims[0]! : 1;
  const perRow = batched && t.dims.length > 0 ? elementCount(t.dims.slice(1)) : elementCount(t.dims);
  const k = Math.min(count, perRow);
  if (rows * k > maxResults) {
    throw errors.invalidTensor(name, `a classification of ${rows} rows of ${k} classes passes the limit of ${maxResults} results`);
  }
  const out: string[] = new Array(rows * k);
  const heap = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const base = r * perRow;
    topK(data, base, perRow, k, heap);
    for (let i = 0; i < k; i++) out[r * k + i] = `${tritonValueString(data[base + heap[i]!]!, integer)}:${heap[i]}`;
  }
  return { type: 'string', dims: batched && t.dims.length > 0 ? [rows, k] : [k], data: out };
}
