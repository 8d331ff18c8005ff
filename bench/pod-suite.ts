// Suite `pod` (issue 3): the MNIST model in-process (the limit), then pods over gRPC with dynamic
// batching off and on, batch-1 requests at each concurrency, from the project's load client and
// from h2load (nghttp2's, when installed), so that the gain does not rest on one client: on two
// cores a client that spends more CPU per request than the pod caps what batching on can show.
// Each configuration is its own pod process with the same settings but the one compared; the pods
// take turns, so only one is loaded at a time and a drift of the shared machine hits them alike.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServiceProcess } from '../cli/local-mesh/service-process';
import { startBenchMesh } from './bench-mesh';
import { measureInProcess, podDefaultIntraOpThreads, type InProcessResult } from './in-process';
import type { LoadResult } from './load';
import { num, ratio, table } from './markdown';
import { checkCall, findH2load, h2loadSeconds, runH2load, writeDigitBody, type H2loadResult } from './h2load';
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
  /** h2load's median round at the same point, when it was measured. */
  h2load?: H2loadResult;
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

/**
 * Starts one pod per variant, then measures every variant at every concurrency, in rounds; with
 * `h2load` (its binary), the same again from h2load with one digit repeated.
 */
export async function podPoints(opts: SuiteOptions, variants: PodVariant[], concurrencies: number[], h2load?: string): Promise<PodPoint[]> {
  const mesh = await startBenchMesh();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pod-'));
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
    if (h2load) {
      const body = path.join(tmp, 'digit.bin');
      const frame = writeDigitBody(body, opts.digits[0]!);
      for (const [i] of variants.entries()) await checkCall(address(i), frame);
      for (const c of concurrencies) {
        const runs: H2loadResult[][] = variants.map(() => []);
        for (let round = 1; round <= opts.rounds; round++) {
          for (const [i, v] of variants.entries()) {
            opts.progress(`pod '${v.label}': h2load, concurrency ${c}, round ${round}/${opts.rounds}`);
            runs[i]!.push(await runH2load(h2load, body, address(i), c, opts.maxConnections, h2loadSeconds(opts.durationMs), [pods[i]!.pid]));
          }
        }
        variants.forEach((variant, i) => {
          const sorted = runs[i]!.slice().sort((a, b) => a.perSecond - b.perSecond);
          points.find((p) => p.variant === variant && p.concurrency === c)!.h2load = sorted[Math.floor(sorted.length / 2)];
        });
      }
    }
    return points;
  } finally {
    await mesh.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
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

/** The h2load table of the points that have h2load rounds; every row also shows its ratio to the first variant. */
export function podH2loadTable(points: PodPoint[]): string {
  const base = points[0]?.variant;
  const baseline = (c: number) => points.find((p) => p.variant === base && p.concurrency === c)?.h2load?.perSecond ?? Number.NaN;
  return table(
    ['pod over gRPC, h2load', 'concurrency', 'samples/s', `× ${base?.label ?? 'first'}`, 'mean ms', 'failed', 'pod CPU µs/req'],
    points.filter((p) => p.h2load).map((p) => [
      p.variant.label,
      String(p.concurrency),
      num(p.h2load!.perSecond),
      ratio(p.h2load!.perSecond / baseline(p.concurrency)),
      num(p.h2load!.meanMs, 3),
      String(p.h2load!.failed),
      num(p.h2load!.cpuUsPerCall),
    ]),
  );
}

/** Runs the pod suite and returns its Markdown. */
export async function podSuite(opts: SuiteOptions): Promise<string> {
  const inProcess = await inProcessPoints(opts);
  const h2load = findH2load();
  const points = await podPoints(opts, BATCHING_VARIANTS, opts.concurrencies, h2load);
  const top = Math.max(...opts.concurrencies);
  const at = (label: string) => points.find((p) => p.variant.label === label && p.concurrency === top);
  const gain = (at('batching on')?.summary.perSecond ?? Number.NaN) / (at('batching off')?.summary.perSecond ?? Number.NaN);
  const h2Gain = (at('batching on')?.h2load?.perSecond ?? Number.NaN) / (at('batching off')?.h2load?.perSecond ?? Number.NaN);
  const verdict = (r: number) => `**${r >= 3 ? 'met' : 'missed'}**`;
  return [
    '## Suite `pod`: the MNIST model in-process and on one pod (issue 3)',
    '',
    inProcessTable(inProcess),
    '',
    podTable(points),
    '',
    ...(h2load
      ? [`The same pods from h2load (nghttp2; one digit repeated, ${opts.maxConnections} connections at most, the median of ${opts.rounds} rounds of ${h2loadSeconds(opts.durationMs)} s, the pods taking turns):`, '', podH2loadTable(points), '']
      : ['h2load is not installed (Debian: nghttp2-client): its table is left out.', '']),
    `Target: batching on at concurrency ${top} ≥ 3× batching off. Measured: ${ratio(gain)} with the project's client — ${verdict(gain)}`
      + (h2load ? `; ${ratio(h2Gain)} with h2load — ${verdict(h2Gain)}.` : '.'),
    '',
    `Batch-1 requests of real held-out digits (raw_input_contents), closed loop, ${opts.rounds} rounds of ${opts.durationMs / 1000} s per row`,
    '(after a warm-up each, the pods taking turns): samples/s is the median round, p50/p99 pool every round\'s latencies.',
    '`mean batch` and `mean run ms` come from the pod\'s ModelStatistics (samples per onnxruntime run, and the run time',
    'including the hop to and from the session worker thread); CPU columns are process CPU time (all threads) per request.',
    'Where the project\'s client spends more CPU per request than the pod, the two share two cores and the client caps batching on.',
  ].join('\n');
}
