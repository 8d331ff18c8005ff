// The pods the router knows, learned from their NATS heartbeats: where they are, which model
// versions they have ready, and how loaded they are. Pods are forgotten when heartbeats stop for
// the TTL, and dropped at once when they say they are draining or stopped. It keeps at most
// INFERMESH_ROUTER_MAX_PODS, and with identities required takes a new pod only while its proof can
// start (heartbeats are the pod NATS identity's, which any pod holds and can invent pods with).
// For the same reason, with identities required a proven pod's heartbeat is a hint: a goodbye, or
// a change of its versions, is handed to claimed() and applied only as the pod itself answers
// (leave(), setModels(); lib/heartbeat-confirmation.ts asks it); and a pod whose identity probe is
// running keeps its entry through a goodbye or a claim of another address until the probe ends,
// so heartbeats forged in its name cannot discard the proof it is making. A proven pod's heartbeat
// from the address and identity it proved counts at all (its load figures, its silence ended, a
// goodbye or change to be asked) only if admits() takes it: its signature, lib/heartbeat-signatures.ts.
import type { Heartbeat, ModelState, PodModel } from '../../lib/events';
import { sameVersions, type ConfirmedView } from '../../lib/heartbeat-confirmation';
import { newPodRefusal } from '../../lib/pod-claims';
import { claimedPodIdentity } from '../../lib/tls';
import { HeardPause, plainHeardClock, type HeardClock } from '../../lib/listening-clock';

/** A pod as the balancer sees it. */
export interface Pod {
  id: string;
  address: string;
  /**
   * The identity its heartbeat claims (claimedPodIdentity: spiffe://infermesh/pod/<its identity or
   * name>), which its certificate must carry (TLS on). Pods that share a certificate share it.
   */
  identity: string;
  /** Requests this router has in flight to the pod. */
  outstanding: number;
  /** Epoch ms until which the pod is ejected for failing (0: not ejected). */
  ejectedUntil: number;
  /** Consecutive failures; reset by a success. */
  failures: number;
  /** False while active health checks fail (a second signal beside heartbeats). */
  healthy: boolean;
  /** Ready versions per model. */
  ready: Map<string, Set<number>>;
  /** Every version the pod reported, in any state, with its reason (a failed load, a failed warm-up). */
  models: readonly PodModel[];
  /** The same, by `${name}\0${version}`. */
  byVersion: ReadonlyMap<string, PodModel>;
  /** When its latest heartbeat came, on the membership's heard clock (monotonic: what the TTL is judged on). */
  lastHeard: number;
  /**
   * False while the pod has not proven with its TLS certificate the identity its heartbeat claims
   * (`identity`), or failed to: it gets no traffic. Unset: nothing to prove (TLS off).
   */
  verified?: boolean;
}

/** A model version as the pods report it: the best state any pod has it in, and their reasons. */
export interface VersionState {
  name: string;
  version: number;
  state: ModelState;
  /** `pod: reason` for each pod that gave one. */
  reasons: string[];
}

/** Whether a heartbeat puts `pod` where it is, claiming the identity it has. */
function sameClaim(pod: Pod, address: string, identity: string): boolean {
  return pod.address === address && pod.identity === identity;
}

/** The routing views of a pod's versions: the ready ones per model, and each by `${name}\0${version}`. */
function viewsOf(models: readonly PodModel[]): Pick<Pod, 'ready' | 'byVersion'> {
  const ready = new Map<string, Set<number>>();
  for (const m of models) {
    if (m.state !== 'READY') continue;
    let s = ready.get(m.name);
    if (!s) ready.set(m.name, (s = new Set()));
    s.add(m.version);
  }
  return { ready, byVersion: new Map(models.map((m) => [`${m.name}\0${m.version}`, m])) };
}

/** Which state says more about being able to serve: READY, then LOADING, UNLOADING, UNAVAILABLE. */
const STATE_RANK: Record<ModelState, number> = { READY: 0, LOADING: 1, UNLOADING: 2, UNAVAILABLE: 3 };

