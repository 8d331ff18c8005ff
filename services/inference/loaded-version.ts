// One model version loaded on this pod: its sessions, signature, state, in-flight count and statistics.
import type { ModelState } from '../../lib/events';
import type { ModelInferRequestOut } from '../../lib/grpc/types';
import { encodeInferAnswer } from '../../lib/grpc/infer-answer';
import { MeshError, ErrorCode, messageOf } from '../../lib/errors';
import type { WarmupSample__Output as WarmupSample } from '../../lib/grpc/generated/infermesh/registry/v1/WarmupSample';
import { DATATYPES, elementCount, isDatatype, parseShape } from '../../lib/tensor';
import { decodeRequest, encodeResponse, type DecodedRequest, type DecodeLimits, type Signature } from './request-codec';
import type { SessionPool } from './session-pool';
import { DynamicBatcher, type BatchingOptions, type Cancellation } from './dynamic-batcher';
import { ModelStats } from './model-stats';

/** How far above the threshold the fastest run must be for timeRuns to stop before `runs`. */
const FAR_ABOVE = 10;

/** Limits applied to every request, and the warm-up's time budget. */
export type RequestLimits = DecodeLimits & {
  /** Longest the warm-up may take, in ms (INFERMESH_WARMUP_TIMEOUT_MS). */
  warmupTimeoutMs: number;
  /** Largest answer, in bytes (INFERMESH_MAX_MESSAGE_BYTES): a larger one is refused before it is built. */
  maxMessageBytes: number;
};

/** A request's deadline and cancellation, from its gRPC call. */
export interface CallContext {
  /** Epoch ms; 0 for none. */
  deadlineMs: number;
  cancel?: Cancellation;
}

/** True when every input and output has a dynamic first dimension, so requests can be concatenated. */
export function canBatch(sig: Signature): boolean {
  return [...sig.inputs, ...sig.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);
}

/**
 * Whether a version's runs go to workers of its own only: never to shared session workers (a run
 * there holds every version on them) nor to the pod's own thread. So when its cost follows the
 * request's values (`valueSized`: its budget is INFERMESH_RUN_TIMEOUT_MS on its own workers) or
 * its decision trees need a stack larger than Node's (`stackMb`). The one place that decides it,
 * for loading and for runs on the pod's thread.
 */
export function ownWorkersOnly(valueSized: readonly string[], stackMb: number | undefined): boolean {
  return valueSized.length > 0 || stackMb !== undefined;
}

export class LoadedVersion {
  state: ModelState = 'LOADING';
  reason = '';
  /**
   * What loading it cost: the process's resident memory after its sessions were made and warmed
   * up, less before, and at least its artifact's size (0 until then).
   */
  memoryBytes = 0;
  /**
   * The operators through which its runs' cost can follow the request's values (lib/onnx's
   * valueSized; empty when fixed by shapes): such a version runs on workers of its own, under
   * INFERMESH_RUN_TIMEOUT_MS, never on shared workers or the pod's thread.
   */
  valueSized: readonly string[] = [];
  /** The operators through which a row of a batch could reach another row (lib/onnx rowMixing): the pods' default does not batch it. */
  rowMixing: readonly string[] = [];
  /**
   * Stack its sessions' threads need, in MiB, for its decision trees (lib/onnx treeDepth): set, it
   * runs on workers of their own with that stack, never on shared workers or the pod's thread.
   */
  stackMb: number | undefined;
  /** Its runs go to workers of its own only (ownWorkersOnly). */
  get ownWorkersOnly(): boolean {
    return ownWorkersOnly(this.valueSized, this.stackMb);
  }
  /** Epoch ms until which an UNLOADING version still takes requests (routers are catching up). */
  private acceptUntil = 0;
  readonly stats = new ModelStats();
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  /** Queues every request: batches when `batching.maxBatchSize` > 1, else a bounded FIFO. */
  readonly batcher: DynamicBatcher;
  private batchingNow: BatchingOptions;

  /** The sessions; replaced only before the version serves (usePool). */
  private sessions: SessionPool;
  /**
   * Told of each run that outlives its host's budget: when it `stopped` the version, the version
   * is UNAVAILABLE on this pod (with why as its reason), takes no request, and stays so until it
   * is unloaded (its repository takes it off, to load it again once the overdue runs have ended);
   * `ended` resolves when that run has, `shared` says whether its worker was a shared one.
   */
  onOverdue: ((why: string, ended: Promise<void>, stopped: boolean, shared: boolean) => void) | undefined;

  constructor(
    readonly name: string,
    readonly version: number,
    readonly sha256: string,
    readonly signature: Signature,
    pool: SessionPool,
    private readonly limits: RequestLimits,
    batching: BatchingOptions,
  ) {
    this.sessions = pool;
    this.watch(pool);
    this.batchingNow = batching;
    this.batcher = new DynamicBatcher(batching, (feeds, outputs, batchSize) => this.sessions.run(feeds, outputs).then((r) => {
      this.stats.recordExecution(batchSize, r.computeNs);
      return r;
    }));
  }

