// Session worker threads and the onnxruntime sessions placed on them. A worker thread costs a V8
// isolate (about 8 MB resident with its small young generation) whatever it holds; a session of a
// small model costs about a megabyte more (MNIST, 0.4 MB: 0.8 MB, and 0.5 MB more once it has run a
// batch of 64). So the versions a pod holds share a few workers, sized by the pod
// (INFERMESH_SHARED_SESSION_WORKERS), each worker holding one session per version placed on it,
// rather than a worker of their own each: a pod on 2 CPUs holding 41 MNIST versions went from
// 545-565 MB to 213-229 MB resident. A version whose model is large, or whose runs are long, still
// gets workers of its own (a SessionHost made for it alone, by SessionPool): loading it, or running
// it, would hold up every other version on a shared worker, as a worker runs one request at a time.
// onnxruntime-node 1.30 cannot share intra-op thread pools between sessions (its environment is not
// made with global thread pools), so each session keeps its own: one thread, no pool, where it shares.
//
// A worker that exits unasked fails only the run it held; it is started again after a back-off, and
// every session it held is loaded again there (the versions on it wait for it meanwhile, those on
// other workers serve on).
//
// A run past its budget (INFERMESH_RUN_TIMEOUT_MS, INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS) cannot be
// stopped: onnxruntime-node has no way to end a run from another thread, and terminate() on a worker
// inside a run aborts the whole process once the run returns (the binding throws into a thread
// already torn down). So the run fails DEADLINE_EXCEEDED, its version is told (it stops serving on
// this pod: the same request would hold the next worker too, so it is loaded again only once that
// run has ended), and its worker is set aside to finish alone, asked to close once it answers; a new
// worker takes its sessions at once, so the versions that shared it wait for a load, not for the run.
//
// A load is bounded the same way (INFERMESH_LOAD_TIMEOUT_MS, INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS):
// onnxruntime's session creation grows faster than a graph's node count and cannot be stopped
// either, and while it goes on its worker runs nothing and releases nothing. Past its budget the
// load fails DEADLINE_EXCEEDED (its version is told when that load will have ended, so that it is
// not loaded again before), its worker is set aside to finish it alone, and a new one takes the
// other sessions at once.
import { Worker } from 'node:worker_threads';
import { MeshError, ErrorCode } from '../../lib/errors';
import type { Config, ExecutionProvider } from '../../lib/config';
import type { HostTensor } from '../../lib/tensor';
import { workerScript } from '../../lib/worker-script';
import type { CpuBudget } from './cgroup-limits';
import type { SessionInit, WorkerReply, WorkerRequest } from './worker-protocol';

/** What a loaded session reports about itself. */
export interface SessionInfo {
  provider: ExecutionProvider;
  /** Why earlier providers were skipped, when the one used is not the first asked for. */
  fallback?: string;
  inputNames: string[];
  outputNames: string[];
  /** How long onnxruntime took to make the session, as its worker timed it, in ms. */
  loadMs: number;
}

/** Which versions go on a shared host, and how their sessions run; the others get workers of their own. */
export interface SharingPolicy {
  /** Largest model file, in bytes, whose sessions go on the shared workers (0: none do). */
  maxModelBytes: number;
  /** A version whose runs take this long or longer, in µs, leaves them (0: run time never moves one). */
  maxRunUs: number;
  /**
   * onnxruntime intra-op threads of each session placed there (0: as its pool asks). One where the
   * pod fits threads to versions: a version quick enough to share is one the thread fitting gives
   * one thread, and the workers, not each session's threads, run versions side by side.
   */
  intraOpThreads: number;
}

