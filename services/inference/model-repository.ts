// The model versions this pod serves: loads what the registry says to serve, unloads what it no
// longer does (after the new versions are ready, and after in-flight requests finish), and answers
// which loaded version serves a request. A version whose load fails is tried again after a back-off
// that doubles with each failure in a row, and its reason is reported until it loads.
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ExecutionProvider, SpinningPolicy } from '../../lib/config';
import { errors, MeshError, ErrorCode, messageOf } from '../../lib/errors';
import type { PodModel } from '../../lib/events';
import { unary } from '../../lib/grpc/client';
import type { ModelOut, RegistryClient, VersionOut } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import type { WarmupSample__Output as WarmupSample } from '../../lib/grpc/generated/infermesh/registry/v1/WarmupSample';
import { isDatatype } from '../../lib/tensor';
import { readOnnxSignature, OnnxFormatError, TREE_LEVELS_PER_STACK_MIB, treeLevelsFit, type TensorSignature } from '../../lib/onnx';
import type { ArtifactCache } from './artifact-cache';
import { LoadedVersion, canBatch, ownWorkersOnly, type RequestLimits } from './loaded-version';
import type { BatchingOptions } from './dynamic-batcher';
import type { Signature } from './request-codec';
import { SessionPool } from './session-pool';
import { LoadOverdueError, type SessionHost } from './session-host';

/**
 * A one-node ONNX model (y = Identity(x), FP32 [1]) the pod loads once at start (prime()), so what
 * starting onnxruntime costs the process is not counted as the first version's memory.
 */
const PRIMING_MODEL = Buffer.from('CAgSD2luZmVybWVzaC10b29sczpLCh4KAXgSAXkaCmlkZW50aXR5XzAiCElkZW50aXR5OgASBXByaW1lUgBaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAR', 'base64');

/** Runs of the warm-up sample timed to choose a version's intra-op threads (the fastest counts). */
const FIT_RUNS = 8;

/** How far over INFERMESH_SHARED_SESSION_MAX_RUN_US a warm-up run moves a shared version without a timing. */
const FAR_OVER = 10;

/**
 * When a version that may be tiny, and did not get its whole batch size on the pod's thread at
 * load, is timed there again: ms after the timing before (later while it serves a request).
 */
const INLINE_RETIMES_MS = [1_000, 5_000, 30_000];

/** Node's stack for a worker thread, in MiB; the pod's own thread has Linux's default 8. */
const NODE_WORKER_STACK_MB = 4;

/**
 * The stack (MiB) a version's session threads need for decision trees `treeDepth` levels deep
 * (lib/onnx treeDepth): undefined when a worker's default holds them, as it holds any other
 * model; FAILED_PRECONDITION, a failed load, past `maxMb` (INFERMESH_SESSION_WORKER_MAX_STACK_MB).
 */
export function treeStackMb(treeDepth: number, maxMb: number): number | undefined {
  if (treeLevelsFit(treeDepth, NODE_WORKER_STACK_MB)) return undefined;
  // Room besides for the thread's own frames (V8's, onnxruntime's below the trees).
  const mb = Math.ceil(treeDepth / TREE_LEVELS_PER_STACK_MIB) + NODE_WORKER_STACK_MB;
  if (mb > maxMb) {
    throw new MeshError(ErrorCode.FailedPrecondition, `its decision trees are up to ${treeDepth} levels deep: onnxruntime builds them recursively, which needs ${mb} MiB of a thread's stack, more than INFERMESH_SESSION_WORKER_MAX_STACK_MB (${maxMb} MiB) gives`);
  }
  return mb;
}

/** What the repository is built from. */
export interface RepositoryDeps {
  registry: RegistryClient;
  artifacts: ArtifactCache;
  log: Logger;
  providers: ExecutionProvider[];
  sessionWorkers: number;
  /** V8 young generation of each session worker, in MB (INFERMESH_SESSION_WORKER_YOUNG_GENERATION_MB). */
  sessionWorkerYoungGenerationMb: number;
  /** Most nodes a model may have to be loaded, graph, subgraphs and functions together (INFERMESH_MAX_GRAPH_NODES; default 100 000): the registry's bound at push, again for artifacts stored before it or under a larger one. */
  maxGraphNodes?: number;
  /** Most stack a version's own session workers get, in MiB, for deep decision trees (INFERMESH_SESSION_WORKER_MAX_STACK_MB; default 1024). */
  sessionWorkerMaxStackMb: number;
  /**
   * The pod's shared session workers (INFERMESH_SHARED_SESSION_*): a version whose model it admits
   * is loaded there, and moved to workers of its own when its runs are too long to share
   * (ownWorkersIfLong). Undefined: every version on workers of its own.
   */
  sessionHost?: SessionHost;
  intraOpThreads: number;
  /**
   * A version whose warm-up runs take less than this (µs) is loaded again on one intra-op thread
   * (0: never); see fitThreads.
   */
  serialRunUs: number;
  intraOpSpinning: SpinningPolicy;
  warmup: boolean;
  /** Wait before loading a failed version again, doubling per failure in a row up to `maxMs`. */
  loadRetry: LoadRetryPolicy;
  /** The longest a run may take on a version's own workers (INFERMESH_RUN_TIMEOUT_MS; 0: no limit; default none). */
  runTimeoutMs?: number;
  /** The longest making a session may take on a version's own workers (INFERMESH_LOAD_TIMEOUT_MS; 0: no limit; default none). */
  loadTimeoutMs?: number;
  /**
   * How long a load keeps the others from making and warming up their sessions beside it, so that
   * the memory it measures is its own (INFERMESH_LOAD_ALONE_MS; 0: as long as it takes; default 0).
   */
  loadAloneMs?: number;
  /**
   * Told of each worker set aside with a run of a version past its budget, to finish it alone (the
   * pod weighs every set-aside worker, loads' included, against INFERMESH_MAX_SET_ASIDE_WORKERS).
   */
  onRunSetAside?: (model: string, version: number, why: string) => void;
  /** How long a version being unloaded keeps serving (routers learn of it meanwhile). */
  unloadGraceMs: number;
  limits: RequestLimits;
  /** Pod-wide batching defaults; a model's registry config overrides them. */
  batching: Omit<BatchingOptions, 'concurrency' | 'preferredBatchSizes'>;
  /** A version whose one-row runs take less (µs, one thread) runs small batches and lone requests on the pod's thread (INFERMESH_INLINE_RUN_US; 0: never). */
  inlineRunUs?: number;
  /**
   * Only a version whose session its worker made in less (ms) gets one on the pod's thread, where
   * making it stalls every call as long (INFERMESH_INLINE_MAX_LOAD_MS; default 250).
   */
  inlineMaxLoadMs?: number;
  /**
   * The memory its models may take (INFERMESH_MODEL_MEMORY_MB): a load waits while versions being
   * unloaded still hold what it needs (0: never waits).
   */
  memoryBudgetBytes?: number;
}

