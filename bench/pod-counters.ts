// A pod's own counters (Triton's ModelStatistics): inferences and executions of mnist, whose
// ratio over a run is the mean batch size the dynamic batcher formed.
import { inferenceClient, unary } from '../lib/grpc/client';
import type { ModelStatisticsResponse__Output as StatisticsOut } from '../lib/grpc/generated/inference/ModelStatisticsResponse';
import { MODEL } from './mnist-requests';

/** Inferences (samples) and executions (onnxruntime runs) a pod has counted so far. */
export interface PodCounters {
  inferences: number;
  executions: number;
  /** Time of those runs, from handing a batch to a session worker to its answer, in ns. */
  runNs: number;
}

/** Counters that are all zero. */
export const NO_COUNTS: PodCounters = Object.freeze({ inferences: 0, executions: 0, runNs: 0 });

/** Reads the pod's counters of mnist, summed over its versions. */
export async function podCounters(address: string): Promise<PodCounters> {
  const client = inferenceClient(address);
  try {
    const res = await unary<StatisticsOut>((cb) => client.ModelStatistics({ name: MODEL }, { deadline: Date.now() + 5_000 }, cb));
    return res.model_stats.reduce(
      (sum, s) => ({
        inferences: sum.inferences + Number(s.inference_count),
        executions: sum.executions + Number(s.execution_count),
        runNs: sum.runNs + s.batch_stats.reduce((ns, b) => ns + Number(b.compute_infer?.ns ?? 0), 0),
      }),
      NO_COUNTS,
    );
  } finally {
    client.close();
  }
}

/** `a + sign × b`, field by field. */
export function addCounters(a: PodCounters, b: PodCounters, sign = 1): PodCounters {
  return { inferences: a.inferences + sign * b.inferences, executions: a.executions + sign * b.executions, runNs: a.runNs + sign * b.runNs };
}

/** Mean samples per onnxruntime run, and mean run time in ms, of counted runs (NaN when none). */
export function runStats(c: PodCounters): { meanBatch: number; meanRunMs: number } {
  if (c.executions <= 0) return { meanBatch: Number.NaN, meanRunMs: Number.NaN };
  return { meanBatch: c.inferences / c.executions, meanRunMs: c.runNs / c.executions / 1e6 };
}