/** Options of a session host. */
export interface SessionHostOptions {
  /** Worker threads, each started when the first session is placed on it. */
  workers: number;
  /** Which versions it takes, when it is the pod's shared host; without, it takes whatever is placed on it. */
  sharing?: SharingPolicy;
  /** V8 young generation of each worker, in MB (INFERMESH_SESSION_WORKER_YOUNG_GENERATION_MB; default 2). */
  youngGenerationMb?: number;
  /** Stack of each worker thread, in MiB (default Node's, 4): deep decision trees need more (lib/onnx treeLevelsFit). */
  stackMb?: number;
  /**
   * A worker that exits unasked is started again after `baseMs`, doubling with each exit in a row up
   * to `maxMs` (the pod's INFERMESH_LOAD_RETRY_*; default 1 s and 60 s); a session that fails to load
   * again there is tried again on the same back-off.
   */
  respawn?: { baseMs: number; maxMs: number };
  /** The longest a run may take, and the setting that says so (for its error); 0 or none: no limit. */
  runBudget?: RunBudget;
  /** The longest making a session may take, and the setting that says so; 0 or none: no limit. */
  loadBudget?: RunBudget;
}

/** The longest a run, or the making of a session, may take on a host's workers. */
export interface RunBudget {
  ms: number;
  /** The setting it comes from, named in the error of a run that outlives it. */
  setting: string;
}

/** A run handed to a session: what it computes, and whom to answer. */
export interface HostedRun {
  feeds: Record<string, HostTensor>;
  outputs: string[];
  enqueuedAt: bigint;
  /** Set as the run goes to its worker. */
  startedAt: bigint;
  done(outputs: Record<string, HostTensor>, runNs: number): void;
  fail(err: Error): void;
}

/** The version whose sessions sit on a host's workers (a SessionPool): its queue, read by the workers. */
export interface SeatOwner {
  /** When its oldest waiting run was asked for; undefined when none waits. */
  oldestWaiting(): bigint | undefined;
  /** Its oldest waiting run, now running. */
  takeWaiting(): HostedRun | undefined;
  /** A session of it was lost with its worker (`restored` false), or loaded again after. */
  seatChanged(restored: boolean): void;
  /**
   * A run of it outlived the host's run budget, or a load of one of its sessions again (its worker
   * started anew) the load budget (`err` is what it failed with); `ended` resolves when that run or
   * load has returned and its set-aside worker exited (never, for one that never ends).
   */
  runOverdue(err: MeshError, ended: Promise<void>): void;
}

/**
 * A first load past the host's load budget: its worker goes on making the session alone, and
 * `ended` resolves once it has and exited (never, for a load that never ends). `shared` says
 * whether it was on the pod's shared workers (set by SessionPool, which knows).
 */
export class LoadOverdueError extends MeshError {
  shared = false;
  constructor(message: string, readonly ended: Promise<void>) {
    super(ErrorCode.DeadlineExceeded, message);
  }
}

/**
 * The pod's shared workers by default: one fewer than its CPUs (the cgroup quota where one is set),
 * at least one. The pod's event loop (decoding, encoding, batching) keeps a CPU busy of its own:
 * on 2 CPUs, 40 MNIST versions ran as many batch-1 runs a second on one shared worker as on two.
 */
export function sharedSessionWorkers(configured: number, budget: CpuBudget): number {
  return configured || Math.max(1, budget.cpus - 1);
}

/** The settings the pod's shared host follows. */
export type SharedHostSettings = Pick<Config, 'sharedSessionWorkers' | 'sharedSessionMaxModelBytes' | 'sharedSessionMaxRunUs' | 'intraOpThreads'
  | 'intraOpSerialRunUs' | 'warmup' | 'sessionWorkerYoungGenerationMb' | 'loadRetryBaseMs' | 'loadRetryMaxMs' | 'sharedSessionRunTimeoutMs' | 'sharedSessionLoadTimeoutMs'>;

/**
 * The pod's shared host, from its settings, its CPUs and the intra-op threads it gives a session
 * (`podThreads`). A shared session runs on one thread where the pod fits threads to versions and
 * times the shared ones (the threads left to it, INFERMESH_INTRA_OP_SERIAL_RUN_US and
 * INFERMESH_SHARED_SESSION_MAX_RUN_US above 0, the warm-up on): one that is not quick on it moves to
 * workers of its own and is fitted there. Elsewhere on the threads any session gets (and fitted
 * where the pod fits threads).
 */