/** How long a pod waits before loading a failed version again (INFERMESH_LOAD_RETRY_*). */
export interface LoadRetryPolicy {
  baseMs: number;
  maxMs: number;
}

/** The wait after failure number `failures` in a row (1: the first): base × 2^(failures−1), capped at max. */
export function loadRetryDelayMs(policy: LoadRetryPolicy, failures: number): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(0, failures - 1), 40));
}

/** A version that failed to load: why, how often in a row, and when it is tried again. */
interface LoadFailure {
  failures: number;
  reason: string;
  retryAt: number;
  timer: NodeJS.Timeout;
  /** A run past its budget stopped the version (it did not fail to load): said as "is unavailable". */
  stopped: boolean;
}

/**
 * What the pod keeps of a version's runs past their budgets, loaded or not, as long as it is
 * wanted or one of those runs goes on.
 */
interface Overdue {
  /** Stops in a row: one within twice INFERMESH_LOAD_RETRY_MAX_MS of the last counts on from it. */
  stops: number;
  lastStopAt: number;
  /** It overran a shared worker's budget: loaded on workers of its own from then on. */
  ownWorkers: boolean;
  /** Its runs past their budgets still going (set-aside workers not yet exited): it is not loaded before they end. */
  running: Set<Promise<void>>;
  /**
   * The memory its set-aside workers hold, charged to the pod's books until the last of them has
   * exited: what its load measured, else what it was planned at, else its artifact's size.
   */
  heldBytes: number;
}

/** A load whose version a run past its budget stopped (a warm-up's): a failure, loaded again as a stop is. */
class StoppedWhileLoading extends Error {}

/** How a version's failure reads after its number. */
const failedAs = (f: LoadFailure) => (f.stopped ? 'is unavailable' : 'failed to load');

/** One line of RepositoryIndex: a version loaded, loading, unloading, or failed to load. */
export interface IndexEntry {
  name: string;
  version: number;
  state: PodModel['state'];
  reason: string;
}

/** "4 s", "2 min": a wait, for reasons people read. */
function humanMs(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** The batching of one version: the model's registry config over the pod's defaults. */
export function batchingFor(sig: Signature, model: Pick<ModelOut, 'config'>, defaults: RepositoryDeps['batching'], workers: number, rowMixing: readonly string[]): BatchingOptions {
  const c = model.config?.dynamic_batching ?? null;
  // The pods' default batches only a model whose rows stay apart (lib/onnx rowMixing): another
  // would hand one caller's values to the others. A model's own config is its owner's word, as a
  // Triton model's dynamic_batching is.
  const on = (c ? c.enabled : defaults.enabled && rowMixing.length === 0) && canBatch(sig);
  return {
    enabled: on,
    maxBatchSize: on ? c?.max_batch_size || defaults.maxBatchSize : 1,
    maxQueueDelayUs: on ? (c ? Number(c.max_queue_delay_us) : defaults.maxQueueDelayUs) : 0,
    preferredBatchSizes: on ? (c?.preferred_batch_sizes ?? []) : [],
    maxQueueSize: c?.max_queue_size || defaults.maxQueueSize,
    concurrency: workers,
  };
}

function signatureOf(list: VersionOut['inputs']): TensorSignature[] {
  return list.map((t) => {
    if (!isDatatype(t.datatype)) throw new MeshError(ErrorCode.FailedPrecondition, `tensor '${t.name}' has unsupported datatype ${t.datatype}`);
    return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number) };
  });
}

export class ModelRepository {
  private readonly models = new Map<string, Map<number, LoadedVersion>>();
  /**
   * Versions whose load has begun and whose sessions are not made yet (its registry record, its
   * artifact, its turn, room in the budget, onnxruntime making the sessions), by model: LOADING.
   */
  private readonly starting = new Map<string, Set<number>>();
  /** Versions whose last load failed, by model: reported, and loaded again only after their back-off. */
  private readonly failures = new Map<string, Map<number, LoadFailure>>();
  /** Versions that had runs past their budgets, by model (see Overdue). */
  private readonly overdue = new Map<string, Map<number, Overdue>>();
  /** Stopped versions being released (their sessions closed): a shutdown waits for them. */
  private readonly retiring = new Set<Promise<void>>();
  /** The versions each model should serve, as last asked (a retry after a back-off reconciles to it). */
  private readonly desired = new Map<string, number[]>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly listeners: (() => void)[] = [];
  private fallbackLogged = false;
  /** The load whose sessions are being made and warmed up (measuring()): one at a time. */
  private measuredLoad: Promise<void> = Promise.resolve();
  /** The memory each version was planned at (placement), by model then version: a load waits for room for it. */
  private readonly planned = new Map<string, Map<number, number>>();
  /** When each version started serving (its idleness counts from then until its first request). */
  private readonly readyAt = new WeakMap<LoadedVersion, number>();
  /** The next timing on the pod's thread of a version (inlineIfTiny), cleared when it unloads. */
  private readonly retimers = new Map<LoadedVersion, NodeJS.Timeout>();
  private providers: ExecutionProvider[];
  private closed = false;

  constructor(private readonly deps: RepositoryDeps) {
    this.providers = deps.providers;
  }