/** Receives pods that appear or go, so per-pod clients can be opened and closed. */
export interface MembershipListener {
  added?(pod: Pod): void;
  removed?(pod: Pod): void;
  /**
   * With identities required: a heartbeat names a pod that proved its identity, at another address
   * or claiming another identity. The pod stays as it is until move() is called, once the claimed
   * address proved the claimed identity; `refused` (moveRefusal()): why it cannot move at all.
   */
  moveClaimed?(pod: Pod, hb: Heartbeat, refused?: string): void;
  /**
   * With identities required: why a heartbeat of a pod not yet known is not taken now (undefined:
   * it is; PodIdentityCheck.admit(): no identity probe is free). Asked just before added().
   */
  admit?(hb: Heartbeat): string | undefined;
  /** A heartbeat of a pod not yet known was ignored, and why (the bound, or admit()). */
  refused?(hb: Heartbeat, why: string): void;
  /**
   * With identities required: a heartbeat of a proven pod, from the address and identity it
   * proved, would change what is believed of it: a goodbye (draining, stopped), or versions added,
   * dropped, or in another state or with another reason. Nothing changes until the pod's own
   * answer is applied (leave(), setModels()).
   */
  claimed?(pod: Pod, hb: Heartbeat): void;
  /** With identities required: `pod` proved its identity (what its heartbeats said before it had is only a claim). */
  proven?(pod: Pod): void;
  /**
   * With identities required: whether a heartbeat in proven `pod`'s name, from the address and
   * identity it proved, counts (its signature verifies against the key the pod proved, and it is
   * newer than the last that counted). One that does not changes nothing, not even the pod's
   * silence. Unset: every one counts.
   */
  admits?(pod: Pod, hb: Heartbeat): boolean;
  /**
   * With identities required: whether `pod`'s identity probe is running (PodIdentityCheck). While
   * it is, a goodbye or a claim of another address or identity waits, decided when the probe ends
   * (setVerified(), proofFailed()).
   */
  proving?(pod: Pod): boolean;
}

/** The claims that wait for an unproven pod's identity probe to end: the latest goodbye, the latest claim of another address or identity. */
interface HeldClaims {
  goodbye?: Heartbeat;
  elsewhere?: Heartbeat;
}

export class Membership implements ConfirmedView<Pod> {
  private readonly pods = new Map<string, Pod>();
  /** Pods whose identity check failed (oldest failure first): the first to go when the view is full. */
  private readonly failedProofs = new Set<Pod>();
  /** Unproven pods whose probe is running, and the claims in their name that wait for it. */
  private readonly held = new Map<Pod, HeldClaims>();
  /** Whether heartbeats cannot arrive now (NATS away or not answering), and since when. */
  private readonly pause: HeardPause;

  /**
   * `requireIdentity`: a pod gets traffic only once setVerified() says its certificate proves its
   * identity (TLS on). `heard`: the clock silences are judged on (the router's ListeningClock, so a
   * stall of its own loop does not drop pods that kept speaking; default `now` alone). `maxPods`:
   * pods kept at most (INFERMESH_ROUTER_MAX_PODS), a new one ignored until one goes.
   */
  constructor(
    private readonly ttlMs: number,
    private readonly listener: MembershipListener = {},
    private readonly now: () => number = Date.now,
    private readonly requireIdentity = false,
    private readonly heard: HeardClock = plainHeardClock(now),
    private readonly maxPods = Number.MAX_SAFE_INTEGER,
  ) {
    this.pause = new HeardPause(heard);
  }

  /** Applies a heartbeat. */
  update(hb: Heartbeat): void {
    const existing = this.pods.get(hb.pod);
    const identity = claimedPodIdentity(hb);
    if (hb.state !== 'serving') {
      // With identities required, only a goodbye for the address and identity the pod proved
      // counts, and a proven pod's is asked of the pod.
      if (!existing || (this.requireIdentity && !sameClaim(existing, hb.address, identity))) return;
      if (this.requireIdentity && existing.verified) {
        if (this.listener.admits?.(existing, hb) !== false) this.listener.claimed?.(existing, hb);
      } else if (!this.hold(existing, hb)) this.remove(existing);
      return;
    }
    if (existing && !sameClaim(existing, hb.address, identity)) {
      if (this.requireIdentity && existing.verified) {
        // A heartbeat anyone could forge does not take a proven pod away from its address.
        this.listener.moveClaimed?.(existing, hb, this.moveRefusal(existing, hb.address, identity));
        return;
      }
      if (this.hold(existing, hb)) return;
      this.remove(existing);
    }
    const pod = this.pods.get(hb.pod);
    if (pod) {
      if (this.requireIdentity && pod.verified && this.listener.admits?.(pod, hb) === false) return;
      pod.lastHeard = this.heard.now();
      // Only load figures may change on a proven pod's word alone.
      if (this.requireIdentity && pod.verified && !sameVersions(pod.models, hb.models)) this.listener.claimed?.(pod, hb);
      else this.apply(pod, hb.models);
      return;
    }
    // A full view makes room by its oldest pod that failed its identity check: pods that never
    // prove a name (invented, silent addresses) would otherwise keep every real one out while
    // their heartbeats go on.
    if (newPodRefusal(this.pods.size, this.maxPods) !== undefined) {
      const failed = this.failedProofs.values().next();
      if (!failed.done) this.remove(failed.value);
    }
    const refused = newPodRefusal(this.pods.size, this.maxPods) ?? (this.requireIdentity ? this.listener.admit?.(hb) : undefined);
    if (refused !== undefined) {
      this.listener.refused?.(hb, refused);
      return;
    }
    const added: Pod = { id: hb.pod, address: hb.address, identity, outstanding: 0, ejectedUntil: 0, failures: 0, healthy: true, models: hb.models, ...viewsOf(hb.models), lastHeard: this.heard.now() };
    if (this.requireIdentity) added.verified = false;
    this.pods.set(hb.pod, added);
    this.listener.added?.(added);
  }

