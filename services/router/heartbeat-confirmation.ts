// With TLS on, a proven pod's heartbeat is a hint, not the truth: every pod holds the same pod NATS
// identity, so any of them can publish a heartbeat in another's name. When one would change what
// the router believes of a proven pod (Membership's claimed(): a goodbye, versions added, dropped,
// or in another state or with another reason), the pod itself is asked over the connection that
// demands the identity it proved, which a forger cannot answer: grpc.health.v1 for a goodbye,
// RepositoryIndex for its versions; and its answer is what the router applies. A goodbye that gets
// no answer (refused, closed, past INFERMESH_ROUTER_CONFIRM_TIMEOUT_MS) is honoured: pods do stop
// after saying it. One round of questions per pod is in flight, at most one per
// INFERMESH_ROUTER_CONFIRM_INTERVAL_MS; heartbeats in between wait (the latest goodbye and the
// latest change of versions, side by side), so a flood of them costs each pod at most a health
// check and a RepositoryIndex per interval. Load figures (requests, in flight, memory) are taken from
// heartbeats as they come: the router does not route on them.
import { performance } from 'node:perf_hooks';
import type { Heartbeat, PodModel } from '../../lib/events';
import type { Logger } from '../../lib/log';
import type { ClaimWarnings } from '../../lib/pod-claims';
import { sameVersions, type Membership, type Pod } from './membership';

/** What a proven pod says of itself (PodConnections.askServing, askVersions). */
export interface PodAnswers {
  /** Whether it serves: its grpc.health.v1 status, or why none came. */
  serving(pod: Pod): Promise<{ serving: boolean; answer: string }>;
  /** Its versions in every state, with their reasons (RepositoryIndex); rejects without an answer. */
  versions(pod: Pod): Promise<PodModel[]>;
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
  timer?: NodeJS.Timeout;
}

/** `name version STATE (reason)` of each version, for a log line. */
function described(models: readonly PodModel[]): string[] {
  return models.map((m) => `${m.name} ${m.version} ${m.state}${m.reason ? ` (${m.reason})` : ''}`);
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

export class HeartbeatConfirmation {
  private readonly pods = new Map<Pod, Confirming>();
  private stopped = false;

  /**
   * `intervalMs`: least time between two questions to one pod (INFERMESH_ROUTER_CONFIRM_INTERVAL_MS).
   * `warnings`: the router's line per interval about claims refused. `applied`: called after an
   * answer changed the membership (cold starts look again).
   */
  constructor(
    private readonly membership: Membership,
    private readonly answers: PodAnswers,
    private readonly intervalMs: number,
    private readonly warnings: ClaimWarnings,
    private readonly log: Logger,
    private readonly applied: () => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * A heartbeat of `pod` claims a change (Membership's claimed()): the pod is asked, now or once the
   * interval since its last question ends. A goodbye and a change of versions wait side by side
   * (the latest of each), so a flood of forged goodbyes does not hide a real change from the router.
   */
  claim(pod: Pod, hb: Heartbeat): void {
    const c = this.of(pod);
    if (hb.state === 'serving') c.claim = hb;
    else c.goodbye = hb;
    this.schedule(pod, c);
  }

  /** `pod` proved its identity: what its heartbeats said before is asked of it. */
  proven(pod: Pod): void {
    const c = this.of(pod);
    c.proven = true;
    this.schedule(pod, c);
  }

  /** `pod` left the membership: nothing more is asked of it. */
  forget(pod: Pod): void {
    const c = this.pods.get(pod);
    if (!c) return;
    clearTimeout(c.timer);
    this.pods.delete(pod);
  }

  /** Asks nothing more (the router stops). */
  stop(): void {
    this.stopped = true;
    for (const c of this.pods.values()) clearTimeout(c.timer);
    this.pods.clear();
  }

  private of(pod: Pod): Confirming {
    let c = this.pods.get(pod);
    if (!c) this.pods.set(pod, (c = { proven: false, running: false, askedAt: -Infinity }));
    return c;
  }

  private schedule(pod: Pod, c: Confirming): void {
    if (this.stopped || c.running || c.timer || !(c.goodbye || c.claim || c.proven)) return;
    const wait = c.askedAt + this.intervalMs - this.now();
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

  private async ask(pod: Pod, c: Confirming): Promise<void> {
    const { goodbye, claim, proven } = c;
    c.goodbye = undefined;
    c.claim = undefined;
    c.proven = false;
    if (this.stopped || !this.membership.holds(pod)) return;
    // Settled meanwhile: the pod's last answer, or a heartbeat believed since, says the same.
    const versions = proven || (claim !== undefined && !sameVersions(pod.models, claim.models));
    if (!goodbye && !versions) return;
    c.running = true;
    c.askedAt = this.now();
    try {
      if (goodbye) await this.confirmGoodbye(pod, goodbye);
      if (versions && this.membership.holds(pod)) await this.confirmVersions(pod, claim);
    } catch (err) {
      this.log.error('confirming a heartbeat failed', { pod: pod.id, err });
    } finally {
      c.running = false;
      // Claims that came meanwhile are asked about once the interval has passed.
      if (this.pods.get(pod) === c) this.schedule(pod, c);
    }
  }

  private async confirmGoodbye(pod: Pod, hb: Heartbeat): Promise<void> {
    const { serving, answer } = await this.answers.serving(pod);
    if (this.stopped || !this.membership.holds(pod)) return;
    if (!serving) {
      this.membership.leave(pod);
      this.applied();
      return;
    }
    this.warnings.warn('a heartbeat says a proven pod is leaving, and the pod says it serves: it keeps its traffic', { pod: pod.id, address: pod.address, claimed: hb.state, answer });
  }

  /** Asks `pod` its versions and applies them; `hb`: the heartbeat that claimed a change (undefined: the pod just proved its identity). */
  private async confirmVersions(pod: Pod, hb: Heartbeat | undefined): Promise<void> {
    const claimed = hb?.models ?? pod.models;
    let answered: PodModel[];
    try {
      answered = await this.answers.versions(pod);
    } catch (err) {
      // The health checks take a pod that cannot be reached out of rotation; a later heartbeat asks again.
      this.warnings.warn('a proven pod did not say which versions it has: what the router knew of it is kept', { pod: pod.id, address: pod.address, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.stopped || !this.membership.holds(pod)) return;
    const models = withLoadFigures(answered, claimed);
    const changed = !sameVersions(pod.models, models);
    this.membership.setModels(pod, models);
    if (changed) this.applied();
    if (!sameVersions(claimed, models)) {
      this.warnings.warn('a heartbeat says other than the proven pod it names: the pod\'s own answer applies', { pod: pod.id, address: pod.address, claimed: described(claimed), answered: described(models) });
    }
  }
}