  /** Calls `fn` whenever a version changes state (heartbeats are sent at once). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private changed(): void {
    for (const fn of [...this.listeners]) fn();
  }

  /**
   * The version serving a request: the named one, or the newest ready one when `version` is ''.
   * NOT_FOUND for an unknown model or version, UNAVAILABLE when it is not ready (with why, when its
   * load failed).
   */
  find(name: string, version: string): LoadedVersion {
    const versions = this.models.get(name);
    const failed = this.failures.get(name);
    const starting = this.starting.get(name);
    if ((!versions || versions.size === 0) && (!failed || failed.size === 0) && (!starting || starting.size === 0)) throw errors.modelNotFound(name);
    if (version === '') {
      const ready = [...(versions?.values() ?? [])].filter((v) => v.state === 'READY').sort((a, b) => b.version - a.version);
      if (ready[0]) return ready[0];
      const why = [
        ...[...(versions?.values() ?? [])].filter((v) => v.state === 'UNAVAILABLE').map((v) => `version ${v.version} is unavailable: ${v.reason}`),
        ...[...(starting ?? [])].filter((v) => !versions?.has(v)).map((v) => `version ${v} is loading`),
        ...[...(failed?.entries() ?? [])].filter(([v]) => !starting?.has(v)).map(([v, f]) => `version ${v} ${failedAs(f)}: ${f.reason}`),
      ];
      throw errors.notReady(`model '${name}' has no version ready${why.length ? ` (${why.join('; ')})` : ''}`);
    }
    if (!/^\d+$/.test(version)) throw errors.invalidArgument(`model version '${version}' is not a version number`);
    const v = versions?.get(Number(version));
    if (!v) {
      if (starting?.has(Number(version))) throw errors.notReady(`model '${name}' version ${version} is loading`);
      const f = failed?.get(Number(version));
      if (f) throw errors.notReady(`model '${name}' version ${version} ${failedAs(f)}: ${f.reason}`);
      throw errors.versionNotFound(name, version);
    }
    if (!v.accepting()) throw errors.notReady(`model '${name}' version ${version} is ${v.state.toLowerCase()}${v.state === 'UNAVAILABLE' ? `: ${v.reason}` : ''}`);
    return v;
  }

  /**
   * The version serving an inference request: the one it names, else the one a router chose for it
   * (`routed`, from ROUTED_VERSION_HEADER; '' when none came, as from a client calling the pod
   * directly). A model or version a router sent here that this pod does not hold is the router's
   * stale view of the pod (it restarted and has not yet sent its first heartbeat, or it unloaded
   * the version since): UNAVAILABLE, the pod's failure, which the router retries on another pod,
   * not NOT_FOUND, which clients take as final.
   */
  serving(name: string, version: string, routed: string): LoadedVersion {
    if (routed === '') return this.find(name, version);
    try {
      return this.find(name, version || routed);
    } catch (err) {
      if (err instanceof MeshError && (err.code === ErrorCode.ModelNotFound || err.code === ErrorCode.VersionNotFound)) {
        throw errors.unavailable(`this pod does not hold model '${name}' version ${version || routed} (a router's view of it is out of date)`);
      }
      throw err;
    }
  }

  /** Every loaded version of `name`, newest first. */
  versionsOf(name: string): LoadedVersion[] {
    return [...(this.models.get(name)?.values() ?? [])].sort((a, b) => b.version - a.version);
  }

  /** Every loaded version of every model. */
  all(): LoadedVersion[] {
    return [...this.models.values()].flatMap((m) => [...m.values()]);
  }

  /**
   * Every version loaded, loading (from the moment its load begins, as Triton's index shows it),
   * unloading or failed to load (UNAVAILABLE, with its reason), by name then version. A failed
   * version being loaded again is LOADING, with its last failure's reason: an operator looking
   * while it retries still sees why it has not loaded.
   */
  index(): IndexEntry[] {
    const loaded = this.all().map((v): IndexEntry => ({ name: v.name, version: v.version, state: v.state, reason: v.reason }));
    const starting = [...this.starting.entries()].flatMap(([name, versions]) =>
      [...versions].filter((version) => !this.models.get(name)?.has(version))
        .map((version): IndexEntry => ({ name, version, state: 'LOADING', reason: this.failures.get(name)?.get(version)?.reason ?? '' })));
    const failed = [...this.failures.entries()].flatMap(([name, versions]) =>
      [...versions.entries()].filter(([version]) => !this.models.get(name)?.has(version) && !this.starting.get(name)?.has(version))
        .map(([version, f]): IndexEntry => ({ name, version, state: 'UNAVAILABLE', reason: f.reason })));
    return [...loaded, ...starting, ...failed].sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
  }

  /** What heartbeats report: every version of index(), with the provider a ready one runs on. */
  snapshot(): PodModel[] {
    const now = Date.now();
    return this.index().map((e) => {
      const v = this.models.get(e.name)?.get(e.version);
      const usage = v && v.state !== 'LOADING' ? {
        requests: v.stats.success.count + v.stats.fail.count,
        idleMs: Math.max(0, now - Math.max(v.stats.lastInference, this.readyAt.get(v) ?? 0)),
        inflight: v.inFlight,
      } : {};
      return {
        ...usage,
        name: e.name,
        version: e.version,
        state: e.state,
        provider: v && v.state === 'READY' ? v.provider : '',
        ...(e.reason ? { reason: e.reason } : {}),
        ...(v && v.memoryBytes > 0 ? { memoryBytes: v.memoryBytes } : {}),
      };
    });
  }

  /**
   * Memory the loaded versions cost, as each load measured it, and what workers set aside with a
   * run or a load past its budget still hold of versions no longer loaded (setAsideBytes).
   */
  memoryUsed(): number {
    return this.all().reduce((n, v) => n + v.memoryBytes, 0) + this.setAsideBytes();
  }

  /**
   * What set-aside workers hold, by the memory of their versions (Overdue.heldBytes) until the last
   * of each has exited: a version taken off is gone from the books, its sessions are not gone from
   * the process. A version still loaded (unloading) is counted once, as loaded. Heartbeats report
   * it apart (PodMemory.setAsideBytes): no version listed accounts for it.
   */
  setAsideBytes(): number {
    let bytes = 0;
    for (const [name, of] of this.overdue) {
      for (const [version, o] of of) if (o.running.size > 0 && !this.models.get(name)?.has(version)) bytes += o.heldBytes;
    }
    return bytes;
  }

