// `infermesh infer` says the answer first (cli/answer.ts): a classifier's top classes with their
// probabilities, taken from an output named like probabilities or as the softmax of logits (and
// saying so); any other response output by output with its first values.
import type { InferOutput, InferResult } from '../../../client/index';
import { classify, formatAnswer, softmax, topClasses } from '../../../cli/answer';
import { halvesOf } from '../../../lib/tensor';

const fp32 = (name: string, values: number[], shape = [1, values.length]): InferOutput => ({ name, datatype: 'FP32', shape, data: Float32Array.from(values) });
const result = (...outputs: InferOutput[]): InferResult => ({ modelName: 'mnist', modelVersion: '3', id: '', outputs });

const probabilities = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.003, 0.962, 0.01, 0.004];
const logits = [1, 2, 8, 0.5, -3, 0, 1, 7, 2, 3];

describe('classify', () => {
  it('takes an output named like probabilities as is, before any other', () => {
    const c = classify([fp32('logits', logits), fp32('probabilities', probabilities)]);
    expect(c).toMatchObject({ output: 'probabilities', softmax: false });
    expect(c!.probabilities[7]).toBeCloseTo(0.962, 6);
    expect(classify([fp32('probs', probabilities, [10])])).toMatchObject({ output: 'probs', softmax: false });
    expect(classify([fp32('Softmax_Output', probabilities)])).toMatchObject({ output: 'Softmax_Output', softmax: false });
  });

  it('applies softmax to the only class-shaped output, or the one named like logits, and says so', () => {
    const c = classify([fp32('output', logits)]);
    expect(c).toMatchObject({ output: 'output', softmax: true });
    expect(c!.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(c!.probabilities.indexOf(Math.max(...c!.probabilities))).toBe(2);
    expect(classify([fp32('features', [1, 2, 3]), fp32('logits', logits)])).toMatchObject({ output: 'logits', softmax: true });
  });

  it('does not apply softmax to values that already are probabilities', () => {
    expect(classify([fp32('output', [0.25, 0.75])])).toEqual({ output: 'output', softmax: false, probabilities: [0.25, 0.75] });
  });

  it('reads FP16 and FP64 outputs', () => {
    expect(classify([{ name: 'probs', datatype: 'FP16', shape: [1, 2], data: halvesOf([0.25, 0.75]) }])!.probabilities).toEqual([0.25, 0.75]);
    expect(classify([{ name: 'probs', datatype: 'FP64', shape: [2], data: Float64Array.of(0.5, 0.5) }])!.probabilities).toEqual([0.5, 0.5]);
  });

  it.each<[string, InferOutput[]]>([
    ['an integer output', [{ name: 'probs', datatype: 'INT64', shape: [1, 3], data: BigInt64Array.of(1n, 2n, 3n) }]],
    ['a batch of rows', [fp32('probs', [0.5, 0.5, 0.5, 0.5], [2, 2])]],
    ['a single value', [fp32('score', [0.7], [1, 1])]],
    ['an image', [fp32('out', new Array(12).fill(0), [1, 3, 2, 2])]],
    ['two unnamed candidates', [fp32('a', [1, 2]), fp32('b', [3, 4])]],
    ['no outputs', []],
  ])('finds no classifier in %s', (_, outputs) => {
    expect(classify(outputs)).toBeUndefined();
  });
});

describe('softmax and topClasses', () => {
  it('softmax is stable for large logits', () => {
    const p = softmax([1000, 1000, 998]);
    expect(p.every(Number.isFinite)).toBe(true);
    expect(p[0]).toBeCloseTo(p[1]!, 12);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('orders classes by probability, ties by index, and keeps k', () => {
    expect(topClasses([0.1, 0.4, 0.1, 0.4], 3)).toEqual([{ index: 1, probability: 0.4 }, { index: 3, probability: 0.4 }, { index: 0, probability: 0.1 }]);
    expect(topClasses([0.5, 0.5], 10)).toHaveLength(2);
  });
});

describe('formatAnswer', () => {
  it('puts the top class first under a header naming model, version and output, then the other outputs', () => {
    expect(formatAnswer(result(fp32('logits', logits), fp32('probabilities', probabilities))).split('\n')).toEqual([
      'mnist version 3, output probabilities: top 3 of 10 classes',
      '7  96.2%',
      '8   1.0%',
      '5   0.6%',
      '(also logits FP32 [1,10]; --json shows every value)',
    ]);
  });

  it('shows K classes with --top K, and says when softmax was applied', () => {
    const lines = formatAnswer(result(fp32('logits', logits)), { top: 5 }).split('\n');
    expect(lines[0]).toBe('mnist version 3, output logits (softmax applied): top 5 of 10 classes');
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['2', '7', '9', '1', '8']);
    expect(lines[1]).toMatch(/^2  \d\d\.\d%$/);
  });

  it('shows names and string values from the response with their control characters escaped', () => {
    const r: InferResult = { modelName: 'm\x1b[2J', modelVersion: '1', id: '', outputs: [{ name: 'y\x1b]52;c;eA==\x07', datatype: 'BYTES', shape: [1], data: ['v\u009b2J'] } as InferOutput] };
    const out = formatAnswer(r);
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(out).toBe('m\\x1b[2J version 1:\ny\\x1b]52;c;eA==\\x07  BYTES [1]  "v\\x9b2J"');
  });

  it('shows any other response output by output: name, datatype, shape and its first values', () => {
    const out = formatAnswer(result(
      fp32('OUTPUT0', [1.5, 2, 3.14159265, 4, 5, 6, 7, 8, 9, 10], [2, 5]),
      { name: 'ids', datatype: 'INT64', shape: [2], data: BigInt64Array.of(12n, -3n) },
      { name: 'labels', datatype: 'BYTES', shape: [1], data: ['seven'] },
      { name: 'mask', datatype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
    ));
    expect(out.split('\n')).toEqual([
      'mnist version 3:',
      'OUTPUT0  FP32 [2,5]  1.5, 2, 3.142, 4, 5, 6, 7, 8, … (10 values)',
      'ids  INT64 [2]  12, -3',
      'labels  BYTES [1]  "seven"',
      'mask  BOOL [2]  true, false',
    ]);
  });
});
