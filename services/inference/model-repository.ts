// The model versions this pod serves: loads what the registry says to serve, unloads what it no
// longer does (after the new versions are ready, and after in-flight requests finish), and answers
// which loaded version serves a request.
import { isDeepStrictEqual } from 'node:util';
import type { ExecutionProvider } from '../../lib/config';
import { errors, MeshError, ErrorCode, messageOf } from '../../lib/errors';
import type { PodModel } from '../../lib/events';
import { unary } from '../../lib/grpc/client';
import type { ModelOut, RegistryClient, VersionOut } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import { isDatatype } from '../../lib/tensor';
import type { TensorSignature } from '../../lib/onnx';
import type { ArtifactCache } from './artifact-cache';
import { LoadedVersion, canBatch, type RequestLimits } from './loaded-version';
import type { BatchingOptions } from './dynamic-batcher';
import type { Signature } from './request-codec';
import { SessionPool } from './session-pool';

/** What the repository is built from. */
export interface RepositoryDeps {
  registry: RegistryClient;
  artifacts: ArtifactCache;
  log: Logger;
  providers: ExecutionProvider[];
  sessionWorkers: number;
  intraOpThreads: number;
  intraOpSpinning: boolean;
  warmup: boolean;
  /** How long a version being unloaded keeps serving (routers learn of it meanwhile). */
  unloadGraceMs: number;
  limits: RequestLimits;
  /** Pod-wide batching defaults; a model's registry config overrides them. */
  batching: Omit<BatchingOptions, 'concurrency' | 'preferredBatchSizes'>;
}