  /** Requests in flight over every version. */
  inFlight(): number {
    return this.all().reduce((n, v) => n + v.inFlight, 0);
  }

  /**
   * Makes `name` serve exactly `desired` versions: loads the missing ones (a failed one only once its
   * back-off has passed), then unloads the others once every desired version is ready. Calls for one
   * model run one after another.
   */
  reconcile(name: string, desired: number[], plannedBytes?: ReadonlyMap<number, number>): Promise<void> {
    this.desired.set(name, desired);
    if (plannedBytes) this.planned.set(name, new Map(plannedBytes));
    else this.planned.delete(name);
    return this.chain(name, desired);
  }

  /**
   * Reconciles `name` again to what was last asked, as it was asked (its planned sizes kept): a
   * back-off passed, or the last run past its budget of a version ended.
   */
  private retry(name: string): void {
    if (!this.closed) void this.chain(name, this.desired.get(name) ?? []);
  }

  private chain(name: string, desired: number[]): Promise<void> {
    const prev = this.chains.get(name) ?? Promise.resolve();
    const next = prev.then(() => this.reconcileNow(name, desired)).catch((err: unknown) => {
      this.deps.log.error('reconcile failed', { model: name, err });
    });
    this.chains.set(name, next);
    return next;
  }

  /**
   * Applies a model's serving config (from the registry) to the versions loaded now: their batching
   * changes in place, without reloading sessions. Runs after the model's pending loads.
   */
  configure(name: string, model: Pick<ModelOut, 'config'>): Promise<void> {
    const prev = this.chains.get(name) ?? Promise.resolve();
    const next = prev.then(() => {
      for (const v of this.versionsOf(name)) {
        const batching = batchingFor(v.signature, model, this.deps.batching, v.pool.size, v.rowMixing);
        if (isDeepStrictEqual(batching, v.batching)) continue;
        v.reconfigure(batching);
        this.deps.log.info('batching changed', { model: name, version: v.version, batching });
      }
    }).catch((err: unknown) => this.deps.log.error('configure failed', { model: name, err }));
    this.chains.set(name, next);
    return next;
  }

  private async reconcileNow(name: string, desired: number[]): Promise<void> {
    if (this.closed) return;
    const versions = this.models.get(name) ?? new Map<number, LoadedVersion>();
    this.models.set(name, versions);
    const failed = this.failures.get(name);
    // A version no longer wanted is no longer retried.
    for (const [v, f] of failed ?? []) {
      if (desired.includes(v)) continue;
      clearTimeout(f.timer);
      failed!.delete(v);
      this.changed();
    }
    // Nor remembered, once no run of it past its budget goes on (that run would hold the next worker too).
    const overdue = this.overdue.get(name);
    for (const [v, o] of overdue ?? []) if (!desired.includes(v) && o.running.size === 0) overdue!.delete(v);
    if (overdue?.size === 0) this.overdue.delete(name);
    const now = Date.now();
    const toLoad = desired.filter((v) => !versions.has(v) && (failed?.get(v)?.retryAt ?? 0) <= now && !this.overdueRunning(name, v));
    await Promise.all(toLoad.map((v) => this.load(name, v)));
    const notReady = desired.filter((v) => versions.get(v)?.state !== 'READY');
    if (notReady.length > 0) {
      if (notReady.some((v) => failed?.has(v))) this.deps.log.warn('keeping older versions: a desired version failed to load', { model: name, desired, notReady });
    } else {
      const extra = [...versions.values()].filter((v) => !desired.includes(v.version));
      await Promise.all(extra.map((v) => this.unload(v)));
    }
    if (versions.size === 0) this.models.delete(name);
    if (failed?.size === 0) this.failures.delete(name);
  }