export function sharedHostOptions(c: SharedHostSettings, cpus: CpuBudget, podThreads: number): SessionHostOptions {
  const fitsThreads = c.intraOpThreads === 0 && c.intraOpSerialRunUs > 0 && c.sharedSessionMaxRunUs > 0 && c.warmup;
  return {
    workers: sharedSessionWorkers(c.sharedSessionWorkers, cpus),
    sharing: { maxModelBytes: c.sharedSessionMaxModelBytes, maxRunUs: c.sharedSessionMaxRunUs, intraOpThreads: fitsThreads ? 1 : podThreads },
    youngGenerationMb: c.sessionWorkerYoungGenerationMb,
    // A shared worker that dies is started again with the back-off of a failed load.
    respawn: { baseMs: c.loadRetryBaseMs, maxMs: c.loadRetryMaxMs },
    runBudget: { ms: c.sharedSessionRunTimeoutMs, setting: 'INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS' },
    loadBudget: { ms: c.sharedSessionLoadTimeoutMs, setting: 'INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS' },
  };
}

/** Workers set aside with a run or a load past its budget, until that run or load returns and they exit. */
const setAside = new Set<Worker>();

/** Session worker threads set aside with a run or a load past its budget that has not returned yet (each holds a CPU busy). */
export function setAsideWorkers(): number {
  return setAside.size;
}

/** The threads whose worker is running, set aside or not (a worker's thread is in `live` from its start to its exit or its setting aside). */
const live = new Set<SessionThread>();

/**
 * Session worker threads inside onnxruntime now, which no one can stop: set aside, or making a
 * session or running one. process.exit waits for each of them (and aborts the process when its
 * call returns into a thread torn down), so a process holding any exits by SIGKILL instead.
 */
export function unstoppableWorkers(): number {
  let busy = setAside.size;
  for (const t of live) if (t.busy) busy++;
  return busy;
}

let nextSessionId = 1;
let nextRunId = 1;

/** One session of a version, on one worker thread. */
export class Seat {
  /** loading: never loaded yet; lost: its worker exited, and it waits to be loaded again there. */
  state: 'loading' | 'ready' | 'lost' | 'gone' = 'loading';
  /** Loads that failed in a row after its worker came back. */
  failures = 0;
  readonly id = nextSessionId++;
  constructor(readonly owner: SeatOwner, readonly thread: SessionThread, public init: SessionInit) {}

  /** Offers the worker the oldest run waiting among the versions on it, when it is free. */
  pump(): void {
    this.thread.pump();
  }
}

interface ThreadSettings {
  script: string;
  youngGenerationMb: number;
  stackMb: number | undefined;
  respawn: { baseMs: number; maxMs: number };
  runBudget: RunBudget | undefined;
  loadBudget: RunBudget | undefined;
}

/** A worker thread holding sessions; started again in place when it exits unasked. */
class SessionThread {
  worker: Worker | undefined;
  readonly seats = new Set<Seat>();
  private running: { id: number; run: HostedRun; owner: SeatOwner; budget: NodeJS.Timeout | undefined } | undefined;
  /** First loads waiting for their answer, by session id. */
  private readonly firstLoads = new Map<number, { resolve: (info: SessionInfo) => void; reject: (err: Error) => void }>();
  /**
   * Sessions being loaded on the worker (first loads or again), by id, in the order asked, which is
   * the order the worker makes them in: no run is handed over meanwhile.
   */
  private readonly loading = new Set<number>();
  /** The load budget's timer of each session being loaded, by id (started once its worker is online). */
  private readonly loadTimers = new Map<number, NodeJS.Timeout>();
  /** Its worker has started running its script: a load's budget counts from then, not from the thread's start. */
  private online = false;
  /** Unloads waiting for the worker's answer, by session id. */
  private readonly unloads = new Map<number, (() => void)[]>();
  /** A lost session's next load, after it failed to load again (a worker started anew loads them all). */
  private readonly retries = new Map<Seat, NodeJS.Timeout>();
  /** Exits unasked in a row (no run answered since). */
  private exitsInARow = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private exited: (() => void) | undefined;

  constructor(private readonly settings: ThreadSettings) {}

  /** Waiting for its back-off to be started again. */
  get restarting(): boolean {
    return this.timer !== undefined;
  }

