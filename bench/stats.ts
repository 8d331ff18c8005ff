// Latency summaries for the benchmark tables.

/** Throughput and latency of one measured run. */
export interface LatencySummary {
  /** Calls that completed inside the measured window. */
  count: number;
  /** p50 and p99 latency, in milliseconds (NaN when nothing completed). */
  p50Ms: number;
  p99Ms: number;
}

/** The `q` quantile (0..1) of ascending `sorted` values, nearest rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** p50 and p99 of latencies given in microseconds, in ascending order. */
export function summarize(sortedUs: Float64Array): LatencySummary {
  return { count: sortedUs.length, p50Ms: quantile(sortedUs, 0.5) / 1000, p99Ms: quantile(sortedUs, 0.99) / 1000 };
}

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** Merges ascending arrays into one ascending array. */
export function mergeSorted(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out.sort();
}

/** A growable list of float64 samples that does not box each value. */
export class Samples {
  private data = new Float64Array(4096);
  private length = 0;

  /** Appends one sample. */
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }

  /** The samples so far (a view, not a copy). */
  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}
