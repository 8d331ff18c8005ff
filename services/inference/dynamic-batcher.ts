// Server-side dynamic batching, as Triton's dynamic batcher does it: requests to one model version
// wait together (at most the max queue delay), are concatenated along the first dimension into one
// run of up to the max batch size (preferring configured sizes), and the outputs are split back.
// The queue is bounded (full: QueueFull at once); a request whose deadline passes or whose client
// cancels while queued is dropped without running. No sockets here: the caller supplies `run`.
// Isolation: a request's rows are what decodeRequest validated (every input agreeing on them), never
// read from its tensors here; a request without them runs alone. When a shared run fails, its
// members run again one by one, so only the request that breaks the model fails.
import { MeshError, ErrorCode } from '../../lib/errors';
import { elementCount, type HostTensor, type TensorData } from '../../lib/tensor';
import type { RunResult } from './session-pool';

/** Batching settings of one model version. */
export interface BatchingOptions {
  /** Off: every request runs alone (the queue stays bounded, deadlines and cancels still apply). */
  enabled: boolean;
  /** Largest batch (sum of first dimensions) of one run. */
  maxBatchSize: number;
  /** Longest a request waits for others, in microseconds. */
  maxQueueDelayUs: number;
  /** Batch sizes to prefer: a batch of exactly one of these runs at once. */
  preferredBatchSizes: number[];
  /** Requests waiting at most; beyond it, QueueFull. */
  maxQueueSize: number;
  /** Runs in flight at once (the session workers). */
  concurrency: number;
}

/** One request as the batcher sees it. */
export interface BatchRequest {
  feeds: Record<string, HostTensor>;
  outputs: string[];
  /**
   * The request's batch: the first dimension all its inputs agree on (decodeRequest checks it);
   * null for a request that may not share a run, which then runs alone.
   */
  rows: number | null;
  /** Epoch ms after which the request must not run (0: none). */
  deadlineMs: number;
}

/** Lets the caller withdraw a queued request (client cancelled). */
export interface Cancellation {
  onCancel(fn: () => void): void;
}

interface Pending extends BatchRequest {
  /** Its share of a batch: `rows` while batching, else 1 (it runs alone). */
  size: number;
  /** Identical for requests that can share a run (non-batch dims, types, outputs). */
  shapeKey: string;
  enqueuedAt: bigint;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  done: boolean;
}

const shapeKeyOf = (r: BatchRequest) =>
  Object.keys(r.feeds).sort().map((n) => `${n}:${r.feeds[n]!.type}:${r.feeds[n]!.dims.slice(1).join('x')}`).join('|') + `>${r.outputs.join(',')}`;

/** `result` with `waitedNs` more queue time (named fields: see submit). */
const withQueueTime = (result: RunResult, waitedNs: bigint): RunResult =>
  ({ outputs: result.outputs, queueNs: result.queueNs + waitedNs, computeNs: result.computeNs, sessionNs: result.sessionNs });

/** Numbers the keys of requests that may not share a run. */
let aloneKeys = 0;

/** Runs `feeds` computing `outputs`; `batchSize` is the run's share of inferences (its rows, or 1 a request unbatched). */
export type RunFn = (feeds: Record<string, HostTensor>, outputs: string[], batchSize: number) => Promise<RunResult>;

/** Whether a failed shared run is worth running again member by member: the model failed on its data. */
const retryAlone = (err: unknown) => err instanceof MeshError && err.code === ErrorCode.ExecutionFailed;

