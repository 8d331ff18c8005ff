// One table row from several rounds of the same point: on a shared, noisy machine a single window
// can land on someone else's burst, so each point runs a few times, interleaved with the others.
import type { LoadResult } from './load';
import { median, mergeSorted, summarize } from './stats';

/** What a row shows of a point measured in several rounds. */
export interface PointSummary {
  rounds: number;
  /** Median calls per second over the rounds, and the lowest and highest round. */
  perSecond: number;
  perSecondMin: number;
  perSecondMax: number;
  /** Percentiles of every round's latencies pooled. */
  p50Ms: number;
  p99Ms: number;
  /** Failed calls in all rounds, and the first failure's message. */
  errors: number;
  firstError?: string;
  /** Median over the rounds of each watched group's CPU time per call, in µs. */
  cpuUsPerCall: Record<string, number>;
  /** Median of the load generator's CPU time per call, in µs. */
  clientCpuUsPerCall: number;
}

/** Combines the rounds of one point (at least one). */
export function combineRounds(results: readonly LoadResult[]): PointSummary {
  const rates = results.map((r) => r.perSecond);
  const pooled = summarize(mergeSorted(results.map((r) => r.latenciesUs)));
  const groups = new Set(results.flatMap((r) => Object.keys(r.cpuMsPerCall)));
  const cpuUsPerCall: Record<string, number> = {};
  for (const g of groups) cpuUsPerCall[g] = median(results.map((r) => (r.cpuMsPerCall[g] ?? Number.NaN) * 1000));
  return {
    rounds: results.length,
    perSecond: median(rates),
    perSecondMin: Math.min(...rates),
    perSecondMax: Math.max(...rates),
    p50Ms: pooled.p50Ms,
    p99Ms: pooled.p99Ms,
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError: results.find((r) => r.firstError)?.firstError,
    cpuUsPerCall,
    clientCpuUsPerCall: median(results.map((r) => r.clientCpuMsPerCall * 1000)),
  };
}
