// Routing decisions, without sockets: which pod and version serve a request, admission against the
// outstanding-request limits, the retry budget, and ejection of pods that keep failing.
import { errors, MeshError, ErrorCode } from '../../lib/errors';
import type { BalancingPolicy } from './balancer';
import type { Membership, Pod } from './membership';
import type { TrafficSplit } from './traffic-split';
import { ColdVersion, type ColdStarts } from './cold-starts';

/** Limits and timings of the router. */
export interface RouterOptions {
  /** Requests in flight through this router, over all pods. */
  maxOutstanding: number;
  /** Requests in flight to one pod. */
  maxOutstandingPerPod: number;
  /** Retries allowed as a fraction of requests (e.g. 0.2), on top of `retryBudgetMinPerSecond`. */
  retryBudgetRatio: number;
  retryBudgetMinPerSecond: number;
  /** Consecutive failures that eject a pod. */
  ejectAfterFailures: number;
  /** First ejection length; doubles for each ejection in a row, up to `maxEjectionMs`. */
  baseEjectionMs: number;
  maxEjectionMs: number;
}

/**
 * What the end of an attempt says about its pod: it served (`ok`: resets its failures and its
 * ejection back-off), it failed (`failed`: counts towards ejecting it), or nothing (`neutral`: the
 * client ended the call, by a cancel, a reset or its deadline, which says nothing about the pod).
 */
export type PodOutcome = 'ok' | 'failed' | 'neutral';

/** A routing decision. */
export interface Route {
  pod: Pod;
  version: number;
}

/** A token bucket refilled by requests (ratio) and by time (minimum per second). */
class RetryBudget {
  private tokens: number;
  private last: number;
  constructor(private readonly ratio: number, private readonly minPerSecond: number, private readonly now: () => number) {
    this.tokens = minPerSecond;
    this.last = now();
  }
  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.tokens + ((t - this.last) / 1000) * this.minPerSecond, Math.max(this.minPerSecond, 100));
    this.last = t;
  }
  request(): void {
    this.tokens = Math.min(this.tokens + this.ratio, Math.max(this.minPerSecond, 100));
  }
  tryRetry(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Router {
  private outstanding = 0;
  private readonly budget: RetryBudget;
  private readonly ejections = new Map<string, number>();

  constructor(
    private readonly membership: Membership,
    private readonly split: TrafficSplit,
    private readonly policy: BalancingPolicy,
    private readonly opts: RouterOptions,
    private readonly now: () => number = Date.now,
    /** Where requests for a version no pod holds wait for it (absent: they get UNAVAILABLE). */
    readonly cold?: ColdStarts,
  ) {
    this.budget = new RetryBudget(opts.retryBudgetRatio, opts.retryBudgetMinPerSecond, now);
  }

  /** Requests in flight through this router. */
  get inFlight(): number {
    return this.outstanding;
  }

  /**
   * Picks pod and version for a request. `version` '' follows the traffic split. Pods in `exclude`
   * (already tried) are skipped. Throws NOT_FOUND, UNAVAILABLE or RESOURCE_EXHAUSTED.
   */
  route(model: string, version: string, exclude?: ReadonlySet<string>): Route {
    let v: number;
    if (version === '') {
      const chosen = this.split.choose(model, this.membership.readyVersions(model)) ?? this.split.chooseToLoad(model);
      if (chosen === undefined) {
        if (this.split.get(model)) throw errors.unavailable(`no inference pod has model '${model}' ready`);
        throw errors.modelNotFound(model);
      }
      v = chosen;
    } else {
      if (!/^\d+$/.test(version)) throw errors.invalidArgument(`model version '${version}' is not a version number`);
      v = Number(version);
    }
    const all = this.membership.candidates(model, v);
    if (all.length === 0) {
      // A served version of a placed model: a pod loads it when asked (ColdStarts).
      if (this.split.loadable(model, v)) {
        // Waiting is for a load under way or to come, not for one that failed.
        const failure = this.membership.loadFailure(model, v);
        if (failure) throw errors.unavailable(`no inference pod has model '${model}' version ${v} ready: ${failure}`);
        throw new ColdVersion(model, v);
      }
      if (version !== '') throw errors.versionNotFound(model, version);
      throw errors.unavailable(`no inference pod has model '${model}' version ${v} ready`);
    }
    const fresh = exclude?.size ? all.filter((p) => !exclude.has(p.id)) : all;
    if (fresh.length === 0) throw errors.unavailable(`every pod serving model '${model}' version ${v} failed this request`);
    const open = fresh.filter((p) => p.outstanding < this.opts.maxOutstandingPerPod);
    if (open.length === 0) throw new MeshError(ErrorCode.Overloaded, `every pod serving model '${model}' has ${this.opts.maxOutstandingPerPod} requests in flight`);
    return { pod: this.policy.pick(open), version: v };
  }

  /** Admits a request against the total limit; pair with finish(). */
  admit(): void {
    if (this.outstanding >= this.opts.maxOutstanding) {
      throw new MeshError(ErrorCode.Overloaded, `router has ${this.opts.maxOutstanding} requests in flight`);
    }
    this.outstanding++;
    this.budget.request();
  }

  /** Ends an admitted request. */
  finish(): void {
    this.outstanding--;
  }

  /** Whether a failed attempt may be retried (the budget keeps retries from multiplying load). */
  mayRetry(): boolean {
    return this.budget.tryRetry();
  }

  /** Marks an attempt on `pod` as started; pair with ended(). */
  started(pod: Pod): void {
    pod.outstanding++;
  }

  /** Records an attempt's end and what it says about the pod (see PodOutcome). */
  ended(pod: Pod, outcome: PodOutcome): void {
    pod.outstanding--;
    if (outcome === 'neutral') return;
    if (outcome === 'ok') {
      pod.failures = 0;
      this.ejections.delete(pod.id);
      return;
    }
    pod.failures++;
    if (pod.failures >= this.opts.ejectAfterFailures && pod.ejectedUntil <= this.now()) {
      const times = (this.ejections.get(pod.id) ?? 0) + 1;
      this.ejections.set(pod.id, times);
      pod.ejectedUntil = this.now() + Math.min(this.opts.baseEjectionMs * 2 ** (times - 1), this.opts.maxEjectionMs);
      pod.failures = 0;
    }
  }
}