  /** Its worker is inside onnxruntime: making a session, or running one. */
  get busy(): boolean {
    return this.worker !== undefined && (this.running !== undefined || this.loading.size > 0);
  }

  /** Loads `seat`'s session; resolves with what it reports, rejects with why it failed to load. */
  load(seat: Seat): Promise<SessionInfo> {
    if (this.closed) return Promise.reject(closingError());
    this.seats.add(seat);
    return new Promise((resolve, reject) => {
      this.firstLoads.set(seat.id, { resolve, reject });
      if (this.worker) this.postLoad(seat);
      else if (!this.timer) this.spawn();
      // else: loaded when the worker is started again, after its back-off.
    });
  }

  /** Releases `seat`'s session; a run of it must not be in flight. Resolves once the worker no longer holds it. */
  async unload(seat: Seat): Promise<void> {
    if (!this.seats.delete(seat)) {
      // Released already (or lost with a worker that closed): at most, its release is still under way.
      const waiting = this.unloads.get(seat.id);
      if (waiting) await new Promise<void>((resolve) => waiting.push(resolve));
      return;
    }
    seat.state = 'gone';
    clearTimeout(this.retries.get(seat));
    this.retries.delete(seat);
    const worker = this.worker;
    if (worker) {
      // A session still loading (first, or again on a worker started anew) is released once loaded:
      // the worker handles a session's messages in order, each after the one before has finished.
      // One it does not hold (lost, its reload not asked for yet) is answered all the same.
      await new Promise<void>((resolve) => {
        this.unloads.set(seat.id, [resolve]);
        worker.postMessage({ type: 'unload', session: seat.id } satisfies WorkerRequest);
      });
    } else this.refuseUnloaded(seat.id); // a first load waiting for the worker to be started again
    if (this.seats.size === 0 && this.unloads.size === 0) {
      // Nothing to keep: a lost session's reload is no longer wanted, and an idle worker keeps no process alive.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.worker?.unref();
    }
  }

  /** Hands the worker the oldest run waiting among the versions on it, when it is free. */
  pump(): void {
    const worker = this.worker;
    if (!worker || this.running || this.loading.size > 0 || this.closed) return;
    let next: SeatOwner | undefined;
    let nextSeat: Seat | undefined;
    let oldest: bigint | undefined;
    for (const seat of this.seats) {
      if (seat.state !== 'ready') continue;
      const at = seat.owner.oldestWaiting();
      if (at !== undefined && (oldest === undefined || at < oldest)) {
        oldest = at;
        next = seat.owner;
        nextSeat = seat;
      }
    }
    const run = next?.takeWaiting();
    if (!run || !nextSeat) return;
    const id = nextRunId++;
    const limit = this.settings.runBudget?.ms ?? 0;
    // Judged after the messages already queued are read (an immediate follows the poll phase): after
    // a stall of this thread, a run that ended in time has its answer waiting, not late.
    this.running = { id, run, owner: next!, budget: limit > 0 ? setTimeout(() => setImmediate(() => this.overdue(id)), limit).unref() : undefined };
    run.startedAt = process.hrtime.bigint();
    const transfer: ArrayBuffer[] = [];
    for (const t of Object.values(run.feeds)) {
      if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
    }
    worker.postMessage({ type: 'run', id, session: nextSeat.id, feeds: run.feeds, outputs: run.outputs } satisfies WorkerRequest, transfer);
  }

  /**
   * Releases every session and ends the thread (the runs on it must have finished). Sessions still
   * to load, there or after its back-off, never will: their first loads are refused.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopRetries();
    const worker = this.worker;
    if (!worker) {
      this.abandon();
      return;
    }
    if (this.loading.size > 0) {
      // It answers the close only once the loads before it have returned, and terminate() inside
      // one aborts the process when it returns: it finishes them alone, and closes then.
      this.clearLoadTimers();
      this.setWorkerAside(worker);
      this.loading.clear();
      this.abandon();
      return;
    }
    worker.ref(); // an idle one was let go of: whoever awaits this close waits for its exit
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => void worker.terminate(), 5_000);
      this.exited = () => {
        clearTimeout(force);
        resolve();
      };
      worker.postMessage({ type: 'close' } satisfies WorkerRequest);
    });
  }

  /** Closed, its worker gone: no session is left on it, and a first load still waiting never ends. */
  private abandon(): void {
    for (const seat of this.seats) seat.state = 'gone';
    this.seats.clear();
    for (const first of this.firstLoads.values()) first.reject(closingError());
    this.firstLoads.clear();
  }