/** The batching of one version: the model's registry config over the pod's defaults. */
export function batchingFor(sig: Signature, model: Pick<ModelOut, 'config'>, defaults: RepositoryDeps['batching'], workers: number): BatchingOptions {
  const c = model.config?.dynamic_batching ?? null;
  const on = (c ? c.enabled : defaults.enabled) && canBatch(sig);
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
  private readonly chains = new Map<string, Promise<void>>();
  private readonly listeners: (() => void)[] = [];
  private fallbackLogged = false;
  private providers: ExecutionProvider[];

  constructor(private readonly deps: RepositoryDeps) {
    this.providers = deps.providers;
  }

  /** Calls `fn` whenever a version changes state (heartbeats are sent at once). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /**
   * The version serving a request: the named one, or the newest ready one when `version` is ''.
   * NOT_FOUND for an unknown model or version, UNAVAILABLE when it is not ready.
   */
  find(name: string, version: string): LoadedVersion {
    const versions = this.models.get(name);
    if (!versions || versions.size === 0) throw errors.modelNotFound(name);
    if (version === '') {
      const ready = [...versions.values()].filter((v) => v.state === 'READY').sort((a, b) => b.version - a.version);
      if (!ready[0]) throw errors.notReady(`model '${name}' has no version ready`);
      return ready[0];
    }
    if (!/^\d+$/.test(version)) throw errors.invalidArgument(`model version '${version}' is not a version number`);
    const v = versions.get(Number(version));
    if (!v) throw errors.versionNotFound(name, version);
    if (!v.accepting()) throw errors.notReady(`model '${name}' version ${version} is ${v.state.toLowerCase()}`);
    return v;
  }

  /** Every loaded version of `name`, newest first. */
  versionsOf(name: string): LoadedVersion[] {
    return [...(this.models.get(name)?.values() ?? [])].sort((a, b) => b.version - a.version);
  }

  /** Every loaded version of every model. */
  all(): LoadedVersion[] {
    return [...this.models.values()].flatMap((m) => [...m.values()]);
  }

  /** What heartbeats report. */
  snapshot(): PodModel[] {
    return this.all().map((v) => ({
      name: v.name,
      version: v.version,
      state: v.state,
      provider: v.state === 'READY' ? v.provider : '',
      ...(v.reason ? { reason: v.reason } : {}),
    }));
  }

  /** Requests in flight over every version. */
  inFlight(): number {
    return this.all().reduce((n, v) => n + v.inFlight, 0);
  }

  /**
   * Makes `name` serve exactly `desired` versions: loads the missing ones, then unloads the others
   * once every desired version is ready. Calls for one model run one after another.
   */
  reconcile(name: string, desired: number[]): Promise<void> {
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
        const batching = batchingFor(v.signature, model, this.deps.batching, v.pool.size);
        if (isDeepStrictEqual(batching, v.batching)) continue;
        v.reconfigure(batching);
        this.deps.log.info('batching changed', { model: name, version: v.version, batching });
      }
    }).catch((err: unknown) => this.deps.log.error('configure failed', { model: name, err }));
    this.chains.set(name, next);
    return next;
  }

  private async reconcileNow(name: string, desired: number[]): Promise<void> {
    const versions = this.models.get(name) ?? new Map<number, LoadedVersion>();
    this.models.set(name, versions);
    const toLoad = desired.filter((v) => {
      const cur = versions.get(v);
      return !cur || cur.state === 'UNAVAILABLE';
    });
    const loaded = await Promise.all(toLoad.map((v) => this.load(name, v)));
    if (loaded.includes(false)) {
      this.deps.log.warn('keeping older versions: a desired version failed to load', { model: name, desired });
      return;
    }
    const extra = [...versions.values()].filter((v) => !desired.includes(v.version));
    await Promise.all(extra.map((v) => this.unload(v)));
    if (versions.size === 0) this.models.delete(name);
  }

  private async load(name: string, version: number): Promise<boolean> {
    const versions = this.models.get(name)!;
    const log = this.deps.log.child({ model: name, version });
    let sha = '';
    let pool: SessionPool | undefined;
    try {
      const [rec, model] = await Promise.all([
        unary<VersionOut>((cb) => this.deps.registry.GetVersion({ model: name, version }, cb)),
        unary<ModelOut>((cb) => this.deps.registry.GetModel({ name }, cb)),
      ]);
      sha = rec.sha256;
      const file = await this.deps.artifacts.acquire(name, version, sha);
      pool = await SessionPool.create({
        modelPath: file,
        providers: this.providers,
        workers: this.deps.sessionWorkers,
        intraOpThreads: this.deps.intraOpThreads,
        spinning: this.deps.intraOpSpinning,
      });
      if (pool.info.fallback && !this.fallbackLogged) {
        // Log once, and stop asking for providers this machine does not have.
        this.fallbackLogged = true;
        this.providers = this.providers.slice(Math.max(0, this.providers.indexOf(pool.info.provider)));
        log.warn(`execution provider fallback: sessions run on ${pool.info.provider}`, { reason: pool.info.fallback });
      }
      const sig = { inputs: signatureOf(rec.inputs), outputs: signatureOf(rec.outputs) };
      const batching = batchingFor(sig, model, this.deps.batching, pool.size);
      const lv = new LoadedVersion(name, version, sha, sig, pool, this.deps.limits, batching);
      versions.get(version)?.pool.close().catch(() => undefined);
      versions.set(version, lv);
      this.changed();
      if (this.deps.warmup) await lv.warmUp();
      lv.state = 'READY';
      this.changed();
      log.info('model version ready', { provider: lv.provider });
      return true;
    } catch (err) {
      log.error('model version failed to load', { err });
      await pool?.close().catch(() => undefined);
      if (sha) await this.deps.artifacts.release(sha).catch(() => undefined);
      const failed = versions.get(version);
      if (failed) {
        failed.state = 'UNAVAILABLE';
        failed.reason = messageOf(err);
      }
      this.changed();
      return false;
    }
  }

  private async unload(v: LoadedVersion, graceMs = this.deps.unloadGraceMs): Promise<void> {
    const failedBefore = v.state === 'UNAVAILABLE';
    v.beginUnload(graceMs);
    this.changed();
    if (graceMs > 0 && !failedBefore) await new Promise((r) => setTimeout(r, graceMs));
    await v.idle();
    if (!failedBefore) {
      await v.pool.close();
      await this.deps.artifacts.release(v.sha256);
    }
    this.models.get(v.name)?.delete(v.version);
    this.changed();
    this.deps.log.info('model version unloaded', { model: v.name, version: v.version });
  }

  /** Unloads everything, after in-flight requests finish (shutdown: the server takes no calls any more). */
  async unloadAll(): Promise<void> {
    await Promise.all([...this.chains.values()]);
    await Promise.all(this.all().map((v) => this.unload(v, 0)));
  }
}
