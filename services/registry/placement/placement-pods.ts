// The pods placement may put versions on, from their heartbeats. Heartbeats come from the pod NATS
// identity, which every pod shares, so with TLS on a heartbeat counts only once the address it
// names has proven, with its certificate, the identity it claims (as routers require before they
// send traffic: `claimedPodIdentity`, `probeIdentities`), and a proven pod stays at its address
// while its heartbeats keep coming: a heartbeat that names it elsewhere, or says goodbye for it
// from elsewhere, is ignored. Once counted, a pod's heartbeat is a hint, as routers take it: a
// goodbye, or a change of its versions, is asked of the pod over a connection that demands the
// identity it proved (lib/heartbeat-confirmation.ts), and its answer is what placement plans from;
// its memory budget, which it cannot be asked, is the one it reported when first counted. And with
// TLS on a heartbeat from a proven address counts at all (its load figures, its budget, its
// silence ended, a goodbye to be asked) only signed with the key of the certificate that address
// proved, newer than the last that counted (lib/heartbeat-signatures.ts); a pod that leaves takes
// its address's proof with it, as a router forgets it. Without TLS there is
// nothing to prove, and every heartbeat counts as it comes.
// Heartbeats can invent any number of pods: the view keeps INFERMESH_REGISTRY_MAX_PODS, the proofs
// share the process's bounded probes, and refusals are a warning line per interval, as routers do
// (lib/pod-claims.ts).
import type { Heartbeat, PodModel } from '../../../lib/events';
import { PodAnswerClients, type ProvenAddress } from '../../../lib/grpc/pod-answers';
import { HeartbeatConfirmation, sameVersions, type ConfirmedPod, type ConfirmedView, type PodAnswers } from '../../../lib/heartbeat-confirmation';
import { HeardPause, plainHeardClock, type HeardClock } from '../../../lib/listening-clock';
import type { Logger } from '../../../lib/log';
import { claimLimitsOf, ClaimWarnings, newPodRefusal, type ClaimLimits } from '../../../lib/pod-claims';
import { HeartbeatSignatures } from '../../../lib/heartbeat-signatures';
import { claimedPodIdentity, type ProbedPeer, type TlsFiles } from '../../../lib/tls';
import type { PodSeen } from '../pod-view';

/**
 * Proofs remembered at most, or INFERMESH_REGISTRY_MAX_PODS if more (claims come from heartbeats,
 * which a pod can invent: when full, those not proven are forgotten first).
 */
const MAX_PROOFS = 1_024;

/** Where the proof that `address` serves `identity` is kept: one per address and identity claimed. */
const proofKey = (address: string, identity: string) => `${address} ${identity}`;

interface Proof {
  address: string;
  identity: string;
  /** undefined while the probe runs. */
  proven: boolean | undefined;
  at: number;
  warned: boolean;
}

/** A pod placement counts, from when it is counted until it goes: what its heartbeats' claims are confirmed on. */
export interface CountedPod extends ConfirmedPod, ProvenAddress {
  /** Its heartbeat as placement believes it. */
  seen: PodSeen;
}

/**
 * `hb` with the memory budget of the heartbeat `kept` (the one its pod was first counted with): a
 * pod's budget is fixed for its life (INFERMESH_MODEL_MEMORY_MB) and no pod can be asked it, so one
 * a heartbeat in its name leaves out, lowers or raises (making placement move its copies away, or
 * overfill it) does not count.
 */
function withBudgetOf(hb: Heartbeat, kept: Heartbeat): Heartbeat {
  if (!kept.memory) return hb;
  return { ...hb, memory: { ...(hb.memory ?? kept.memory), budgetBytes: kept.memory.budgetBytes } };
}

export class PlacementPods {
  private readonly pods = new Map<string, CountedPod>();
  private readonly proofs = new Map<string, Proof>();
  private readonly listeners = new Set<() => void>();
  private readonly warnings: ClaimWarnings;
  /** Whether heartbeats cannot arrive now (NATS away or not answering), and since when. */
  private readonly pause: HeardPause;
  private readonly limits: ClaimLimits;
  /** With TLS on: what a counted pod's heartbeat would change is asked of the pod. */
  private readonly confirmation: HeartbeatConfirmation<CountedPod> | undefined;
  /** The clients confirmation asks pods over, unless the answers were given. */
  private readonly clients: PodAnswerClients | undefined;
  /** With TLS on: the keys proven addresses sign their heartbeats with, and what was taken of each. */
  private readonly signatures: HeartbeatSignatures<Proof> | undefined;