  private spawn(): void {
    this.timer = undefined;
    // Not the process's V8 flags (its --max-semi-space-size is for the main thread's traffic): a
    // worker's young generation of its own, small, as it allocates little on the heap.
    const worker = new Worker(this.settings.script, {
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: this.settings.youngGenerationMb, ...(this.settings.stackMb !== undefined && { stackSizeMb: this.settings.stackMb }) },
    });
    this.worker = worker;
    this.online = false;
    live.add(this);
    worker.once('online', () => {
      if (this.worker !== worker) return;
      this.online = true;
      this.timeOldestLoad();
    });
    worker.on('message', (msg: WorkerReply) => this.onMessage(msg));
    // Node emits 'error' (when there was one) before 'exit'.
    let crash: Error | undefined;
    worker.on('error', (err) => {
      crash = err;
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (!this.worker) live.delete(this);
      this.onExit(crash ? `session worker crashed: ${crash.message}` : `session worker exited (code ${code})`);
    });
    for (const seat of this.seats) if (seat.state === 'loading' || seat.state === 'lost') this.postLoad(seat);
  }

  private postLoad(seat: Seat): void {
    this.loading.add(seat.id);
    this.timeOldestLoad();
    this.worker!.postMessage({ type: 'load', session: seat.id, init: seat.init } satisfies WorkerRequest);
    this.worker!.ref();
  }

  private onMessage(msg: WorkerReply): void {
    switch (msg.type) {
      case 'result':
      case 'error': {
        const running = this.running;
        if (!running || running.id !== msg.id) return;
        this.running = undefined;
        clearTimeout(running.budget);
        if (msg.type === 'result') {
          this.exitsInARow = 0;
          running.run.done(msg.outputs, msg.runNs);
        } else running.run.fail(new MeshError(ErrorCode.ExecutionFailed, `onnxruntime failed: ${msg.message}`));
        break;
      }
      case 'loaded':
      case 'load-failed':
        this.loading.delete(msg.session);
        clearTimeout(this.loadTimers.get(msg.session));
        this.loadTimers.delete(msg.session);
        // The worker goes on to the next load it was asked for: its budget starts now.
        this.timeOldestLoad();
        // Closing: the worker releases what it loaded, and its exit refuses the first loads.
        if (!this.closed) this.loaded(msg);
        break;
      case 'unloaded':
        for (const resolve of this.unloads.get(msg.session) ?? []) resolve();
        this.unloads.delete(msg.session);
        return;
      case 'closed':
        return;
    }
    this.pump();
  }

  private loaded(msg: Extract<WorkerReply, { type: 'loaded' | 'load-failed' }>): void {
    const seat = [...this.seats].find((s) => s.id === msg.session);
    const first = this.firstLoads.get(msg.session);
    this.firstLoads.delete(msg.session);
    if (!seat) {
      // Unloaded meanwhile: the worker releases it next, as it answers the unload that followed this load.
      first?.reject(unloadedError());
      return;
    }
    if (msg.type === 'loaded') {
      const info: SessionInfo = { provider: msg.provider, fallback: msg.fallback, inputNames: msg.inputNames, outputNames: msg.outputNames, loadMs: msg.loadNs / 1e6 };
      const restored = seat.state === 'lost';
      seat.state = 'ready';
      seat.failures = 0;
      if (first) first.resolve(info);
      if (restored) seat.owner.seatChanged(true);
      return;
    }
    if (first) {
      this.seats.delete(seat);
      seat.state = 'gone';
      if (this.seats.size === 0) this.worker?.unref();
      first.reject(new MeshError(ErrorCode.FailedPrecondition, `model failed to load: ${msg.message}`));
      return;
    }
    // Loaded once, failing again on a worker started anew (its file is the same): tried again after a back-off.
    seat.failures++;
    this.retryLater(seat);
  }

  /** Refuses the first load of session `id`, if one waits: it was unloaded before it loaded. */
  private refuseUnloaded(id: number): void {
    this.firstLoads.get(id)?.reject(unloadedError());
    this.firstLoads.delete(id);
  }

  private retryLater(seat: Seat): void {
    const { baseMs, maxMs } = this.settings.respawn;
    const timer = setTimeout(() => {
      this.retries.delete(seat);
      // One load of a session at a time: two would leave the worker two sessions under one id.
      if (this.closed || seat.state !== 'lost' || !this.worker || !this.seats.has(seat) || this.loading.has(seat.id)) return;
      this.postLoad(seat);
    }, Math.min(maxMs, baseMs * 2 ** Math.min(seat.failures - 1, 30)));
    timer.unref();
    this.retries.set(seat, timer);
  }

  private stopRetries(): void {
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  /** The run `id` outlived the budget: fails it, tells its version, sets the worker aside and starts another. */
  private overdue(id: number): void {
    const running = this.running;
    const worker = this.worker;
    if (!running || running.id !== id || !worker) return;
    this.running = undefined;
    const ended = this.setWorkerAside(worker);
    const budget = this.settings.runBudget!;
    const err = new MeshError(ErrorCode.DeadlineExceeded, `the run took longer than ${budget.setting} (${budget.ms} ms); onnxruntime cannot stop it, so its session worker was set aside to finish it alone, and this model version stops serving on this pod`);
    running.run.fail(err);
    running.owner.runOverdue(err, ended);
    // What the worker was asked besides is asked of the next one: its loads are posted there again
    // (the sessions it held and those it was loading), its releases hold nothing there.
    if (!this.afterSetAside()) return;
    for (const seat of [...this.seats]) {
      if (seat.owner === running.owner && !this.firstLoads.has(seat.id)) {
        // The stopped version's session is not made again: nothing will run on it.
        this.seats.delete(seat);
        seat.state = 'gone';
      } else if (seat.state === 'ready') {
        seat.state = 'lost';
        seat.owner.seatChanged(false);
      }
    }
    if (this.seats.size > 0) this.spawn();
  }

  /**
   * What a worker set aside (a run or a load past its budget) was asked besides: its loads are
   * asked of the next one, its releases hold nothing. False when the host is closed (nothing more
   * to start).
   */
  private afterSetAside(): boolean {
    this.loading.clear();
    this.clearLoadTimers();
    this.stopRetries();
    for (const waiting of this.unloads.values()) for (const resolve of waiting) resolve();
    this.unloads.clear();
    if (this.closed) {
      this.abandon();
      this.exited?.();
      return false;
    }
    return true;
  }

  /**
   * The load of session `timed` outlived the budget, so the oldest load under way on the worker did: fails it (a first load rejects with
   * LoadOverdueError; a load again tells its version, which stops on this pod), sets the worker
   * aside to finish it alone, and starts another for the sessions besides.
   */
  private loadOverdue(timed: number): void {
    this.loadTimers.delete(timed);
    const worker = this.worker;
    if (!worker || !this.loading.has(timed)) return;
    // The worker makes its sessions one after the other, in the order asked: the oldest load still
    // under way is the one that holds it (and has taken longer than `timed`), the others wait behind it.
    const id = this.loading.values().next().value!;
    const ended = this.setWorkerAside(worker);
    const budget = this.settings.loadBudget!;
    const why = `making its session took longer than ${budget.setting} (${budget.ms} ms); onnxruntime cannot stop it, so its session worker was set aside to finish it alone`;
    // A run handed over before the load was asked for is answered by no one now: another pod may.
    const running = this.running;
    this.running = undefined;
    clearTimeout(running?.budget);
    running?.run.fail(new MeshError(ErrorCode.Unavailable, 'its session worker was set aside: another version\'s load on it outlived its budget'));
    if (!this.afterSetAside()) return;
    const seat = [...this.seats].find((s) => s.id === id);
    const first = this.firstLoads.get(id);
    this.firstLoads.delete(id);
    if (seat) {
      // Made again on the next worker, it would hold that one as long.
      this.seats.delete(seat);
      seat.state = 'gone';
      if (!first) seat.owner.runOverdue(new MeshError(ErrorCode.DeadlineExceeded, `loading it again ${why}`), ended);
    }
    first?.reject(new LoadOverdueError(why, ended));
    // The others go to the next worker: its first loads and loads again posted there, the ready ones lost meanwhile.
    for (const other of this.seats) {
      if (other.state === 'ready') {
        other.state = 'lost';
        other.owner.seatChanged(false);
      }
    }
    if (this.seats.size > 0) this.spawn();
    else this.worker = undefined;
  }

  /** Sets the worker aside (setWorkerAside): nothing more goes to it; resolves once it has exited. */
  private setWorkerAside(worker: Worker): Promise<void> {
    if (this.worker === worker) this.worker = undefined;
    live.delete(this);
    return setWorkerAside(worker);
  }

  /**
   * Times the load the worker is making now: the oldest asked for (it makes its sessions one after
   * the other). Each load's budget starts when the one before it has ended: timed all at once, the
   * loads queued behind a slow one (every session of a worker set aside, asked again of the next)
   * passed their budgets while they waited, and each was blamed in turn, its version stopped and
   * its worker set aside, until the pod drained itself.
   */
  private timeOldestLoad(): void {
    if (!this.online) return;
    const oldest = this.loading.values().next();
    if (!oldest.done && !this.loadTimers.has(oldest.value)) this.startLoadTimer(oldest.value);
  }

  private startLoadTimer(id: number): void {
    const limit = this.settings.loadBudget?.ms ?? 0;
    clearTimeout(this.loadTimers.get(id));
    // Judged, as a run is, after the messages already queued are read.
    if (limit > 0) this.loadTimers.set(id, setTimeout(() => setImmediate(() => this.loadOverdue(id)), limit).unref());
  }

  private clearLoadTimers(): void {
    for (const timer of this.loadTimers.values()) clearTimeout(timer);
    this.loadTimers.clear();
  }

  private onExit(why: string): void {
    this.loading.clear();
    this.clearLoadTimers();
    // A worker started anew loads every lost session: a retry of the old one's would load one twice.
    this.stopRetries();
    for (const waiting of this.unloads.values()) for (const resolve of waiting) resolve();
    this.unloads.clear();
    // Only the run it held fails (there is none when it was asked to close, unless it was forced).
    const running = this.running;
    this.running = undefined;
    clearTimeout(running?.budget);
    running?.run.fail(new MeshError(ErrorCode.ExecutionFailed, why));
    if (this.closed) {
      this.abandon();
      this.exited?.();
      return;
    }
    // The versions on it wait for it to be started again.
    for (const seat of [...this.seats]) {
      const first = this.firstLoads.get(seat.id);
      if (first) {
        this.firstLoads.delete(seat.id);
        this.seats.delete(seat);
        seat.state = 'gone';
        first.reject(new MeshError(ErrorCode.FailedPrecondition, `session worker failed while loading: ${why}`));
      } else if (seat.state !== 'lost') {
        seat.state = 'lost';
        seat.owner.seatChanged(false);
      }
    }
    // Those left were unloaded during their first load, before it answered.
    for (const id of [...this.firstLoads.keys()]) this.refuseUnloaded(id);
    if (this.seats.size === 0) return; // started again when a session is placed on it
    this.exitsInARow++;
    const { baseMs, maxMs } = this.settings.respawn;
    this.timer = setTimeout(() => {
      if (!this.closed && this.seats.size > 0) this.spawn();
      else this.timer = undefined;
    }, Math.min(maxMs, baseMs * 2 ** Math.min(this.exitsInARow - 1, 30)));
  }
}

