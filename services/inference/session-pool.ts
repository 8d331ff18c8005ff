// The onnxruntime sessions of one model version, each on a different session worker thread. Runs go
// to a free session, or wait in FIFO order for one. The workers are the pod's shared ones (a
// SessionHost that holds other versions' sessions too) when it takes the model, else the pool's own.
import fs from 'node:fs';
import type { ExecutionProvider, SpinningPolicy } from '../../lib/config';
import { MeshError, ErrorCode } from '../../lib/errors';
import type { HostTensor } from '../../lib/tensor';
import { SessionHost, LoadOverdueError, type HostedRun, type RunBudget, type Seat, type SeatOwner, type SessionInfo } from './session-host';
import { spinningConfig, type SessionInit } from './worker-protocol';
import { ort } from '../../lib/ort';
import type { OrtType } from '../../lib/tensor';

export type { SessionInfo } from './session-host';

/** Options of a session pool. */
export interface SessionPoolOptions {
  modelPath: string;
  providers: ExecutionProvider[];
  /** Sessions, each on its own worker thread; default 1 (on a shared host, at most its workers). */
  workers?: number;
  /** onnxruntime intra-op threads per session; 0 lets onnxruntime choose. */
  intraOpThreads?: number;
  /** How onnxruntime's intra-op threads wait for work (default: on, onnxruntime's own). */
  spinning?: SpinningPolicy;
  /**
   * The pod's shared session workers: the sessions go there, on the host's intra-op threads, when
   * it admits the model (its file's size, SessionHost.admitsModel), else on workers of the pool's
   * own. Default: workers of its own.
   */
  host?: SessionHost;
  /**
   * Workers of its own only: one that exits unasked is started again after `baseMs`, doubling with
   * each exit in a row up to `maxMs` (the pod's INFERMESH_LOAD_RETRY_*; default 1 s and 60 s). A
   * shared host has its own.
   */
  respawn?: { baseMs: number; maxMs: number };
  /** Workers of its own only: the V8 young generation of each, in MB (INFERMESH_SESSION_WORKER_YOUNG_GENERATION_MB; default 2). */
  youngGenerationMb?: number;
  /** Workers of its own, always: the stack of each, in MiB (default Node's), for a model with deep decision trees. */
  stackMb?: number;
  /** Workers of its own only: the longest a run may take (INFERMESH_RUN_TIMEOUT_MS); default none. A shared host has its own. */
  runBudget?: RunBudget;
  /** Workers of its own only: the longest making a session may take (INFERMESH_LOAD_TIMEOUT_MS); default none. A shared host has its own. */
  loadBudget?: RunBudget;
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

/** A run not yet handed to a worker: refused, not failed, when the pool closes. */
type WaitingRun = HostedRun & { refuse: (err: Error) => void };

export class SessionPool implements SeatOwner {
  private seats: Seat[] = [];
  private sessionInfo: SessionInfo | undefined;
  private readonly waiting: WaitingRun[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private respawned = 0;
  private fastestNs: number | undefined;
  /**
   * A session on the service's own thread, for a version whose one-row runs take microseconds:
   * a run when nothing else of the version runs or waits goes there, without the hop to a worker
   * and back (enableInline). Undefined: every run goes to a worker.
   */
  private inline: ort.InferenceSession | undefined;
  /** The most rows a run on the service's own thread may have (timed by enableInline). */
  private inlineMaxRows = 0;
  private inlineRunCount = 0;
  private modelPath = '';
  /** Set once a run outlived the host's budget: every later run is refused with it. */
  private stopped: MeshError | undefined;
  /**
   * Called for each run that outlives the host's budget (the first stops the version serving here)
   * with why, when that run has ended (its set-aside worker exited; never, for a run that never
   * ends), and whether its worker was a shared one.
   */
  onOverdue: ((why: string, ended: Promise<void>, shared: boolean) => void) | undefined;

  private constructor(
    /** onnxruntime intra-op threads of each session (0: onnxruntime chose). */
    readonly intraOpThreads: number,
    /** How those threads wait for work. */
    readonly spinning: SpinningPolicy,
    private readonly host: SessionHost,
    /** Whether its sessions are on the pod's shared workers, beside other versions' sessions. */
    readonly shared: boolean,
  ) {}

  /**
   * This version's onnxruntime threads that may go on spinning once a run has returned: its pool
   * threads when they spin after work (`on`); the thread that called run never does. Infinity when
   * onnxruntime chose the count (the host's cores).
   */
  get threadsSpinningAfterRun(): number {
    if (this.spinning !== 'on') return 0;
    return this.intraOpThreads === 0 ? Infinity : this.intraOpThreads - 1;
  }

  /**
   * Loads the sessions and resolves once every one loaded; rejects with the load error, a
   * LoadOverdueError (saying whether it was on the shared workers) when one outlived its budget.
   */
  static async create(opts: SessionPoolOptions): Promise<SessionPool> {
    const count = Math.max(1, opts.workers ?? 1);
    const init: SessionInit = { modelPath: opts.modelPath, providers: opts.providers, intraOpThreads: opts.intraOpThreads ?? 0, spinning: opts.spinning ?? 'on' };
    // A file that cannot be read is left to onnxruntime to refuse, on workers of its own as before.
    const bytes = await fs.promises.stat(opts.modelPath).then((s) => s.size, () => Number.POSITIVE_INFINITY);
    const shared = opts.host !== undefined && opts.stackMb === undefined && opts.host.admitsModel(bytes);
    const host = shared ? opts.host! : new SessionHost({ workers: count, youngGenerationMb: opts.youngGenerationMb, stackMb: opts.stackMb, respawn: opts.respawn, runBudget: opts.runBudget, loadBudget: opts.loadBudget });
    if (shared && host.sharing!.intraOpThreads > 0) init.intraOpThreads = host.sharing!.intraOpThreads;
    const pool = new SessionPool(init.intraOpThreads, init.spinning, host, shared);
    pool.modelPath = opts.modelPath;
    try {
      const { seats, info } = await host.seat(pool, init, count);
      // A session loaded again (its worker exited) takes the provider the first ones run on.
      for (const seat of seats) seat.init = { ...init, providers: [info.provider] };
      pool.seats = seats;
      pool.sessionInfo = info;
    } catch (err) {
      if (err instanceof LoadOverdueError) err.shared = shared;
      if (!shared) await host.close();
      throw err;
    }
    return pool;
  }

  /** What the sessions report: provider, input and output names. */
  get info(): SessionInfo {
    return this.sessionInfo!;
  }

  /**
   * Makes the version's session on the service's own thread (one intra-op thread, CPU) and times
   * runs there: `runs` runs of `feedsOf(1)`, then of 2, 4, … rows up to `maxRows` while the fastest
   * run of a size stays under `limitUs` (a size's first run, which allocates what the next ones
   * reuse, is not timed). Keeps the session when one row ran under `keepUnderUs` (at least the
   * limit), else releases it. Resolves to the fastest one-row run in µs and the most rows timed
   * under the limit. From then on a run of at most that many rows, asked for while no other run of
   * the version is running or waiting, runs there at once: the hop to a worker and back costs more
   * than such a run (docs/benchmarks.md).
   *
   * Called again, it times the session it kept and keeps the most rows any timing allowed: other
   * work on the machine only makes runs slower, so a timing taken while it was busy (a neighbour
   * loading, other versions' traffic) can only have allowed fewer. A timing counts as a run in
   * flight: runs asked for meanwhile go to the workers, and close() waits for it.
   */
  async enableInline(feedsOf: (rows: number) => Record<string, HostTensor>, outputs: string[], runs: number, limitUs: number, maxRows: number, keepUnderUs = limitUs): Promise<{ oneRowUs: number; maxRows: number }> {
    if (this.closed) return { oneRowUs: Number.POSITIVE_INFINITY, maxRows: 0 };
    this.inFlight++;
    try {
      const kept = this.inline;
      const session = kept ?? await ort.InferenceSession.create(this.modelPath, {
        executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
        extra: { session: spinningConfig('off') }, logSeverityLevel: 4,
      });
      const fastestOf = async (rows: number) => {
        const feeds = feedsOf(rows);
        await session.run(toOrtFeeds(feeds), outputs);
        let fastest = Number.POSITIVE_INFINITY;
        for (let i = 0; i < runs; i++) {
          const started = process.hrtime.bigint();
          await session.run(toOrtFeeds(feeds), outputs);
          fastest = Math.min(fastest, Number(process.hrtime.bigint() - started) / 1000);
        }
        return fastest;
      };
      let oneRowUs: number;
      let fitting = 0;
      try {
        oneRowUs = await fastestOf(1);
        if (oneRowUs < limitUs) {
          fitting = 1;
          for (let rows = 2; fitting < maxRows; rows *= 2) {
            const tried = Math.min(rows, maxRows);
            // A size past a request limit, or one the model refuses, ends the timing, not the session.
            const us = await fastestOf(tried).catch(() => Number.POSITIVE_INFINITY);
            if (us >= limitUs) break;
            fitting = tried;
          }
        }
      } catch (err) {
        if (!kept) await session.release().catch(() => undefined);
        throw err;
      }
      if (kept) {
        this.inlineMaxRows = Math.max(this.inlineMaxRows, fitting);
      } else if (oneRowUs < Math.max(limitUs, keepUnderUs) && !this.closed) {
        this.inline = session;
        this.inlineMaxRows = fitting;
      } else {
        await session.release().catch(() => undefined);
      }
      return { oneRowUs, maxRows: this.inline ? this.inlineMaxRows : 0 };
    } finally {
      this.finished();
    }
  }

  /** Whether a session on the service's own thread is held (running there, or kept for a later timing). */
  get inlineSessionHeld(): boolean {
    return this.inline !== undefined;
  }

  /** Releases a session kept for later timings (enableInline) that no timing let run anything. */
  async dropUnusedInline(): Promise<void> {
    if (!this.inline || this.inlineMaxRows > 0) return;
    const inline = this.inline;
    this.inline = undefined;
    await inline.release().catch(() => undefined);
  }

  /** Whether runs may go to the session on the service's own thread (enableInline). */
  get inlined(): boolean {
    return this.inline !== undefined && this.inlineMaxRows > 0;
  }

  /** The most rows of a run on the service's own thread (0: none runs there). */
  get inlineRows(): number {
    return this.inline ? this.inlineMaxRows : 0;
  }

  /** Runs that went to the session on the service's own thread. */
  get inlineRuns(): number {
    return this.inlineRunCount;
  }

  /**
   * Runs the model on `feeds`, computing `outputs`: on the session on the service's own thread when
   * there is one, the run has no more rows than enableInline timed under its limit and no other run
   * of the version is running or waiting (a batch the batcher formed meanwhile, so that a heavier
   * run on a worker never lets lighter ones overtake it); else on a worker.
   */
  run(feeds: Record<string, HostTensor>, outputs: string[]): Promise<RunResult> {
    if (this.closed) return Promise.reject(new MeshError(ErrorCode.NotReady, 'model is unloading'));
    if (this.stopped) return Promise.reject(this.stopped);
    if (this.inline && this.inlineMaxRows > 0 && this.inFlight === 0 && this.waiting.length === 0 && rowsAtMost(feeds, this.inlineMaxRows)) return this.runInline(this.inline, feeds, outputs);
    return new Promise((resolve, reject) => {
      const now = process.hrtime.bigint();
      const run: WaitingRun = {
        feeds,
        outputs,
        enqueuedAt: now,
        startedAt: now,
        done: (out, runNs) => {
          this.fastestNs = Math.min(this.fastestNs ?? runNs, runNs);
          this.finished();
          resolve({ outputs: out, queueNs: run.startedAt - run.enqueuedAt, computeNs: process.hrtime.bigint() - run.startedAt, sessionNs: runNs });
        },
        fail: (err) => {
          this.finished();
          reject(err);
        },
        refuse: reject,
      };
      this.waiting.push(run);
      this.pump();
    });
  }

  private async runInline(session: ort.InferenceSession, feeds: Record<string, HostTensor>, outputs: string[]): Promise<RunResult> {
    this.inFlight++;
    this.inlineRunCount++;
    try {
      const started = process.hrtime.bigint();
      const result = await session.run(toOrtFeeds(feeds), outputs);
      const runNs = process.hrtime.bigint() - started;
      const out: Record<string, HostTensor> = {};
      for (const [name, t] of Object.entries(result)) out[name] = { type: t.type as OrtType, dims: [...t.dims], data: t.data as HostTensor['data'] };
      this.fastestNs = Math.min(this.fastestNs ?? Number(runNs), Number(runNs));
      return { outputs: out, queueNs: 0n, computeNs: runNs, sessionNs: Number(runNs) };
    } finally {
      this.finished();
    }
  }

  /** Sessions started again after their worker exited unasked, over the pool's life. */
  get respawns(): number {
    return this.respawned;
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs a worker is executing now. */
  get running(): number {
    return this.inFlight;
  }

  /** Sessions ready to run (a session whose worker exited is back once it is loaded again). */
  get size(): number {
    return this.seats.reduce((n, s) => n + (s.state === 'ready' ? 1 : 0), 0);
  }

  /** onnxruntime's fastest run so far (session.run as its worker timed it), in µs; undefined before the first. */
  get fastestRunUs(): number | undefined {
    return this.fastestNs === undefined ? undefined : this.fastestNs / 1000;
  }

  /** SeatOwner: when the oldest waiting run was asked for. */
  oldestWaiting(): bigint | undefined {
    return this.waiting[0]?.enqueuedAt;
  }

  /** SeatOwner: the oldest waiting run, now running. */
  takeWaiting(): HostedRun | undefined {
    const run = this.waiting.shift();
    if (run) this.inFlight++;
    return run;
  }

  /**
   * SeatOwner: a run outlived the host's budget (or a load of a session again, its worker started
   * anew). The same request, or one like it, would hold the next worker too: the version takes no
   * run on this pod from now on, those waiting are refused.
   */
  runOverdue(err: MeshError, ended: Promise<void>): void {
    if (!this.stopped) {
      this.stopped = new MeshError(ErrorCode.NotReady, `stopped on this pod: ${err.message}`);
      for (const run of this.waiting.splice(0)) run.refuse(this.stopped);
    }
    // A second run past its budget (one already running when the first was) holds a worker too.
    this.onOverdue?.(err.message, ended, this.shared);
  }

  /** Why the version takes no run here (a run outlived the budget); undefined while it runs. */
  get stoppedBecause(): string | undefined {
    return this.stopped?.message;
  }

  /** SeatOwner: a session was lost with its worker, or loaded again. */
  seatChanged(restored: boolean): void {
    if (restored) this.respawned++;
    this.pump();
  }

  private pump(): void {
    for (const seat of this.seats) {
      if (this.waiting.length === 0) return;
      seat.pump();
    }
  }

  private finished(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Stops taking runs, lets the running ones finish, then releases its sessions (and its own workers). */
  async close(): Promise<void> {
    this.closed = true;
    for (const run of this.waiting.splice(0)) run.refuse(new MeshError(ErrorCode.Unavailable, 'model unloaded'));
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const seats = this.seats;
    this.seats = [];
    const inline = this.inline;
    this.inline = undefined;
    await inline?.release().catch(() => undefined);
    await this.host.unseat(seats);
    if (!this.shared) await this.host.close();
  }
}

function toOrtFeeds(feeds: Record<string, HostTensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
  return out;
}

/** Whether every feed has at most `rows` rows (its first dimension; a scalar has one). */
function rowsAtMost(feeds: Record<string, HostTensor>, rows: number): boolean {
  for (const t of Object.values(feeds)) if ((t.dims[0] ?? 1) > rows) return false;
  return true;
}
