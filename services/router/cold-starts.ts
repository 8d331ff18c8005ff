// Lazy loading at the router (docs/placement.md): a request for a version of a placed model that no
// pod has ready waits here while the router asks the placement controller for it. Every request
// for one version waits on the same load: the demand is published once, then once a second while
// requests wait, and all of them go on as soon as a pod reports the version ready. The waiting
// requests are bounded (RESOURCE_EXHAUSTED beyond), and each waits within its deadline (the
// transport ends it) and at most INFERMESH_ROUTER_COLD_WAIT_MS.
import { errors, MeshError, ErrorCode } from '../../lib/errors';

/** Thrown by Router.route: the version is served and placed, but no pod has it ready (yet). */
export class ColdVersion extends MeshError {
  constructor(readonly model: string, readonly version: number) {
    super(ErrorCode.Unavailable, `no inference pod has model '${model}' version ${version} ready`);
  }
}

/** How the waits are bounded (INFERMESH_ROUTER_MAX_COLD_WAITING, INFERMESH_ROUTER_COLD_WAIT_MS). */
export interface ColdStartOptions {
  maxWaiting: number;
  /** Requests waiting for one version, at most (one caller asking for a version that never loads cannot hold every place). */
  maxWaitingPerVersion: number;
  maxWaitMs: number;
  /** How often a demand is repeated while requests wait (a lost message, a new leader). */
  repeatMs: number;
}

/** Ends a wait: nothing (ready: route again) or the error to answer. */
export type ColdWaitDone = (err?: MeshError) => void;

interface Waiter {
  done: ColdWaitDone;
  timer: NodeJS.Timeout;
}

interface Pending {
  model: string;
  version: number;
  waiters: Set<Waiter>;
}

export class ColdStarts {
  private readonly pending = new Map<string, Pending>();
  private waiting = 0;
  private repeat: NodeJS.Timeout | undefined;

  constructor(
    /** Publishes a demand for the version (subjects.placementDemand). */
    private readonly demand: (model: string, version: number, waiting: number) => void,
    /** Whether some pod can take the version now (Membership.candidates). */
    private readonly ready: (model: string, version: number) => boolean,
    /** Why the version failed to load on the pods that have it, if it did (Membership.loadFailure). */
    private readonly failed: (model: string, version: number) => string | undefined,
    private readonly opts: ColdStartOptions,
  ) {}

  /** Requests waiting now, every version together. */
  get size(): number {
    return this.waiting;
  }

  /**
   * Waits for `version` of `model` to be ready on a pod; `done` is called once, unless the returned
   * function (the client went away) is called first. RESOURCE_EXHAUSTED when the router holds its
   * most waiting requests already.
   */
  wait(model: string, version: number, done: ColdWaitDone): () => void {
    if (this.waiting >= this.opts.maxWaiting) {
      throw new MeshError(ErrorCode.Overloaded, `router has ${this.opts.maxWaiting} requests waiting for versions to load (INFERMESH_ROUTER_MAX_COLD_WAITING); model '${model}' version ${version} is not loaded yet`);
    }
    const key = `${model}\n${version}`;
    let p = this.pending.get(key);
    if (p && p.waiters.size >= this.opts.maxWaitingPerVersion) {
      throw new MeshError(ErrorCode.Overloaded, `router has ${this.opts.maxWaitingPerVersion} requests waiting for model '${model}' version ${version} to load (INFERMESH_ROUTER_MAX_COLD_WAITING_PER_VERSION)`);
    }
    const first = !p;
    if (!p) this.pending.set(key, (p = { model, version, waiters: new Set() }));
    const entry = p;
    const w: Waiter = {
      done,
      timer: setTimeout(() => {
        if (this.drop(key, entry, w)) done(errors.unavailable(`model '${model}' version ${version} was not loaded on any inference pod within ${this.opts.maxWaitMs} ms`));
      }, this.opts.maxWaitMs),
    };
    entry.waiters.add(w);
    this.waiting++;
    if (first) this.demand(model, version, entry.waiters.size);
    this.repeat ??= setInterval(() => this.repeatDemands(), this.opts.repeatMs);
    return () => void this.drop(key, entry, w);
  }

  /**
   * Lets go the requests whose version some pod has ready now, and fails those whose version
   * failed to load (call after every heartbeat).
   */
  check(touched?: Iterable<{ name: string; version: number }>): void {
    if (this.waiting === 0) return;
    // After a heartbeat, only the versions it reports can have changed.
    const keys = touched ? [...touched].map((m) => `${m.name}\n${m.version}`).filter((k) => this.pending.has(k)) : [...this.pending.keys()];
    for (const key of keys) {
      const p = this.pending.get(key);
      if (!p) continue;
      const failure = this.ready(p.model, p.version) ? undefined : this.failed(p.model, p.version);
      if (failure === undefined && !this.ready(p.model, p.version)) continue;
      this.pending.delete(key);
      for (const w of p.waiters) {
        clearTimeout(w.timer);
        this.waiting--;
      }
      this.stopRepeatingIfIdle();
      const err = failure === undefined ? undefined : errors.unavailable(`no inference pod has model '${p.model}' version ${p.version} ready: ${failure}`);
      for (const w of p.waiters) w.done(err);
    }
  }

  /** Ends every wait with UNAVAILABLE (the router stops). */
  close(): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.waiting = 0;
    this.stopRepeatingIfIdle();
    for (const p of all) {
      for (const w of p.waiters) {
        clearTimeout(w.timer);
        w.done(errors.unavailable('the router is shutting down'));
      }
    }
  }

  private drop(key: string, p: Pending, w: Waiter): boolean {
    if (!p.waiters.delete(w)) return false;
    clearTimeout(w.timer);
    this.waiting--;
    if (p.waiters.size === 0 && this.pending.get(key) === p) this.pending.delete(key);
    this.stopRepeatingIfIdle();
    return true;
  }

  private repeatDemands(): void {
    for (const p of this.pending.values()) this.demand(p.model, p.version, p.waiters.size);
  }

  private stopRepeatingIfIdle(): void {
    if (this.waiting > 0 || !this.repeat) return;
    clearInterval(this.repeat);
    this.repeat = undefined;
  }
}