/**
 * Lets a worker whose run or load outlived its budget finish alone: nothing more goes to it, it is
 * asked to close once it answers (its run or load returned; a close releases what it loaded), and
 * it is no longer counted once it exits, when the promise returned resolves.
 */
function setWorkerAside(worker: Worker): Promise<void> {
  worker.removeAllListeners('message');
  worker.removeAllListeners('exit');
  worker.removeAllListeners('error');
  setAside.add(worker);
  worker.on('error', () => undefined);
  worker.once('message', () => worker.postMessage({ type: 'close' } satisfies WorkerRequest));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => {
    setAside.delete(worker);
    resolve();
  }));
  // Nothing waits for it: the process may end while the run goes on (an abort, as no thread can stop it).
  worker.unref();
  return exited;
}

/** Why a session is not loaded on a host that is closing. */
function closingError(): MeshError {
  return new MeshError(ErrorCode.Unavailable, 'session workers are closing');
}

/** Why a session released before it had loaded was not loaded. */
function unloadedError(): MeshError {
  return new MeshError(ErrorCode.Unavailable, 'model unloaded');
}

/** Worker threads holding onnxruntime sessions: the pod's shared ones, or a version's own. */
export class SessionHost {
  private readonly threads: SessionThread[];
  private closing: Promise<void> | undefined;
  readonly sharing: SharingPolicy | undefined;

