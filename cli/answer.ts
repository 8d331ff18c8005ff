// `infermesh infer` says the answer first. A response that looks like a classifier's (a float output
// of shape [1, N] or [N], N >= 2) is shown as its top classes with their probabilities; any other is
// shown output by output, name, datatype, shape and its first values. --json prints the whole
// response instead (io.ts formatResult). Names and string values came from the network: every line
// made of them goes through escapeControls.
import { escapeControls } from '../lib/text';
import type { InferOutput, InferResult } from '../client/index';
import { numbersOfHalves } from '../lib/tensor';
import { paint, type TableOptions } from './table';
import { formatPercent } from './format';

/** Classes shown by default (--top K). */
export const DEFAULT_TOP = 3;

/** Values shown of an output that is not a classifier's. */
const SHOWN_VALUES = 8;

const FLOATS = new Set(['FP32', 'FP16', 'FP64']);
const PROBABILITY_NAME = /prob|softmax/i;
const LOGITS_NAME = /logit|score/i;

/** A classifier's answer: which output, whether softmax was applied, and every class's probability. */
export interface Classification {
  output: string;
  /** True when the output held logits and the probabilities are their softmax. */
  softmax: boolean;
  probabilities: number[];
}

function numbersOf(o: InferOutput): number[] {
  return o.datatype === 'FP16' ? numbersOfHalves(o.data as Uint16Array) : Array.from(o.data as ArrayLike<number>, Number);
}

const classShaped = (o: InferOutput) =>
  FLOATS.has(o.datatype) && ((o.shape.length === 1 && o.shape[0]! >= 2) || (o.shape.length === 2 && o.shape[0] === 1 && o.shape[1]! >= 2));

/** Whether values are already probabilities: each in [0, 1] and summing to 1. */
function areProbabilities(v: readonly number[]): boolean {
  return v.every((x) => x >= 0 && x <= 1) && Math.abs(v.reduce((a, b) => a + b, 0) - 1) < 1e-3;
}

/** Softmax, stable for large logits. */
export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/**
 * The classifier's answer in `outputs`, or undefined when none looks like one. Among float
 * outputs of shape [1, N] or [N] (N >= 2): one named like probabilities (`probabilities`, `probs`,
 * `softmax`) is taken as is; else the only one, or the one named like logits or scores, is taken as
 * logits and softmax applied, unless its values already are probabilities.
 */
export function classify(outputs: readonly InferOutput[]): Classification | undefined {
  const candidates = outputs.filter(classShaped);
  const named = candidates.find((o) => PROBABILITY_NAME.test(o.name));
  if (named) return { output: named.name, softmax: false, probabilities: numbersOf(named) };
  const chosen = candidates.length === 1 ? candidates[0] : candidates.find((o) => LOGITS_NAME.test(o.name));
  if (!chosen) return undefined;
  const values = numbersOf(chosen);
  if (values.some((x) => !Number.isFinite(x))) return undefined;
  return areProbabilities(values) ? { output: chosen.name, softmax: false, probabilities: values } : { output: chosen.name, softmax: true, probabilities: softmax(values) };
}

/** The `k` most probable classes (their indices), most probable first; ties by index. */
export function topClasses(probabilities: readonly number[], k: number): { index: number; probability: number }[] {
  return probabilities
    .map((probability, index) => ({ index, probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, Math.max(1, k));
}

/** A value for people: integers as is, floats with up to 4 significant digits, strings quoted. */
function shownValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('utf8').slice(0, 40));
  return String(v);
}

/** One output's name, datatype, shape and first values. */
function outputLine(o: InferOutput): string {
  const values = o.datatype === 'FP16' ? numbersOfHalves(o.data as Uint16Array) : o.datatype === 'BOOL' ? Array.from(o.data as Uint8Array, (b) => b !== 0) : Array.from(o.data as ArrayLike<unknown>);
  const first = values.slice(0, SHOWN_VALUES).map(shownValue).join(', ');
  const more = values.length > SHOWN_VALUES ? `, … (${values.length} values)` : '';
  return escapeControls(`${o.name}  ${o.datatype} [${o.shape.join(',')}]  ${first}${more}`);
}

/**
 * The answer for people. A classifier's, its top classes with their probabilities:
 *
 *     mnist version 1, output probabilities: top 3 of 10 classes
 *     7  99.2%
 *     3   0.5%
 *     9   0.1%
 *
 * and a line naming the other outputs; any other response: one line per output.
 */
export function formatAnswer(r: InferResult, opts: TableOptions & { top?: number } = {}): string {
  const c = classify(r.outputs);
  const head = escapeControls(`${r.modelName} version ${r.modelVersion}`);
  if (!c) return [`${head}:`, ...r.outputs.map(outputLine)].join('\n');
  const top = topClasses(c.probabilities, opts.top ?? DEFAULT_TOP).map((t) => [String(t.index), formatPercent(t.probability)] as const);
  const [classWidth, percentWidth] = [0, 1].map((i) => Math.max(...top.map((t) => t[i]!.length)));
  const lines = top.map(([k, p], n) => `${paint(k.padEnd(classWidth!), n === 0 ? 'bold' : undefined, opts.color)}  ${p.padStart(percentWidth!)}`);
  const others = r.outputs.filter((o) => o.name !== c.output);
  const also = others.length ? [escapeControls(`(also ${others.map((o) => `${o.name} ${o.datatype} [${o.shape.join(',')}]`).join(', ')}; --json shows every value)`)] : [];
  return [`${head}, output ${escapeControls(c.output)}${c.softmax ? ' (softmax applied)' : ''}: top ${top.length} of ${c.probabilities.length} classes`, ...lines, ...also].join('\n');
}