  /** The sessions that run this version. */
  get pool(): SessionPool {
    return this.sessions;
  }

  /**
   * Runs this version on `next` from now on; the caller closed the sessions it ran on before. Only
   * while the version is loading: no request is queued or running yet.
   */
  usePool(next: SessionPool): void {
    if (this.state !== 'LOADING') throw new Error(`the sessions of a version are replaced only while it loads, not ${this.state}`);
    this.sessions = next;
    this.watch(next);
  }

  /** Stops the version when a run of `pool` outlives its host's budget. */
  private watch(pool: SessionPool): void {
    pool.onOverdue = (why, ended, shared) => {
      // An unloading version is going anyway: it stays UNLOADING, so what waits for its release
      // still does; its set-aside worker is told all the same.
      const stops = pool === this.sessions && (this.state === 'LOADING' || this.state === 'READY');
      if (stops) {
        this.state = 'UNAVAILABLE';
        this.reason = `stopped on this pod: ${why}`;
      }
      this.onOverdue?.(why, ended, stops, shared);
    };
  }

  /**
   * Times the first warm-up sample, or without samples a synthetic one of as many rows as a batched
   * run may hold: the fastest of `runs` runs, in µs of session.run as its worker timed it (the
   * fastest, as other work on the machine, such as other versions loading, only ever adds). Stops
   * after the second run once the fastest so far takes ten times `enoughUs` or more. Undefined when a run fails or the
   * sample does not fit.
   */
  async timeRuns(samples: readonly WarmupSample[], runs: number, enoughUs: number): Promise<number | undefined> {
    const b = this.batching;
    const sample = samples[0] ?? this.syntheticSample(b.enabled && canBatch(this.signature) ? Math.max(1, b.maxBatchSize) : 1);
    let fastest = Number.POSITIVE_INFINITY;
    try {
      for (let i = 0; i < runs; i++) {
        const decoded = decodeRequest(warmupRequest(sample, this.signature, this.limits), this.signature, this.limits, 0);
        const us = (await this.sessions.run(decoded.feeds, decoded.outputs)).sessionNs / 1000;
        fastest = Math.min(fastest, us);
        // Only a run far above the threshold stops the timing early (a compute-bound model need not
        // run its batch `runs` times): on a loaded machine a short run is often slow once or twice,
        // and the fastest of all is what the version costs. The first run of new sessions may be
        // slower than the rest: it alone never stops the timing.
        if (i > 0 && fastest >= FAR_ABOVE * enoughUs) break;
      }
    } catch {
      return undefined;
    }
    return fastest;
  }

  /** The batching in force (the model's registry config over the pod's defaults). */
  get batching(): BatchingOptions {
    return this.batchingNow;
  }

  /** Applies a changed model config's batching to this version's queue. */
  reconfigure(batching: BatchingOptions): void {
    this.batchingNow = batching;
    this.batcher.reconfigure(batching);
  }

  /** The execution provider the sessions really run on. */
  get provider(): string {
    return this.pool.info.provider;
  }

  /** Requests being served. */
  get inFlight(): number {
    return this.inflight;
  }

  /** Whether the version takes requests: ready, or unloading but within its grace period. */
  accepting(): boolean {
    return this.state === 'READY' || (this.state === 'UNLOADING' && Date.now() < this.acceptUntil);
  }

  /** Starts unloading: still serving for `graceMs`, so requests routed before routers knew succeed. */
  beginUnload(graceMs: number): void {
    if (this.state === 'READY') this.acceptUntil = Date.now() + graceMs;
    this.state = 'UNLOADING';
  }