  /**
   * `ttlMs`: a pod with no counted heartbeat for this long is gone (INFERMESH_POD_TTL_MS);
   * `maxPods`: pods kept at most (INFERMESH_REGISTRY_MAX_PODS); `tls`: the registry's TLS material,
   * whose CA the pods' certificates must chain to (undefined: TLS off); `now`: the wall clock a
   * heartbeat's time is kept on; `heard`: the clock the TTL is judged on (the registry's
   * ListeningClock, so a stall of its own loop does not lose pods that kept speaking; default `now` alone).
   * `probe`: the identity probe of an address (default the TLS material's bounded probes,
   * TlsFiles.probes; undefined: refused, every probe taken). `answers`: how a counted pod is asked
   * what its heartbeats claim (default gRPC over TLS, demanding the identity it proved). The
   * retries, confirmations and warnings follow the claim limits in the TLS material's settings
   * (INFERMESH_IDENTITY_RETRY_MS, INFERMESH_HEARTBEAT_CONFIRM_*, INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS).
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxPods: number,
    private readonly tls: TlsFiles | undefined,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly probe: (address: string, files: TlsFiles) => Promise<ProbedPeer> | undefined = (address, files) => files.probes.probe(address),
    private readonly heard: HeardClock = plainHeardClock(now),
    answers?: PodAnswers<CountedPod>,
  ) {
    this.pause = new HeardPause(heard);
    this.limits = claimLimitsOf(tls?.settings);
    this.warnings = new ClaimWarnings(log, this.limits.refusedClaimLogIntervalMs);
    if (!tls) return;
    this.signatures = new HeartbeatSignatures<Proof>(this.limits, this.warnings, (proof) => this.reprobe(proof), { prefix: 'placement: ' });
    if (!answers) {
      const clients = (this.clients = new PodAnswerClients(tls, this.limits.heartbeatConfirmTimeoutMs));
      answers = { serving: (pod) => clients.serving(pod), versions: (pod) => clients.versions(pod) };
    }
    const view: ConfirmedView<CountedPod> = {
      holds: (pod) => this.pods.get(pod.id) === pod,
      believed: (pod) => pod.seen.heartbeat.models,
      leave: (pod) => this.remove(pod.id),
      setModels: (pod, models: readonly PodModel[]) => {
        pod.seen = { ...pod.seen, heartbeat: { ...pod.seen.heartbeat, models: [...models] } };
      },
    };
    this.confirmation = new HeartbeatConfirmation(view, answers, this.warnings, log, { intervalMs: this.limits.heartbeatConfirmIntervalMs, backoffMs: this.limits.heartbeatConfirmBackoffMs, prefix: 'placement: ' });
  }

  /** Calls `fn` when a pod comes or goes. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Takes a heartbeat (`bytes` on the wire), if it counts. */
  update(hb: Heartbeat, bytes: number): void {
    const held = this.pods.get(hb.pod);
    const fresh = held !== undefined && this.heard.heardUntil() - held.seen.heardAt < this.ttlMs;
    if (this.tls && fresh && held.address !== hb.address) return;
    if (hb.state !== 'serving') {
      // As a router takes one: only from the address and identity the pod was counted with, whose
      // proof holds the key its signature is checked with.
      if (!held || (this.tls && (held.address !== hb.address || held.identity !== claimedPodIdentity(hb)))) return;
      // Anyone can say goodbye in a counted pod's name: the pod is asked, and goes if it agrees or cannot answer.
      if (this.confirmation && fresh) {
        if (this.admits(hb)) this.confirmation.claim(held, hb);
      } else this.remove(hb.pod);
      return;
    }
    // A full view spends no probe on a pod it could not take.
    const full = held ? undefined : newPodRefusal(this.pods.size, this.maxPods);
    if (full !== undefined) {
      this.warnings.warn('placement: a heartbeat of a pod not yet known is ignored', { pod: hb.pod, address: hb.address, reason: `${full} (INFERMESH_REGISTRY_MAX_PODS)` });
      return;
    }
    if (this.tls && (!this.proven(hb) || !this.admits(hb))) return;
    const identity = claimedPodIdentity(hb);
    if (held && fresh && this.confirmation && held.identity === identity) {
      // Counted: only load figures may change on a heartbeat's word alone.
      if (!sameVersions(held.seen.heartbeat.models, hb.models)) {
        held.seen = { ...held.seen, heardAt: this.heard.now() };
        this.confirmation.claim(held, hb);
        return;
      }
      held.seen = { heartbeat: withBudgetOf(hb, held.seen.heartbeat), seenAt: this.now(), heardAt: this.heard.now(), bytes };
      return;
    }
    if (held) this.forget(held);
    const counted: CountedPod = { id: hb.pod, address: hb.address, identity, seen: { heartbeat: hb, seenAt: this.now(), heardAt: this.heard.now(), bytes } };
    this.pods.set(hb.pod, counted);
    // What its heartbeats said before it was counted was only a claim: its versions are asked of it.
    this.confirmation?.proven(counted);
    if (!held) this.changed();
  }

  /**
   * While NATS is unreachable, or does not answer (lib/nats.ts NatsLiveness), no heartbeat can
   * arrive: no pod is gone for its silence, so no version is moved off it. When it is back, each
   * pod's silence counts on from where it stood (HeardPause): a NATS late now and then keeps no dead pod.
   */
  setHeartbeatsAvailable(available: boolean): void {
    const shift = this.pause.set(available);
    if (shift) for (const p of this.pods.values()) p.seen = { ...p.seen, heardAt: shift(p.seen.heardAt) };
  }