  private async load(name: string, version: number): Promise<boolean> {
    const versions = this.models.get(name)!;
    const log = this.deps.log.child({ model: name, version });
    // A version that overran a shared worker's budget comes back on workers of its own.
    const ownWorkers = this.overdue.get(name)?.get(version)?.ownWorkers ?? false;
    let stop: string | undefined;
    let sha = '';
    let pool: SessionPool | undefined;
    let lv: LoadedVersion | undefined;
    let rssBefore = 0;
    let measured: (() => void) | undefined;
    // LOADING from now (index, heartbeats, ModelReady), not only once its sessions are made.
    const starting = this.starting.get(name) ?? new Set<number>();
    this.starting.set(name, starting.add(version));
    this.changed();
    // What a set-aside worker of it holds until its load has measured it (noteOverdue).
    let estimatedBytes = this.planned.get(name)?.get(version) ?? 0;
    try {
      const [rec, model] = await Promise.all([
        unary<VersionOut>((cb) => this.deps.registry.GetVersion({ model: name, version }, cb)),
        unary<ModelOut>((cb) => this.deps.registry.GetModel({ name }, cb)),
      ]);
      sha = rec.sha256;
      const file = await this.deps.artifacts.acquire(name, version, sha);
      const fileBytes = (await fs.promises.stat(file)).size;
      estimatedBytes = Math.max(estimatedBytes, fileBytes);
      // The registry refuses models that are not self-contained; this also covers artifacts stored
      // before it did, which onnxruntime would let read other artifacts beside them.
      const { valueSized, treeDepth, rowMixing } = await readOnnxSignature(file, { maxGraphNodes: this.deps.maxGraphNodes }).catch((err: unknown) => {
        if (err instanceof OnnxFormatError) throw new MeshError(ErrorCode.FailedPrecondition, `artifact is not servable: ${err.message}`);
        throw err;
      });
      const stackMb = treeStackMb(treeDepth, this.deps.sessionWorkerMaxStackMb);
      // One version's sessions are made and warmed up at a time, so the memory it takes is its own
      // (the growth of the process's resident memory over those steps); downloads still overlap.
      measured = await this.measuring();
      await this.roomFor(this.planned.get(name)?.get(version) ?? 0, log);
      rssBefore = process.memoryUsage.rss();
      // A run whose cost follows the request's values could hold a shared worker (every version on
      // it) as long as its caller asks; its own workers' budget is INFERMESH_RUN_TIMEOUT_MS.
      if (valueSized.length > 0) log.info('runs can cost what the request\'s values ask: sessions on workers of their own, none on the pod\'s thread', { valueSized });
      if (stackMb !== undefined) log.info('deep decision trees: sessions on workers of their own with the stack they need, none on the pod\'s thread', { treeDepth, stackMb });
      pool = await this.sessionsOf(file, this.deps.intraOpThreads, !ownWorkersOnly(valueSized, stackMb) && !ownWorkers, stackMb);
      if (pool.info.fallback && !this.fallbackLogged) {
        // Log once, and stop asking for providers this machine does not have.
        this.fallbackLogged = true;
        this.providers = this.providers.slice(Math.max(0, this.providers.indexOf(pool.info.provider)));
        log.warn(`execution provider fallback: sessions run on ${pool.info.provider}`, { reason: pool.info.fallback });
      }
      const sig = { inputs: signatureOf(rec.inputs), outputs: signatureOf(rec.outputs) };
      const batching = batchingFor(sig, model, this.deps.batching, pool.size, rowMixing);
      if (rowMixing.length > 0 && canBatch(sig) && this.deps.batching.enabled && !model.config?.dynamic_batching) {
        log.info('rows of a batch could reach one another: requests run one by one unless the model\'s config turns batching on', { rowMixing });
      }
      lv = new LoadedVersion(name, version, sha, sig, pool, this.deps.limits, batching);
      lv.valueSized = valueSized;
      lv.rowMixing = rowMixing;
      lv.stackMb = stackMb;
      pool = undefined; // the version owns it now
      const stopped = lv;
      stopped.onOverdue = (why, ended, stops, shared) => {
        this.noteOverdue(name, version, ended, shared, stopped.memoryBytes || estimatedBytes);
        // Each set-aside worker holds a CPU until its run returns, which it may never do: the pod
        // weighs it, counted now (noteOverdue), against its bound.
        this.deps.onRunSetAside?.(name, version, why);
        if (!stops) return;
        log.error('model version stopped on this pod: a run outlived its budget', { reason: why });
        stop = stopped.reason;
        // A warm-up's stop is the load's to record (below); a serving version's is taken off here.
        if (this.readyAt.has(stopped)) this.retire(stopped, stopped.reason);
        this.changed();
      };
      versions.set(version, lv);
      starting.delete(version);
      this.changed();
      if (this.deps.warmup) {
        const samples = model.config?.warmup ?? [];
        let problem = await lv.warmUp(samples);
        if (!problem && await this.ownWorkersIfLong(lv, file, samples, log)) problem = await lv.warmUp(samples);
        if (!problem && await this.fitThreads(lv, file, samples, log)) problem = await lv.warmUp(samples);
        if (!problem) await this.inlineIfTiny(lv, log);
        if (problem && lv.state === 'LOADING') {
          lv.reason = `${problem}; serving anyway`;
          log.warn('warm-up failed; the version serves anyway', { reason: problem });
        }
      }
      // Its weights are in memory at least once, whatever else the process freed meanwhile (the
      // resident memory of a process also shrinks when its garbage is collected).
      lv.memoryBytes = Math.max(process.memoryUsage.rss() - rssBefore, fileBytes);
      measured();
      measured = undefined;
      // A run past its budget (a warm-up's) stopped it: a failed load, loaded again as a stop is.
      if (stop !== undefined) throw new StoppedWhileLoading(stop);
      if (lv.state !== 'LOADING') return true;
      lv.state = 'READY';
      // Its failed loads in a row end here, not when its sessions were made: a load that failed
      // after that point backs off the longer for each (its stops are counted apart: countStop).
      this.clearFailure(name, version);
      this.readyAt.set(lv, Date.now());
      this.changed();
      log.info('model version ready', { provider: lv.provider, memoryBytes: lv.memoryBytes });
      return true;
    } catch (err) {
      measured?.();
      if (lv && versions.get(version) === lv) versions.delete(version);
      await (pool ?? lv?.pool)?.close().catch(() => undefined);
      if (sha) await this.deps.artifacts.release(sha).catch(() => undefined);
      if (err instanceof StoppedWhileLoading) {
        // Its warm-up's worker, set aside, holds what the load measured (charged at an estimate until it had).
        const o = this.overdue.get(name)?.get(version);
        if (o && o.running.size > 0 && lv) o.heldBytes = Math.max(o.heldBytes, lv.memoryBytes);
        this.recordStop(name, version, err.message);
        log.error('model version stopped while loading: a warm-up run outlived its budget', { reason: err.message });
      } else if (err instanceof LoadOverdueError) {
        // Its worker still makes the session: loaded again not before that ends (one set-aside
        // worker per version, not one per try), on workers of its own if it overran a shared one.
        this.noteOverdue(name, version, err.ended, err.shared, estimatedBytes);
        const failure = this.recordUnserved(name, version, err.message, 'load');
        log.error('model version failed to load: making its session outlived its budget', { reason: err.message, failures: failure.failures, shared: err.shared });
      } else {
        const failure = this.recordFailure(name, version, this.deps.artifacts.withoutFolder(messageOf(err)));
        log.error('model version failed to load', { err, failures: failure.failures, retryInMs: failure.retryAt - Date.now() });
      }
      this.changed();
      return false;
    } finally {
      starting.delete(version);
      if (starting.size === 0 && this.starting.get(name) === starting) this.starting.delete(name);
    }
  }

  /**
   * Waits until a version planned at `bytes` fits the pod's budget beside what its versions hold,
   * as long as versions being unloaded (placement took them off, often for this one's room), or
   * workers set aside with a run or a load past its budget, may still free it; with nothing on its
   * way out, it loads at once (the placement controller packs by the same measurements and corrects
   * an estimate that was short). Loads come here one at a time.
   */
  private async roomFor(bytes: number, log: Logger): Promise<void> {
    const budget = this.deps.memoryBudgetBytes ?? 0;
    if (budget === 0 || bytes === 0) return;
    let waited = false;
    while (!this.closed && this.memoryUsed() + bytes > budget && (this.all().some((v) => v.state === 'UNLOADING') || this.setAsideBytes() > 0)) {
      if (!waited) log.info('waiting for versions being unloaded, or set-aside session workers, to make room', { plannedBytes: bytes, usedBytes: this.memoryUsed(), setAsideBytes: this.setAsideBytes(), budgetBytes: budget });
      waited = true;
      await new Promise<void>((resolve) => {
        const wake = () => {
          const i = this.listeners.indexOf(wake);
          if (i >= 0) this.listeners.splice(i, 1);
          resolve();
        };
        this.listeners.push(wake);
      });
    }
  }