export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  /** Sum of the queued requests' sizes, and how many are queued per shape: kept as the queue changes. */
  private queuedSize = 0;
  private readonly shapes = new Map<string, number>();
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  /** A dispatch asked for once the current callback is done (process.nextTick), while it counts. */
  private tickPending = false;
  /** Bumped to cancel a pending tick (nextTick has no clear). */
  private tickGeneration = 0;

  constructor(private opts: BatchingOptions, private readonly run: RunFn, private readonly onBatch?: (size: number) => void) {}

  private sizeOf(rows: number | null): number {
    return this.opts.enabled && rows !== null ? rows : 1;
  }

  /**
   * Applies new settings (the model's config changed) to the requests queued and to come; runs in
   * flight are not touched.
   */
  reconfigure(opts: BatchingOptions): void {
    this.opts = opts;
    this.queuedSize = 0;
    for (const p of this.queue) {
      p.size = this.sizeOf(p.rows);
      this.queuedSize += p.size;
    }
    this.clearTimers();
    this.schedule();
  }

  /** Requests waiting to run. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues a request; resolves with its own rows of the batched run's outputs. */
  submit(req: BatchRequest, cancel?: Cancellation): Promise<RunResult> {
    if (this.queue.length >= this.opts.maxQueueSize) {
      return Promise.reject(new MeshError(ErrorCode.QueueFull, `queue of ${this.opts.maxQueueSize} requests is full`));
    }
    return new Promise((resolve, reject) => {
      // Named fields, not a spread of req: V8 builds an object from a spread and more fields on a
      // slow path, about 6 µs a request (most of the batcher's own time with batching off).
      const p: Pending = {
        feeds: req.feeds,
        outputs: req.outputs,
        rows: req.rows,
        deadlineMs: req.deadlineMs,
        size: this.sizeOf(req.rows),
        // A request that may not share a run gets a key no other has.
        shapeKey: req.rows === null ? `alone ${++aloneKeys}` : shapeKeyOf(req),
        enqueuedAt: process.hrtime.bigint(),
        resolve,
        reject,
        done: false,
      };
      this.enqueue(p);
      // grpc-js may report a call cancelled after it was answered: build the error only when it counts.
      cancel?.onCancel(() => {
        if (!p.done) this.drop(p, new MeshError(ErrorCode.Cancelled, 'client cancelled'));
      });
      this.schedule();
    });
  }

  private enqueue(p: Pending): void {
    this.queue.push(p);
    this.queuedSize += p.size;
    this.shapes.set(p.shapeKey, (this.shapes.get(p.shapeKey) ?? 0) + 1);
  }

  /** Takes `count` requests off the head of the queue. */
  private takeHead(count: number): Pending[] {
    const taken = this.queue.splice(0, count);
    for (const p of taken) this.forget(p);
    return taken;
  }

  private forget(p: Pending): void {
    this.queuedSize -= p.size;
    const n = this.shapes.get(p.shapeKey)! - 1;
    if (n === 0) this.shapes.delete(p.shapeKey);
    else this.shapes.set(p.shapeKey, n);
  }

  private drop(p: Pending, err: Error): void {
    const i = this.queue.indexOf(p);
    if (i < 0 || p.done) return;
    this.queue.splice(i, 1);
    this.forget(p);
    p.done = true;
    p.reject(err);
  }

  private schedule(): void {
    if (this.running >= this.opts.concurrency || this.queue.length === 0) return;
    const total = this.queuedSize;
    const ready = !this.opts.enabled || this.queue[0]!.rows === null || total >= this.opts.maxBatchSize || this.opts.preferredBatchSizes.includes(total) || this.shapes.size > 1;
    const waitedUs = Number(process.hrtime.bigint() - this.queue[0]!.enqueuedAt) / 1000;
    if (ready || waitedUs >= this.opts.maxQueueDelayUs) {
      this.clearTimers();
      this.dispatch();
      return;
    }
    if (this.timer || this.tickPending) return;
    const remainingMs = (this.opts.maxQueueDelayUs - waitedUs) / 1000;
    // Below a millisecond, the requests that came with this one join it: the dispatch waits until
    // the callback that read them (a socket read carries many HTTP/2 streams) has run, not for a
    // turn of the loop. onnxruntime-node starts a run with setImmediate, and one asked for from an
    // immediate waits a whole further turn (a poll of the sockets): at concurrency 1 that turn was
    // a tenth of a request's time on the pod's own thread (docs/benchmarks.md). Requests that come
    // meanwhile form the next batch, as they do while a run is in flight.
    if (remainingMs < 1) {
      this.tickPending = true;
      const generation = ++this.tickGeneration;
      process.nextTick(() => {
        if (generation !== this.tickGeneration) return;
        this.tickPending = false;
        this.dispatchNow();
      });
    } else this.timer = setTimeout(() => { this.timer = undefined; this.dispatchNow(); }, remainingMs);
  }

  private dispatchNow(): void {
    if (this.running < this.opts.concurrency && this.queue.length > 0) this.dispatch();
  }

  private clearTimers(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.tickGeneration++;
    this.tickPending = false;
  }

  /** Takes a batch from the head of the queue and runs it. */
  private dispatch(): void {
    const now = Date.now();
    const expired = (p: Pending) => p.deadlineMs !== 0 && p.deadlineMs <= now;
    if (this.queue.some(expired)) {
      for (const p of this.queue.filter(expired)) this.drop(p, new MeshError(ErrorCode.DeadlineExceeded, 'deadline passed while queued'));
    }
    if (this.queue.length === 0) return;
    const key = this.queue[0]!.shapeKey;
    const batch: Pending[] = [];
    let size = 0;
    for (const p of this.queue) {
      // The head always runs, even when settings changed since it was queued (it may exceed a new max).
      if (batch.length > 0 && (p.shapeKey !== key || size + p.size > this.opts.maxBatchSize || !this.opts.enabled)) break;
      batch.push(p);
      size += p.size;
    }
    // Prefer the largest preferred size this batch can fill exactly, leaving the rest for the next.
    const preferred = this.opts.preferredBatchSizes.filter((s) => s <= size).sort((a, b) => b - a);
    for (const target of preferred) {
      let n = 0;
      let count = 0;
      while (count < batch.length && n + batch[count]!.size <= target) n += batch[count++]!.size;
      if (n === target) {
        batch.length = count;
        size = n;
        break;
      }
    }
    this.takeHead(batch.length);
    for (const p of batch) p.done = true;
    this.running++;
    this.onBatch?.(size);
    const started = process.hrtime.bigint();
    // Promise.resolve().then: a throw while joining the feeds or splitting the outputs counts as a failed run.
    Promise.resolve().then(async () => {
      if (batch.length === 1) {
        const p = batch[0]!;
        const result = await this.run(p.feeds, p.outputs, size);
        p.resolve(withQueueTime(result, started - p.enqueuedAt));
        return;
      }
      const result = await this.run(concatFeeds(batch.map((p) => p.feeds)), batch[0]!.outputs, size);
      // Every request passed validation with its own rows (`rows` is not null in a shared run).
      const parts = splitOutputs(result.outputs, batch.map((p) => p.rows!));
      batch.forEach((p, i) => p.resolve({ outputs: parts[i]!, queueNs: result.queueNs + (started - p.enqueuedAt), computeNs: result.computeNs, sessionNs: result.sessionNs }));
    }).catch(async (err: Error) => {
      // A failed run, or outputs that cannot be split back (a model that changes its batch size).
      if (batch.length === 1 || !retryAlone(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      await this.runEachAlone(batch);
    }).finally(() => {
      this.running--;
      this.schedule();
    });
    this.schedule();
  }

  /** Runs the members of a failed shared run one by one, in its slot, each answered by its own run. */
  private async runEachAlone(batch: Pending[]): Promise<void> {
    for (const p of batch) {
      if (p.deadlineMs !== 0 && p.deadlineMs <= Date.now()) {
        p.reject(new MeshError(ErrorCode.DeadlineExceeded, 'deadline passed while queued'));
        continue;
      }
      const started = process.hrtime.bigint();
      try {
        const result = await this.run(p.feeds, p.outputs, p.size);
        p.resolve(withQueueTime(result, started - p.enqueuedAt));
      } catch (err) {
        p.reject(err as Error);
      }
    }
  }
}

/** Concatenates requests' feeds along the first dimension. */
export function concatFeeds(all: Record<string, HostTensor>[]): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of Object.keys(all[0]!)) {
    const parts = all.map((f) => f[name]!);
    const dims = [parts.reduce((n, t) => n + t.dims[0]!, 0), ...parts[0]!.dims.slice(1)];
    out[name] = { type: parts[0]!.type, dims, data: concatData(parts.map((t) => t.data), elementCount(dims)) };
  }
  return out;
}

