// Suite `pod` (issue 3): the MNIST model in-process (the limit), then pods over gRPC with dynamic
// batching off and on, batch-1 requests at each concurrency. Each configuration is its own pod
// process with the same settings but the one compared; the pods take turns, so only one is loaded
// at a time and a drift of the shared machine hits them alike.
import path from 'node:path';
import type { ServiceProcess } from '../cli/local-mesh/service-process';
import { startBenchMesh } from './bench-mesh';
import { measureInProcess, podDefaultIntraOpThreads, type InProcessResult } from './in-process';
import type { LoadResult } from './load';
import { num, ratio, table } from './markdown';
import { addCounters, NO_COUNTS, podCounters, runStats } from './pod-counters';
import { combineRounds, type PointSummary } from './rounds';
import { loadSpec, prime, type SuiteOptions } from './suite-options';

/** A pod configuration to measure: a label and its INFERMESH_* settings. */
export interface PodVariant {
  label: string;
  env: Record<string, string>;
}

/** One row: a variant at one concurrency. */
export interface PodPoint {
  variant: PodVariant;
  concurrency: number;
  summary: PointSummary;
  meanBatch: number;
  meanRunMs: number;
}

/** The two configurations issue 3 compares (every other setting at its default). */
export const BATCHING_VARIANTS: PodVariant[] = [
  { label: 'batching off', env: { INFERMESH_DYNAMIC_BATCHING: 'false' } },
  { label: 'batching on', env: { INFERMESH_DYNAMIC_BATCHING: 'true' } },
];

/** Batch sizes of the in-process reference runs. */
const IN_PROCESS_BATCHES = [1, 16, 64];

/** Measures onnxruntime in this process with the pod's default threads and with one thread. */
export async function inProcessPoints(opts: SuiteOptions): Promise<InProcessResult[]> {
  const model = path.join(opts.root, 'models', 'mnist.onnx');
  const out: InProcessResult[] = [];
  for (const threads of [...new Set([podDefaultIntraOpThreads(), 1])]) {
    for (const batch of IN_PROCESS_BATCHES) {
      opts.progress(`in-process: batch ${batch}, ${threads} intra-op thread(s)`);
      out.push(await measureInProcess(model, opts.digits, batch, threads, opts.warmupMs, opts.durationMs));
    }
  }
  return out;
}

/** Starts one pod per variant, then measures every variant at every concurrency, in rounds. */
export async function podPoints(opts: SuiteOptions, variants: PodVariant[], concurrencies: number[]): Promise<PodPoint[]> {
  const mesh = await startBenchMesh();
  try {
    const pods: ServiceProcess[] = [];
    for (const [i, v] of variants.entries()) {
      opts.progress(`pod: starting '${v.label}'`);
      pods.push(await mesh.addPod(`pod-${i + 1}`, v.env));
    }
    const address = (i: number) => `127.0.0.1:${pods[i]!.port}`;
    for (const [i, v] of variants.entries()) {
      opts.progress(`pod '${v.label}': priming`);
      await prime(opts, address(i));
    }
    const points: PodPoint[] = [];
    for (const c of concurrencies) {
      const results: LoadResult[][] = variants.map(() => []);
      const counts = variants.map(() => NO_COUNTS);
      for (let round = 1; round <= opts.rounds; round++) {
        for (const [i, v] of variants.entries()) {
          opts.progress(`pod '${v.label}': concurrency ${c}, round ${round}/${opts.rounds}`);
          const before = await podCounters(address(i));
          results[i]!.push(await opts.load.run(loadSpec(opts, address(i), c, { pod: [pods[i]!.pid] })));
          counts[i] = addCounters(counts[i]!, addCounters(await podCounters(address(i)), before, -1));
        }
      }
      variants.forEach((variant, i) => points.push({ variant, concurrency: c, summary: combineRounds(results[i]!), ...runStats(counts[i]!) }));
    }
    return points;
  } finally {
    await mesh.stop();
  }
}

/** The in-process table. */
export function inProcessTable(rows: InProcessResult[]): string {
  return table(
    ['onnxruntime in-process', 'batch', 'intra-op threads', 'samples/s', 'p50 ms', 'p99 ms'],
    rows.map((r) => ['session.run back to back', String(r.batch), String(r.intraOpThreads), num(r.samplesPerSecond), num(r.p50Ms, 3), num(r.p99Ms, 3)]),
  );
}

const errorsCell = (s: PointSummary) => (s.errors ? `${s.errors} (${s.firstError ?? ''})` : '0');

/** The pod table; every row also shows its ratio to the first variant at the same concurrency. */
export function podTable(points: PodPoint[]): string {
  const base = points[0]?.variant;
  const baseline = (c: number) => points.find((p) => p.variant === base && p.concurrency === c)?.summary.perSecond ?? Number.NaN;
  return table(
    ['pod over gRPC', 'concurrency', 'samples/s', 'rounds min–max', `× ${base?.label ?? 'first'}`, 'p50 ms', 'p99 ms', 'errors', 'mean batch', 'mean run ms', 'pod CPU µs/req', 'client CPU µs/req'],
    points.map((p) => [
      p.variant.label,
      String(p.concurrency),
      num(p.summary.perSecond),
      `${num(p.summary.perSecondMin)}–${num(p.summary.perSecondMax)}`,
      ratio(p.summary.perSecond / baseline(p.concurrency)),
      num(p.summary.p50Ms, 3),
      num(p.summary.p99Ms, 3),
      errorsCell(p.summary),
      num(p.meanBatch, 1),
      num(p.meanRunMs, 3),
      num(p.summary.cpuUsPerCall.pod ?? Number.NaN),
      num(p.summary.clientCpuUsPerCall),
    ]),
  );
}

/** Runs the pod suite and returns its Markdown. */
export async function podSuite(opts: SuiteOptions): Promise<string> {
  const inProcess = await inProcessPoints(opts);
  const points = await podPoints(opts, BATCHING_VARIANTS, opts.concurrencies);
  const top = Math.max(...opts.concurrencies);
  const at = (label: string) => points.find((p) => p.variant.label === label && p.concurrency === top)?.summary.perSecond ?? Number.NaN;
  const gain = at('batching on') / at('batching off');
  return [
    '## Suite `pod`: the MNIST model in-process and on one pod (issue 3)',
    '',
    inProcessTable(inProcess),
    '',
    podTable(points),
    '',
    `Target: batching on at concurrency ${top} ≥ 3× batching off. Measured: ${ratio(gain)} — **${gain >= 3 ? 'met' : 'missed'}**.`,
    '',
    `Batch-1 requests of real held-out digits (raw_input_contents), closed loop, ${opts.rounds} rounds of ${opts.durationMs / 1000} s per row`,
    '(after a warm-up each, the pods taking turns): samples/s is the median round, p50/p99 pool every round\'s latencies.',
    '`mean batch` and `mean run ms` come from the pod\'s ModelStatistics (samples per onnxruntime run, and the run time',
    'including the hop to and from the session worker thread); CPU columns are process CPU time (all threads) per request.',
  ].join('\n');
}
