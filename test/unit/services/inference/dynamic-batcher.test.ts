import { DynamicBatcher, concatFeeds, splitOutputs, type BatchingOptions } from '../../../../services/inference/dynamic-batcher';
import type { HostTensor } from '../../../../lib/tensor';
import type { RunResult } from '../../../../services/inference/session-pool';
import { ErrorCode, MeshError } from '../../../../lib/errors';

const rows = (values: number[][]): HostTensor => ({ type: 'float32', dims: [values.length, values[0]!.length], data: Float32Array.from(values.flat()) });

/** A real computation standing in for a model: OUT = IN * 2, recording each run's batch size. */
function doubler(delayMs = 0) {
  const batches: number[] = [];
  let release: (() => void) | undefined;
  const gate = { hold: false };
  const run = async (feeds: Record<string, HostTensor>): Promise<RunResult> => {
    const t = feeds.IN!;
    batches.push(t.dims[0]!);
    if (gate.hold) await new Promise<void>((r) => (release = r));
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const data = (t.data as Float32Array).map((v) => v * 2);
    return { outputs: { OUT: { type: 'float32', dims: t.dims, data } }, queueNs: 0n, computeNs: 1n, sessionNs: 1 };
  };
  return { run, batches, gate, release: () => release?.() };
}

const opts = (o: Partial<BatchingOptions> = {}): BatchingOptions => ({
  enabled: true, maxBatchSize: 8, maxQueueDelayUs: 2000, preferredBatchSizes: [], maxQueueSize: 100, concurrency: 1, ...o,
});

const req = (values: number[][], deadlineMs = 0) => ({ feeds: { IN: rows(values) }, outputs: ['OUT'], rows: values.length, deadlineMs });
const out = (r: RunResult) => Array.from(r.outputs.OUT!.data as Float32Array);

