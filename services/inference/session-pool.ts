// A pool of worker threads, each holding one onnxruntime session of the same model version.
// Runs go to an idle worker, or wait in FIFO order for one.
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider, SpinningPolicy } from '../../lib/config';
import { MeshError, ErrorCode } from '../../lib/errors';
import type { HostTensor } from '../../lib/tensor';
import { workerScript } from '../../lib/worker-script';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol';

/** Options of a session pool. */
export interface SessionPoolOptions {
  modelPath: string;
  providers: ExecutionProvider[];
  /** Worker threads (sessions); default 1. */
  workers?: number;
  /** onnxruntime intra-op threads per session; 0 lets onnxruntime choose. */
  intraOpThreads?: number;
  /** How onnxruntime's intra-op threads wait for work (default: on, onnxruntime's own). */
  spinning?: SpinningPolicy;
  /**
   * A worker that exits unasked is started again after `baseMs`, doubling with each exit in a row up
   * to `maxMs` (the pod's INFERMESH_LOAD_RETRY_*; default 1 s and 60 s).
   */
  respawn?: { baseMs: number; maxMs: number };
  /** V8 young generation of each worker, in MB (INFERMESH_SESSION_WORKER_YOUNG_GENERATION_MB; default 2). */
  youngGenerationMb?: number;
}

/** A run's outputs and where its time went. */
export interface RunResult {
  outputs: Record<string, HostTensor>;
  /** Waiting for a free worker. */
  queueNs: bigint;
  /** From handing the run to a worker to its answer (onnxruntime plus the thread hop). */
  computeNs: bigint;
  /** onnxruntime's run alone, timed on its worker (a batched request: the whole batch's run). */
  sessionNs: number;
}

interface Job {
  feeds: Record<string, HostTensor>;
  outputs: string[];
  enqueuedAt: bigint;
  startedAt: bigint;
  resolve: (result: RunResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Job | undefined;
}

/** What a loaded session reports about itself. */
export interface SessionInfo {
  provider: ExecutionProvider;
  /** Why earlier providers were skipped, when the one used is not the first asked for. */
  fallback?: string;
  inputNames: string[];
  outputNames: string[];
}

let nextJobId = 1;

export class SessionPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Job[] = [];
  private closed = false;
  /** Workers that exited unasked in a row (none answered a run since), and their restart timers. */
  private exitsInARow = 0;
  private readonly restarts = new Set<NodeJS.Timeout>();
  private respawned = 0;
  private constructor(
    readonly info: SessionInfo,
    /** onnxruntime intra-op threads of each session (0: onnxruntime chose). */
    readonly intraOpThreads: number,
    /** How those threads wait for work. */
    readonly spinning: SpinningPolicy,
    private readonly script: string,
    /** What a worker started again is given: the provider the first ones run on. */
    private readonly init: WorkerInit,
    private readonly respawnPolicy: { baseMs: number; maxMs: number },
  ) {}