  /** Validates, runs and encodes one request: the bytes of its ModelInferResponse. */
  async infer(req: ModelInferRequestOut, ctx: CallContext = { deadlineMs: 0 }): Promise<Buffer> {
    if (!this.accepting()) throw new MeshError(ErrorCode.NotReady, `model '${this.name}' version ${this.version} is ${this.state.toLowerCase()}${this.state === 'UNAVAILABLE' ? `: ${this.reason}` : ''}`);
    const start = process.hrtime.bigint();
    this.inflight++;
    try {
      const decoded = decodeRequest(req, this.signature, this.limits, this.batching.enabled ? this.batching.maxBatchSize : 0);
      const decodedAt = process.hrtime.bigint();
      const run = await this.batcher.submit({ feeds: decoded.feeds, outputs: decoded.outputs, rows: decoded.rows, deadlineMs: ctx.deadlineMs }, ctx.cancel);
      const encodedStart = process.hrtime.bigint();
      const res = encodeInferAnswer(encodeResponse(this.name, this.version, req.id, decoded, run.outputs, this.limits), this.limits.maxMessageBytes);
      const end = process.hrtime.bigint();
      this.stats.recordSuccess({ totalNs: end - start, queueNs: run.queueNs, inputNs: decodedAt - start, inferNs: run.computeNs, outputNs: end - encodedStart });
      return res;
    } catch (err) {
      this.stats.recordFailure(process.hrtime.bigint() - start);
      throw err;
    } finally {
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /**
   * Runs the warm-up before the version serves: each of the model's configured samples, `count`
   * times, in order, or without samples one synthetic request (zeros, 1 for every dynamic
   * dimension). A sample is validated as a request is (decodeRequest). Resolves '' when every run
   * succeeded, else what failed first: a warm-up never keeps a version from serving (the synthetic
   * sizes may be ones a valid model refuses), its failure is reported. Past `warmupTimeoutMs` it
   * resolves at once with why, so no config keeps a version loading (a run in progress finishes on
   * its worker, before the requests queued behind it).
   */
  async warmUp(samples: readonly WarmupSample[]): Promise<string> {
    const planned = samples.length ? samples : [this.syntheticSample()];
    const budgetMs = this.limits.warmupTimeoutMs;
    const deadline = Date.now() + budgetMs;
    for (const [i, sample] of planned.entries()) {
      const what = samples.length === 0 ? `synthetic warm-up (${describeSample(sample)})`
        : `warm-up sample ${sample.name ? `'${sample.name}'` : i + 1} (${describeSample(sample)})`;
      const runs = Math.max(1, sample.count);
      for (let run = 0; run < runs; run++) {
        const overdue = `warm-up stopped at its budget of ${budgetMs} ms (INFERMESH_WARMUP_TIMEOUT_MS), in ${what}, run ${run + 1} of ${runs}`;
        if (Date.now() >= deadline) return overdue;
        // Decoded for each run: a run hands its buffers to the worker thread.
        let decoded: DecodedRequest;
        try {
          decoded = decodeRequest(warmupRequest(sample, this.signature, this.limits), this.signature, this.limits, 0);
        } catch (err) {
          return `${what} does not fit version ${this.version}: ${messageOf(err)}`;
        }
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()));
        });
        try {
          if (await Promise.race([this.sessions.run(decoded.feeds, decoded.outputs), late]) === 'late') return overdue;
        } catch (err) {
          return `${what} failed: ${messageOf(err)}`;
        } finally {
          clearTimeout(timer);
        }
      }
    }
    return '';
  }

  /** A request of `rows` rows of zeros, decoded as a request is (what enableInline times). */
  rowsRequest(rows: number): DecodedRequest {
    return decodeRequest(warmupRequest(this.syntheticSample(rows), this.signature, this.limits), this.signature, this.limits, 0);
  }

  /**
   * Zeros for every input, a dynamic first dimension `rows` and every other dynamic dimension 1 (and
   * [1] where the graph declares no shape).
   */
  private syntheticSample(rows = 1): WarmupSample {
    return {
      name: 'synthetic',
      count: 1,
      inputs: this.signature.inputs.map((input) => ({
        name: input.name,
        dims: (input.shape.length ? input.shape.map((d, i) => (d < 0 ? (i === 0 ? rows : 1) : d)) : [1]).map(String),
        raw_data: Buffer.alloc(0),
      })),
    };
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** "INPUT0 [1,4] zeros, INPUT1 [1,4] 16 bytes": a sample, for logs and reasons. */
function describeSample(sample: WarmupSample): string {
  return sample.inputs.map((x) => `${x.name} [${x.dims.join(',')}] ${x.raw_data.length ? `${x.raw_data.length} bytes` : 'zeros'}`).join(', ');
}

/**
 * A warm-up sample as a ModelInferRequest with raw contents, so it passes the checks a request
 * passes. Zeros are made here, after the shape was checked against the element limit; an input the
 * version does not have keeps no datatype, and decodeRequest refuses it by name.
 */
function warmupRequest(sample: WarmupSample, sig: Signature, limits: RequestLimits): ModelInferRequestOut {
  const raw: Buffer[] = [];
  const inputs = sample.inputs.map((x) => {
    const datatype = sig.inputs.find((s) => s.name === x.name)?.datatype ?? '';
    let data = x.raw_data;
    if (data.length === 0 && isDatatype(datatype)) {
      const count = elementCount(parseShape(x.name, x.dims, limits.maxTensorElements));
      // A BYTES element of length 0 is its 4-byte length; any other type's zero is all zero bytes.
      data = Buffer.alloc(count * (datatype === 'BYTES' ? 4 : DATATYPES[datatype].bytes));
    }
    raw.push(data);
    return { name: x.name, datatype, shape: x.dims, parameters: {}, contents: null };
  });
  return { model_name: '', model_version: '', id: 'warmup', parameters: {}, inputs, outputs: [], raw_input_contents: raw };
}