  constructor(opts: SessionHostOptions) {
    const settings: ThreadSettings = {
      script: workerScript(__dirname, 'session-worker'),
      youngGenerationMb: opts.youngGenerationMb ?? 2,
      stackMb: opts.stackMb,
      respawn: opts.respawn ?? { baseMs: 1_000, maxMs: 60_000 },
      runBudget: opts.runBudget,
      loadBudget: opts.loadBudget,
    };
    this.threads = Array.from({ length: Math.max(1, opts.workers) }, () => new SessionThread(settings));
    this.sharing = opts.sharing;
  }

  /** Whether a model file of `bytes` shares this host's workers (only a shared host takes any). */
  admitsModel(bytes: number): boolean {
    return this.sharing !== undefined && this.sharing.maxModelBytes > 0 && bytes <= this.sharing.maxModelBytes;
  }

  /** Whether a version whose runs take `runUs` (the fastest of its warm-up) stays on this host's workers. */
  admitsRun(runUs: number): boolean {
    return this.sharing !== undefined && (this.sharing.maxRunUs === 0 || runUs < this.sharing.maxRunUs);
  }

  /** Worker threads it may start. */
  get size(): number {
    return this.threads.length;
  }

  /** Worker threads running now. */
  get workers(): number {
    return this.threads.filter((t) => t.worker).length;
  }