  /**
   * With identities required, while `pod` (unproven) has its identity probe running: keeps `hb`,
   * a goodbye or a claim of another address or identity, to be decided when the probe ends, and
   * returns true; else false (the claim applies now). A pod not yet proven has nothing to lose to
   * a heartbeat but the proof it is making: were its entry removed or replaced, the probe's
   * result would be discarded, and a flood of such heartbeats would keep it from ever proving.
   */
  private hold(pod: Pod, hb: Heartbeat): boolean {
    if (!this.requireIdentity || pod.verified !== false || !this.listener.proving?.(pod)) return false;
    let held = this.held.get(pod);
    if (!held) this.held.set(pod, (held = {}));
    if (hb.state === 'serving') held.elsewhere = hb;
    else held.goodbye = hb;
    return true;
  }

  /**
   * The claims that waited for `pod`'s probe, which has ended: decided as any heartbeat is now.
   * Proven, a goodbye is handed to claimed() and another address to moveClaimed(), as for any
   * proven pod; not, they apply (the pod goes, or starts afresh where the claim puts it).
   */
  private release(pod: Pod): void {
    const held = this.held.get(pod);
    if (!held) return;
    this.held.delete(pod);
    if (held.goodbye) this.update(held.goodbye);
    if (held.elsewhere) this.update(held.elsewhere);
  }

  /** Whether `pod` proved its identity; ignored when the pod has left or was replaced since the check began. */
  setVerified(pod: Pod, verified: boolean): void {
    if (this.pods.get(pod.id) !== pod) return;
    const proven = verified && pod.verified === false;
    pod.verified = verified;
    if (verified) this.failedProofs.delete(pod);
    if (proven) this.listener.proven?.(pod);
    this.release(pod);
  }

  /**
   * `pod`'s versions as the pod itself answered (or as a heartbeat said, where that is believed):
   * what it gets traffic for. Ignored when the pod has left or was replaced since it was asked.
   */
  setModels(pod: Pod, models: readonly PodModel[]): void {
    if (this.pods.get(pod.id) === pod) this.apply(pod, models);
  }

  /** `pod` confirmed its goodbye (or could not be reached to deny it): it goes. Ignored when it has left or was replaced. */
  leave(pod: Pod): void {
    if (this.pods.get(pod.id) === pod) this.remove(pod);
  }

  /** Whether `pod` is the one known by its name (not gone, not replaced). */
  holds(pod: Pod): boolean {
    return this.pods.get(pod.id) === pod;
  }

  /** The versions believed of `pod`: what it gets traffic for. */
  believed(pod: Pod): readonly PodModel[] {
    return pod.models;
  }

  private apply(pod: Pod, models: readonly PodModel[]): void {
    const { ready, byVersion } = viewsOf(models);
    pod.ready = ready;
    pod.models = models;
    pod.byVersion = byVersion;
  }

  /** `pod`'s identity check failed: it is the first to make room when the view is full. */
  proofFailed(pod: Pod): void {
    if (this.pods.get(pod.id) !== pod || pod.verified !== false) return;
    this.failedProofs.add(pod);
    this.release(pod);
  }

  /**
   * A pod whose claimed identity `hb.address` proved: it moves there (and proves it again before
   * traffic). Returns why not when moveRefusal() refuses it now (undefined: moved).
   */
  move(hb: Heartbeat): string | undefined {
    const existing = this.pods.get(hb.pod);
    const identity = claimedPodIdentity(hb);
    if (existing && !sameClaim(existing, hb.address, identity)) {
      // Checked again: another pod may have taken the address while it was proving itself.
      const refused = this.requireIdentity && existing.verified ? this.moveRefusal(existing, hb.address, identity) : undefined;
      if (refused !== undefined) return refused;
      this.remove(existing);
    }
    this.update(hb);
    return undefined;
  }