function concatData(parts: TensorData[], total: number): TensorData {
  if (Array.isArray(parts[0])) return (parts as string[][]).flat();
  const first = parts[0] as Exclude<TensorData, string[]>;
  const Ctor = first.constructor as new (n: number) => Exclude<TensorData, string[]>;
  const out = new Ctor(total);
  let off = 0;
  for (const p of parts as Exclude<TensorData, string[]>[]) {
    (out as Float32Array).set(p as Float32Array, off);
    off += p.length;
  }
  return out;
}

/** Splits a batched run's outputs back into per-request rows (`sizes` = each request's batch). */
export function splitOutputs(outputs: Record<string, HostTensor>, sizes: number[]): Record<string, HostTensor>[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const result: Record<string, HostTensor>[] = sizes.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dims[0] !== total) throw new MeshError(ErrorCode.ExecutionFailed, `output '${name}' has ${t.dims[0]} rows for a batch of ${total}`);
    const row = total === 0 ? 0 : t.data.length / total;
    let offset = 0;
    sizes.forEach((n, i) => {
      const data = Array.isArray(t.data) ? t.data.slice(offset * row, (offset + n) * row) : (t.data as Float32Array).subarray(offset * row, (offset + n) * row);
      result[i]![name] = { type: t.type, dims: [n, ...t.dims.slice(1)], data };
      offset += n;
    });
  }
  return result;
}