  /**
   * Makes and drops one session of a one-node model, as a load would: onnxruntime's libraries,
   * its environment and the first worker's start are then the pod's own cost, in its resident
   * memory before any version, not the first version's. A failure is left to the first real load.
   */
  async prime(dir: string): Promise<void> {
    const done = await this.measuring();
    const file = path.join(dir, `.prime-${process.pid}.onnx`);
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      await fs.promises.writeFile(file, PRIMING_MODEL);
      const pool = await this.sessionsOf(file, this.deps.intraOpThreads);
      await pool.close();
    } catch (err) {
      this.deps.log.warn('could not start onnxruntime ahead of the first model', { err });
    } finally {
      await fs.promises.rm(file, { force: true });
      done();
    }
  }

  /**
   * Waits for the loads measuring before this one; resolves to the function that lets the next one
   * go. The next one goes anyway once this one has measured for INFERMESH_LOAD_ALONE_MS: a load
   * that takes that long (a graph built to be slow: making its session may take up to the load
   * budget) would otherwise hold up every other version's, other teams' too. Both then count
   * what the other took meanwhile, an overestimate, which packs fewer versions on the pod, never more.
   */
  private async measuring(): Promise<() => void> {
    const before = this.measuredLoad;
    let done!: () => void;
    this.measuredLoad = new Promise<void>((resolve) => (done = resolve));
    await before;
    const aloneMs = this.deps.loadAloneMs ?? 0;
    if (aloneMs === 0) return done;
    const timer = setTimeout(done, aloneMs);
    timer.unref();
    return () => {
      clearTimeout(timer);
      done();
    };
  }

  /** Sessions of `file`: on the pod's shared workers when `shared` and the host takes the model, else on workers of their own. */
  /**
   * Gives `lv`, still loading, the sessions `make` makes in place of its own; false, changing
   * nothing more, once it is not loading (a run past its budget stopped it): sessions made
   * meanwhile are closed again.
   */
  private async swapPool(lv: LoadedVersion, make: () => Promise<SessionPool>): Promise<boolean> {
    if (lv.state !== 'LOADING') return false;
    await lv.pool.close();
    const next = await make();
    if (lv.state !== 'LOADING') {
      await next.close();
      return false;
    }
    lv.usePool(next);
    return true;
  }

  private sessionsOf(file: string, intraOpThreads: number, shared = true, stackMb?: number): Promise<SessionPool> {
    return SessionPool.create({
      modelPath: file, providers: this.providers, workers: this.deps.sessionWorkers, intraOpThreads, spinning: this.deps.intraOpSpinning,
      // SessionPool.create also keeps a session that needs a stack of its own off the shared host,
      // whose workers run with Node's.
      host: shared ? this.deps.sessionHost : undefined,
      youngGenerationMb: this.deps.sessionWorkerYoungGenerationMb,
      stackMb,
      // A worker of its own that dies is started again with the back-off of a failed load.
      respawn: { baseMs: this.deps.loadRetry.baseMs, maxMs: this.deps.loadRetry.maxMs },
      runBudget: { ms: this.deps.runTimeoutMs ?? 0, setting: 'INFERMESH_RUN_TIMEOUT_MS' },
      loadBudget: { ms: this.deps.loadTimeoutMs ?? 0, setting: 'INFERMESH_LOAD_TIMEOUT_MS' },
    });
  }

  /**
   * A version on the pod's shared session workers whose runs take INFERMESH_SHARED_SESSION_MAX_RUN_US
   * or more is loaded again on workers of its own, on the pod's threads (then fitted as any other):
   * a worker runs one request at a time, and its runs would hold up every other version's there.
   * Its batch is timed as fitThreads times it (the fastest of FIT_RUNS), unless its warm-up already
   * ran ten times over the limit. Resolves true when the sessions were replaced (to be warmed
   * again); throws when none could be made, as a failed load.
   */
  private async ownWorkersIfLong(lv: LoadedVersion, file: string, samples: readonly WarmupSample[], log: Logger): Promise<boolean> {
    const host = this.deps.sessionHost;
    const limit = host?.sharing?.maxRunUs ?? 0;
    if (!host || !lv.pool.shared || limit === 0) return false;
    // A warm-up far over the limit moves it without holding up the others for a timing; a first
    // run is often slow, so a warm-up just over it is timed again as the thread fitting times.
    const warmUs = lv.pool.fastestRunUs ?? 0;
    const runUs = warmUs >= FAR_OVER * limit ? warmUs : await lv.timeRuns(samples, FIT_RUNS, limit);
    if (runUs === undefined || host.admitsRun(runUs)) return false;
    if (!(await this.swapPool(lv, () => this.sessionsOf(file, this.deps.intraOpThreads, false, lv.stackMb)))) return false;
    log.info('runs are long: sessions on workers of their own', { runUs: Math.round(runUs), limitUs: limit });
    return true;
  }

  /**
   * With the threads the pod chose (INFERMESH_INTRA_OP_SERIAL_RUN_US): a version whose warm-up
   * sample (without samples, a synthetic batch as large as a batched run may be) runs in less than
   * the threshold is loaded again on one intra-op thread, and keeps it if it runs under the threshold
   * there too; else it goes back to the pod's threads. Its operators take microseconds, and waking
   * another thread for each costs more than it saves: on 2 cores, a pod served MNIST at concurrency 1
   * at 3,098 requests per second on one thread against 2,102 on two (docs/benchmarks.md).
   * One set of sessions at a time: the version is loading, nothing runs on it, and a big model
   * whose runs are short is never held twice. Resolves true when the sessions were replaced (to be
   * warmed again); throws when no sessions could be made again, as a failed load.
   */
  private async fitThreads(lv: LoadedVersion, file: string, samples: readonly WarmupSample[], log: Logger): Promise<boolean> {
    const limit = this.deps.serialRunUs;
    const threads = lv.pool.intraOpThreads;
    const shared = lv.pool.shared;
    if (limit === 0 || threads <= 1 || lv.pool.info.provider !== 'cpu') return false;
    const manyUs = await lv.timeRuns(samples, FIT_RUNS, limit);
    if (manyUs === undefined || manyUs >= limit) return false;
    let oneUs: number | undefined;
    let why = '';
    try {
      if (!(await this.swapPool(lv, () => this.sessionsOf(file, 1, shared, lv.stackMb)))) return false;
      oneUs = await lv.timeRuns(samples, FIT_RUNS, limit);
    } catch (err) {
      // One past its budget is not tried again here: its worker still makes that session.
      if (err instanceof LoadOverdueError) throw err;
      why = messageOf(err);
    }
    const facts = { thresholdUs: limit, runUs: Math.round(manyUs), threads, oneThreadRunUs: oneUs === undefined ? undefined : Math.round(oneUs) };
    if (oneUs !== undefined && oneUs < limit) {
      log.info('runs are short: one intra-op thread per session', facts);
      return true;
    }
    if (!(await this.swapPool(lv, () => this.sessionsOf(file, threads, shared, lv.stackMb)))) return false;
    log.info(`runs are short, but not on one intra-op thread: ${threads} per session`, { ...facts, ...(why && { why }) });
    return true;
  }

  /**
   * A version whose one-row runs take microseconds (under INFERMESH_INLINE_RUN_US on one thread, as
   * timed) also gets a session on the pod's own thread: a run of up to the most rows timed under
   * the limit (1, 2, 4, … up to its batch size) runs there at once, without the hop to its worker
   * and back, which costs more than such a run. Only where a request's cost is fixed by its rows:
   * CPU, no BYTES input, no dynamic dimension but the first, no operator sized by the request's
   * values (a Loop's trip count: no budget can stop a run on the pod's thread). A run of more rows, or while another of
   * the version runs on a worker or waits, goes to the workers as before. Only where its worker made
   * its session in under INFERMESH_INLINE_MAX_LOAD_MS: making one on the pod's thread stalls every
   * call, heartbeat and health check of the pod for as long (a graph of tiny runs may take seconds).
   *
   * The timing at load is taken on a machine that may be busy (another version loading, traffic, a
   * neighbour), which only makes runs slower: a version that may be tiny (its fastest one-row run
   * so far under FAR_OVER times the limit) and did not reach its batch size keeps that session and
   * is timed on it up to INLINE_RETIMES_MS.length more times, INLINE_RETIMES_MS apart, each time
   * its version is idle, keeping the most rows a timing allowed (SessionPool.enableInline); a
   * session no timing let run anything is then released.
   */
  private async inlineIfTiny(lv: LoadedVersion, log: Logger, retimed = 0, bestUs = Number.POSITIVE_INFINITY): Promise<void> {
    const limit = this.deps.inlineRunUs ?? 0;
    if (limit === 0 || lv.pool.info.provider !== 'cpu' || lv.ownWorkersOnly) return;
    const maxLoadMs = this.deps.inlineMaxLoadMs ?? 250;
    if (lv.pool.info.loadMs >= maxLoadMs) {
      if (retimed === 0) log.info('its session took long to make: none on the pod\'s thread, where making it would stall every call', { loadMs: Math.round(lv.pool.info.loadMs), maxLoadMs });
      return;
    }
    if (!lv.signature.inputs.every((t) => t.datatype !== 'BYTES' && t.shape.length > 0 && t.shape.slice(1).every((d) => d >= 0))) return;
    try {
      const { outputs } = lv.rowsRequest(1);
      const maxRows = lv.batching.enabled && lv.signature.inputs.every((t) => t.shape[0]! < 0) ? lv.batching.maxBatchSize : 1;
      const before = lv.pool.inlineRows;
      const timed = await lv.pool.enableInline((rows) => lv.rowsRequest(rows).feeds, outputs, FIT_RUNS, limit, maxRows, FAR_OVER * limit);
      const best = Math.min(bestUs, timed.oneRowUs);
      if (timed.maxRows > before) log.info('runs are tiny: they run on the pod\'s thread', { oneRowUs: Math.round(timed.oneRowUs), maxRows: timed.maxRows, limitUs: limit, retimed });
      if (timed.maxRows < maxRows && best < FAR_OVER * limit) {
        if (retimed < INLINE_RETIMES_MS.length) this.retimeInline(lv, log, retimed, best);
        else await lv.pool.dropUnusedInline();
      }
    } catch (err) {
      // A version unloaded while it was timed again released its sessions: nothing to say.
      if (lv.state === 'LOADING' || lv.state === 'READY') log.warn('could not time runs on the pod\'s thread; every run goes to a worker', { err });
    }
  }

  /** Times `lv` on the pod's thread again INLINE_RETIMES_MS[retimed] from now, or later while it serves a request. */
  private retimeInline(lv: LoadedVersion, log: Logger, retimed: number, bestUs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.retimers.delete(lv);
      if (lv.state !== 'READY' || this.closed) return;
      // Not while it serves: its requests would wait behind the timing, and the timing would be slow.
      if (lv.inFlight > 0) return this.retimeInline(lv, log, retimed, bestUs);
      void this.inlineIfTiny(lv, log, retimed + 1, bestUs);
    }, INLINE_RETIMES_MS[retimed]);
    timer.unref();
    this.retimers.set(lv, timer);
  }

  /** Records a failed load and schedules the next one after the back-off. */
  private recordFailure(name: string, version: number, message: string): LoadFailure {
    return this.recordUnserved(name, version, message);
  }

  /**
   * Records a version stopped by a run past its budget as a failure of its load: it is loaded again
   * after the back-off (growing with its stops in a row, however long it served between them),
   * once every such run of it has ended (a run that never ends keeps it stopped here, and holds one
   * set-aside worker, not one per try), on workers of its own if it overran a shared one.
   */
  private recordStop(name: string, version: number, why: string): LoadFailure {
    return this.recordUnserved(name, version, why, 'stopped');
  }

  /**
   * Records a version not served here: its load `failed`, a run past its budget `stopped` it, or
   * making its session outlived its budget (`load`: loaded again after the back-off of a failed
   * load and once that load has ended, noteOverdue).
   */
  private recordUnserved(name: string, version: number, message: string, why: 'failed' | 'stopped' | 'load' = 'failed'): LoadFailure {
    const stopped = why === 'stopped';
    const failed = this.failures.get(name) ?? new Map<number, LoadFailure>();
    this.failures.set(name, failed);
    const prev = failed.get(version);
    if (prev) clearTimeout(prev.timer);
    const failures = stopped ? this.countStop(name, version) : (prev?.failures ?? 0) + 1;
    const delayMs = loadRetryDelayMs(this.deps.loadRetry, failures);
    const timer = setTimeout(() => {
      const due = this.failures.get(name)?.get(version);
      if (due?.timer !== timer) return; // cleared, or recorded again since
      due.retryAt = 0; // due now, whatever the wall clock says; not before its overdue runs end (reconcileNow)
      this.retry(name);
    }, delayMs);
    timer.unref();
    const when = stopped ? `loaded again once that run has ended, at the earliest in ${humanMs(delayMs)}`
      : why === 'load' ? `next try once that load has ended, at the earliest in ${humanMs(delayMs)}` : `next try in ${humanMs(delayMs)}`;
    const failure: LoadFailure = {
      failures,
      reason: `${message} (${stopped ? '' : 'failed '}${failures} time${failures === 1 ? '' : 's'} in a row; ${when})`,
      retryAt: stopped ? Number.POSITIVE_INFINITY : Date.now() + delayMs,
      timer,
      stopped,
    };
    failed.set(version, failure);
    return failure;
  }

  private overdueOf(name: string, version: number): Overdue {
    const of = this.overdue.get(name) ?? new Map<number, Overdue>();
    this.overdue.set(name, of);
    let o = of.get(version);
    if (!o) of.set(version, (o = { stops: 0, lastStopAt: 0, ownWorkers: false, running: new Set(), heldBytes: 0 }));
    return o;
  }

  /**
   * A run or a load of a version outlived its budget (stopping it or not), and its worker was set
   * aside to finish it: a run's is weighed by the pod (onRunSetAside, called after this; a load's is counted by
   * setAsideWorkers() but never makes the pod restart: a restarted pod loads its versions again,
   * so a model slow to load would restart every pod it is placed on, over and over), and `bytes` of the version's
   * memory stay charged until it has exited (setAsideBytes); the version is not loaded again here
   * until then, and then is (if still wanted and due), on workers of its own if the worker was a
   * shared one.
   */
  private noteOverdue(name: string, version: number, ended: Promise<void>, shared: boolean, bytes: number): void {
    const o = this.overdueOf(name, version);
    o.ownWorkers ||= shared;
    o.running.add(ended);
    o.heldBytes = Math.max(o.heldBytes, bytes);
    void ended.then(() => {
      o.running.delete(ended);
      if (o.running.size > 0) return;
      o.heldBytes = 0;
      // Its memory is off the books: heartbeats say so, and a load waiting for room looks again.
      this.changed();
      this.retry(name);
    });
  }

  /** Counts a stop of a version: its stops in a row, the last within twice INFERMESH_LOAD_RETRY_MAX_MS. */
  private countStop(name: string, version: number): number {
    const o = this.overdueOf(name, version);
    const now = Date.now();
    o.stops = now - o.lastStopAt <= 2 * this.deps.loadRetry.maxMs ? o.stops + 1 : 1;
    o.lastStopAt = now;
    return o.stops;
  }

  private overdueRunning(name: string, version: number): boolean {
    return (this.overdue.get(name)?.get(version)?.running.size ?? 0) > 0;
  }

  /**
   * Takes a serving version that a run past its budget stopped off this pod: recorded as a stop
   * (loaded again after the back-off once that run has ended), then its sessions closed.
   */
  private retire(lv: LoadedVersion, why: string): void {
    if (this.closed || this.models.get(lv.name)?.get(lv.version) !== lv) return;
    clearTimeout(this.retimers.get(lv));
    this.retimers.delete(lv);
    // An older version kept while a newer one loads is not loaded again: it is simply gone.
    if (this.desired.get(lv.name)?.includes(lv.version)) this.recordStop(lv.name, lv.version, why);
    this.models.get(lv.name)!.delete(lv.version);
    if (this.models.get(lv.name)!.size === 0) this.models.delete(lv.name);
    const released = (async () => {
      await lv.idle();
      await lv.pool.close();
      await this.deps.artifacts.release(lv.sha256);
    })().catch((err: unknown) => this.deps.log.warn('could not release a stopped version', { model: lv.name, version: lv.version, err }));
    this.retiring.add(released);
    void released.then(() => this.retiring.delete(released));
  }

  private clearFailure(name: string, version: number): void {
    const f = this.failures.get(name)?.get(version);
    if (!f) return;
    clearTimeout(f.timer);
    this.failures.get(name)!.delete(version);
  }

  private async unload(v: LoadedVersion, graceMs = this.deps.unloadGraceMs): Promise<void> {
    clearTimeout(this.retimers.get(v));
    this.retimers.delete(v);
    v.beginUnload(graceMs);
    this.changed();
    try {
      if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
      await v.idle();
      await v.pool.close();
      await this.deps.artifacts.release(v.sha256);
      this.deps.log.info('model version unloaded', { model: v.name, version: v.version });
    } finally {
      // Gone whatever failed on the way: a version left UNLOADING would hold its memory in the
      // budget for good, and every load waiting for room (roomFor) with it.
      this.models.get(v.name)?.delete(v.version);
      this.changed();
    }
  }

  /** Unloads everything, after in-flight requests finish (shutdown: the server takes no calls any more). */
  async unloadAll(): Promise<void> {
    this.closed = true;
    for (const timer of this.retimers.values()) clearTimeout(timer);
    this.retimers.clear();
    for (const failed of this.failures.values()) for (const f of failed.values()) clearTimeout(f.timer);
    this.failures.clear();
    await Promise.all([...this.chains.values()]);
    await Promise.all([...this.all().map((v) => this.unload(v, 0)), ...this.retiring]);
  }
}