  /** Starts the workers and resolves once every session loaded; rejects with the load error. */
  static async create(opts: SessionPoolOptions): Promise<SessionPool> {
    const count = Math.max(1, opts.workers ?? 1);
    const init: WorkerInit = { modelPath: opts.modelPath, providers: opts.providers, intraOpThreads: opts.intraOpThreads ?? 0, spinning: opts.spinning ?? 'on', youngGenerationMb: opts.youngGenerationMb ?? 2 };
    const script = workerScript(__dirname, 'session-worker');
    const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(script, init)));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map(({ worker }) => worker.terminate()));
      throw failed.reason;
    }
    const info = ok[0]!.info;
    const pool = new SessionPool(info, init.intraOpThreads, init.spinning, script, { ...init, providers: [info.provider] }, opts.respawn ?? { baseMs: 1_000, maxMs: 60_000 });
    for (const { worker } of ok) pool.attach(worker);
    return pool;
  }

  private attach(worker: Worker): void {
    const slot: Slot = { worker, busy: undefined };
    this.slots.push(slot);
    worker.on('message', (msg: WorkerReply) => {
      const job = slot.busy;
      if (!job || (msg.type !== 'result' && msg.type !== 'error')) return;
      slot.busy = undefined;
      if (msg.type === 'result') {
        this.exitsInARow = 0;
        const now = process.hrtime.bigint();
        job.resolve({ outputs: msg.outputs, queueNs: job.startedAt - job.enqueuedAt, computeNs: now - job.startedAt, sessionNs: msg.runNs });
      }
      else job.reject(new MeshError(ErrorCode.ExecutionFailed, `onnxruntime failed: ${msg.message}`));
      this.dispatch();
    });
    // A worker that exits unasked (an uncaught error, out of memory, terminated) fails only its own
    // run; the pool keeps the others, and starts one again after a back-off. Node emits 'error'
    // (when there was one) before 'exit'.
    let crash: Error | undefined;
    worker.on('error', (err) => {
      crash = err;
    });
    worker.on('exit', (code) => {
      if (this.closed) return;
      const why = crash ? `session worker crashed: ${crash.message}` : `session worker exited (code ${code})`;
      slot.busy?.reject(new MeshError(ErrorCode.ExecutionFailed, why));
      slot.busy = undefined;
      this.slots.splice(this.slots.indexOf(slot), 1);
      this.restartLater();
      this.dispatch();
    });
  }

  /** Starts a worker in place of one that exited, after the back-off; again later when that fails. */
  private restartLater(): void {
    this.exitsInARow++;
    const delayMs = Math.min(this.respawnPolicy.maxMs, this.respawnPolicy.baseMs * 2 ** Math.min(this.exitsInARow - 1, 30));
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (this.closed) return;
      startWorker(this.script, this.init).then(({ worker }) => {
        if (this.closed) return void worker.terminate();
        this.respawned++;
        this.attach(worker);
        this.dispatch();
      }, () => {
        if (!this.closed) this.restartLater();
      });
    }, delayMs);
    this.restarts.add(timer);
  }

  /** Runs the model on `feeds`, computing `outputs`. */
  run(feeds: Record<string, HostTensor>, outputs: string[]): Promise<RunResult> {
    if (this.closed) return Promise.reject(new MeshError(ErrorCode.NotReady, 'model is unloading'));
    return new Promise((resolve, reject) => {
      const now = process.hrtime.bigint();
      this.waiting.push({ feeds, outputs, enqueuedAt: now, startedAt: now, resolve, reject });
      this.dispatch();
    });
  }

  /** Workers started again after exiting unasked, over the pool's life. */
  get respawns(): number {
    return this.respawned;
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs a worker is executing now. */
  get running(): number {
    return this.slots.reduce((n, s) => n + (s.busy ? 1 : 0), 0);
  }

  /** Workers in the pool. */
  get size(): number {
    return this.slots.length;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const job = this.waiting.shift();
      if (!job) return;
      slot.busy = job;
      job.startedAt = process.hrtime.bigint();
      const transfer: ArrayBuffer[] = [];
      for (const t of Object.values(job.feeds)) {
        if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
      }
      const msg: WorkerRequest = { type: 'run', id: nextJobId++, feeds: job.feeds, outputs: job.outputs };
      slot.worker.postMessage(msg, transfer);
    }
  }

  private failWaiting(message: string): void {
    for (const job of this.waiting.splice(0)) job.reject(new MeshError(ErrorCode.Unavailable, message));
  }

  /** Stops taking runs, lets the running ones finish, then releases every session and thread. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.restarts) clearTimeout(t);
    this.restarts.clear();
    this.failWaiting('model unloaded');
    await Promise.all(this.slots.map((slot) => closeWorker(slot)));
    this.slots.length = 0;
  }
}

function startWorker(script: string, init: WorkerInit): Promise<{ worker: Worker; info: SessionInfo }> {
  return new Promise((resolve, reject) => {
    // Not the process's V8 flags (its --max-semi-space-size is for the main thread's traffic): a
    // worker's young generation of its own, small, as it allocates little on the heap.
    const worker = new Worker(script, { workerData: init, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: init.youngGenerationMb } });
    const onMessage = (msg: WorkerReply) => {
      if (msg.type === 'ready') {
        cleanup();
        resolve({ worker, info: { provider: msg.provider, fallback: msg.fallback, inputNames: msg.inputNames, outputNames: msg.outputNames } });
      } else if (msg.type === 'failed') {
        cleanup();
        void worker.terminate();
        reject(new MeshError(ErrorCode.FailedPrecondition, `model failed to load: ${msg.message}`));
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new MeshError(ErrorCode.FailedPrecondition, `session worker failed to start: ${err.message}`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

async function closeWorker(slot: Slot): Promise<void> {
  // Wait for the job in flight (it is answered first), then ask the worker to release its session.
  while (slot.busy) await new Promise((r) => setTimeout(r, 5));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => void slot.worker.terminate().then(() => resolve()), 5_000);
    slot.worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    slot.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
  });
}
