// With TLS on, a proven pod's heartbeat is a hint, not the truth: every pod holds the same pod NATS
// identity, so any of them can publish a heartbeat in another's name. When one would change what a
// view believes of a proven pod (a goodbye; versions added, dropped, or in another state or with
// another reason), the pod itself is asked over a connection that demands the identity it proved,
// which a forger cannot answer: grpc.health.v1 for a goodbye, RepositoryIndex for its versions; and
// its answer is what the view applies. A goodbye the pod answers NOT_SERVING, or refuses to answer
// (the connection refused or closed), is honoured: pods do stop after saying it; one whose
// question misses INFERMESH_HEARTBEAT_CONFIRM_TIMEOUT_MS is asked once more, so a forged goodbye
// takes a pod out for no fewer missed answers than the health checks need (two). One round of
// questions per pod is in flight, at most one per INFERMESH_HEARTBEAT_CONFIRM_INTERVAL_MS;
// heartbeats in between wait (the latest goodbye and the latest change of versions, side by side),
// so a flood of them costs each pod at most a health check and a RepositoryIndex per interval per
// view. A pod whose answers keep contradicting the heartbeats in its name (a forger's, or its own
// when it is the forger) is asked its versions less often: the wait doubles with each such answer,
// up to INFERMESH_HEARTBEAT_CONFIRM_BACKOFF_MS, and an answer that agrees ends it. An answer is
// received within what a heartbeat may carry (lib/grpc/pod-answers.ts). Load figures (requests, in
// flight, memory) are taken from heartbeats as they come.
// The router's membership (services/router/membership.ts) and the registry's placement
// (services/registry/placement/placement-pods.ts) are the two views; each says how a pod is asked
// (PodAnswers; lib/grpc/pod-answers.ts over gRPC) and how an answer applies (ConfirmedView).
import { performance } from 'node:perf_hooks';
import type { Heartbeat, PodModel } from './events';
import type { Logger } from './log';
import type { ClaimWarnings } from './pod-claims';

/** A proven pod as a view knows it: its name and the address it proved its identity at. */
export interface ConfirmedPod {
  readonly id: string;
  readonly address: string;
}

/** Whether a pod serves, as it answered (or why no answer came). */
export interface ServingAnswer {
  serving: boolean;
  /** Its grpc.health.v1 status, or why none came. */
  answer: string;
  /** No answer came within the deadline (neither a status nor a refusal): it may only be slow. */
  deadlineMissed?: boolean;
}

/** What a proven pod says of itself, over a connection that demands the identity it proved. */
export interface PodAnswers<P> {
  /** Whether it serves. */
  serving(pod: P): Promise<ServingAnswer>;
  /** Its versions in every state, with their reasons (RepositoryIndex); rejects without an answer. */
  versions(pod: P): Promise<PodModel[]>;
}

/** A view of pods whose proven pods' claims are confirmed: what it believes of one, and how an answer applies. */
export interface ConfirmedView<P> {
  /** Whether `pod` is still the one known by its name (not gone, not replaced). */
  holds(pod: P): boolean;
  /** The versions believed of `pod` now. */
  believed(pod: P): readonly PodModel[];
  /** `pod` confirmed its goodbye (or could not be reached to deny it): it goes. */
  leave(pod: P): void;
  /** `pod`'s versions as it answered, with the load figures of the heartbeat that listed each. */
  setModels(pod: P, models: readonly PodModel[]): void;
}

/**
 * Whether two lists of a pod's versions say the same (for routing and for placement): the same
 * versions, each in the same state with the same reason (load figures aside). A list naming a
 * version twice says what no pod does, and matches nothing.
 */
export function sameVersions(a: readonly PodModel[], b: readonly PodModel[]): boolean {
  if (a.length !== b.length) return false;
  const said = (m: PodModel) => `${m.state}\0${m.reason ?? ''}`;
  const of = new Map(a.map((m) => [`${m.name}\0${m.version}`, said(m)]));
  if (of.size !== a.length) return false;
  const seen = new Set<string>();
  for (const m of b) {
    const key = `${m.name}\0${m.version}`;
    if (seen.has(key) || of.get(key) !== said(m)) return false;
    seen.add(key);
  }
  return true;
}

interface Confirming {
  /** The latest goodbye heard for the pod, not asked about yet. */
  goodbye?: Heartbeat;
  /** The latest serving heartbeat that claimed a change of its versions, not asked about yet. */
  claim?: Heartbeat;
  /** Its versions are to be asked though no heartbeat claimed a change (it just proved its identity). */
  proven: boolean;
  running: boolean;
  /** When its last question was asked (performance.now()). */
  askedAt: number;
  /** When its versions were last asked, and how long after that they may be asked again (the backoff). */
  versionsAskedAt: number;
  versionsWaitMs: number;
  timer?: NodeJS.Timeout;
}

