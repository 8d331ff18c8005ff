// One inference call as the router routes it, whatever carries it: admission against the router's
// limits, the version (the one asked for, or the traffic split's) and the pod (the balancing
// policy), one retry on another pod within the retry budget, what the end of an attempt says about
// its pod (ejection) and what the end of the call says about its version (rollout statistics and
// metrics). The transports are adapters over it and hold none of these decisions: the front door's
// bare HTTP/2 relay (front-door.ts) for every ModelInfer, compressed or not, and the typed grpc-js
// client for each request of a ModelStreamInfer stream (grpc-handlers.ts). No sockets here.
//
// Blame goes where it belongs: a client that cancels, resets, disconnects or lets its deadline pass
// ends the call, and that counts against no pod and no retry budget; only a pod's own failure (it
// could not be reached, it closed or reset the call before answering, or it answered UNAVAILABLE)
// counts towards ejecting it and may be retried elsewhere. A deadline that passed while a version
// had the call counts as that version's error (deadline_exceeded).
import { toGrpcStatus } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import type { Pod } from './membership';
import type { PodOutcome, Router } from './router';
import { ColdVersion, type ColdStarts } from './cold-starts';
import type { VersionOutcome, VersionStats } from './version-stats';

/** gRPC status codes the policy reads (numbers: this module does not load grpc-js). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
} as const;

/** Attempts per call: the first, and one retry on another pod. */
export const MAX_ATTEMPTS = 2;

/**
 * What a pod's answer says about the pod. UNAVAILABLE is its own failure (it is draining, or the
 * version is unloading there: it did not run the request). CANCELLED and DEADLINE_EXCEEDED end a
 * call the client cancelled or let expire (the pod enforces the deadline the router passes on):
 * they say nothing. Any other answer, a model's own errors included, shows the pod serving; every
 * pod would answer the same.
 */
export function podOutcomeOf(code: number): PodOutcome {
  if (code === Code.UNAVAILABLE) return 'failed';
  if (code === Code.CANCELLED || code === Code.DEADLINE_EXCEEDED) return 'neutral';
  return 'ok';
}

/**
 * Whether a call that ended with `code` counts for its version as a success, as an error, or not
 * at all (undefined): the client's own doing (a bad or unknown request, its cancel) says nothing
 * about the version's health. A deadline that passed while the version had the call (the router's
 * DEADLINE_EXCEEDED or the pod's) is the version's error, deadline_exceeded: clients' short
 * deadlines hit stable and canary alike, so the error-rate rule, which compares the two, holds only
 * a version slower than its clients' deadlines against it.
 */
export function versionOutcomeOf(code: number): VersionOutcome | undefined {
  switch (code) {
    case Code.OK:
      return 'ok';
    case Code.DEADLINE_EXCEEDED:
      return 'deadline_exceeded';
    case Code.INVALID_ARGUMENT:
    case Code.NOT_FOUND:
    case Code.CANCELLED:
    case Code.OUT_OF_RANGE:
    case Code.ALREADY_EXISTS:
      return undefined;
    default:
      return 'error';
  }
}

/** A pod's failure: its status, and whether it came as the pod's answer (else the router's). */
interface Failure {
  code: number;
  message: string;
  answered: boolean;
}

/** What a RoutedCall decides with. */
export interface RoutingDeps {
  router: Router;
  stats: VersionStats;
  log: Logger;
}

/**
 * The policy of one call. A transport extends it: it implements how an attempt is sent, aborted
 * and answered, reports each attempt's end (answered(), unanswered()) and the client's
 * (clientCancelled(), deadlineExpired()), and calls start() once. Callbacks, not promises: this
 * is the router's per-request path.
 */
export abstract class RoutedCall {
  /** The pod of the attempt in flight, or of the last one. */
  protected pod: Pod | undefined;
  /** The version that attempt serves. */
  protected version = 0;
  private readonly startedAt = performance.now();
  private attempts = 0;
  private tried: Set<string> | undefined;
  private attemptInFlight = false;
  private admitted = false;
  private done = false;
  /** Ends the wait for a version being loaded (lazy loading), while the call waits. */
  private stopWaiting: (() => void) | undefined;

  /** `requested`: the version the client named ('' for the traffic split's). */
  constructor(protected readonly deps: RoutingDeps, readonly model: string, protected readonly requested: string) {}

  /** Sends an attempt to `pod` for `version`; its end is reported with answered() or unanswered(). */
  protected abstract send(pod: Pod, version: number): void;
  /** Stops the attempt in flight; whatever it reports later is ignored. */
  protected abstract abort(): void;
  /** Answers the client with a status of the router's own. */
  protected abstract respond(code: number, message: string): void;
  /** Answers the client with the pod's answer, as it came. */
  protected abstract deliver(): void;
  /** Called once when the call is over, however it ended. */
  protected finished(_code: number, _message: string): void {}

  /** Admits the call and sends its first attempt. */
  start(): void {
    try {
      this.deps.router.admit();
    } catch (err) {
      const { code, details } = toGrpcStatus(err, this.deps.log);
      this.respond(code, details);
      return this.finish(code, details);
    }
    this.admitted = true;
    this.next();
  }

  /** The client went away: a reset, a cancel or a lost connection. */
  clientCancelled(): void {
    this.endByClient(Code.CANCELLED, 'cancelled by the client', false);
  }

  /** The client's deadline passed: it is answered DEADLINE_EXCEEDED. */
  deadlineExpired(): void {
    this.endByClient(Code.DEADLINE_EXCEEDED, 'deadline exceeded', true);
  }