describe('DynamicBatcher', () => {
  it('batches concurrent requests of different sizes and gives each caller its own rows', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts(), m.run);
    const results = await Promise.all([
      b.submit(req([[1, 1]])),
      b.submit(req([[2, 2], [3, 3]])),
      b.submit(req([[4, 4], [5, 5], [6, 6]])),
    ]);
    expect(m.batches).toEqual([6]);
    expect(results.map(out)).toEqual([[2, 2], [4, 4, 6, 6], [8, 8, 10, 10, 12, 12]]);
    expect(results.map((r) => r.outputs.OUT!.dims)).toEqual([[1, 2], [2, 2], [3, 2]]);
  });

  it('never exceeds the max batch size and runs what waits after the current run', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts({ maxBatchSize: 4 }), m.run);
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(req([[i, i]]))));
    expect(m.batches.every((n) => n <= 4)).toBe(true);
    expect(m.batches.reduce((a, c) => a + c, 0)).toBe(10);
  });

  it('runs a preferred batch size at once, without waiting for the delay', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts({ preferredBatchSizes: [2], maxQueueDelayUs: 10_000_000 }), m.run);
    const started = Date.now();
    await Promise.all([b.submit(req([[1, 1]])), b.submit(req([[2, 2]]))]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(m.batches).toEqual([2]);
  });

  it('does not concatenate requests whose other dimensions differ', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts(), m.run);
    const [a, c] = await Promise.all([b.submit(req([[1, 1]])), b.submit(req([[1, 2, 3]]))]);
    expect(out(a)).toEqual([2, 2]);
    expect(out(c)).toEqual([2, 4, 6]);
    expect(m.batches).toEqual([1, 1]);
  });

  it('runs every request alone when batching is off', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts({ enabled: false }), m.run);
    await Promise.all([b.submit(req([[1, 1], [2, 2]])), b.submit(req([[3, 3]]))]);
    expect(m.batches).toEqual([2, 1]);
  });

  it('answers QueueFull at once when the queue is full', async () => {
    const m = doubler();
    m.gate.hold = true;
    const b = new DynamicBatcher(opts({ maxQueueSize: 2, maxBatchSize: 1 }), m.run);
    const first = b.submit(req([[1, 1]]));
    await new Promise((r) => setTimeout(r, 10)); // the first is running, the queue is empty
    const queued = [b.submit(req([[2, 2]])), b.submit(req([[3, 3]]))];
    await expect(b.submit(req([[4, 4]]))).rejects.toMatchObject({ code: 'QueueFull' });
    m.gate.hold = false;
    m.release();
    await Promise.all([first, ...queued]);
    expect(m.batches).toEqual([1, 1, 1]);
  });

  it('drops a request whose deadline passed while queued, without running it', async () => {
    const m = doubler();
    m.gate.hold = true;
    const b = new DynamicBatcher(opts({ maxBatchSize: 1 }), m.run);
    const first = b.submit(req([[1, 1]]));
    await new Promise((r) => setTimeout(r, 10));
    const late = b.submit(req([[9, 9]], Date.now() + 20));
    await new Promise((r) => setTimeout(r, 40));
    m.gate.hold = false;
    m.release();
    await first;
    await expect(late).rejects.toMatchObject({ code: 'DeadlineExceeded' });
    expect(m.batches).toEqual([1]);
  });

  it('drops a request whose client cancelled', async () => {
    const m = doubler();
    m.gate.hold = true;
    const b = new DynamicBatcher(opts({ maxBatchSize: 1 }), m.run);
    const first = b.submit(req([[1, 1]]));
    await new Promise((r) => setTimeout(r, 10));
    let cancel: () => void = () => undefined;
    const cancelled = b.submit(req([[9, 9]]), { onCancel: (fn) => (cancel = fn) });
    cancel();
    await expect(cancelled).rejects.toBeInstanceOf(MeshError);
    m.gate.hold = false;
    m.release();
    await first;
    expect(b.queued).toBe(0);
    expect(m.batches).toEqual([1]);
  });

  it('below a millisecond of queue delay, dispatches once the callback that brought the requests is done, not a loop turn later', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts({ maxQueueDelayUs: 500 }), m.run);
    // Two requests from one callback (one socket read) share the run.
    const both = [b.submit(req([[1, 1]])), b.submit(req([[2, 2]]))];
    expect(m.batches).toEqual([]);
    // The run has started by the next tick (an immediate would have waited for the check phase).
    await new Promise((r) => process.nextTick(r));
    expect(m.batches).toEqual([2]);
    expect((await Promise.all(both)).map(out)).toEqual([[2, 2], [4, 4]]);

    // A pending dispatch is dropped when the settings change: the request then waits the new delay.
    await new Promise((r) => setImmediate(r)); // the run's slot is free again
    const waiting = b.submit(req([[3, 3]]));
    b.reconfigure(opts({ maxQueueDelayUs: 10_000_000 }));
    await new Promise((r) => setImmediate(r));
    expect(m.batches).toEqual([2]);
    expect(b.queued).toBe(1);
    b.reconfigure(opts({ maxQueueDelayUs: 0 }));
    expect(out(await waiting)).toEqual([6, 6]);
    expect(m.batches).toEqual([2, 1]);
  });

  it('concatenates and splits strings and 64-bit integers', () => {
    const feeds = concatFeeds([
      { S: { type: 'string', dims: [1, 2], data: ['a', 'b'] }, I: { type: 'int64', dims: [1], data: BigInt64Array.from([1n]) } },
      { S: { type: 'string', dims: [2, 2], data: ['c', 'd', 'e', 'f'] }, I: { type: 'int64', dims: [2], data: BigInt64Array.from([2n, 3n]) } },
    ]);
    expect(feeds.S).toEqual({ type: 'string', dims: [3, 2], data: ['a', 'b', 'c', 'd', 'e', 'f'] });
    const parts = splitOutputs(feeds, [1, 2]);
    expect(parts[1]!.S!.data).toEqual(['c', 'd', 'e', 'f']);
    expect(Array.from(parts[1]!.I!.data as BigInt64Array)).toEqual([2n, 3n]);
  });
  it('applies new settings to the requests already queued, each caller still getting its own rows', async () => {
    const m = doubler();
    const b = new DynamicBatcher(opts({ enabled: false, maxBatchSize: 1 }), m.run);
    m.gate.hold = true;
    const first = b.submit(req([[1, 1]]));
    await new Promise((r) => setImmediate(r));
    const queued = [b.submit(req([[2, 2], [3, 3]])), b.submit(req([[4, 4]])), b.submit(req([[5, 5], [6, 6]]))];
    expect(b.queued).toBe(3);
    // Batching turns on while they wait: they run together, 5 rows, split back by each one's rows.
    b.reconfigure(opts({ maxQueueDelayUs: 0 }));
    m.gate.hold = false;
    m.release();
    expect(out(await first)).toEqual([2, 2]);
    expect((await Promise.all(queued)).map(out)).toEqual([[4, 4, 6, 6], [8, 8], [10, 10, 12, 12]]);
    expect(m.batches).toEqual([1, 5]);

    // And off again: queued requests run one by one, even one larger than the old maximum.
    m.gate.hold = true;
    const head = b.submit(req([[1, 1]]));
    await new Promise((r) => setImmediate(r));
    const rest = [b.submit(req([[7, 7], [8, 8], [9, 9]])), b.submit(req([[1, 2]]))];
    b.reconfigure(opts({ enabled: false, maxBatchSize: 1 }));
    m.gate.hold = false;
    m.release();
    await head;
    expect((await Promise.all(rest)).map(out)).toEqual([[14, 14, 16, 16, 18, 18], [2, 4]]);
    expect(m.batches).toEqual([1, 5, 1, 3, 1]);
  });

  it('runs the members of a run whose outputs cannot be split back one by one, and keeps serving', async () => {
    // A "model" that drops a row when given more than one: its outputs do not match a shared run.
    const batches: number[] = [];
    const run = async (feeds: Record<string, HostTensor>): Promise<RunResult> => {
      const t = feeds.IN!;
      batches.push(t.dims[0]!);
      const n = t.dims[0]! > 1 ? t.dims[0]! - 1 : 1;
      return { outputs: { OUT: { type: 'float32', dims: [n, t.dims[1]!], data: (t.data as Float32Array).slice(0, n * t.dims[1]!) } }, queueNs: 0n, computeNs: 1n, sessionNs: 1 };
    };
    const b = new DynamicBatcher(opts({ maxQueueDelayUs: 5_000 }), run);
    const results = await Promise.all([b.submit(req([[1, 1]])), b.submit(req([[2, 2]]))]);
    expect(results.map(out)).toEqual([[1, 1], [2, 2]]);
    expect(batches).toEqual([2, 1, 1]);
    expect(out(await b.submit(req([[3, 3]])))).toEqual([3, 3]);
  });

  it('fails only the request that breaks a shared run: the others are answered by runs of their own', async () => {
    // OUT = IN * 2, but any negative value fails the whole run, as a model refusing its input does.
    const batches: number[][] = [];
    const run = async (feeds: Record<string, HostTensor>): Promise<RunResult> => {
      const data = feeds.IN!.data as Float32Array;
      batches.push(Array.from(data));
      if (data.some((v) => v < 0)) throw new MeshError(ErrorCode.ExecutionFailed, 'onnxruntime failed: negative input');
      return { outputs: { OUT: { type: 'float32', dims: feeds.IN!.dims, data: data.map((v) => v * 2) } }, queueNs: 0n, computeNs: 1n, sessionNs: 1 };
    };
    const b = new DynamicBatcher(opts({ maxQueueDelayUs: 5_000 }), run);
    const results = await Promise.allSettled([b.submit(req([[1, 1]])), b.submit(req([[-1, 5]])), b.submit(req([[3, 3], [4, 4]]))]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: expect.objectContaining({ outputs: { OUT: { type: 'float32', dims: [1, 2], data: Float32Array.of(2, 2) } } }) });
    expect(results[1]).toEqual({ status: 'rejected', reason: expect.objectContaining({ code: ErrorCode.ExecutionFailed }) });
    expect(results[2]).toEqual({ status: 'fulfilled', value: expect.objectContaining({ outputs: { OUT: { type: 'float32', dims: [2, 2], data: Float32Array.of(6, 6, 8, 8) } } }) });
    expect(batches).toEqual([[1, 1, -1, 5, 3, 3, 4, 4], [1, 1], [-1, 5], [3, 3, 4, 4]]);
  });

  it('does not run again the members of a run that failed for a reason of its own (the model is unloading)', async () => {
    let runs = 0;
    const run = async (): Promise<RunResult> => {
      runs++;
      throw new MeshError(ErrorCode.NotReady, 'model is unloading');
    };
    const b = new DynamicBatcher(opts({ maxQueueDelayUs: 5_000 }), run);
    const results = await Promise.allSettled([b.submit(req([[1, 1]])), b.submit(req([[2, 2]]))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(runs).toBe(1);
  });

  it('takes a request\'s rows from what validation found, and never puts a request without them in a shared run', async () => {
    const m = doubler();
    const sizes: number[] = [];
    const b = new DynamicBatcher(opts({ maxQueueDelayUs: 5_000 }), (feeds, outputs, batchSize) => {
      sizes.push(batchSize);
      return m.run(feeds);
    });
    const alone = { ...req([[7, 7]]), rows: null };
    const results = await Promise.all([b.submit(req([[1, 1]])), b.submit(alone), b.submit(req([[2, 2], [3, 3]]))]);
    expect(results.map(out)).toEqual([[2, 2], [14, 14], [4, 4, 6, 6]]);
    // The head runs first, alone (the next request cannot join it), then the one without rows, then the last.
    expect(m.batches).toEqual([1, 1, 2]);
    expect(sizes).toEqual([1, 1, 2]);
  });
});
