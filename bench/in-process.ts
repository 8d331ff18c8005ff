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
  const session = await ort.InferenceSession.create(path.resolve(modelPath), {
    executionProviders: ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  try {
    // A few distinct batches, so the runs see different real inputs as the pod's do.
    const inputs = Array.from({ length: 8 }, (_, k) => {
      const data = new Float32Array(batch * PIXELS);
      for (let i = 0; i < batch; i++) data.set(digits[(k * batch + i) % digits.length]!.pixels, i * PIXELS);
      return new ort.Tensor('float32', data, [batch, PIXELS]);
    });
    const latencies = new Samples();
    const windowStart = performance.now() + warmupMs;
    const windowEnd = windowStart + durationMs;
    for (let n = 0; ; n++) {
      const start = performance.now();
      if (start >= windowEnd) break;
      await session.run({ input: inputs[n % inputs.length]! }, ['probabilities']);
      const end = performance.now();
      if (end >= windowStart && end <= windowEnd) latencies.push((end - start) * 1000);
    }
    const s = summarize(Float64Array.from(latencies.values()).sort());
    return { batch, intraOpThreads, samplesPerSecond: (s.count * batch) / (durationMs / 1000), p50Ms: s.p50Ms, p99Ms: s.p99Ms };
  } finally {
    await session.release();
  }
}