/** Versions a log line names at most: a pod may list thousands, and a line is for people. */
const VERSIONS_LOGGED = 5;

/** How many versions `models` lists, and `name version STATE (reason)` of the first few, for a log line. */
function described(models: readonly PodModel[]): { count: number; first: string[] } {
  const first = models.slice(0, VERSIONS_LOGGED).map((m) => `${m.name} ${m.version} ${m.state}${m.reason ? ` (${m.reason.slice(0, 200)})` : ''}`);
  return { count: models.length, first };
}

/** The pod's answer with each version's load figures and provider from the heartbeat that listed it, where one did. */
function withLoadFigures(answered: readonly PodModel[], heard: readonly PodModel[]): PodModel[] {
  const byVersion = new Map(heard.map((m) => [`${m.name}\0${m.version}`, m]));
  return answered.map((m) => {
    const h = byVersion.get(`${m.name}\0${m.version}`);
    if (!h) return m;
    const { name: _n, version: _v, state: _s, reason: _r, ...figures } = h;
    return { ...figures, ...m, provider: h.provider };
  });
}

/** How a HeartbeatConfirmation asks and says so. */
export interface ConfirmationOptions {
  /** Least time between two questions to one pod (INFERMESH_HEARTBEAT_CONFIRM_INTERVAL_MS). */
  intervalMs: number;
  /**
   * Most time between two questions about the versions of a pod whose answers keep contradicting
   * its heartbeats (INFERMESH_HEARTBEAT_CONFIRM_BACKOFF_MS); default intervalMs (no backoff).
   */
  backoffMs?: number;
  /** Begins each warning (the registry's `placement: `); default none. */
  prefix?: string;
  /** Called after an answer changed the view (the router's cold starts look again). */
  applied?: () => void;
}

export class HeartbeatConfirmation<P extends ConfirmedPod> {
  private readonly pods = new Map<P, Confirming>();
  private stopped = false;
  private readonly prefix: string;
  /** The monotonic clock the interval is judged on. */
  private readonly now = (): number => performance.now();

  /** `warnings`: the service's line per interval about claims refused. */
  constructor(
    private readonly view: ConfirmedView<P>,
    private readonly answers: PodAnswers<P>,
    private readonly warnings: ClaimWarnings,
    private readonly log: Logger,
    private readonly options: ConfirmationOptions,
  ) {
    this.prefix = options.prefix ?? '';
  }

  /**
   * A heartbeat of `pod` claims a change: the pod is asked, now or once the interval since its
   * last question ends. A goodbye and a change of versions wait side by side (the latest of each),
   * so a flood of forged goodbyes does not hide a real change from the view.
   */
  claim(pod: P, hb: Heartbeat): void {
    const c = this.of(pod);
    if (hb.state === 'serving') c.claim = hb;
    else c.goodbye = hb;
    this.schedule(pod, c);
  }

  /** `pod` proved its identity: what its heartbeats said before is asked of it. */
  proven(pod: P): void {
    const c = this.of(pod);
    c.proven = true;
    this.schedule(pod, c);
  }

  /** `pod` left the view: nothing more is asked of it. */
  forget(pod: P): void {
    const c = this.pods.get(pod);
    if (!c) return;
    clearTimeout(c.timer);
    this.pods.delete(pod);
  }

  /** Asks nothing more (the service stops). */
  stop(): void {
    this.stopped = true;
    for (const c of this.pods.values()) clearTimeout(c.timer);
    this.pods.clear();
  }

  private of(pod: P): Confirming {
    let c = this.pods.get(pod);
    if (!c) this.pods.set(pod, (c = { proven: false, running: false, askedAt: -Infinity, versionsAskedAt: -Infinity, versionsWaitMs: this.options.intervalMs }));
    return c;
  }

  /** When `c`'s versions may be asked again. */
  private versionsDueAt(c: Confirming): number {
    return Math.max(c.askedAt + this.options.intervalMs, c.versionsAskedAt + c.versionsWaitMs);
  }

  private schedule(pod: P, c: Confirming): void {
    if (this.stopped || c.running || c.timer || !(c.goodbye || c.claim || c.proven)) return;
    // A goodbye is asked once the interval ends; a change of versions may wait longer (the backoff).
    const at = c.goodbye ? c.askedAt + this.options.intervalMs : this.versionsDueAt(c);
    const wait = at - this.now();
    if (wait <= 0) {
      void this.ask(pod, c);
      return;
    }
    c.timer = setTimeout(() => {
      c.timer = undefined;
      void this.ask(pod, c);
    }, wait);
    c.timer.unref?.();
  }

