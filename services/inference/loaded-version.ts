// One model version loaded on this pod: its sessions, signature, state, in-flight count and statistics.
import type { ModelState } from '../../lib/events';
import type { ModelInferRequestOut, ModelInferResponse } from '../../lib/grpc/types';
import { MeshError, ErrorCode } from '../../lib/errors';
import { DATATYPES, elementCount, type Datatype, type HostTensor, type OrtType, type TensorData } from '../../lib/tensor';
import { decodeRequest, encodeResponse, type DecodeLimits, type Signature } from './request-codec';
import type { SessionPool } from './session-pool';
import { DynamicBatcher, type BatchingOptions, type Cancellation } from './dynamic-batcher';
import { ModelStats } from './model-stats';

/** Limits applied to every request. */
export type RequestLimits = DecodeLimits;

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

export class LoadedVersion {
  state: ModelState = 'LOADING';
  reason = '';
  /** Epoch ms until which an UNLOADING version still takes requests (routers are catching up). */
  private acceptUntil = 0;
  readonly stats = new ModelStats();
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  /** Queues every request: batches when `batching.maxBatchSize` > 1, else a bounded FIFO. */
  readonly batcher: DynamicBatcher;
  private batchingNow: BatchingOptions;

  constructor(
    readonly name: string,
    readonly version: number,
    readonly sha256: string,
    readonly signature: Signature,
    readonly pool: SessionPool,
    private readonly limits: RequestLimits,
    batching: BatchingOptions,
  ) {
    this.batchingNow = batching;
    this.batcher = new DynamicBatcher(batching, (feeds, outputs, batchSize) => this.pool.run(feeds, outputs).then((r) => {
      this.stats.recordExecution(batchSize, r.computeNs);
      return r;
    }));
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

  /** Validates, runs and encodes one request. */
  async infer(req: ModelInferRequestOut, ctx: CallContext = { deadlineMs: 0 }): Promise<ModelInferResponse> {
    if (!this.accepting()) throw new MeshError(ErrorCode.NotReady, `model '${this.name}' version ${this.version} is ${this.state.toLowerCase()}`);
    const start = process.hrtime.bigint();
    this.inflight++;
    try {
      const decoded = decodeRequest(req, this.signature, this.limits, this.batching.enabled ? this.batching.maxBatchSize : 0);
      const decodedAt = process.hrtime.bigint();
      const run = await this.batcher.submit({ feeds: decoded.feeds, outputs: decoded.outputs, rows: decoded.rows, deadlineMs: ctx.deadlineMs }, ctx.cancel);
      const encodedStart = process.hrtime.bigint();
      const res = encodeResponse(this.name, this.version, req.id, decoded, run.outputs);
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

  /** Runs the model once on zeros, so the version is only called ready once it answers. */
  async warmUp(): Promise<void> {
    const feeds: Record<string, HostTensor> = {};
    for (const input of this.signature.inputs) {
      const dims = input.shape.length ? input.shape.map((d) => (d < 0 ? 1 : d)) : [1];
      const n = elementCount(dims);
      feeds[input.name] = input.datatype === 'BYTES'
        ? { type: 'string', dims, data: new Array<string>(n).fill('') }
        : { type: ortTypeOf(input.datatype), dims, data: zeros(input.datatype, n) };
    }
    await this.pool.run(feeds, this.signature.outputs.map((o) => o.name));
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

function ortTypeOf(d: Datatype): OrtType {
  return DATATYPES[d].ort;
}

function zeros(d: Datatype, n: number): TensorData {
  switch (DATATYPES[d].ort) {
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': case 'float16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    default: return new Uint8Array(n);
  }
}