  /** Sessions placed on its workers. */
  get sessions(): number {
    return this.threads.reduce((n, t) => n + t.seats.size, 0);
  }

  /**
   * Loads `count` sessions of `init` for `owner`, each on a different worker (at most one per
   * worker): those holding the fewest sessions, a running one before one to start. Resolves once
   * every one loaded, with what the first reports; when one fails, releases the others and rejects.
   */
  async seat(owner: SeatOwner, init: SessionInit, count: number): Promise<{ seats: Seat[]; info: SessionInfo }> {
    if (this.closing) throw closingError();
    const order = this.threads.map((t, i) => ({ t, i })).sort((a, b) =>
      a.t.seats.size - b.t.seats.size || rank(a.t) - rank(b.t) || a.i - b.i);
    const seats = order.slice(0, Math.max(1, count)).map(({ t }) => new Seat(owner, t, init));
    const loaded = await Promise.allSettled(seats.map((s) => s.thread.load(s)));
    const failed = loaded.find((l): l is PromiseRejectedResult => l.status === 'rejected');
    if (failed) {
      await this.unseat(seats.filter((s) => s.state !== 'gone'));
      throw failed.reason;
    }
    return { seats, info: (loaded[0] as PromiseFulfilledResult<SessionInfo>).value };
  }

  /** Releases these sessions (no run of theirs in flight). */
  async unseat(seats: readonly Seat[]): Promise<void> {
    await Promise.all(seats.map((s) => s.thread.unload(s)));
  }

  /** Ends every worker, releasing what they still hold; runs must have finished. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.threads.map((t) => t.close())).then(() => undefined);
    return this.closing;
  }
}

/** Running workers first, then ones to start, then ones waiting to be started again. */
function rank(t: SessionThread): number {
  if (t.worker) return 0;
  return t.restarting ? 2 : 1;
}