  private async ask(pod: P, c: Confirming): Promise<void> {
    const { goodbye } = c;
    c.goodbye = undefined;
    // A change of versions still within its backoff waits, asked at a later round.
    const due = this.now() >= this.versionsDueAt(c);
    const claim = due ? c.claim : undefined;
    const proven = due && c.proven;
    if (due) {
      c.claim = undefined;
      c.proven = false;
    }
    if (this.stopped || !this.view.holds(pod)) return;
    // Settled meanwhile: the pod's last answer, or a heartbeat believed since, says the same.
    const versions = proven || (claim !== undefined && !sameVersions(this.view.believed(pod), claim.models));
    if (!goodbye && !versions) {
      if (c.claim) this.schedule(pod, c);
      return;
    }
    c.running = true;
    c.askedAt = this.now();
    try {
      if (goodbye) await this.confirmGoodbye(pod, goodbye);
      if (versions && this.view.holds(pod)) {
        c.versionsAskedAt = this.now();
        const agreed = await this.confirmVersions(pod, claim);
        // The backoff: a claim the pod's answer bore out ends it; one it did not doubles the wait.
        if (claim) c.versionsWaitMs = agreed ? this.options.intervalMs : this.longerWait(c.versionsWaitMs);
      }
    } catch (err) {
      this.log.error(`${this.prefix}confirming a heartbeat failed`, { pod: pod.id, err });
    } finally {
      c.running = false;
      // Claims that came meanwhile are asked about once the interval has passed.
      if (this.pods.get(pod) === c) this.schedule(pod, c);
    }
  }

  /** The wait after `waitMs` before asking again the versions of a pod whose answer contradicted a claim: twice as long, up to backoffMs. */
  private longerWait(waitMs: number): number {
    const most = Math.max(this.options.intervalMs, this.options.backoffMs ?? this.options.intervalMs);
    return Math.min(most, Math.max(1, 2 * waitMs));
  }

  private async confirmGoodbye(pod: P, hb: Heartbeat): Promise<void> {
    let said = await this.answers.serving(pod);
    if (this.stopped || !this.view.holds(pod)) return;
    // One missed deadline is not a goodbye: the health checks need two failures in a row to stop
    // routing to a pod, and a forged goodbye must not take it out with fewer. A pod that says
    // NOT_SERVING, or whose connection is refused or closed, has gone.
    if (!said.serving && said.deadlineMissed) {
      said = await this.answers.serving(pod);
      if (this.stopped || !this.view.holds(pod)) return;
    }
    const { serving, answer } = said;
    if (!serving) {
      this.view.leave(pod);
      this.options.applied?.();
      return;
    }
    this.warnings.warn(`${this.prefix}a heartbeat says a proven pod is leaving, and the pod says it serves: it stays`, { pod: pod.id, address: pod.address, claimed: hb.state, answer });
  }

  /**
   * Asks `pod` its versions and applies them; `hb`: the heartbeat that claimed a change (undefined:
   * the pod just proved its identity). Resolves to whether the pod's answer says what was claimed.
   */
  private async confirmVersions(pod: P, hb: Heartbeat | undefined): Promise<boolean> {
    const claimed = hb?.models ?? this.view.believed(pod);
    let answered: PodModel[];
    try {
      answered = await this.answers.versions(pod);
    } catch (err) {
      // A pod that cannot be reached goes by its health checks (the router) or its silence (the TTL); a later heartbeat asks again.
      this.warnings.warn(`${this.prefix}a proven pod did not say which versions it has: what was known of it is kept`, () => ({ pod: pod.id, address: pod.address, reason: (err instanceof Error ? err.message : String(err)).slice(0, 500) }));
      return false;
    }
    if (this.stopped || !this.view.holds(pod)) return false;
    const models = withLoadFigures(answered, claimed);
    const changed = !sameVersions(this.view.believed(pod), models);
    this.view.setModels(pod, models);
    if (changed) this.options.applied?.();
    if (sameVersions(claimed, models)) return true;
    // Its fields are built only when the line is written: the lists may be long, and most such lines are counted, not written.
    this.warnings.warn(`${this.prefix}a heartbeat says other than the proven pod it names: the pod's own answer applies`, () => ({ pod: pod.id, address: pod.address, claimed: described(claimed), answered: described(models) }));
    return false;
  }
}