  /** The attempt in flight got an answer from its pod, with status `code`. */
  protected answered(code: number, message: string): void {
    if (!this.attemptInFlight) return;
    this.attemptInFlight = false;
    const outcome = podOutcomeOf(code);
    this.deps.router.ended(this.pod!, outcome);
    if (outcome === 'failed') return this.retryOr(code, message, true);
    this.record(code);
    this.deliver();
    this.finish(code, message);
  }

  /** The attempt in flight got no answer: no connection to its pod, or the pod closed or reset the call first. */
  protected unanswered(message: string): void {
    if (!this.attemptInFlight) return;
    this.attemptInFlight = false;
    this.deps.router.ended(this.pod!, 'failed');
    this.retryOr(Code.UNAVAILABLE, message, false);
  }

  /**
   * The attempt in flight was refused for what the request itself holds (front-door.ts
   * RequestRefused): the client gets `code`, no pod is blamed and none other tried, and the
   * version's statistics do not count it (a caller could otherwise fail a canary at will).
   */
  protected refusedForRequest(code: number, message: string): void {
    if (!this.attemptInFlight) return;
    this.attemptInFlight = false;
    this.deps.router.ended(this.pod!, 'neutral');
    this.respond(code, message);
    this.finish(code, message);
  }

  /** `failed`: the failure a retry follows, which goes to the client if no other pod can take it. */
  private next(failed?: Failure): void {
    const { router, log } = this.deps;
    this.attempts++;
    let pod: Pod;
    let version: number;
    try {
      // A retry serves the version the first attempt chose, on another pod.
      ({ pod, version } = router.route(this.model, failed ? String(this.version) : this.requested, this.tried));
    } catch (err) {
      // The version is served but no pod holds it: wait while one loads it, then route again.
      if (err instanceof ColdVersion && router.cold && this.waitFor(router.cold, err, failed)) return;
      // No other pod for a retry (every one tried, ejected, full, or the version gone from the
      // router's view meanwhile): the client gets the pod's failure, retryable, never the router's
      // answer about a version it did not ask for (NOT_FOUND, which clients take as permanent).
      if (failed) return this.fail(failed);
      const { code, details } = toGrpcStatus(err, log);
      this.record(code);
      this.respond(code, details);
      return this.finish(code, details);
    }
    this.pod = pod;
    this.version = version;
    router.started(pod);
    this.attemptInFlight = true;
    this.send(pod, version);
  }

  /**
   * Waits for `cold`'s version to load, then routes again (a retry keeps the version it had, on any
   * pod: the one that failed may hold it again). False when the router cannot hold the call (it
   * answered RESOURCE_EXHAUSTED) or the call is over.
   */
  private waitFor(cold: ColdStarts, err: ColdVersion, failed: Failure | undefined): boolean {
    try {
      this.stopWaiting = cold.wait(err.model, err.version, (problem) => {
        this.stopWaiting = undefined;
        if (this.done) return;
        if (!problem) {
          this.tried = undefined;
          this.attempts--;
          return this.next(failed);
        }
        const { code, details } = toGrpcStatus(problem, this.deps.log);
        this.record(code);
        this.respond(code, details);
        this.finish(code, details);
      });
      if (failed) this.version = err.version;
      return true;
    } catch (full) {
      const { code, details } = toGrpcStatus(full, this.deps.log);
      this.respond(code, details);
      this.finish(code, details);
      return true;
    }
  }

  /** The pod failed: another attempt if allowed, else its answer (or `code`) goes to the client. */
  private retryOr(code: number, message: string, answered: boolean): void {
    const { router, log } = this.deps;
    (this.tried ??= new Set()).add(this.pod!.id);
    if (this.attempts < MAX_ATTEMPTS && router.mayRetry()) {
      log.debug('retrying on another pod', { pod: this.pod!.id, err: message });
      return this.next({ code, message, answered });
    }
    this.fail({ code, message, answered });
  }

  /** The call ends with a pod's failure: its answer if it answered, else `code` from the router. */
  private fail({ code, message, answered }: Failure): void {
    this.record(code);
    if (answered) this.deliver();
    else this.respond(code, message);
    this.finish(code, message);
  }

  /**
   * The client ended the call: the attempt in flight is dropped, and no pod is blamed (its outcome
   * is neutral, no retry is spent). A deadline that passed while the version worked on the call is
   * the version's error (versionOutcomeOf), so a canary too slow for its clients' deadlines fails
   * the error-rate rule instead of looking healthy. A cancel tells nothing and counts nowhere.
   */
  private endByClient(code: number, message: string, deadline: boolean): void {
    if (this.done) return;
    this.stopWaiting?.();
    this.stopWaiting = undefined;
    if (this.attemptInFlight) {
      this.attemptInFlight = false;
      this.deps.router.ended(this.pod!, 'neutral');
      this.abort();
      if (deadline) this.record(code);
    }
    if (deadline) this.respond(code, message);
    this.finish(code, message);
  }

  /** Counts the call for the version it was routed to, if it was and if `code` says something about it. */
  private record(code: number): void {
    const outcome = versionOutcomeOf(code);
    if (outcome === undefined || this.pod === undefined) return;
    this.deps.stats.record(this.model, this.version, outcome, performance.now() - this.startedAt, this.requested === '');
  }

  private finish(code: number, message: string): void {
    if (this.done) return;
    this.done = true;
    if (this.admitted) this.deps.router.finish();
    this.finished(code, message);
  }
}

