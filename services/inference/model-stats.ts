// Per-version statistics in Triton's shape (ModelStatistics): counts and cumulative nanoseconds.

/** A count and the nanoseconds it took in total. */
export interface Duration {
  count: number;
  ns: bigint;
}

const zero = (): Duration => ({ count: 0, ns: 0n });

/** Statistics of one model version, as Triton reports them. */
export class ModelStats {
  /** Epoch milliseconds of the last inference. */
  lastInference = 0;
  /** Inferences performed (a batch of n counts n). */
  inferenceCount = 0;
  /** Model runs (a batch counts once). */
  executionCount = 0;
  readonly success = zero();
  readonly fail = zero();
  readonly queue = zero();
  readonly computeInput = zero();
  readonly computeInfer = zero();
  readonly computeOutput = zero();
  /** Per batch size: runs and their compute durations. */
  readonly batches = new Map<number, { input: Duration; infer: Duration; output: Duration }>();

  private static add(d: Duration, ns: bigint, count = 1): void {
    d.count += count;
    d.ns += ns;
  }

  /** Records a successful request and where its time went. */
  recordSuccess(t: { totalNs: bigint; queueNs: bigint; inputNs: bigint; inferNs: bigint; outputNs: bigint }): void {
    this.lastInference = Date.now();
    ModelStats.add(this.success, t.totalNs);
    ModelStats.add(this.queue, t.queueNs);
    ModelStats.add(this.computeInput, t.inputNs);
    ModelStats.add(this.computeInfer, t.inferNs);
    ModelStats.add(this.computeOutput, t.outputNs);
  }

  /** Records a failed request. */
  recordFailure(totalNs: bigint): void {
    this.lastInference = Date.now();
    ModelStats.add(this.fail, totalNs);
  }

  /** Records one model run of `batchSize` inferences. */
  recordExecution(batchSize: number, inferNs: bigint): void {
    this.executionCount += 1;
    this.inferenceCount += batchSize;
    let b = this.batches.get(batchSize);
    if (!b) {
      b = { input: zero(), infer: zero(), output: zero() };
      this.batches.set(batchSize, b);
    }
    ModelStats.add(b.infer, inferNs);
  }
}