  /**
   * Why a heartbeat cannot move `pod`, proven where it is, to `address` claiming `identity`
   * (undefined: it may, once `address` proves `identity`). The address proving the identity shows
   * only that some holder of that certificate answers there, not that it is this pod: an address
   * another known pod holds (proven or not) would hand this pod's calls to that one, and an identity
   * other than the one proven may be another pod's. A pod that restarts with another identity says
   * goodbye from its proven address, or its entry expires after the TTL, and then joins afresh.
   */
  private moveRefusal(pod: Pod, address: string, identity: string): string | undefined {
    if (identity !== pod.identity) return `it proved ${pod.identity}, not ${identity}`;
    for (const other of this.pods.values()) if (other !== pod && other.address === address) return `pod ${other.id} is at ${address}`;
    return undefined;
  }

  /** Pods still to prove their identity. */
  unverified(): Pod[] {
    return [...this.pods.values()].filter((p) => p.verified === false);
  }

  private remove(pod: Pod): void {
    this.pods.delete(pod.id);
    this.failedProofs.delete(pod);
    this.held.delete(pod);
    this.listener.removed?.(pod);
  }

  /**
   * While NATS is unreachable, or does not answer (lib/nats.ts NatsLiveness), no heartbeat can
   * arrive: keep the pods known (health checks still watch them). When it is back, each pod's
   * silence counts on from where it stood (HeardPause): a NATS late now and then keeps no dead pod.
   */
  setHeartbeatsAvailable(available: boolean): void {
    const shift = this.pause.set(available);
    if (shift) for (const pod of this.pods.values()) pod.lastHeard = shift(pod.lastHeard);
  }

  /** Forgets pods whose last heartbeat is older than the TTL. */
  expire(): void {
    if (this.pause.paused) return;
    const cutoff = this.heard.heardUntil() - this.ttlMs;
    for (const pod of [...this.pods.values()]) if (pod.lastHeard < cutoff) this.remove(pod);
  }

  /** Pods with `model` `version` ready and not ejected. */
  candidates(model: string, version: number): Pod[] {
    const now = this.now();
    const out: Pod[] = [];
    for (const pod of this.pods.values()) {
      if (pod.ejectedUntil > now || !pod.healthy || pod.verified === false) continue;
      if (pod.ready.get(model)?.has(version)) out.push(pod);
    }
    return out;
  }

  /** Versions of `model` ready on at least one pod that is not ejected. */
  readyVersions(model: string): Set<number> {
    const now = this.now();
    const out = new Set<number>();
    for (const pod of this.pods.values()) {
      if (pod.ejectedUntil > now || !pod.healthy || pod.verified === false) continue;
      for (const v of pod.ready.get(model) ?? []) out.add(v);
    }
    return out;
  }

  /**
   * Every version some pod reported (of `model`, or of all models), in the best state a pod has it
   * in, with every pod's reason: what RepositoryIndex and ModelReady tell a client about a version
   * that is not ready, or ready with a warning.
   */
  versionStates(model?: string): VersionState[] {
    const out = new Map<string, VersionState>();
    for (const pod of this.pods.values()) {
      // What a pod that has not proven who it is says is not repeated to clients.
      if (pod.verified === false) continue;
      for (const m of pod.models) {
        if (model !== undefined && m.name !== model) continue;
        const key = `${m.name}\u0000${m.version}`;
        let v = out.get(key);
        if (!v) out.set(key, (v = { name: m.name, version: m.version, state: m.state, reasons: [] }));
        else if (STATE_RANK[m.state] < STATE_RANK[v.state]) v.state = m.state;
        if (m.reason) v.reasons.push(`${pod.id}: ${m.reason}`);
      }
    }
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version - b.version));
  }

  /**
   * Why `version` of `model` cannot load, when every pod reporting it says its load failed
   * (UNAVAILABLE, with their reasons) and none has it loading or ready; else undefined.
   */
  loadFailure(model: string, version: number): string | undefined {
    const reasons: string[] = [];
    const key = `${model}\0${version}`;
    for (const pod of this.pods.values()) {
      if (pod.verified === false) continue;
      const m = pod.byVersion.get(key);
      if (!m) continue;
      if (m.state !== 'UNAVAILABLE') return undefined;
      reasons.push(`${pod.id}: ${m.reason ?? 'failed to load'}`);
    }
    return reasons.length ? reasons.join('; ') : undefined;
  }

  /** Every known pod. */
  all(): Pod[] {
    return [...this.pods.values()];
  }
}
