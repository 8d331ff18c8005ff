// The limit a pod can approach: an onnxruntime session in the benchmark's own process, created with
// the options a pod's session worker uses, running batches of real digits back to back.
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ort } from '../lib/ort';
import { PIXELS, type Digit } from '../tools/models/mnist-data';
import { Samples, summarize } from './stats';

/** One in-process measurement. */
export interface InProcessResult {
  batch: number;
  intraOpThreads: number;
  samplesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** The intra-op threads a pod with one session worker uses by default (cores / workers). */
export function podDefaultIntraOpThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/** Runs `batch`-sized batches of `digits` back to back: `warmupMs`, then `durationMs` measured. */
export async function measureInProcess(modelPath: string, digits: readonly Digit[], batch: number, intraOpThreads: number, warmupMs: number, durationMs: number): Promise<InProcessResult> {
  // A few distinct batches, so the runs see different real inputs as the pod's do.
  const feeds = Array.from({ length: 8 }, (_, k) => {
    const data = new Float32Array(batch * PIXELS);
    for (let i = 0; i < batch; i++) data.set(digits[(k * batch + i) % digits.length]!.pixels, i * PIXELS);
    return { input: { data, dims: [batch, PIXELS] } };
  });
  const r = await measureSession(modelPath, feeds, ['probabilities'], intraOpThreads, warmupMs, durationMs);
  return { batch, intraOpThreads, samplesPerSecond: r.runsPerSecond * batch, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
}

/** What measureSession measured. */
export interface SessionRunsResult {
  runsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Runs an FP32 model on `feeds` in turn, back to back, in this process: `warmupMs`, then `durationMs`
 * measured. The session has onnxruntime's defaults but for `intraOpThreads` and one inter-op thread.
 * `between`, when given, is awaited after each run: runs per second count it, the latencies do not.
 */
export async function measureSession(modelPath: string, feeds: readonly Record<string, { data: Float32Array; dims: number[] }>[], outputs: string[], intraOpThreads: number, warmupMs: number, durationMs: number, between?: () => Promise<void>): Promise<SessionRunsResult> {
  const session = await ort.InferenceSession.create(path.resolve(modelPath), {
    executionProviders: ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  try {
    const tensors = feeds.map((f) => Object.fromEntries(Object.entries(f).map(([name, t]) => [name, new ort.Tensor('float32', t.data, t.dims)])));
    const latencies = new Samples();
    const windowStart = performance.now() + warmupMs;
    const windowEnd = windowStart + durationMs;
    for (let n = 0; ; n++) {
      const start = performance.now();
      if (start >= windowEnd) break;
      await session.run(tensors[n % tensors.length]!, outputs);
      const end = performance.now();
      if (end >= windowStart && end <= windowEnd) latencies.push((end - start) * 1000);
      if (between) await between();
    }
    const s = summarize(Float64Array.from(latencies.values()).sort());
    return { runsPerSecond: s.count / (durationMs / 1000), p50Ms: s.p50Ms, p99Ms: s.p99Ms };
  } finally {
    await session.release();
  }
}