  /** Asks pods nothing more (the registry stops). */
  stop(): void {
    this.confirmation?.stop();
    this.clients?.closeAll();
  }

  /** The pods counted now (serving, heard within the TTL), by name. */
  list(): PodSeen[] {
    const limit = this.pause.paused ? -Infinity : this.heard.heardUntil() - this.ttlMs;
    let gone = false;
    for (const [name, p] of this.pods) {
      if (p.seen.heardAt < limit) {
        this.pods.delete(name);
        this.forget(p);
        this.unprove(p);
        gone = true;
      }
    }
    if (gone) this.changed();
    return [...this.pods.values()].map((p) => p.seen).sort((a, b) => (a.heartbeat.pod < b.heartbeat.pod ? -1 : a.heartbeat.pod > b.heartbeat.pod ? 1 : 0));
  }

  private remove(name: string): void {
    const p = this.pods.get(name);
    if (!p) return;
    this.pods.delete(name);
    this.forget(p);
    this.unprove(p);
    this.changed();
  }

  /**
   * `pod` left: the proof of its address goes with what was taken of its signed heartbeats, as a
   * router forgets a pod that leaves. A process that comes back there proves the address again (a
   * dead one cannot), and is numbered afresh: one whose clock went back since its predecessor's
   * last heartbeat would otherwise read as a replay until its clock passed that one.
   */
  private unprove(pod: CountedPod): void {
    this.proofs.delete(proofKey(pod.address, pod.identity));
  }

  /** Nothing more is asked of `pod`, which left or was replaced, and its clients close. */
  private forget(pod: CountedPod): void {
    this.confirmation?.forget(pod);
    this.clients?.close(pod);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /**
   * Makes room among the proofs: invented claims, which never prove anything, go, and the pods that
   * proved their addresses keep their proofs, so a flood of claims does not make every real pod
   * prove itself again while the probes are taken (its heartbeats would not count meanwhile, and
   * placement would drop it after the TTL). All go only when every one is proven.
   */
  private forgetProofs(): void {
    for (const [key, proof] of this.proofs) if (proof.proven !== true) this.proofs.delete(key);
    if (this.proofs.size >= Math.max(MAX_PROOFS, this.maxPods)) this.proofs.clear();
  }

  /**
   * Whether `hb` counts as its signature goes (lib/heartbeat-signatures.ts): always when its address
   * has not proven the identity it claims (nothing is known to check it with), else only signed with
   * the key that address proved.
   */
  private admits(hb: Heartbeat): boolean {
    const proof = this.proofs.get(proofKey(hb.address, claimedPodIdentity(hb)));
    return !proof?.proven || !this.signatures || this.signatures.admits(proof, hb);
  }

  /**
   * A heartbeat signed with another key than `proof`'s address proved: its certificate may have
   * rotated. The address is probed again (HeartbeatSignatures bounds how often) and the key it
   * proves the identity with learned.
   */
  private reprobe(proof: Proof): void {
    const probe = this.tls && this.probe(proof.address, this.tls);
    if (!probe) return;
    void probe.then(({ ids, publicKey }) => {
      if (publicKey && ids.includes(proof.identity) && this.proofs.get(proofKey(proof.address, proof.identity)) === proof) this.signatures?.learn(proof, publicKey);
    }, () => undefined);
  }

  /** Whether `hb`'s address proved the identity it claims; starts the proof when none is known. */
  private proven(hb: Heartbeat): boolean {
    const identity = claimedPodIdentity(hb);
    const key = proofKey(hb.address, identity);
    const now = this.now();
    let proof = this.proofs.get(key);
    if (proof?.proven) return true;
    if (proof && (proof.proven === undefined || now - proof.at < this.limits.identityRetryMs)) return false;
    const probe = this.probe(hb.address, this.tls!);
    if (!probe) {
      // Tried again at the pod's next heartbeat.
      const load = this.tls?.probes?.load;
      this.warnings.warn('placement: pods wait to prove their addresses: every identity probe is taken', { pod: hb.pod, address: hb.address, ...(load && { running: load.running, waiting: load.waiting }) });
      return false;
    }
    if (!proof) {
      if (this.proofs.size >= Math.max(MAX_PROOFS, this.maxPods)) this.forgetProofs();
      this.proofs.set(key, (proof = { address: hb.address, identity, proven: undefined, at: now, warned: false }));
    }
    const p = proof;
    p.proven = undefined;
    p.at = now;
    void probe.then(({ ids, publicKey }) => {
      const ok = ids.includes(identity);
      // Its heartbeats count from now on only signed with the key of the certificate it proved.
      if (ok && publicKey) this.signatures?.learn(p, publicKey);
      return ok;
    }, () => false).then((ok) => {
      p.proven = ok;
      p.at = this.now();
      // Marked warned only once its line was written: one kept back within the interval is tried again.
      if (!ok && !p.warned) p.warned = this.warnings.warn('placement: a heartbeat\'s address does not prove the identity it claims; no versions are placed there', { pod: hb.pod, address: hb.address, identity });
    });
    return false;
  }
}
